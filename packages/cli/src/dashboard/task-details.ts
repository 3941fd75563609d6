/**
 * Everything the task page shows of one task: its row, every run, its checkpoints (each checked
 * against today's step schema), its waits and the events they name, and its parent and children
 * with their states, and the limit and bucket of a run that a limit parks. Reads by primary keys and
 * the per-task indexes only.
 */
import type pg from 'pg';
import { oneRow, runStatement } from '../cli-database.js';
import { taskDetailStatements } from '../queries/tasks.queries.js';
import { taskEventsStatement, taskLocationStatement } from '../queries/dashboard.queries.js';
import { isInternalCheckpoint } from '../commands/tasks-show.js';
import { stepNameOf, type ContractSchemas, type SchemaCheck } from './contract-schemas.js';
import { readParkedRuns, parkedKey, type ParkedRun } from './limits.js';
import { isUuid } from './task-page.js';

/** The task row (`t_<q>`). */
export interface TaskRow {
  readonly task_id: string;
  readonly task_name: string;
  readonly params: unknown;
  readonly headers: unknown;
  readonly retry_strategy: unknown;
  readonly max_attempts: number | null;
  readonly cancellation: unknown;
  readonly enqueue_at: Date;
  readonly first_started_at: Date | null;
  readonly state: string;
  readonly attempts: number;
  readonly last_attempt_run: string | null;
  readonly completed_payload: unknown;
  readonly cancelled_at: Date | null;
  readonly idempotency_key: string | null;
}

/** A run of the task (`r_<q>`). `available_at` may be Infinity (a wait without timeout). */
export interface RunRow {
  readonly run_id: string;
  readonly attempt: number;
  readonly state: string;
  readonly claimed_by: string | null;
  readonly claim_expires_at: Date | null;
  readonly available_at: Date | number | null;
  readonly wake_event: string | null;
  readonly event_payload: unknown;
  readonly started_at: Date | null;
  readonly completed_at: Date | null;
  readonly failed_at: Date | null;
  readonly result: unknown;
  readonly failure_reason: unknown;
  readonly created_at: Date;
}

/** A checkpoint, with the step it belongs to and whether its value still validates. */
export interface CheckpointView {
  readonly checkpoint_name: string;
  readonly step: string;
  readonly internal: boolean;
  readonly state: unknown;
  readonly status: string;
  readonly owner_run_id: string | null;
  readonly updated_at: Date;
  readonly check: SchemaCheck;
}

/** An open wait for an event. */
export interface WaitRow {
  readonly run_id: string;
  readonly step_name: string;
  readonly event_name: string;
  readonly timeout_at: Date | null;
  readonly created_at: Date;
  readonly emitted_at: Date | null;
}

/** An event the task waits or waited for, as emitted. */
export interface EventRow {
  readonly event_name: string;
  readonly payload: unknown;
  readonly emitted_at: Date;
}

/** A related task (parent or child): where it is and its state (null when it is gone). */
export interface RelatedTask {
  readonly queue: string;
  readonly taskID: string;
  readonly state: string | null;
}

/** The task page's data. */
export interface TaskDetails {
  readonly queue: string;
  readonly task: TaskRow;
  readonly paramsCheck: SchemaCheck;
  readonly runs: readonly RunRow[];
  readonly checkpoints: readonly CheckpointView[];
  readonly waits: readonly WaitRow[];
  readonly events: readonly EventRow[];
  readonly parent: RelatedTask | null;
  readonly children: readonly RelatedTask[];
  /** The runs parked by a limit (pending at infinity, with a row in kit_limit_waiters), by run id. */
  readonly parked: ReadonlyMap<string, ParkedRun>;
}

/** Children listed at most (a task may fan out to thousands). */
const MAX_CHILDREN = 200;

/**
 * Reads task `taskID` of `queue`; undefined when it does not exist there.
 *
 * @example
 * const details = await readTaskDetails(db, 'orders', taskID, schemas);
 */
