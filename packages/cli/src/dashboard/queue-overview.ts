/**
 * The queues page's data: every queue with its tasks per state, its recent completions and
 * failures, its storage mode and its policy. Counts are capped (see {@link COUNT_CAP}) so that the
 * page costs the same whatever the queues retain.
 */
import type pg from 'pg';
import { runStatement } from '../cli-database.js';
import { databaseNow, queueSummaryStatement } from '../queries/dashboard.queries.js';
import { queuePolicy, queueRows } from '../queries/queues.queries.js';

/** Index entries each count reads at most; a count that reaches it is shown as "at least". */
export const COUNT_CAP = 100_000;

/** The per-state counts and recent activity of a queue, as `QueueSummaryStatement` returns them. */
export interface QueueCounts {
  readonly pending: number;
  readonly running: number;
  readonly sleeping: number;
  readonly completed: number;
  readonly failed: number;
  readonly cancelled: number;
  readonly completed_5m: number;
  readonly completed_60m: number;
  readonly failed_5m: number;
  readonly failed_60m: number;
}

/** A queue of the overview. */
export interface QueueOverview {
  readonly name: string;
  readonly storageMode: string;
  readonly createdAt: Date;
  readonly counts: QueueCounts;
  /** The policy as `get_queue_policy` gives it, intervals as Postgres text. */
  readonly policy: Readonly<Record<string, string | number>>;
}

/**
 * Every queue, by name.
 *
 * @example
 * const queues = await readQueueOverview(db);
 */
export async function readQueueOverview(db: pg.ClientBase): Promise<QueueOverview[]> {
  const queues = await queueRows.run(undefined, db);
  if (queues.length === 0) return [];
  const [built] = await queueSummaryStatement.run(undefined, db);
  const [clock] = await databaseNow.run(undefined, db);
  const now = clock?.now.getTime() ?? Date.now();
  const windows = [new Date(now - 5 * 60_000), new Date(now - 60 * 60_000)];
  const rows = built?.statement
    ? await runStatement<{ queue_name: string } & Record<keyof QueueCounts, string>>(db, built.statement, [COUNT_CAP, ...windows])
    : [];
  const counts = new Map(rows.map((row) => [row.queue_name, row]));
  const overview: QueueOverview[] = [];
  for (const queue of queues) {
    const row = counts.get(queue.queue_name);
    const [policy] = await queuePolicy.run({ queueName: queue.queue_name }, db);
    overview.push({
      name: queue.queue_name,
      storageMode: queue.storage_mode,
      createdAt: queue.created_at,
      counts: {
        pending: Number(row?.pending ?? 0),
        running: Number(row?.running ?? 0),
        sleeping: Number(row?.sleeping ?? 0),
        completed: Number(row?.completed ?? 0),
        failed: Number(row?.failed ?? 0),
        cancelled: Number(row?.cancelled ?? 0),
        completed_5m: Number(row?.completed_5m ?? 0),
        completed_60m: Number(row?.completed_60m ?? 0),
        failed_5m: Number(row?.failed_5m ?? 0),
        failed_60m: Number(row?.failed_60m ?? 0),
      },
      policy: policy
        ? {
            cleanupTtl: policy.cleanup_ttl,
            cleanupLimit: policy.cleanup_limit,
            ...(queue.storage_mode === 'partitioned'
              ? {
                  defaultPartition: policy.default_partition,
                  partitionLookahead: policy.partition_lookahead,
                  partitionLookback: policy.partition_lookback,
                  detachMode: policy.detach_mode,
                  detachMinAge: policy.detach_min_age,
                }
              : {}),
          }
        : {},
    });
  }
  return overview;
}
