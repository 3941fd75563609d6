/**
 * Managing schedules in the engine (migration 000015): applying a declared or plain schedule,
 * removing, pausing, resuming and listing them. The client's schedule methods and the CLI's
 * `absurd schedules` commands both come here.
 */
import { DEFAULT_MAX_ATTEMPTS } from './client-options.js';
import { checkCron, checkTimezone } from './cron.js';
import { isScheduleContract, type CatchUpPolicy, type ScheduleContract, type ScheduleSpawnOptions } from './define-schedule.js';
import { toJsonParam, type JsonObject, type JsonValue } from './json.js';
import {
  listSchedules as listSchedulesQuery,
  removeSchedule as removeScheduleQuery,
  setSchedulePaused,
  upsertSchedule as upsertScheduleQuery,
  type IListSchedulesResult,
} from './queries/schedules.queries.js';
import type { Queryable } from './queryable.js';
import { validateQueueName } from './queue-name.js';
import { ScheduleError } from './errors.js';
import { scheduleCallError } from './schedule-sql-errors.js';
import { spawnOptionsToJson } from './spawn-options.js';
import { withSpawnDefaults } from './spawn-task.js';

/**
 * A schedule given by name rather than declared with `defineSchedule` (a task without a contract,
 * a script): the same fields, `task` a task name and `queue` required. Its params are not checked.
 */
export interface ScheduleInput {
  name: string;
  queue: string;
  task: string;
  cron: string;
  /** Default `'UTC'`. */
  timezone?: string;
  /** Default `{}`. */
  params?: JsonValue;
  /** Default `'skip'`. */
  catchUp?: CatchUpPolicy;
  options?: ScheduleSpawnOptions;
}

/** A schedule as the engine stores it. */
export interface ScheduleInfo {
  name: string;
  queue: string;
  task: string;
  cron: string;
  timezone: string;
  params: JsonValue;
  /** Spawn options in the engine's form (`max_attempts`, `retry_strategy`, `headers`, …). */
  options: JsonObject;
  catchUp: CatchUpPolicy;
  paused: boolean;
  /** The next tick (null never for a stored schedule; typed as the column is). */
  nextFireAt: Date | null;
  /** The tick of the last task it spawned. */
  lastFiredAt: Date | null;
  lastTaskID: string | null;
  /** Why the last tick could not spawn its task, if it could not. */
  lastError: string | null;
  createdAt: Date;
  updatedAt: Date;
}

/**
 * Creates the schedule or updates it in place, and returns it. Its next tick is kept unless the
 * cron expression or time zone changed (re-applying a schedule neither skips nor repeats a tick);
 * a paused schedule stays paused. Its tasks get the options a client's spawn would give them: the
 * schedule's, then the task contract's defaults, then `defaultMaxAttempts` attempts. Throws {@link ScheduleError} for an invalid cron or time zone,
 * an unknown queue (`QUEUE_NOT_FOUND`) or another refused field.
 *
 * @example
 * await upsertSchedule(pool, nightlyReport);
 * await upsertSchedule(pool, { name: 'purge', queue: 'ops', task: 'purge-sessions', cron: '@hourly' });
 */
export async function upsertSchedule(
  con: Queryable,
  schedule: ScheduleContract | ScheduleInput,
  defaultMaxAttempts = DEFAULT_MAX_ATTEMPTS,
): Promise<ScheduleInfo> {
  const fields = isScheduleContract(schedule)
    ? { ...schedule, task: schedule.task.name, params: schedule.params as JsonValue }
    : schedule;
  // The options a spawn of the task by a client would get: the schedule's own, then the contract's
  // defaults, then (attempts only) the client's default.
  const options = withSpawnDefaults(isScheduleContract(schedule) ? schedule.task : fields.task, undefined, { ...fields.options }, defaultMaxAttempts);
  if (typeof fields.name !== 'string' || fields.name.trim() === '') {
    throw new ScheduleError('INVALID_SCHEDULE', 'a schedule needs a non-empty name');
  }
  const args = {
    scheduleName: fields.name,
    queueName: validateQueueName(fields.queue),
    taskName: fields.task,
    cron: checkCron(fields.cron),
    timezone: checkTimezone(fields.timezone ?? 'UTC'),
    params: toJsonParam(fields.params ?? {}),
    options: JSON.stringify(spawnOptionsToJson(options)),
    catchUp: fields.catchUp ?? 'skip',
  };
  const [row] = await run(() => upsertScheduleQuery.run(args, con));
  if (!row) throw new Error('absurd.kit_upsert_schedule returned no row');
  return toScheduleInfo(row);
}

/**
 * Removes a schedule; returns whether it existed. Tasks it spawned are left as they are.
 *
 * @example
 * if (!(await removeSchedule(pool, 'nightly-report'))) console.warn('no such schedule');
 */
export async function removeSchedule(con: Queryable, name: string): Promise<boolean> {
  const [row] = await run(() => removeScheduleQuery.run({ scheduleName: name }, con));
  return row?.removed ?? false;
}

/**
 * Pauses (`paused: true`) or resumes a schedule and returns it. A resumed schedule starts from its
 * first tick after now: ticks that fell while it was paused never fire. Throws
 * {@link ScheduleError} `SCHEDULE_NOT_FOUND` for an unknown name.
 *
 * @example
 * await setScheduleState(pool, 'nightly-report', { paused: true });
 */
export async function setScheduleState(con: Queryable, name: string, state: { paused: boolean }): Promise<ScheduleInfo> {
  const [row] = await run(() => setSchedulePaused.run({ scheduleName: name, paused: state.paused }, con));
  if (!row) throw new ScheduleError('SCHEDULE_NOT_FOUND', `schedule "${name}" does not exist`);
  return toScheduleInfo(row);
}

/**
 * Every schedule, or those of one queue, by name.
 *
 * @example
 * for (const s of await listSchedules(pool)) console.log(s.name, s.nextFireAt);
 */
export async function listSchedules(con: Queryable, queueName?: string): Promise<ScheduleInfo[]> {
  const rows = await run(() => listSchedulesQuery.run({ queueName: queueName === undefined ? null : queueName }, con));
  return rows.map(toScheduleInfo);
}

async function run<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw scheduleCallError(error);
  }
}

function toScheduleInfo(row: IListSchedulesResult): ScheduleInfo {
  return {
    name: row.schedule_name,
    queue: row.queue_name,
    task: row.task_name,
    cron: row.cron,
    timezone: row.timezone,
    params: row.params as JsonValue,
    options: row.options as JsonObject,
    catchUp: row.catch_up as CatchUpPolicy,
    paused: row.paused,
    nextFireAt: row.next_fire_at,
    lastFiredAt: row.last_fired_at,
    lastTaskID: row.last_task_id,
    lastError: row.last_error,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
