/**
 * Changing the course of a task: `cancel` and `retry`, through the runtime's client (which also
 * wakes the queue's workers).
 */
import type pg from 'pg';
import { AbsurdError } from 'absurd-kit';
import { EXIT, type CommandSpec } from '../cli-command.js';
import { engineClient, oneRow, runStatement, withEngine } from '../cli-database.js';
import { booleanFlag, integerFlag, stringFlag } from '../cli-flags.js';
import { shellQuote } from '../cli-format.js';
import { taskStateStatement } from '../queries/tasks.queries.js';
import { findTask } from '../task-lookup.js';

const jsonFlag = { name: 'json', description: 'Print one JSON object instead of text lines' } as const;
const queueFlag = {
  name: 'queue',
  short: 'q',
  value: 'queue',
  description: 'Queue of the task (default: search every queue)',
} as const;
const taskArg = [{ name: 'task-id', required: true }] as const;

interface TaskState {
  state: string;
  attempts: number;
  max_attempts: number | null;
}

async function taskState(db: pg.ClientBase, queue: string, taskID: string): Promise<TaskState> {
  const { statement } = oneRow(await taskStateStatement.run({ queueName: queue }, db), 'TaskStateStatement');
  const [row] = await runStatement<TaskState>(db, statement, [taskID]);
  if (!row) throw new Error(`task ${taskID} disappeared from queue ${JSON.stringify(queue)}`);
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
      const { queue, taskID } = await findTask(db, context.positionals[0] ?? '', stringFlag(context, 'queue'));
      const before = (await taskState(db, queue, taskID)).state;
      await engineClient(db).cancelTask(taskID, queue);
      const after = (await taskState(db, queue, taskID)).state;
      return { queue, taskID, previousState: before, state: after, cancelled: before !== 'cancelled' && after === 'cancelled' };
    });
    if (booleanFlag(context, 'json')) {
      context.print(JSON.stringify(result));
    } else if (result.cancelled) {
      context.print(`cancelled task ${result.taskID} on queue ${JSON.stringify(result.queue)} (was ${result.previousState})`);
    } else {
      context.print(`task ${result.taskID} on queue ${JSON.stringify(result.queue)} had already ended (${result.state}); nothing to cancel`);
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
      const { queue, taskID } = await findTask(db, context.positionals[0] ?? '', stringFlag(context, 'queue'));
      const task = await taskState(db, queue, taskID);
      if (task.state !== 'failed') {
        throw new AbsurdError(
          'TASK_NOT_FAILED',
          `task ${taskID} on queue ${JSON.stringify(queue)} is ${task.state}, not failed; only failed tasks can be retried` +
            (task.state === 'cancelled' ? '' : ` (see \`absurd tasks show ${taskID} -q ${shellQuote(queue)}\`)`),
        );
      }
      if (!spawnNew && maxAttempts !== undefined && maxAttempts <= task.attempts) {
        throw new AbsurdError(
          'RETRY_ATTEMPTS',
          `--max-attempts ${maxAttempts} must be greater than the ${task.attempts} attempt(s) task ${taskID} has had`,
        );
      }
      const retried = await engineClient(db).retryTask(taskID, { queue, maxAttempts, spawnNewTask: spawnNew });
      const { runID, attempt, created } = retried;
      return { queue, retriedTaskID: taskID, taskID: retried.taskID, runID, attempt, created };
    });
    if (booleanFlag(context, 'json')) {
      context.print(JSON.stringify(result));
    } else if (result.created) {
      context.print(`spawned task ${result.taskID} on queue ${JSON.stringify(result.queue)} as a retry of ${result.retriedTaskID}`);
      context.print(`run ${result.runID}, attempt ${result.attempt}`);
    } else {
      context.print(`retried task ${result.taskID} on queue ${JSON.stringify(result.queue)}: run ${result.runID}, attempt ${result.attempt}`);
    }
    return EXIT.ok;
  },
};

/** Both task-control commands. */
export const taskControlCommands: readonly CommandSpec[] = [cancelCommand, retryCommand];
