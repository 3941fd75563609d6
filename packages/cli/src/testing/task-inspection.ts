/**
 * Reading a task back for a test: its state, runs, steps, awaited events and children, from the
 * per-queue tables the Absurd contract lets tools read (through the statements of
 * `queries/tasks.sql` and `queries/testing.sql`), and parsed by the task's contract where one is
 * given.
 */
import type pg from 'pg';
import {
  ValidationError,
  type JsonValue,
  type Schema,
  type TaskContract,
  type TaskResultState,
  type ValidationBoundary,
} from 'absurd-kit';
import { oneRow, runStatement } from '../cli-database.js';
import { isInternalCheckpoint } from '../commands/tasks-show.js';
import { findTaskStatement, taskDetailStatements } from '../queries/tasks.queries.js';
import { childTasksStatement } from '../queries/testing.queries.js';
import type { AwaitedEvent, ChildTask, FailureReason, InspectedRun, TaskInspection } from './types.js';

/** A task to inspect: its id, or anything with its id and queue (a spawn result, a handle, a report). */
export type TaskRef = string | { readonly taskID: string; readonly queue?: string };

interface TaskRow {
  task_id: string;
  task_name: string;
  params: JsonValue;
  max_attempts: number | null;
  enqueue_at: Date;
  first_started_at: Date | null;
  state: TaskResultState;
  attempts: number;
  last_attempt_run: string | null;
  cancelled_at: Date | null;
}

interface RunRow {
  run_id: string;
  attempt: number;
  state: TaskResultState;
  available_at: Date | number | null;
  wake_event: string | null;
  started_at: Date | null;
  completed_at: Date | null;
  failed_at: Date | null;
  result: JsonValue | null;
  failure_reason: JsonValue | null;
  created_at: Date;
}

interface CheckpointRow {
  checkpoint_name: string;
  state: JsonValue;
}

interface WaitRow {
  step_name: string;
  event_name: string;
  timeout_at: Date | null;
}

interface ChildRow {
  queue_name: string;
  task_id: string;
  task_name: string;
  state: TaskResultState;
  attempts: number;
}

