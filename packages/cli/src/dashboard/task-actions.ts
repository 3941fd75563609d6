/**
 * What an operator can do from the dashboard: retry a failed task (in place or as a new task),
 * cancel one that has not ended, wake a sleeping one now, and emit an event — checked against its
 * contract first, so that nothing is sent that the contract refuses. Retrying, cancelling and
 * emitting go through the runtime's `Absurd` client (which also wakes the queue's workers), waking
 * through the engine's kit_wake_task.
 */
import type pg from 'pg';
import { ValidationError, type JsonValue } from 'absurd-kit';
import { engineClient, oneRow, runStatement } from '../cli-database.js';
import { wakeTask } from '../queries/dashboard.queries.js';
import { emittedEventStatement } from '../queries/events.queries.js';
import { taskStateStatement } from '../queries/tasks.queries.js';
import type { ContractSchemas } from './contract-schemas.js';

/** What an action did, for the page that shows it. */
export interface ActionOutcome {
  readonly ok: boolean;
  readonly message: string;
  /** Lines of detail (validation issues). */
  readonly details?: readonly string[];
  /** Where to go next, when the action made a new task. */
  readonly taskID?: string;
}

async function stateOf(db: pg.ClientBase, queue: string, taskID: string): Promise<string | undefined> {
  const { statement } = oneRow(await taskStateStatement.run({ queueName: queue }, db), 'TaskStateStatement');
  const [row] = await runStatement<{ state: string }>(db, statement, [taskID]);
  return row?.state;
}

/**
 * Retries a failed task: one more attempt of it, or with `spawnNew` a new task with its params.
 *
 * @example
 * await retryTask(db, 'orders', taskID, false); // { ok: true, message: 'retried: attempt 3 …' }
 */
export async function retryTask(db: pg.ClientBase, queue: string, taskID: string, spawnNew: boolean): Promise<ActionOutcome> {
  const state = await stateOf(db, queue, taskID);
  if (state === undefined) return { ok: false, message: 'no such task' };
  if (state !== 'failed') return { ok: false, message: `the task is ${state}, not failed; only failed tasks can be retried` };
  const retried = await engineClient(db).retryTask(taskID, { queue, spawnNewTask: spawnNew });
  return retried.created
    ? { ok: true, message: `spawned a new task as a retry of this one`, taskID: retried.taskID }
    : { ok: true, message: `retried: attempt ${retried.attempt} is pending` };
}

/**
 * Cancels a task that has not ended (a running worker stops at its next step).
 *
 * @example
 * await cancelTask(db, 'orders', taskID);
 */
export async function cancelTask(db: pg.ClientBase, queue: string, taskID: string): Promise<ActionOutcome> {
  const before = await stateOf(db, queue, taskID);
  if (before === undefined) return { ok: false, message: 'no such task' };
  await engineClient(db).cancelTask(taskID, queue);
  const after = await stateOf(db, queue, taskID);
  return after === 'cancelled' && before !== 'cancelled'
    ? { ok: true, message: `cancelled (it was ${before})` }
    : { ok: false, message: `the task had already ended (${after ?? before}); nothing to cancel` };
}

const WAKE_MESSAGES: Readonly<Record<string, ActionOutcome>> = {
  woken: { ok: true, message: 'woken: the task is due now and the next free worker resumes it' },
  not_found: { ok: false, message: 'no such task' },
  not_sleeping: { ok: false, message: 'the task is not sleeping; nothing to wake' },
  waiting_for_event: {
    ok: false,
    message: 'the task waits for an event: waking it would end the wait as a timeout, so emit the event instead',
  },
};

/**
 * Wakes a sleeping task now (absurd.kit_wake_task).
 *
 * @example
 * await wakeTask(db, 'orders', taskID);
 */
export async function wakeSleepingTask(db: pg.ClientBase, queue: string, taskID: string): Promise<ActionOutcome> {
  const { outcome } = oneRow(await wakeTask.run({ queueName: queue, taskId: taskID }, db), 'WakeTask');
  return WAKE_MESSAGES[outcome] ?? { ok: false, message: `unexpected outcome ${JSON.stringify(outcome)}` };
}

/**
 * Emits event `name` on `queue` with the JSON `payloadText` (empty: null), after checking the
 * payload against the event's contract when one declares it. Events are first-write-wins.
 *
 * @example
 * await emitEvent(db, schemas, 'orders', 'shipment.packed:A-1', '{"trackingNumber":"T-1"}');
 */
export async function emitEvent(
  db: pg.ClientBase,
  schemas: ContractSchemas,
  queue: string,
  name: string,
  payloadText: string,
): Promise<ActionOutcome> {
  if (name.trim() === '') return { ok: false, message: 'give the name of the event to emit' };
  let payload: JsonValue;
  try {
    payload = payloadText.trim() === '' ? null : (JSON.parse(payloadText) as JsonValue);
  } catch (error) {
    return { ok: false, message: `the payload is not JSON: ${(error as Error).message}; nothing was sent` };
  }
  const target = schemas.eventTarget(name);
  const { statement } = oneRow(await emittedEventStatement.run({ queueName: queue }, db), 'EmittedEventStatement');
  const [earlier] = await runStatement<{ emitted_at: Date }>(db, statement, [name]);
  const client = engineClient(db);
  try {
    if (target.contract) {
      await client.emitEvent(target.contract, target.key, payload, queue);
    } else {
      const check = await schemas.checkEvent(name, payload);
      if (check.status === 'invalid') {
        return {
          ok: false,
          message: `the payload does not match the contract of ${JSON.stringify(target.contractName)}; nothing was sent`,
          details: check.issues,
        };
      }
      await client.emitEvent(name, payload, queue);
    }
  } catch (error) {
    if (error instanceof ValidationError) {
      return {
        ok: false,
        message: `the payload does not match the contract of ${JSON.stringify(target.contractName)}; nothing was sent`,
        details: error.issues.map((issue) => `${issue.path || '(value)'}: ${issue.message}`),
      };
    }
    throw error;
  }
  if (earlier) {
    return { ok: true, message: `${JSON.stringify(name)} had already been emitted; events are first-write-wins, so its payload stays as it was` };
  }
  const checked = target.contractName === undefined ? 'no contract declares it, so it was sent unchecked' : 'the payload matches its contract';
  return { ok: true, message: `emitted ${JSON.stringify(name)}; ${checked}` };
}
