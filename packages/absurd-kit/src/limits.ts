/**
 * Concurrency and rate limits of a queue, enforced by the engine's claim (migration 000016), so
 * that every worker respects them — absurd-kit's, and those of Absurd's own SDKs. See
 * docs/flow-control.md for what holds a slot, parking and fairness.
 */
import type { TaskContract } from './define.js';
import { InvalidLimitError } from './errors.js';
import { listLimits as listLimitsQuery, removeLimit as removeLimitQuery, setLimit as setLimitQuery } from './queries/limits.queries.js';
import type { Queryable } from './queryable.js';
import { validateQueueName } from './queue-name.js';

/** At most `limit` runs of a bucket may start within any window of `periodSeconds`. */
export interface RateLimitOptions {
  limit: number;
  periodSeconds: number;
}

/** A limit on the runs of a queue (or of one of its tasks), per bucket. */
export interface LimitOptions {
  /** Only the runs of this task; every task of the queue when left out. */
  taskName?: string;
  /**
   * What divides the runs into buckets: a path into the task's params, as a dotted string
   * (`'customer.id'`) or a list of names (`['customer', 'id']`). Left out: one bucket for all.
   * Runs whose params lack the path share the bucket `null`.
   */
  key?: string | readonly string[];
  /** At most this many runs of a bucket running at once. */
  maxRunning?: number;
  /** At most this many starts of a bucket per period. */
  rate?: RateLimitOptions;
}

/** A limit as stored, with what it holds now. */
export interface QueueLimit {
  queueName: string;
  name: string;
  taskName: string | null;
  /** The key path; null for a single bucket. */
  key: string[] | null;
  maxRunning: number | null;
  rate: RateLimitOptions | null;
  /** Runs holding a slot now (running). */
  running: number;
  /** Runs parked, waiting for a slot of their bucket. */
  parked: number;
}

/**
 * Creates or replaces the limit `name` of a queue; returns false when it already had exactly this
 * definition. Invalid options throw {@link InvalidLimitError} before anything is sent.
 *
 * @example
 * await setLimit(pool, 'orders', 'one-per-customer', { key: 'customerId', maxRunning: 1 });
 */
export async function setLimit(con: Queryable, queueName: string, name: string, options: LimitOptions): Promise<boolean> {
  validateQueueName(queueName);
  checkLimit(name, options);
  const [row] = await setLimitQuery.run(
    {
      queueName,
      limitName: name,
      taskName: options.taskName ?? null,
      keyPath: options.key === undefined ? null : keyPath(options.key),
      maxRunning: options.maxRunning ?? null,
      rateCount: options.rate?.limit ?? null,
      ratePeriodSeconds: options.rate?.periodSeconds ?? null,
    },
    con,
  );
  return row?.changed ?? false;
}

/**
 * Removes the limit `name` of a queue (its parked runs become claimable); false when there was none.
 *
 * @example
 * await removeLimit(pool, 'orders', 'one-per-customer');
 */
export async function removeLimit(con: Queryable, queueName: string, name: string): Promise<boolean> {
  validateQueueName(queueName);
  const [row] = await removeLimitQuery.run({ queueName, limitName: name }, con);
  return row?.removed ?? false;
}

/**
 * The limits of a queue, or of every queue when `queueName` is null, by queue and name.
 *
 * @example
 * for (const limit of await listLimits(pool, 'orders')) console.log(limit.name, limit.running);
 */
export async function listLimits(con: Queryable, queueName: string | null): Promise<QueueLimit[]> {
  if (queueName !== null) validateQueueName(queueName);
  const rows = await listLimitsQuery.run({ queueName }, con);
  return rows.map((row) => ({
    queueName: row.queueName,
    name: row.limitName,
    taskName: row.taskName,
    key: row.keyPath,
    maxRunning: row.maxRunning,
    rate:
      row.rateCount === null || row.ratePeriodSeconds === null ? null : { limit: row.rateCount, periodSeconds: row.ratePeriodSeconds },
    running: row.running,
    parked: row.parked,
  }));
}

/**
 * A key given as a dotted string or a list of names, as the list of names the engine reads.
 *
 * @example
 * keyPath('customer.id'); // ['customer', 'id']
 */
export function keyPath(key: string | readonly string[]): string[] {
  const parts = typeof key === 'string' ? key.split('.') : [...key];
  if (parts.length === 0 || parts.some((part) => typeof part !== 'string' || part === '')) {
    throw new InvalidLimitError(`key ${JSON.stringify(key)} must be a dotted path or a list of non-empty names`);
  }
  return parts;
}

/** Throws {@link InvalidLimitError} for options the engine would refuse (AB004). */
function checkLimit(name: string, options: LimitOptions): void {
  const fail = (what: string) => {
    throw new InvalidLimitError(`limit ${JSON.stringify(name)}: ${what}`);
  };
  if (typeof name !== 'string' || name.trim() === '') throw new InvalidLimitError('a limit needs a non-blank name');
  if (options.taskName !== undefined && options.taskName.trim() === '') fail('taskName must not be blank');
  if (options.key !== undefined) keyPath(options.key);
  const positive = (value: number) => Number.isInteger(value) && value >= 1 && value <= 2147483647;
  if (options.maxRunning !== undefined && !positive(options.maxRunning)) fail('maxRunning must be an integer >= 1');
  if (options.rate !== undefined) {
    if (!positive(options.rate.limit)) fail('rate.limit must be an integer >= 1');
    if (!(Number.isFinite(options.rate.periodSeconds) && options.rate.periodSeconds > 0)) fail('rate.periodSeconds must be more than 0');
  }
  if (options.maxRunning === undefined && options.rate === undefined) fail('give maxRunning, rate, or both');
}

/** A named limit to set: what a task contract declares, as {@link setLimit} takes it. */
export interface NamedLimit {
  name: string;
  options: LimitOptions;
}

/** The kinds of limit a task contract can declare. */
export const CONTRACT_LIMIT_KINDS = ['concurrency', 'rate'] as const;

/**
 * The name of the limit of one kind that a task's contract declares: a worker sets it when the
 * contract declares it, and removes it when the contract no longer does.
 *
 * @example
 * contractLimitName('charge-card', 'concurrency'); // 'charge-card:concurrency'
 */
export function contractLimitName(taskName: string, kind: (typeof CONTRACT_LIMIT_KINDS)[number]): string {
  return `${taskName}:${kind}`;
}

/**
 * The limits a task contract declares, named after the task: `<task>:concurrency` and
 * `<task>:rate`. A worker sets them on its queue when it starts.
 *
 * @example
 * contractLimits(chargeCard); // [{ name: 'charge-card:concurrency', options: { taskName: 'charge-card', key: ['customerId'], maxRunning: 1 } }]
 */
export function contractLimits(contract: TaskContract): NamedLimit[] {
  const declared: NamedLimit[] = [];
  const { concurrency, rateLimit } = contract;
  if (concurrency !== undefined) {
    declared.push({
      name: contractLimitName(contract.name, 'concurrency'),
      options: { taskName: contract.name, maxRunning: concurrency.limit, ...(concurrency.key ? { key: concurrency.key } : {}) },
    });
  }
  if (rateLimit !== undefined) {
    declared.push({
      name: contractLimitName(contract.name, 'rate'),
      options: {
        taskName: contract.name,
        rate: { limit: rateLimit.limit, periodSeconds: rateLimit.periodSeconds },
        ...(rateLimit.key ? { key: rateLimit.key } : {}),
      },
    });
  }
  return declared;
}
