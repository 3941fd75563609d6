/**
 * Changing the course of a task: `cancel` and `retry`.
 */
import type pg from 'pg';
import { wakeChannel } from '../../../absurd-kit/src/notify.js';
import { cancelTask, retryTask } from '../../../absurd-kit/src/queries/tasks.queries.js';
import { queryConnection } from '../../../absurd-kit/src/queryable.js';
import { AbsurdError } from '../../../absurd-kit/src/errors.js';
import { EXIT, type CommandSpec } from '../cli-command.js';
import { queueTable, withEngine } from '../cli-database.js';
import { booleanFlag, integerFlag, stringFlag } from '../cli-flags.js';
import { shellQuote } from '../cli-format.js';
import { findTask } from '../task-lookup.js';

const jsonFlag = { name: 'json', description: 'Print one JSON object instead of text lines' } as const;
const queueFlag = {
  name: 'queue',
  short: 'q',
  value: 'queue',
  description: 'Queue of the task (default: search every queue)',
} as const;
const taskArg = [{ name: 'task-id', required: true }] as const;

async function taskState(db: pg.ClientBase, queue: string, taskId: string): Promise<{ state: string; attempts: number; max_attempts: number | null }> {
  const { rows } = await db.query<{ state: string; attempts: number; max_attempts: number | null }>(
    `select state, attempts, max_attempts from ${queueTable('t', queue)} where task_id = $1`,
    [taskId],
  );
  const row = rows[0];
  if (!row) throw new Error(`task ${taskId} disappeared from queue ${JSON.stringify(queue)}`);
  return row;
}

/** `absurd cancel`. */
export const cancelCommand: CommandSpec = {
  name: 'cancel',
  summary: 'Cancel a task that has not ended (a running worker stops at its next step)',
  args: taskArg,
  flags: [queueFlag, jsonFlag],
  async run(context) {
    const result = await withEngine(context, async (db) => {
      const { queue, taskId } = await findTask(db, context.positionals[0] ?? '', stringFlag(context, 'queue'));
      const before = (await taskState(db, queue, taskId)).state;
      await cancelTask.run({ queueName: queue, taskId }, queryConnection(db));
      const after = (await taskState(db, queue, taskId)).state;
      return { queue, taskId, previousState: before, state: after, cancelled: before !== 'cancelled' && after === 'cancelled' };
    });
    if (booleanFlag(context, 'json')) {
      context.print(JSON.stringify(result));
    } else if (result.cancelled) {
      context.print(`cancelled task ${result.taskId} on queue ${JSON.stringify(result.queue)} (was ${result.previousState})`);
    } else {
      context.print(`task ${result.taskId} on queue ${JSON.stringify(result.queue)} had already ended (${result.state}); nothing to cancel`);
    }
    return EXIT.ok;
  },
};

/** `absurd retry`. */
export const retryCommand: CommandSpec = {
  name: 'retry',
  summary: 'Retry a failed task: a new run of it, or with --spawn-new a new task with the same params',
  description:
    'Retries a failed task. In place, it gets one more attempt (or up to --max-attempts in total, which must exceed ' +
    'the attempts so far). With --spawn-new a new task is spawned with the same params, headers and retry settings ' +
    '(and --max-attempts, if given); checkpoints are not copied.',
  args: taskArg,
  flags: [
    queueFlag,
    { name: 'max-attempts', value: 'n', description: 'New total of attempts (in place: must exceed the attempts so far)' },
    { name: 'spawn-new', description: 'Spawn a new task instead of a new run of this one' },
    jsonFlag,
  ],
  async run(context) {
    const maxAttempts = integerFlag(context, 'max-attempts', { min: 1 });
    const spawnNew = booleanFlag(context, 'spawn-new');
    const result = await withEngine(context, async (db) => {
      const { queue, taskId } = await findTask(db, context.positionals[0] ?? '', stringFlag(context, 'queue'));
      const task = await taskState(db, queue, taskId);
      if (task.state !== 'failed') {
        throw new AbsurdError(
          'TASK_NOT_FAILED',
          `task ${taskId} on queue ${JSON.stringify(queue)} is ${task.state}, not failed; only failed tasks can be retried` +
            (task.state === 'cancelled' ? '' : ` (see \`absurd tasks show ${taskId} -q ${shellQuote(queue)}\`)`),
        );
      }
      if (!spawnNew && maxAttempts !== undefined && maxAttempts <= task.attempts) {
        throw new AbsurdError(
          'RETRY_ATTEMPTS',
          `--max-attempts ${maxAttempts} must be greater than the ${task.attempts} attempt(s) task ${taskId} has had`,
        );
      }
      const options: Record<string, number | boolean> = {};
      if (maxAttempts !== undefined) options.max_attempts = maxAttempts;
      if (spawnNew) options.spawn_new = true;
      const rows = await retryTask.run(
        { queueName: queue, taskId, options: JSON.stringify(options), channel: wakeChannel(queue) },
        queryConnection(db),
      );
      const row = rows[0];
      if (!row) throw new Error('retry_task returned no row');
      return { queue, retriedTaskId: taskId, taskId: row.task_id, runId: row.run_id, attempt: row.attempt, created: row.created };
    });
    if (booleanFlag(context, 'json')) {
      context.print(JSON.stringify(result));
    } else if (result.created) {
      context.print(`spawned task ${result.taskId} on queue ${JSON.stringify(result.queue)} as a retry of ${result.retriedTaskId}`);
      context.print(`run ${result.runId}, attempt ${result.attempt}`);
    } else {
      context.print(`retried task ${result.taskId} on queue ${JSON.stringify(result.queue)}: run ${result.runId}, attempt ${result.attempt}`);
    }
    return EXIT.ok;
  },
};

/** Both task-control commands. */
export const taskControlCommands: readonly CommandSpec[] = [cancelCommand, retryCommand];
