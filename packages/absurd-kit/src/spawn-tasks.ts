/**
 * Spawning many tasks of one queue at once: one statement, one round trip, one commit. Used by the
 * client's `spawnMany`; anything else that spawns in bulk (a task context) calls `spawnTasks` with
 * its own connection.
 */
import { wakeChannel } from './notify.js';
import { spawnTasks as spawnTasksQuery, spawnTasksStandard } from './queries/tasks.queries.js';
import type { Queryable } from './queryable.js';
import { spawnOptionsToJson, type SpawnOptions } from './spawn-options.js';
import type { SpawnResult } from './task-result.js';

/** One task of a bulk spawn, its options already resolved (defaults, hooks). */
export interface SpawnTaskItem {
  taskName: string;
  params: unknown;
  options: SpawnOptions;
}

/**
 * Creates every task of `items` on `queue` in one statement and returns their results in the same
 * order; an item whose idempotency key is taken (by an existing task or an earlier item) returns
 * that task with `created: false`. All or nothing: an item the engine refuses (its error names the
 * item, `tasks[2]: …`) writes none of them. With `idleWakeups` (migration 000013) through
 * `absurd.kit_spawn_tasks`, which inserts set-based and notifies only idle workers; otherwise each
 * item through `absurd.spawn_task`, still in one statement, and one notification. Sends nothing
 * for no items.
 *
 * @example
 * const results = await spawnTasks(pool, 'orders', [
 *   { taskName: 'send-receipt', params: { orderId: 'o-1' }, options: { idempotencyKey: 'receipt:o-1' } },
 *   { taskName: 'send-receipt', params: { orderId: 'o-2' }, options: {} },
 * ], true);
 */
export async function spawnTasks(
  con: Queryable,
  queue: string,
  items: readonly SpawnTaskItem[],
  idleWakeups: boolean,
): Promise<(SpawnResult & { queue: string })[]> {
  if (items.length === 0) return [];
  const tasks = JSON.stringify(
    items.map(({ taskName, params, options }) => ({
      task_name: taskName,
      // JSON.stringify leaves out undefined: the engine stores JSON null, as for a single spawn.
      params: params === undefined ? null : params,
      options: spawnOptionsToJson(options),
    })),
  );
  const rows = idleWakeups
    ? await spawnTasksQuery.run({ queueName: queue, tasks }, con)
    : await spawnTasksStandard.run({ queueName: queue, tasks, channel: wakeChannel(queue) }, con);
  if (rows.length !== items.length) {
    throw new Error(`the engine returned ${rows.length} rows for ${items.length} spawned tasks`);
  }
  return rows.map((row) => ({ taskID: row.task_id, runID: row.run_id, attempt: row.attempt, created: row.created, queue }));
}
