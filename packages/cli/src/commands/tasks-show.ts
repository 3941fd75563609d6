/**
 * `tasks show`: one task with its settings, runs, checkpoints, open waits and outcome. It reads the
 * per-queue tables, as the contract allows tools to, through statements that
 * `src/queries/tasks.sql` builds (table names quoted there; the task id a parameter).
 *
 * Checkpoints the runtime writes for its own bookkeeping (see {@link isInternalCheckpoint}) are
 * left out unless `--internal` asks for them; the handler's own steps are what an operator reads.
 */
import type pg from 'pg';
import { EXIT, type CommandContext, type CommandSpec } from '../cli-command.js';
import { oneRow, runStatement, withEngine } from '../cli-database.js';
import { booleanFlag, stringFlag } from '../cli-flags.js';
import { displayName, formatTime, jsonTime, prettyJson, type DatabaseTime } from '../cli-format.js';
import { taskDetailStatements } from '../queries/tasks.queries.js';
import { findTask } from '../task-lookup.js';

const jsonFlag = { name: 'json', description: 'Print one JSON object instead of text lines' } as const;

/**
 * Whether a checkpoint is the runtime's bookkeeping rather than a step the handler named: the
 * names the runtime makes up start with `$` (`$spawn:<task>`, `$awaitEvent:<event>`,
 * `$awaitTaskResult:<task id>`, with `#2`… for repeats), and the deadline of a timed wait is
 * stored as `<the wait's checkpoint>$deadline`, also under a step name the handler chose.
 *
 * @example
 * isInternalCheckpoint('$awaitTaskResult:0190b6a2-…$deadline'); // true
 * isInternalCheckpoint('process-payment');                      // false
 */
export function isInternalCheckpoint(name: string): boolean {
  return name.startsWith('$') || name.endsWith('$deadline');
}

interface TaskRow {
  task_id: string;
  task_name: string;
  params: unknown;
  headers: unknown;
  retry_strategy: unknown;
  max_attempts: number | null;
  cancellation: unknown;
  enqueue_at: Date;
  first_started_at: DatabaseTime;
  state: string;
  attempts: number;
  last_attempt_run: string | null;
  completed_payload: unknown;
  cancelled_at: DatabaseTime;
  idempotency_key: string | null;
}

interface RunRow {
  run_id: string;
  attempt: number;
  state: string;
  claimed_by: string | null;
  claim_expires_at: DatabaseTime;
  available_at: DatabaseTime;
  wake_event: string | null;
  event_payload: unknown;
  started_at: DatabaseTime;
  completed_at: DatabaseTime;
  failed_at: DatabaseTime;
  result: unknown;
  failure_reason: unknown;
  created_at: DatabaseTime;
}

interface CheckpointRow {
  checkpoint_name: string;
  state: unknown;
  status: string;
  owner_run_id: string | null;
  updated_at: DatabaseTime;
}

interface WaitRow {
  run_id: string;
  step_name: string;
  event_name: string;
  timeout_at: DatabaseTime;
  created_at: DatabaseTime;
  emitted_at: DatabaseTime;
}

interface TaskDetails {
  queue: string;
  task: TaskRow;
  runs: RunRow[];
  /** The checkpoints shown: without the internal ones, unless `--internal` asks for them. */
  checkpoints: CheckpointRow[];
  /** How many internal checkpoints were left out. */
  hiddenCheckpoints: number;
  waits: WaitRow[];
}

async function readDetails(db: pg.ClientBase, queue: string, taskID: string, internal: boolean): Promise<TaskDetails> {
  const built = oneRow(await taskDetailStatements.run({ queueName: queue }, db), 'TaskDetailStatements');
  const [task] = await runStatement<TaskRow>(db, built.task, [taskID]);
  if (!task) throw new Error(`task ${taskID} disappeared from queue ${JSON.stringify(queue)}`);
  const runs = await runStatement<RunRow>(db, built.runs, [taskID]);
  const checkpoints = await runStatement<CheckpointRow>(db, built.checkpoints, [taskID]);
  const waits = await runStatement<WaitRow>(db, built.waits, [taskID]);
  const shown = internal ? checkpoints : checkpoints.filter((c) => !isInternalCheckpoint(c.checkpoint_name));
  return { queue, task, runs, checkpoints: shown, hiddenCheckpoints: checkpoints.length - shown.length, waits };
}

