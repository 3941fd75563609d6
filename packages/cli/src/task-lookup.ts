/**
 * Finding a task by id in one queue or in all of them (task ids are UUIDs, unique across queues).
 */
import type pg from 'pg';
import { AbsurdError } from '../../absurd-kit/src/errors.js';
import { queueNames, queueTable, requireQueue } from './cli-database.js';
import { TaskNotFoundError } from './cli-errors.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Returns `text` when it is a UUID; throws otherwise (before any query, so that Postgres never
 * sees a malformed id).
 *
 * @example
 * checkTaskId('0190b6a2-5c1e-7000-8000-000000000000');
 */
export function checkTaskId(text: string): string {
  if (!UUID.test(text)) {
    throw new AbsurdError('INVALID_TASK_ID', `${JSON.stringify(text)} is not a task id (task ids are UUIDs such as 0190b6a2-5c1e-7d3a-9f00-4b5c6d7e8f90)`);
  }
  return text.toLowerCase();
}

/** Where a task was found. */
export interface FoundTask {
  readonly queue: string;
  readonly taskId: string;
}

/**
 * The queue holding task `id` — the given queue, or else the one of all queues that has it. With
 * `byRun`, `id` may also be a run id (the task is then the run's). Throws `QueueNotFoundError` for
 * an unknown queue and {@link TaskNotFoundError} when no queue has the id.
 *
 * @example
 * const { queue } = await findTask(db, taskId, undefined);
 */
export async function findTask(
  db: pg.ClientBase,
  id: string,
  queue: string | undefined,
  options: { byRun?: boolean } = {},
): Promise<FoundTask> {
  const taskId = checkTaskId(id);
  if (queue !== undefined) await requireQueue(db, queue);
  const queues = queue === undefined ? await queueNames(db) : [queue];
  if (queues.length === 0) throw new TaskNotFoundError(taskId, queue);
  // One statement over every queue; queue names travel as parameters, table names are quoted.
  const branches = queues.flatMap((name, i) => {
    const q = `$${i + 2}::text`;
    const byTask = `select ${q} as queue_name, task_id, 0 as via_run from ${queueTable('t', name)} where task_id = $1::uuid`;
    const byRun = `select ${q} as queue_name, task_id, 1 as via_run from ${queueTable('r', name)} where run_id = $1::uuid`;
    return options.byRun ? [byTask, byRun] : [byTask];
  });
  const { rows } = await db.query<{ queue_name: string; task_id: string }>(
    `select queue_name, task_id from (${branches.join(' union all ')}) found order by via_run, queue_name limit 1`,
    [taskId, ...queues],
  );
  const row = rows[0];
  if (!row) throw new TaskNotFoundError(taskId, queue);
  return { queue: row.queue_name, taskId: row.task_id };
}