export async function readTaskDetails(
  db: pg.ClientBase,
  queue: string,
  taskID: string,
  schemas: ContractSchemas,
  options: { readonly limits?: boolean } = {},
): Promise<TaskDetails | undefined> {
  const built = oneRow(await taskDetailStatements.run({ queueName: queue }, db), 'TaskDetailStatements');
  const [task] = await runStatement<TaskRow>(db, built.task, [taskID]);
  if (!task) return undefined;
  const runs = await runStatement<RunRow>(db, built.runs, [taskID]);
  const stored = await runStatement<Omit<CheckpointView, 'step' | 'internal' | 'check'>>(db, built.checkpoints, [taskID]);
  const waits = await runStatement<WaitRow>(db, built.waits, [taskID]);
  const { statement: eventsStatement } = oneRow(await taskEventsStatement.run({ queueName: queue }, db), 'TaskEventsStatement');
  const events = await runStatement<EventRow>(db, eventsStatement, [taskID]);

  const checkpoints: CheckpointView[] = [];
  for (const c of stored) {
    const internal = isInternalCheckpoint(c.checkpoint_name);
    const check: SchemaCheck = internal
      ? { status: 'unchecked', issues: [] }
      : await schemas.checkStep(task.task_name, c.checkpoint_name, c.state);
    checkpoints.push({ ...c, step: stepNameOf(c.checkpoint_name), internal, check });
  }

  const parentRef = parentOf(task.headers);
  const childRefs = childrenOf(stored.map((c) => c.state), queue).slice(0, MAX_CHILDREN);
  const [parent = null] = parentRef ? await locate(db, [parentRef]) : [];
  const children = await locate(db, childRefs);
  // A parked run is pending with available_at infinity (see docs/flow-control.md); only such runs
  // are looked up, so that a waiter row of a run just un-parked is not shown as parked.
  const held = options.limits ? runs.filter((r) => r.state === 'pending' && r.available_at === Infinity) : [];
  const found = await readParkedRuns(db, held.map((r) => ({ queue, runID: r.run_id })));
  const parked = new Map<string, ParkedRun>();
  for (const r of held) {
    const p = found.get(parkedKey(queue, r.run_id));
    if (p) parked.set(r.run_id, p);
  }
  return {
    queue,
    task,
    paramsCheck: await schemas.checkParams(task.task_name, task.params),
    runs,
    checkpoints,
    waits,
    events,
    parent,
    children,
    parked,
  };
}

/** The parent a task spawned by `ctx.spawn` names in its `absurd.parent` header. */
function parentOf(headers: unknown): { queue: string; taskID: string } | undefined {
  const parent = (headers as Record<string, unknown> | null)?.['absurd.parent'] as Record<string, unknown> | undefined;
  if (typeof parent?.queue !== 'string' || typeof parent.taskId !== 'string' || !isUuid(parent.taskId)) return undefined;
  return { queue: parent.queue, taskID: parent.taskId };
}

/**
 * The children a task spawned: `ctx.spawn` stores each spawn's result (`taskID`, `runID`, and the
 * child's `queue`) as a checkpoint, so the parent's checkpoints name its children.
 */
function childrenOf(states: readonly unknown[], queue: string): { queue: string; taskID: string }[] {
  const seen = new Set<string>();
  const children: { queue: string; taskID: string }[] = [];
  for (const state of states) {
    const value = state as Record<string, unknown> | null;
    if (typeof value !== 'object' || value === null || !isUuid(value.taskID as string) || !isUuid(value.runID as string)) continue;
    const child = { queue: typeof value.queue === 'string' ? value.queue : queue, taskID: value.taskID as string };
    if (seen.has(child.taskID)) continue;
    seen.add(child.taskID);
    children.push(child);
  }
  return children;
}

/** The state of each referenced task (null when it no longer exists), in order. */
async function locate(db: pg.ClientBase, refs: readonly { queue: string; taskID: string }[]): Promise<RelatedTask[]> {
  if (refs.length === 0) return [];
  const queues = [...new Set(refs.map((r) => r.queue))];
  const [built] = await taskLocationStatement.run({ queueNames: queues }, db);
  const found: RelatedTask[] = [];
  for (const ref of refs) {
    const rows = built?.statement ? await runStatement<{ queue_name: string; state: string }>(db, built.statement, [ref.taskID]) : [];
    const row = rows.find((r) => r.queue_name === ref.queue);
    found.push({ ...ref, state: row?.state ?? null });
  }
  return found;
}
