/**
 * Inspecting tasks: `tasks list` (one queue or all, newest first, paged) and `tasks show` (one
 * task with its runs, checkpoints, waits and outcome). These read the per-queue tables directly,
 * as the contract allows tools to; every table name is quoted and every value is a parameter.
 */
import type pg from 'pg';
import { UsageError } from '../cli-args.js';
import { EXIT, type CommandContext, type CommandSpec } from '../cli-command.js';
import { queueNames, queueTable, requireQueue, withEngine } from '../cli-database.js';
import { booleanFlag, choiceFlag, integerFlag, stringFlag } from '../cli-flags.js';
import { displayName, formatTime, jsonTime, prettyJson, renderTable, type DatabaseTime } from '../cli-format.js';
import { findTask } from '../task-lookup.js';

const jsonFlag = { name: 'json', description: 'Print one JSON object instead of text lines' } as const;
const STATES = ['pending', 'running', 'sleeping', 'completed', 'failed', 'cancelled'] as const;

/**
 * A point in time for `--since`/`--until`: an ISO date or time, or an age such as `30m`, `2h`,
 * `7d` counted back from the database's clock. Returns the SQL expression and its parameter.
 */
function timeBound(flag: string, text: string, param: number): { sql: string; value: string } {
  const age = /^(\d+)\s*(s|m|h|d|w)$/.exec(text.trim());
  if (age) {
    const unit = { s: 'seconds', m: 'minutes', h: 'hours', d: 'days', w: 'weeks' }[age[2] as 's' | 'm' | 'h' | 'd' | 'w'];
    return { sql: `absurd.current_time() - $${param}::interval`, value: `${age[1]} ${unit}` };
  }
  if (/^\d{4}-\d{2}-\d{2}([T ][\d:.]+)?(Z|[+-]\d{2}(:?\d{2})?)?$/.test(text.trim()) && !Number.isNaN(Date.parse(text))) {
    return { sql: `$${param}::timestamptz`, value: text.trim() };
  }
  throw new UsageError(`--${flag} must be a time (2024-05-01, 2024-05-01T12:00:00Z) or an age (30m, 2h, 7d); got ${JSON.stringify(text)}`);
}

interface ListedTask {
  queue_name: string;
  task_id: string;
  task_name: string;
  state: string;
  attempts: number;
  max_attempts: number | null;
  enqueue_at: Date;
  started_at: DatabaseTime;
  ended_at: DatabaseTime;
}

/** `absurd tasks list`. */
export const tasksListCommand: CommandSpec = {
  name: 'tasks list',
  summary: 'List tasks, newest first, in one queue or all of them',
  description:
    'Lists tasks by creation time, newest first, across every queue unless -q is given. Filter by --state, ' +
    '--name and a creation window (--since/--until take a time such as 2024-05-01T12:00:00Z or an age such as ' +
    '2h or 7d). Page with --limit and --offset, or with --after <task-id> (the last id of the previous page).',
  flags: [
    { name: 'queue', short: 'q', value: 'queue', description: 'Only this queue (default: every queue)' },
    { name: 'state', short: 's', value: 'state', description: `Only tasks in this state: ${STATES.join(', ')}` },
    { name: 'name', short: 'n', value: 'task', description: 'Only tasks with this task name' },
    { name: 'since', value: 'time', description: 'Created at or after this time, or within this age (2h, 7d)' },
    { name: 'until', value: 'time', description: 'Created before this time, or more than this age ago' },
    { name: 'limit', short: 'l', value: 'n', description: 'At most this many tasks (default 50)' },
    { name: 'offset', value: 'n', description: 'Skip this many tasks' },
    { name: 'after', value: 'task-id', description: 'Start after this task (keyset paging; not with --offset)' },
    jsonFlag,
  ],
  async run(context) {
    const requested = stringFlag(context, 'queue');
    const state = choiceFlag(context, 'state', STATES);
    const name = stringFlag(context, 'name');
    const limit = integerFlag(context, 'limit', { min: 1, max: 10_000 }) ?? 50;
    const offset = integerFlag(context, 'offset', { min: 0 }) ?? 0;
    const after = stringFlag(context, 'after');
    if (after !== undefined && context.flags.offset !== undefined) throw new UsageError('give --offset or --after, not both');

    const params: unknown[] = [];
    const param = (value: unknown) => params.push(value);
    const filters: string[] = [];
    if (state !== undefined) filters.push(`t.state = $${param(state)}`);
    if (name !== undefined) filters.push(`t.task_name = $${param(name)}`);
    for (const [flag, op] of [['since', '>='], ['until', '<']] as const) {
      const text = stringFlag(context, flag);
      if (text === undefined) continue;
      const bound = timeBound(flag, text, params.length + 1);
      param(bound.value);
      filters.push(`t.enqueue_at ${op} ${bound.sql}`);
    }

    const tasks = await withEngine(context, async (db) => {
      if (requested !== undefined) await requireQueue(db, requested);
      const queues = requested === undefined ? await queueNames(db) : [requested];
      if (after !== undefined) {
        const found = await findTask(db, after, requested);
        // Keyset paging: strictly older than the anchor. Task ids are UUIDv7s made at spawn, so
        // their order is creation order, and each queue's primary key serves it.
        filters.push(`t.task_id < $${param(found.taskId)}::uuid`);
      }
      if (queues.length === 0) return [];
      const where = filters.length > 0 ? `where ${filters.join(' and ')}` : '';
      const window = `$${param(limit + offset)}`;
      // Each queue contributes at most limit+offset rows, already ordered, before the merge.
      const branches = queues.map(
        (queue) => `(select $${param(queue)}::text as queue_name, t.task_id, t.task_name, t.state, t.attempts, t.max_attempts,
                            t.enqueue_at, r.started_at, coalesce(r.completed_at, r.failed_at, t.cancelled_at) as ended_at
                       from ${queueTable('t', queue)} t
                       left join ${queueTable('r', queue)} r on r.run_id = t.last_attempt_run
                      ${where}
                      order by t.task_id desc
                      limit ${window})`,
      );
      const { rows } = await db.query<ListedTask>(
        `select * from (${branches.join(' union all ')}) listed
          order by task_id desc limit $${param(limit)} offset $${param(offset)}`,
        params,
      );
      return rows;
    });

    const nextAfter = tasks.length === limit ? (tasks.at(-1)?.task_id ?? null) : null;
    if (booleanFlag(context, 'json')) {
      context.print(
        JSON.stringify({
          tasks: tasks.map((t) => ({
            queue: t.queue_name,
            taskId: t.task_id,
            taskName: t.task_name,
            state: t.state,
            attempts: t.attempts,
            maxAttempts: t.max_attempts,
            createdAt: jsonTime(t.enqueue_at),
            startedAt: jsonTime(t.started_at),
            endedAt: jsonTime(t.ended_at),
          })),
          nextAfter,
        }),
      );
      return EXIT.ok;
    }
    if (tasks.length === 0) {
      context.print('no tasks match');
      return EXIT.ok;
    }
    const table = renderTable(
      ['TASK ID', 'QUEUE', 'NAME', 'STATE', 'ATTEMPTS', 'CREATED', 'ENDED'],
      tasks.map((t) => [
        t.task_id,
        displayName(t.queue_name),
        displayName(t.task_name),
        t.state,
        `${t.attempts}/${t.max_attempts ?? '∞'}`,
        formatTime(t.enqueue_at),
        formatTime(t.ended_at),
      ]),
    );
    for (const line of table) context.print(line);
    if (nextAfter) context.print(`(${tasks.length} shown; next page: --after ${nextAfter})`);
    return EXIT.ok;
  },
};

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
  checkpoints: CheckpointRow[];
  waits: WaitRow[];
}

