import type { JsonObject } from './json.js';
import {
  createQueue as createQueueQuery,
  createQueueWithMode,
  dropQueue as dropQueueQuery,
  getQueuePolicy as getQueuePolicyQuery,
  listQueues as listQueuesQuery,
  setQueuePolicy as setQueuePolicyQuery,
} from './queries/queues.queries.js';
import type { Queryable } from './queryable.js';
import { validateQueueName } from './queue-name.js';

/** How a queue stores its tables. */
export type QueueStorageMode = 'unpartitioned' | 'partitioned';

/** Whether old empty partitions are detached automatically. */
export type QueueDetachMode = 'none' | 'empty';

/** A queue's retention and partition policy; intervals are Postgres interval text such as `'30 days'`. */
export interface QueuePolicyOptions {
  partitionLookahead?: string;
  partitionLookback?: string;
  cleanupTtl?: string;
  cleanupLimit?: number;
  detachMode?: QueueDetachMode;
  detachMinAge?: string;
}

/** Options of `createQueue`. */
export interface CreateQueueOptions extends QueuePolicyOptions {
  storageMode?: QueueStorageMode;
}

/** A queue's stored policy (intervals as Postgres text, e.g. `'28 days'`). */
export interface QueuePolicy {
  queueName: string;
  storageMode: QueueStorageMode;
  partitionLookahead: string;
  partitionLookback: string;
  cleanupTtl: string;
  cleanupLimit: number;
  detachMode: QueueDetachMode;
  detachMinAge: string;
}

/*
 * Every function here checks the queue name first (absurd-sdk's rule and messages, see
 * validateQueueName), so that a bad name is refused before any query whichever caller sends it.
 */

/** Creates a queue (idempotent; an error when it exists with another storage mode), then sets its policy. */
export async function createQueue(con: Queryable, queueName: string, options: CreateQueueOptions = {}): Promise<void> {
  validateQueueName(queueName);
  const mode = options.storageMode ?? 'unpartitioned';
  if (mode === 'unpartitioned') await createQueueQuery.run({ queueName }, con);
  else if (mode === 'partitioned') await createQueueWithMode.run({ queueName, storageMode: mode }, con);
  else throw new Error(`Invalid queue storage mode: ${String(mode)}`);
  await setQueuePolicy(con, queueName, options);
}

/** Updates the given policy keys; sends nothing when none is given. */
export async function setQueuePolicy(con: Queryable, queueName: string, options: QueuePolicyOptions = {}): Promise<void> {
  validateQueueName(queueName);
  const policy: JsonObject = {};
  if (options.partitionLookahead !== undefined) policy.partition_lookahead = options.partitionLookahead;
  if (options.partitionLookback !== undefined) policy.partition_lookback = options.partitionLookback;
  if (options.cleanupTtl !== undefined) policy.cleanup_ttl = options.cleanupTtl;
  if (options.cleanupLimit !== undefined) policy.cleanup_limit = options.cleanupLimit;
  if (options.detachMode !== undefined) policy.detach_mode = options.detachMode;
  if (options.detachMinAge !== undefined) policy.detach_min_age = options.detachMinAge;
  if (Object.keys(policy).length === 0) return;
  await setQueuePolicyQuery.run({ queueName, policy: JSON.stringify(policy) }, con);
}

/** The queue's policy, or null when the queue does not exist. */
export async function getQueuePolicy(con: Queryable, queueName: string): Promise<QueuePolicy | null> {
  validateQueueName(queueName);
  const [row] = await getQueuePolicyQuery.run({ queueName }, con);
  if (!row) return null;
  return {
    queueName: row.queue_name,
    storageMode: row.storage_mode as QueueStorageMode,
    partitionLookahead: row.partition_lookahead,
    partitionLookback: row.partition_lookback,
    cleanupTtl: row.cleanup_ttl,
    cleanupLimit: row.cleanup_limit,
    detachMode: row.detach_mode as QueueDetachMode,
    detachMinAge: row.detach_min_age,
  };
}

/** Drops a queue with all its tasks; unknown queues are ignored. */
export async function dropQueue(con: Queryable, queueName: string): Promise<void> {
  validateQueueName(queueName);
  await dropQueueQuery.run({ queueName }, con);
}

/** Every queue's name, sorted. */
export async function listQueues(con: Queryable): Promise<string[]> {
  const rows = await listQueuesQuery.run(undefined, con);
  return rows.map((row) => row.queue_name);
}
