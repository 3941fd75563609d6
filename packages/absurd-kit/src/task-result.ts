import type { Output, ResultOf, TaskContract } from './define.js';
import type { JsonObject, JsonValue } from './json.js';
import { awaitedTaskResult, getTaskResult, taskHeadersStatement } from './queries/tasks.queries.js';
import type { Queryable } from './queryable.js';
import { signalForTaskState } from './signals.js';
import { parseWith } from './validation.js';

/** The states of a task. */
export type TaskResultState = 'pending' | 'running' | 'sleeping' | 'completed' | 'failed' | 'cancelled';

/**
 * A task's state with its outcome: `result` (typed `R`) when completed, `failure` (the last run's
 * failure reason) when failed. Both fields can be read on any snapshot; they are undefined where
 * they do not apply.
 */
export type TypedTaskResultSnapshot<R> =
  | { state: 'pending' | 'running' | 'sleeping' | 'cancelled'; result?: undefined; failure?: undefined }
  | { state: 'completed'; result: R; failure?: undefined }
  | { state: 'failed'; failure: JsonValue | null; result?: undefined };

/** A snapshot of a task whose result type is not known. */
export type TaskResultSnapshot = TypedTaskResultSnapshot<JsonValue | null>;

/** The snapshot awaiting `T` gives: typed by its contract for a handle, untyped otherwise. */
export type AwaitedSnapshot<T> = T extends TaskHandle<infer C> ? TypedTaskResultSnapshot<Output<ResultOf<C>>> : TaskResultSnapshot;

/**
 * A task spawned through its contract: the spawn result plus its queue, and the contract that types
 * (and at run time parses) its result. The contract property is not enumerable, so a handle
 * serialises as plain JSON.
 */
export interface TaskHandle<C extends TaskContract = TaskContract> extends SpawnResult {
  readonly queue: string;
  readonly contract: C;
}

/**
 * A handle for a task of `contract` known by id (e.g. read back from your own database), to pass to
 * `fetchTaskResult` / `awaitTaskResult` for a typed, validated result.
 *
 * @example
 * const snapshot = await app.awaitTaskResult(taskHandle(fulfillOrder, savedTaskID));
 */
export function taskHandle<C extends TaskContract>(contract: C, taskID: string, queue?: string): TaskHandle<C> {
  return attachContract({ taskID, runID: '', attempt: 0, created: false, queue: queue ?? contract.queue }, contract);
}

/** Adds the (non-enumerable) contract to a spawn result. */
export function attachContract<C extends TaskContract>(result: SpawnResult & { queue: string }, contract: C): TaskHandle<C> {
  return Object.defineProperty({ ...result }, 'contract', { value: contract, enumerable: false }) as TaskHandle<C>;
}

/** What a spawn returns. `created` is false when an idempotency key matched an existing task. */
export interface SpawnResult {
  taskID: string;
  runID: string;
  attempt: number;
  created: boolean;
}

/** A row of `absurd.get_task_result`. */
interface TaskResultRow {
  state: TaskResultState;
  result: JsonValue | null;
  failure_reason: JsonValue | null;
}

/**
 * A task's current snapshot (`absurd.get_task_result`; the same JSON shape the Absurd SDKs
 * checkpoint), or null when the queue has no such task.
 */
export async function readTaskResult(con: Queryable, queueName: string, taskID: string): Promise<TaskResultSnapshot | null> {
  const [row] = (await getTaskResult.run({ queueName, taskId: taskID }, con)) as TaskResultRow[];
  if (!row) return null;
  return snapshotOf(row);
}

function snapshotOf(row: TaskResultRow): TaskResultSnapshot {
  if (row.state === 'completed') return { state: 'completed', result: row.result };
  if (row.state === 'failed') return { state: 'failed', failure: row.failure_reason };
  return { state: row.state };
}

/**
 * The awaited task's snapshot (null when the queue has no such task) and, read in the same
 * statement, the state of the task waiting for it (null when it is gone): one round trip per look
 * of a task that waits by polling, which so notices its own cancellation at once.
 */
export async function readAwaitedTaskResult(
  con: Queryable,
  awaited: { queueName: string; taskID: string },
  waiter: { queueName: string; taskID: string },
): Promise<{ snapshot: TaskResultSnapshot | null; waiterState: string | null }> {
  const params = { queueName: awaited.queueName, taskId: awaited.taskID, waiterQueueName: waiter.queueName, waiterTaskId: waiter.taskID };
  const [row] = await awaitedTaskResult.run(params, con);
  if (!row) throw new Error('the awaited task result query returned no row');
  const snapshot = row.state === null ? null : snapshotOf({ ...row, state: row.state as TaskResultState });
  return { snapshot, waiterState: row.waiter_state };
}

/**
 * Before a statement that suspends a run is sent again after its answer was lost: throws the
 * signal that ends the execution (see `signalForTaskState`) when the task no longer runs — the
 * first statement committed unseen, or the task was cancelled or taken over meanwhile.
 */
export async function throwUnlessTaskRunning(con: Queryable, queueName: string, taskID: string): Promise<void> {
  const snapshot = await readTaskResult(con, queueName, taskID);
  const signal = signalForTaskState(snapshot?.state);
  if (signal) throw signal;
}

/**
 * A snapshot as a handle's contract types it: a completed result parsed by the contract's result
 * schema (a value the schema refuses throws a ValidationError, not retryable); anything else as is.
 */
export async function typedSnapshot(snapshot: TaskResultSnapshot, contract: TaskContract | undefined): Promise<TaskResultSnapshot> {
  if (!contract || snapshot.state !== 'completed') return snapshot;
  const result = await parseWith(contract.result, snapshot.result, { subject: contract.name, boundary: 'result', retryable: false });
  return { ...snapshot, result: result as JsonValue };
}

/** True when the task will not change any more (short of an operator's retry). */
export function isFinalState(state: TaskResultState): boolean {
  return state === 'completed' || state === 'failed' || state === 'cancelled';
}

/**
 * The header a child task carries to find its parent: `{ queue, taskId }`. A worker that ends a
 * task carrying it emits {@link taskResultEvent} on the parent's queue. A wire format stored with
 * tasks and read by the engine's `cancel_task`, so it keeps its keys (docs/api-conventions.md).
 */
export const PARENT_HEADER = 'absurd.parent';

/** The header object naming a parent task. */
export function parentHeader(queue: string, taskID: string): JsonObject {
  return { [PARENT_HEADER]: { queue, taskId: taskID } };
}

/** Reads the parent named by a task's headers, if any. */
export function parentFromHeaders(headers: JsonObject | null | undefined): { queue: string; taskId: string } | undefined {
  const value = headers?.[PARENT_HEADER];
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const { queue, taskId } = value;
    if (typeof queue === 'string' && typeof taskId === 'string') return { queue, taskId };
  }
  return undefined;
}

/**
 * The parent named by the headers of task `taskID` in `queueName` (undefined when it has none, or
 * there is no such task). Two statements: Postgres builds the one that reads the queue's task table.
 */
export async function readTaskParent(con: Queryable, queueName: string, taskID: string): Promise<{ queue: string; taskId: string } | undefined> {
  const [built] = await taskHeadersStatement.run({ queueName }, con);
  if (!built) throw new Error('the task headers statement was not built');
  const { rows } = await con.query<{ headers: JsonObject | null }>(built.statement, [taskID]);
  return parentFromHeaders(rows[0]?.headers);
}

/** The event announcing that a task ended; its payload is the task's final snapshot. */
export function taskResultEvent(taskID: string): string {
  return `$taskResult:${taskID}`;
}