/** The checkpoint of an `awaitEvent` without a step name of its own: `$awaitEvent:<event>` (`#n` for a repeat). */
const AWAIT_EVENT = /^\$awaitEvent:(.*?)(#\d+)?$/;

/**
 * Reads task `ref` (searched in every queue when no queue is given) at test time `nowMs`; with a
 * contract, its params, result and declared steps are parsed by the contract's schemas (a stored
 * value a schema refuses throws a `ValidationError`). Throws when there is no such task.
 */
export async function inspectTask(db: pg.ClientBase, ref: TaskRef, contract: TaskContract | undefined, nowMs: number): Promise<TaskInspection> {
  const { queue, taskID } = await locate(db, ref, contract);
  const built = oneRow(await taskDetailStatements.run({ queueName: queue }, db), 'TaskDetailStatements');
  const [task] = await runStatement<TaskRow>(db, built.task, [taskID]);
  if (!task) throw new Error(`task ${taskID} is not in queue ${JSON.stringify(queue)}`);
  const runs = await runStatement<RunRow>(db, built.runs, [taskID]);
  const checkpoints = await runStatement<CheckpointRow>(db, built.checkpoints, [taskID]);
  const waits = await runStatement<WaitRow>(db, built.waits, [taskID]);
  const subject = contract?.name ?? task.task_name;

  const steps: Record<string, unknown> = {};
  for (const { checkpoint_name: name, state } of checkpoints) {
    if (isInternalCheckpoint(name)) continue;
    const base = name.replace(/#\d+$/, '');
    const schema = contract && Object.hasOwn(contract.steps, base) ? contract.steps[base] : undefined;
    steps[name] = schema ? await parseStored(schema, state, subject, 'step', name) : state;
  }
  const completed = task.state === 'completed' ? runs.find((r) => r.run_id === task.last_attempt_run) : undefined;
  const lastRun = runs.find((r) => r.run_id === task.last_attempt_run);

  return {
    taskID: task.task_id,
    queue,
    taskName: task.task_name,
    state: task.state,
    attempts: task.attempts,
    maxAttempts: task.max_attempts,
    params: contract ? await parseStored(contract.params, task.params, subject, 'params') : task.params,
    result: completed ? (contract ? await parseStored(contract.result, completed.result, subject, 'result') : completed.result) : undefined,
    failure: task.state === 'failed' ? asFailure(lastRun?.failure_reason ?? null) : null,
    runs: runs.map(toInspectedRun),
    steps,
    checkpoints: Object.fromEntries(checkpoints.map((c) => [c.checkpoint_name, c.state])),
    events: awaitedEvents(checkpoints, waits, nowMs),
    children: await childTasks(db, taskID),
    createdAt: task.enqueue_at,
    firstStartedAt: task.first_started_at,
    cancelledAt: task.cancelled_at,
  };
}

/** The task's queue and id: the reference's queue, else the contract's queue, else the queue that has it. */
async function locate(db: pg.ClientBase, ref: TaskRef, contract: TaskContract | undefined): Promise<{ queue: string; taskID: string }> {
  const taskID = typeof ref === 'string' ? ref : ref.taskID;
  const queue = (typeof ref === 'string' ? undefined : ref.queue) ?? contract?.queue;
  if (queue !== undefined) return { queue, taskID };
  const [built] = await findTaskStatement.run({ queueName: null, byRun: false }, db);
  const [row] = built?.statement ? await runStatement<{ queue_name: string }>(db, built.statement, [taskID]) : [];
  if (!row) throw new Error(`no queue has task ${taskID}`);
  return { queue: row.queue_name, taskID };
}

function awaitedEvents(checkpoints: readonly CheckpointRow[], waits: readonly WaitRow[], nowMs: number): AwaitedEvent[] {
  const events: AwaitedEvent[] = [];
  for (const { checkpoint_name: stepName, state } of checkpoints) {
    const eventName = AWAIT_EVENT.exec(stepName)?.[1];
    if (eventName !== undefined) events.push({ eventName, stepName, state: 'received', payload: state, timeoutAt: null });
  }
  for (const wait of waits) {
    // Waits for another task's result are the runtime's: the children show those tasks.
    if (wait.event_name.startsWith('$')) continue;
    const timedOut = wait.timeout_at !== null && wait.timeout_at.getTime() <= nowMs;
    events.push({
      eventName: wait.event_name,
      stepName: wait.step_name,
      state: timedOut ? 'timed-out' : 'waiting',
      payload: undefined,
      timeoutAt: wait.timeout_at,
    });
  }
  return events;
}

async function childTasks(db: pg.ClientBase, taskID: string): Promise<ChildTask[]> {
  const [built] = await childTasksStatement.run(undefined, db);
  if (!built?.statement) return [];
  const rows = await runStatement<ChildRow>(db, built.statement, [taskID]);
  return rows.map((r) => ({ taskID: r.task_id, queue: r.queue_name, taskName: r.task_name, state: r.state, attempts: r.attempts }));
}

function toInspectedRun(row: RunRow): InspectedRun {
  return {
    runID: row.run_id,
    attempt: row.attempt,
    state: row.state,
    result: row.state === 'completed' ? row.result : null,
    failure: asFailure(row.failure_reason),
    createdAt: row.created_at,
    startedAt: row.started_at,
    completedAt: row.completed_at,
    failedAt: row.failed_at,
    availableAt: finiteDate(row.available_at),
    wakeEvent: row.wake_event,
  };
}

/** A timestamp column as a Date; null for NULL and for `infinity` (which node-postgres reads as a number). */
export function finiteDate(value: Date | number | null): Date | null {
  return value instanceof Date && Number.isFinite(value.getTime()) ? value : null;
}

/** A stored failure reason as an object (a reason that is not one is wrapped as its message). */
export function asFailure(value: JsonValue | null): FailureReason | null {
  if (value === null) return null;
  if (typeof value === 'object' && !Array.isArray(value)) return value;
  return { message: typeof value === 'string' ? value : JSON.stringify(value) };
}

/**
 * Parses a stored value by a contract schema and returns the schema's output; a value it refuses
 * throws a `ValidationError` naming the task, the boundary and the path.
 */
export async function parseStored(
  schema: Schema,
  value: unknown,
  subject: string,
  boundary: ValidationBoundary,
  detail?: string,
): Promise<unknown> {
  let outcome = schema['~standard'].validate(value);
  if (outcome instanceof Promise) outcome = await outcome;
  if (!outcome.issues) return outcome.value;
  throw new ValidationError({
    subject,
    boundary,
    ...(detail === undefined ? {} : { detail }),
    issues: outcome.issues.map((issue) => ({
      path: (issue.path ?? []).map((segment) => String(typeof segment === 'object' ? segment.key : segment)).join('.'),
      message: issue.message,
    })),
    received: truncate(JSON.stringify(value) ?? 'undefined'),
    retryable: false,
  });
}

function truncate(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
