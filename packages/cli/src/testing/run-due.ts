/**
 * Running due work in the test's own process, one run at a time, through the runtime's public
 * worker API (`claimTasks`, `executeTask`): what a worker does, without its loop, its LISTEN
 * connection or its timers, so that a test decides when anything happens.
 */
import type pg from 'pg';
import type { Absurd, ClaimedTask, JsonValue, TaskResultState } from 'absurd-kit';
import { runStatement } from '../cli-database.js';
import { nextWakeStatement, runOutcomeStatement } from '../queries/testing.queries.js';
import type { TestClock } from './test-clock.js';
import { asFailure, finiteDate } from './task-inspection.js';
import type { AbandonedRun, RunOutcome, RunReport } from './types.js';

/** A client of a test environment: its queue, and the task names registered on it. */
export interface QueueClient {
  readonly queue: string;
  readonly app: Absurd;
  readonly registered: ReadonlySet<string>;
}

/** What {@link runNext} needs. */
export interface RunContext {
  readonly connection: pg.ClientBase;
  readonly clock: TestClock;
  /** The clients, in the order their queues are looked at. */
  readonly clients: Iterable<QueueClient>;
  /** Lease length in seconds (test clock) of the runs claimed. */
  readonly claimTimeout: number;
}

/** The worker id the runs claimed by a test carry. */
export const TEST_WORKER_ID = 'absurd-kit-test';

/**
 * Claims the next due run — the queues in client order, each in the engine's claim order — and
 * executes it with the registered handler, the process clock at the test clock's time; returns
 * what it did, or null when nothing is due. Claiming also sweeps expired leases and cancellation
 * policies, as every claim does.
 */
export async function runNext(context: RunContext): Promise<RunReport | null> {
  const claimed = await claimNext(context);
  if (!claimed) return null;
  const { client, task } = claimed;
  await context.clock.whileRunning(() => client.app.executeTask(task, context.claimTimeout));
  return readReport(context.connection, client, task);
}

/** Claims the next due run without executing it (see {@link runNext} for the order). */
export async function abandonNext(context: RunContext): Promise<AbandonedRun | null> {
  const claimed = await claimNext(context);
  if (!claimed) return null;
  const { client, task } = claimed;
  return {
    queue: client.queue,
    taskName: task.task_name,
    taskID: task.task_id,
    runID: task.run_id,
    attempt: task.attempt,
    leaseExpiresAt: new Date(context.clock.nowMs + context.claimTimeout * 1000),
  };
}

async function claimNext(context: RunContext): Promise<{ client: QueueClient; task: ClaimedTask } | undefined> {
  for (const client of context.clients) {
    const [task] = await client.app.claimTasks({ batchSize: 1, claimTimeout: context.claimTimeout, workerId: TEST_WORKER_ID });
    if (task) return { client, task };
  }
  return undefined;
}

interface OutcomeRow {
  state: TaskResultState;
  available_at: Date | number | null;
  wake_event: string | null;
  result: JsonValue | null;
  failure_reason: JsonValue | null;
  task_state: TaskResultState;
}

async function readReport(connection: pg.ClientBase, client: QueueClient, task: ClaimedTask): Promise<RunReport> {
  const [built] = await runOutcomeStatement.run({ queueName: client.queue }, connection);
  const [row] = built ? await runStatement<OutcomeRow>(connection, built.statement, [task.run_id]) : [];
  if (!row) throw new Error(`run ${task.run_id} of task ${task.task_id} is gone from queue ${JSON.stringify(client.queue)}`);
  const outcome = outcomeOf(row.state, client.registered.has(task.task_name));
  const waiting = outcome === 'suspended' || outcome === 'deferred';
  return {
    queue: client.queue,
    taskName: task.task_name,
    taskID: task.task_id,
    runID: task.run_id,
    attempt: task.attempt,
    outcome,
    taskState: row.task_state,
    result: row.state === 'completed' ? row.result : null,
    failure: row.state === 'failed' ? asFailure(row.failure_reason) : null,
    wakeAt: waiting ? finiteDate(row.available_at) : null,
    waitingFor: waiting ? row.wake_event : null,
  };
}

function outcomeOf(state: TaskResultState, registered: boolean): RunOutcome {
  switch (state) {
    case 'completed':
    case 'failed':
    case 'cancelled':
      return state;
    case 'running':
      return 'stopped';
    default:
      // Sleeping (or pending again at once): a run of an unregistered task was put back by the runtime.
      return registered ? 'suspended' : 'deferred';
  }
}

/**
 * The earliest time after the test clock's at which a run of `queues` becomes due by time: a sleep,
 * a timed wait, a retry's backoff, a deferral, a lease running out. Null when only events (or
 * other tasks ending) can wake anything.
 */
export async function nextWakeAt(connection: pg.ClientBase, queues: readonly string[]): Promise<Date | null> {
  if (queues.length === 0) return null;
  const [built] = await nextWakeStatement.run({ queueNames: [...queues] }, connection);
  if (!built?.statement) return null;
  const [row] = await runStatement<{ at: Date | null }>(connection, built.statement);
  return row?.at ?? null;
}
