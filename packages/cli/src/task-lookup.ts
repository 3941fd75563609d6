/**
 * Finding a task by id in one queue or in all of them (task ids are UUIDs, unique across queues).
 */
import type pg from 'pg';
import { AbsurdError } from 'absurd-kit';
import { requireQueue, runStatement } from './cli-database.js';
import { TaskNotFoundError } from './cli-errors.js';
import { findTaskStatement } from './queries/tasks.queries.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Returns `text` when it is a UUID; throws otherwise (before any query, so that Postgres never
 * sees a malformed id).
 *
 * @example
 * checkTaskID('0190b6a2-5c1e-7000-8000-000000000000');
 */
export function checkTaskID(text: string): string {
  if (!UUID.test(text)) {
    throw new AbsurdError('INVALID_TASK_ID', `${JSON.stringify(text)} is not a task id (task ids are UUIDs such as 0190b6a2-5c1e-7d3a-9f00-4b5c6d7e8f90)`);
  }
  return text.toLowerCase();
}

/** Where a task was found. */
export interface FoundTask {
  readonly queue: string;
  readonly taskID: string;
}

/**
 * The queue holding task `id` — the given queue, or else the one of all queues that has it. With
 * `byRun`, `id` may also be a run id (the task is then the run's). Throws `QueueNotFoundError` for
 * an unknown queue and {@link TaskNotFoundError} when no queue has the id.
 *
 * @example
 * const { queue } = await findTask(db, taskID, undefined);
 */
export async function findTask(
  db: pg.ClientBase,
  id: string,
  queue: string | undefined,
  options: { byRun?: boolean } = {},
): Promise<FoundTask> {
  const taskID = checkTaskID(id);
  if (queue !== undefined) await requireQueue(db, queue);
  // One statement over every queue (or the one given), built in SQL from absurd.queues.
  const [built] = await findTaskStatement.run({ queueName: queue ?? null, byRun: options.byRun === true }, db);
  if (!built?.statement) throw new TaskNotFoundError(taskID, queue);
  const [row] = await runStatement<{ queue_name: string; task_id: string }>(db, built.statement, [taskID]);
  if (!row) throw new TaskNotFoundError(taskID, queue);
  return { queue: row.queue_name, taskID: row.task_id };
}