/** The failure of a failed task: the reason recorded on its last run. */
function failureOf(details: TaskDetails): unknown {
  if (details.task.state !== 'failed') return null;
  return details.runs.find((r) => r.run_id === details.task.last_attempt_run)?.failure_reason ?? null;
}

function detailsJson(d: TaskDetails) {
  const t = d.task;
  return {
    queue: d.queue,
    task: {
      taskID: t.task_id,
      taskName: t.task_name,
      state: t.state,
      attempts: t.attempts,
      maxAttempts: t.max_attempts,
      params: t.params,
      headers: t.headers,
      retryStrategy: t.retry_strategy,
      cancellation: t.cancellation,
      idempotencyKey: t.idempotency_key,
      createdAt: jsonTime(t.enqueue_at),
      firstStartedAt: jsonTime(t.first_started_at),
      cancelledAt: jsonTime(t.cancelled_at),
      lastAttemptRun: t.last_attempt_run,
    },
    runs: d.runs.map((r) => ({
      runID: r.run_id,
      attempt: r.attempt,
      state: r.state,
      claimedBy: r.claimed_by,
      claimExpiresAt: jsonTime(r.claim_expires_at),
      availableAt: jsonTime(r.available_at),
      wakeEvent: r.wake_event,
      eventPayload: r.event_payload,
      createdAt: jsonTime(r.created_at),
      startedAt: jsonTime(r.started_at),
      completedAt: jsonTime(r.completed_at),
      failedAt: jsonTime(r.failed_at),
      result: r.result,
      failureReason: r.failure_reason,
    })),
    checkpoints: d.checkpoints.map((c) => ({
      name: c.checkpoint_name,
      internal: isInternalCheckpoint(c.checkpoint_name),
      status: c.status,
      ownerRunID: c.owner_run_id,
      updatedAt: jsonTime(c.updated_at),
      state: c.state,
    })),
    hiddenInternalCheckpoints: d.hiddenCheckpoints,
    waits: d.waits.map((w) => ({
      runID: w.run_id,
      stepName: w.step_name,
      eventName: w.event_name,
      timeoutAt: jsonTime(w.timeout_at),
      createdAt: jsonTime(w.created_at),
      eventEmittedAt: jsonTime(w.emitted_at),
    })),
    result: t.state === 'completed' ? t.completed_payload : null,
    failure: failureOf(d),
  };
}

/** `name: message` of a failure reason, or its JSON when it has another shape. */
function describeFailure(reason: unknown): string {
  if (typeof reason === 'object' && reason !== null && typeof (reason as { message?: unknown }).message === 'string') {
    const { name, message } = reason as { name?: unknown; message: string };
    return typeof name === 'string' && name !== '' ? `${name}: ${message}` : message;
  }
  return JSON.stringify(reason);
}

/** `2`, `2; 1 internal hidden, see --internal`, or with --internal `3, 1 of them internal`. */
function checkpointCount(d: TaskDetails): string {
  if (d.hiddenCheckpoints > 0) {
    return `${d.checkpoints.length}; ${d.hiddenCheckpoints} internal hidden, see --internal`;
  }
  const internal = d.checkpoints.filter((c) => isInternalCheckpoint(c.checkpoint_name)).length;
  return internal > 0 ? `${d.checkpoints.length}, ${internal} of them internal` : String(d.checkpoints.length);
}

