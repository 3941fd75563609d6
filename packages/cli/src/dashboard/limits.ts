/**
 * The limits page's data (engine migration 000016): each concurrency and rate limit with the runs
 * holding a slot and the runs parked now, as `kit_list_limits` counts them; the tasks a limit parks,
 * read from `kit_limit_waiters` through its index on (queue, limit, bucket) and the queue's primary
 * keys, a page at most; and, for the task pages, which of their runs are parked, under which limit
 * and bucket, by the waiters' primary key.
 *
 * Only the waiters' columns queue_name, run_id, limit_name and key are read: the rest of the
 * bookkeeping (slots, starts, the un-park order) belongs to the engine and may change.
 */
import type pg from 'pg';
import { oneRow, runStatement } from '../cli-database.js';
import { limitList, parkedRuns, parkedTasksStatement } from '../queries/dashboard.queries.js';

/** A limit as the page shows it. */
export interface LimitView {
  readonly queue: string;
  readonly name: string;
  /** The task it applies to; null: every task of the queue. */
  readonly taskName: string | null;
  /** The params path whose value picks the bucket; null: one bucket for every run. */
  readonly keyPath: readonly string[] | null;
  readonly maxRunning: number | null;
  readonly rate: { readonly count: number; readonly periodSeconds: number } | null;
  /** Runs holding a slot now. */
  readonly running: number;
  /** Runs parked now, waiting for a slot of their bucket. */
  readonly parked: number;
}

/**
 * The limits of `queue`, or of every queue, by queue and name.
 *
 * @example
 * const limits = await readLimits(db, 'payments');
 */
export async function readLimits(db: pg.ClientBase, queue?: string): Promise<LimitView[]> {
  const rows = await limitList.run({ queueName: queue ?? null }, db);
  return rows.map((r) => ({
    queue: r.queue_name,
    name: r.limit_name,
    taskName: r.task_name,
    keyPath: r.key_path,
    maxRunning: r.max_running,
    rate: r.rate_count !== null && r.rate_period_seconds !== null ? { count: r.rate_count, periodSeconds: r.rate_period_seconds } : null,
    running: r.running,
    parked: r.parked,
  }));
}

/** Where a parked run waits: the limit whose bucket was full, and the bucket's key (JSON text, `null` for none). */
export interface ParkedRun {
  readonly limit: string;
  readonly key: string;
}

/**
 * Of `runs` (each a queue and a run id; pass only runs that are pending with `available_at`
 * infinity), those parked by a limit, keyed `<queue>\0<run id>`.
 *
 * @example
 * const parked = await readParkedRuns(db, [{ queue: 'payments', runID }]);
 * parked.get(parkedKey('payments', runID)); // { limit: 'charge-card:concurrency', key: '"cust-1"' }
 */
export async function readParkedRuns(db: pg.ClientBase, runs: readonly { queue: string; runID: string }[]): Promise<Map<string, ParkedRun>> {
  const found = new Map<string, ParkedRun>();
  if (runs.length === 0) return found;
  const rows = await parkedRuns.run({ queueNames: runs.map((r) => r.queue), runIds: runs.map((r) => r.runID) }, db);
  for (const row of rows) found.set(parkedKey(row.queue_name, row.run_id), { limit: row.limit_name, key: row.key });
  return found;
}

/** The key of a run in the map {@link readParkedRuns} returns. */
export function parkedKey(queue: string, runID: string): string {
  return `${queue}\u0000${runID}`;
}

/** A task parked by a limit. */
export interface ParkedTask {
  readonly key: string;
  readonly run_id: string;
  readonly attempt: number;
  readonly task_id: string;
  readonly task_name: string;
  readonly enqueue_at: Date;
}

/** Parked tasks listed at most. */
export const PARKED_PAGE = 100;

/**
 * The tasks limit `limit` of `queue` parks (in bucket `key` only, when given), {@link PARKED_PAGE}
 * at most, by bucket; empty when the queue does not exist.
 *
 * @example
 * const tasks = await readParkedTasks(db, 'payments', 'charge-card:concurrency', '"cust-1"');
 */
export async function readParkedTasks(db: pg.ClientBase, queue: string, limit: string, key?: string): Promise<ParkedTask[]> {
  const built = await parkedTasksStatement.run({ queueName: queue, byKey: key !== undefined }, db);
  if (built.length === 0) return [];
  const { statement } = oneRow(built, 'ParkedTasksStatement');
  return runStatement<ParkedTask>(db, statement, [limit, key ?? null, PARKED_PAGE]);
}