async function readDetails(db: pg.ClientBase, queue: string, taskId: string): Promise<TaskDetails> {
  const task = await db.query<TaskRow>(
    `select task_id, task_name, params, headers, retry_strategy, max_attempts, cancellation, enqueue_at,
            first_started_at, state, attempts, last_attempt_run, completed_payload, cancelled_at, idempotency_key
       from ${queueTable('t', queue)} where task_id = $1`,
    [taskId],
  );
  const runs = await db.query<RunRow>(
    `select run_id, attempt, state, claimed_by, claim_expires_at, available_at, wake_event, event_payload,
            started_at, completed_at, failed_at, result, failure_reason, created_at
       from ${queueTable('r', queue)} where task_id = $1 order by attempt, run_id`,
    [taskId],
  );
  const checkpoints = await db.query<CheckpointRow>(
    `select checkpoint_name, state, status, owner_run_id, updated_at
       from ${queueTable('c', queue)} where task_id = $1 order by updated_at, checkpoint_name`,
    [taskId],
  );
  const waits = await db.query<WaitRow>(
    `select w.run_id, w.step_name, w.event_name, w.timeout_at, w.created_at,
            case when e.payload is not null then e.emitted_at end as emitted_at
       from ${queueTable('w', queue)} w
       left join ${queueTable('e', queue)} e on e.event_name = w.event_name
      where w.task_id = $1 order by w.created_at, w.step_name`,
    [taskId],
  );
  const row = task.rows[0];
  if (!row) throw new Error(`task ${taskId} disappeared from queue ${JSON.stringify(queue)}`);
  return { queue, task: row, runs: runs.rows, checkpoints: checkpoints.rows, waits: waits.rows };
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
      taskId: t.task_id,
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
      runId: r.run_id,
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
      status: c.status,
      ownerRunId: c.owner_run_id,
      updatedAt: jsonTime(c.updated_at),
      state: c.state,
    })),
    waits: d.waits.map((w) => ({
      runId: w.run_id,
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
  context.print(`checkpoints (${d.checkpoints.length}):`);
  const attemptOf = new Map(d.runs.map((r) => [r.run_id, r.attempt]));
  for (const c of d.checkpoints) {
    const owner = c.owner_run_id === null ? 'no run' : `run #${attemptOf.get(c.owner_run_id) ?? '?'}`;
    context.print(`  ${JSON.stringify(c.checkpoint_name)}  ${c.status}  ${owner}  ${formatTime(c.updated_at)}`);
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
    'retry and cancellation settings, each run with its state, times and failure, the checkpoints, the open ' +
    'event waits, and the result or failure.',
  args: [{ name: 'task-id', required: true }],
  flags: [{ name: 'queue', short: 'q', value: 'queue', description: 'Queue of the task (default: search every queue)' }, jsonFlag],
  async run(context) {
    const details = await withEngine(context, async (db) => {
      const found = await findTask(db, context.positionals[0] ?? '', stringFlag(context, 'queue'), { byRun: true });
      return readDetails(db, found.queue, found.taskId);
    });
    if (booleanFlag(context, 'json')) context.print(JSON.stringify(detailsJson(details)));
    else printDetails(context, details);
    return EXIT.ok;
  },
};

/** Both inspection commands. */
export const tasksCommands: readonly CommandSpec[] = [tasksListCommand, tasksShowCommand];