function printDetails(context: CommandContext, d: TaskDetails): void {
  const t = d.task;
  const field = (label: string, value: string) => context.print(`${`${label}:`.padEnd(17)}${value}`);
  const indent = ' '.repeat(17);
  field('task', t.task_id);
  field('name', displayName(t.task_name));
  field('queue', displayName(d.queue));
  field('state', t.state);
  field('attempts', `${t.attempts} of ${t.max_attempts ?? 'unlimited'}`);
  field('created', formatTime(t.enqueue_at));
  field('first started', formatTime(t.first_started_at));
  if (t.cancelled_at) field('cancelled', formatTime(t.cancelled_at));
  if (t.idempotency_key !== null) field('idempotency key', JSON.stringify(t.idempotency_key));
  field('retry strategy', t.retry_strategy === null ? 'none given (no delay)' : prettyJson(t.retry_strategy, indent));
  field('cancellation', t.cancellation === null ? 'none' : prettyJson(t.cancellation, indent));
  field('headers', t.headers === null ? 'none' : prettyJson(t.headers, indent));
  field('params', prettyJson(t.params, indent));

  context.print('');
  context.print(`runs (${d.runs.length}):`);
  for (const r of d.runs) {
    const times = [
      `created ${formatTime(r.created_at)}`,
      r.started_at ? `started ${formatTime(r.started_at)}` : undefined,
      r.completed_at ? `completed ${formatTime(r.completed_at)}` : undefined,
      r.failed_at ? `failed ${formatTime(r.failed_at)}` : undefined,
      r.state === 'pending' || r.state === 'sleeping' ? `available ${formatTime(r.available_at)}` : undefined,
    ].filter((x) => x !== undefined);
    context.print(`  #${r.attempt} ${r.run_id}  ${r.state}${r.claimed_by ? `  by ${r.claimed_by}` : ''}`);
    context.print(`     ${times.join(', ')}`);
    if (r.state === 'running' && r.claim_expires_at) context.print(`     lease until ${formatTime(r.claim_expires_at)}`);
    if (r.wake_event) context.print(`     waiting for event ${JSON.stringify(r.wake_event)}`);
    if (r.failure_reason !== null) context.print(`     failure: ${describeFailure(r.failure_reason)}`);
  }

  context.print('');
  context.print(`checkpoints (${checkpointCount(d)}):`);
  const attemptOf = new Map(d.runs.map((r) => [r.run_id, r.attempt]));
  for (const c of d.checkpoints) {
    const owner = c.owner_run_id === null ? 'no run' : `run #${attemptOf.get(c.owner_run_id) ?? '?'}`;
    const mark = isInternalCheckpoint(c.checkpoint_name) ? '  (internal)' : '';
    context.print(`  ${JSON.stringify(c.checkpoint_name)}  ${c.status}  ${owner}  ${formatTime(c.updated_at)}${mark}`);
    context.print(`     ${prettyJson(c.state, '     ')}`);
  }

  context.print('');
  context.print(`waits (${d.waits.length}):`);
  for (const w of d.waits) {
    const emitted = w.emitted_at ? `emitted ${formatTime(w.emitted_at)}` : 'not emitted yet';
    context.print(
      `  step ${JSON.stringify(w.step_name)} waits for event ${JSON.stringify(w.event_name)} (${emitted}), timeout ${w.timeout_at ? formatTime(w.timeout_at) : 'none'}`,
    );
  }

  context.print('');
  if (t.state === 'completed') context.print(`result: ${prettyJson(t.completed_payload, '  ')}`);
  else if (t.state === 'failed') context.print(`failure: ${prettyJson(failureOf(d), '  ')}`);
  else context.print(`outcome: none yet (${t.state})`);
}

/** `absurd tasks show`. */
export const tasksShowCommand: CommandSpec = {
  name: 'tasks show',
  summary: 'Show one task: params, headers, settings, runs, checkpoints, waits, result or failure',
  description:
    'Shows a task by id (or the task of a run id), searching every queue unless -q is given: its params, headers, ' +
    'retry and cancellation settings, each run with its state, times and failure, the checkpoints of its steps, ' +
    'the open event waits, and the result or failure. Checkpoints the runtime keeps for itself (names starting ' +
    'with $, such as $awaitTaskResult:<id>$deadline) are shown, marked as internal, only with --internal.',
  args: [{ name: 'task-id', required: true }],
  flags: [
    { name: 'queue', short: 'q', value: 'queue', description: 'Queue of the task (default: search every queue)' },
    { name: 'internal', description: "Also show the runtime's internal checkpoints, marked as such" },
    jsonFlag,
  ],
  async run(context) {
    const internal = booleanFlag(context, 'internal');
    const details = await withEngine(context, async (db) => {
      const found = await findTask(db, context.positionals[0] ?? '', stringFlag(context, 'queue'), { byRun: true });
      return readDetails(db, found.queue, found.taskID, internal);
    });
    if (booleanFlag(context, 'json')) context.print(JSON.stringify(detailsJson(details)));
    else printDetails(context, details);
    return EXIT.ok;
  },
};

