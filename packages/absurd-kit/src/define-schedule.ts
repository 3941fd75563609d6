/**
 * Declaring a cron schedule next to the contracts: which task it spawns, when, in which time zone,
 * with which params and catch-up policy. Everything is checked here, at definition: a schedule that
 * was declared can be applied.
 */
import { checkCron, checkTimezone } from './cron.js';
import { isTaskContract, type Input, type ParamsOf, type TaskContract } from './define.js';
import type { JsonObject } from './json.js';
import { ScheduleError } from './errors.js';
import type { CancellationPolicy, RetryStrategy } from './spawn-options.js';
import { parseWithSync } from './validation.js';

/**
 * What a schedule does with ticks that fell while no worker claimed on its queue (workers down,
 * queue saturated): `'skip'` fires the latest missed tick only if it is at most 60 seconds late,
 * `'latest'` fires the latest missed tick once however late. Earlier missed ticks never fire.
 */
export type CatchUpPolicy = 'skip' | 'latest';

/** Spawn options applied to every task a schedule spawns (its idempotency key is the engine's, per tick). */
export interface ScheduleSpawnOptions {
  maxAttempts?: number;
  retryStrategy?: RetryStrategy;
  cancellation?: CancellationPolicy;
  /** Extra headers; the engine adds `absurd.schedule` and `absurd.scheduled_at`. */
  headers?: JsonObject;
}

/** Options of {@link defineSchedule}. */
export interface DefineScheduleOptions<C extends TaskContract> {
  /** Unique across the database: the key `absurd schedules` and the client methods use. */
  name: string;
  /** The task each tick spawns, on the task's queue. */
  task: C;
  /** Five fields (minute hour day-of-month month day-of-week) or a macro such as `@daily`. */
  cron: string;
  /** IANA time zone the cron fields are read in; default `'UTC'`. */
  timezone?: string;
  /** The params of every spawned task, checked against the task's contract here. */
  params: Input<ParamsOf<C>>;
  /** Default `'skip'`. */
  catchUp?: CatchUpPolicy;
  options?: ScheduleSpawnOptions;
}

/** A schedule declared by {@link defineSchedule}: what `upsertSchedule` and `absurd schedules sync` apply. */
export interface ScheduleContract<C extends TaskContract = TaskContract> {
  readonly kind: 'absurd.schedule';
  readonly name: string;
  readonly task: C;
  /** The task's queue: where the ticks spawn, and which queue's claims fire them. */
  readonly queue: string;
  readonly cron: string;
  readonly timezone: string;
  readonly params: Input<ParamsOf<C>>;
  readonly catchUp: CatchUpPolicy;
  readonly options: Readonly<ScheduleSpawnOptions>;
}

/**
 * Declares a cron schedule of a task. Throws at once — a {@link ScheduleError} for an invalid cron
 * expression (naming the field) or time zone, a `ValidationError` for params the task's contract
 * refuses — so that a mistake fails at import, not at the first tick. The engine spawns exactly one
 * task per tick however many workers run; a worker applies the schedules it is given
 * (`app.registerSchedule`), or `absurd schedules sync` applies every one under workflows/.
 *
 * @example
 * export const nightlyReport = defineSchedule({
 *   name: 'nightly-report',
 *   task: sendReport,
 *   cron: '0 2 * * *',
 *   timezone: 'Europe/Berlin',
 *   params: { kind: 'daily' },
 *   catchUp: 'latest',
 * });
 */
export function defineSchedule<C extends TaskContract>(options: DefineScheduleOptions<C>): ScheduleContract<C> {
  const subject = `defineSchedule(${JSON.stringify(options?.name)})`;
  if (typeof options?.name !== 'string' || options.name.trim() === '') {
    throw new ScheduleError('INVALID_SCHEDULE', 'defineSchedule: name must be a non-empty string');
  }
  if (!isTaskContract(options.task)) {
    throw new ScheduleError('INVALID_SCHEDULE', `${subject}: task must be a task contract made by defineTask`);
  }
  const catchUp = options.catchUp ?? 'skip';
  if (catchUp !== 'skip' && catchUp !== 'latest') {
    throw new ScheduleError('INVALID_SCHEDULE', `${subject}: catchUp must be 'skip' or 'latest', got ${JSON.stringify(catchUp)}`);
  }
  const cron = withSubject(subject, () => checkCron(options.cron));
  const timezone = withSubject(subject, () => checkTimezone(options.timezone ?? 'UTC'));
  const spawnOptions = { ...options.options };
  const maxAttempts = spawnOptions.maxAttempts;
  if (maxAttempts !== undefined && !(Number.isInteger(maxAttempts) && maxAttempts >= 1)) {
    throw new ScheduleError('INVALID_SCHEDULE', `${subject}: options.maxAttempts must be an integer >= 1`);
  }
  if ('idempotencyKey' in spawnOptions) {
    throw new ScheduleError('INVALID_SCHEDULE', `${subject}: options.idempotencyKey is not allowed (every tick has its own key)`);
  }
  // Checked, not transformed: the input form is what is stored and what the worker parses.
  parseWithSync(options.task.params, options.params, { subject: `schedule "${options.name}" of ${options.task.name}`, boundary: 'params', retryable: false });
  return Object.freeze({
    kind: 'absurd.schedule',
    name: options.name,
    task: options.task,
    queue: options.task.queue,
    cron,
    timezone,
    params: options.params,
    catchUp,
    options: Object.freeze(spawnOptions),
  });
}

/**
 * True for values made by {@link defineSchedule}.
 *
 * @example
 * const schedules = Object.values(await import('./workflows/index.js')).filter(isScheduleContract);
 */
export function isScheduleContract(value: unknown): value is ScheduleContract {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'absurd.schedule';
}

function withSubject<T>(subject: string, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof ScheduleError) throw new ScheduleError(error.code, `${subject}: ${error.message}`);
    throw error;
  }
}
