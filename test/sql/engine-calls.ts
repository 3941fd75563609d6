/**
 * Helpers for the SQL-level tests of the checkpoint, event, lease and catalogue behaviour of the
 * engine: unique (and deliberately awkward) queue names, thin wrappers over the `absurd.*`
 * functions, direct table reads, fake time and error assertions.
 *
 * JSON goes to the server as text (as every SDK sends it), never as a JS object.
 */
import pg from 'pg';
import { expect } from 'vitest';

/**
 * A dedicated client whose search_path does not contain schema `absurd`. The test server's role
 * is called `absurd`, so the default `"$user", public` would put the schema on the path and hide
 * engine code that forgets to schema-qualify its own calls.
 */
export async function connectOutsideSchema(db: { connect(): Promise<pg.Client> }): Promise<pg.Client> {
  const client = await db.connect();
  await client.query(`set search_path = public`);
  await client.query(`set timezone = 'UTC'`);
  pids.set(client, await backendPid(client));
  return client;
}

const pids = new WeakMap<pg.Client, number>();

/**
 * The backend pid of a client made by `connectOutsideSchema`, known without a round trip (the
 * client may be busy with a blocked statement when it is needed).
 */
export function pidOf(client: pg.Client): number {
  const pid = pids.get(client);
  if (pid === undefined) throw new Error('pidOf needs a client made by connectOutsideSchema');
  return pid;
}

/** Anything with pg's `query` (a dedicated client or the file's pool). */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

export type QueueStyle = 'plain' | 'quoted' | 'spaced' | 'utf8-57';

const styles: readonly QueueStyle[] = ['plain', 'quoted', 'spaced', 'utf8-57'];
let queueCounter = 0;

/**
 * A queue name unique within the test file. Without a style the styles rotate, so that every
 * behaviour is exercised with names that need quoting: double and single quotes, spaces and
 * upper case, and names of exactly 57 UTF-8 bytes (the maximum).
 */
export function uniqueQueue(label: string, style?: QueueStyle): string {
  const n = ++queueCounter;
  const chosen = style ?? styles[n % styles.length] ?? 'plain';
  switch (chosen) {
    case 'plain':
      return `${label}_${n}`;
    case 'quoted':
      return `${label} "dq" it's ${n}`;
    case 'spaced':
      return `Upper ${label.toUpperCase()} ${n}`;
    case 'utf8-57': {
      let name = `${label}_${n}_`;
      while (Buffer.byteLength(name) + 2 <= 57) name += 'é';
      if (Buffer.byteLength(name) < 57) name += 'x';
      return name;
    }
  }
}

/** Quotes an identifier the way `format('%I')` does for names that need it. */
export function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** The schema-qualified, quoted name of a per-queue table (`t`, `r`, `c`, `e`, `w`, `i`). */
export function table(prefix: 't' | 'r' | 'c' | 'e' | 'w' | 'i', queue: string): string {
  return `absurd.${ident(`${prefix}_${queue}`)}`;
}

/** `iso` shifted by `seconds`, as an ISO string with `Z`. */
export function at(iso: string, seconds: number): string {
  return new Date(Date.parse(iso) + seconds * 1000).toISOString();
}

/** Sets `absurd.fake_now` for the session of `c`. */
export async function setNow(c: Queryable, iso: string): Promise<void> {
  await c.query(`select set_config('absurd.fake_now', $1, false)`, [iso]);
}

/** Back to real time for the session of `c`. */
export async function clearNow(c: Queryable): Promise<void> {
  await c.query('set absurd.fake_now = default');
}

export async function createQueue(c: Queryable, queue: string): Promise<void> {
  await c.query('select absurd.create_queue($1)', [queue]);
}

export interface Spawned {
  task_id: string;
  run_id: string;
  attempt: number;
  created: boolean;
}

export async function spawnTask(
  c: Queryable,
  queue: string,
  options: Record<string, unknown> = {},
  taskName = 'job',
  params: unknown = {},
): Promise<Spawned> {
  const { rows } = await c.query<Spawned>(
    'select task_id, run_id, attempt, created from absurd.spawn_task($1, $2, $3, $4)',
    [queue, taskName, JSON.stringify(params), JSON.stringify(options)],
  );
  expect(rows).toHaveLength(1);
  return rows[0]!;
}

export interface Claimed {
  run_id: string;
  task_id: string;
  attempt: number;
  task_name: string;
  params: unknown;
  retry_strategy: unknown;
  max_attempts: number | null;
  headers: unknown;
  wake_event: string | null;
  event_payload: unknown;
}

export async function claimTasks(c: Queryable, queue: string, worker = 'worker-1', timeout = 60, qty = 1): Promise<Claimed[]> {
  const { rows } = await c.query<Claimed>('select * from absurd.claim_task($1, $2, $3, $4)', [queue, worker, timeout, qty]);
  return rows;
}

/** Claims exactly one run and returns it. */
export async function claimOne(c: Queryable, queue: string, worker = 'worker-1', timeout = 60): Promise<Claimed> {
  const rows = await claimTasks(c, queue, worker, timeout, 1);
  expect(rows).toHaveLength(1);
  return rows[0]!;
}

/** Spawns one task and claims it: the usual starting point (a running run, attempt 1). */
export async function spawnAndClaim(
  c: Queryable,
  queue: string,
  options: Record<string, unknown> = {},
  timeout = 60,
): Promise<{ taskId: string; runId: string }> {
  const spawned = await spawnTask(c, queue, options);
  const claimed = await claimOne(c, queue, 'worker-1', timeout);
  expect(claimed.run_id).toBe(spawned.run_id);
  return { taskId: spawned.task_id, runId: spawned.run_id };
}

export interface RunRow {
  run_id: string;
  task_id: string;
  attempt: number;
  state: string;
  claimed_by: string | null;
  claim_expires_at: Date | null;
  available_at_text: string;
  available_at_infinite: boolean;
  wake_event: string | null;
  event_payload: unknown;
  event_payload_is_sql_null: boolean;
  started_at: Date | null;
  completed_at: Date | null;
  failed_at: Date | null;
  result: unknown;
  failure_reason: unknown;
}

/** One run row; `available_at` is returned as text (it may be `infinity`) and as a flag. */
export async function runRow(c: Queryable, queue: string, runId: string): Promise<RunRow> {
  const { rows } = await c.query<RunRow>(
    `select run_id, task_id, attempt, state, claimed_by, claim_expires_at,
            to_char(available_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as available_at_text,
            available_at = 'infinity' as available_at_infinite,
            wake_event, event_payload, event_payload is null as event_payload_is_sql_null,
            started_at, completed_at, failed_at, result, failure_reason
       from ${table('r', queue)} where run_id = $1`,
    [runId],
  );
  expect(rows, `run ${runId}`).toHaveLength(1);
  return rows[0]!;
}

export interface TaskRow {
  task_id: string;
  state: string;
  attempts: number;
  last_attempt_run: string | null;
  cancelled_at: Date | null;
  completed_payload: unknown;
}

export async function taskRow(c: Queryable, queue: string, taskId: string): Promise<TaskRow> {
  const { rows } = await c.query<TaskRow>(
    `select task_id, state, attempts, last_attempt_run, cancelled_at, completed_payload
       from ${table('t', queue)} where task_id = $1`,
    [taskId],
  );
  expect(rows, `task ${taskId}`).toHaveLength(1);
  return rows[0]!;
}

export interface CheckpointRow {
  checkpoint_name: string;
  state: unknown;
  state_is_sql_null: boolean;
  state_type: string | null;
  status: string;
  owner_run_id: string | null;
  updated_at: Date;
}

/** All checkpoint rows of a task, read directly from `c_<q>`, by name. */
export async function checkpointRows(c: Queryable, queue: string, taskId: string): Promise<CheckpointRow[]> {
  const { rows } = await c.query<CheckpointRow>(
    `select checkpoint_name, state, state is null as state_is_sql_null, jsonb_typeof(state) as state_type,
            status, owner_run_id, updated_at
       from ${table('c', queue)} where task_id = $1 order by checkpoint_name`,
    [taskId],
  );
  return rows;
}

export interface WaitRow {
  task_id: string;
  run_id: string;
  step_name: string;
  event_name: string;
  timeout_at: Date | null;
  created_at: Date;
}

export async function waitRows(c: Queryable, queue: string): Promise<WaitRow[]> {
  const { rows } = await c.query<WaitRow>(
    `select task_id, run_id, step_name, event_name, timeout_at, created_at
       from ${table('w', queue)} order by run_id, step_name`,
  );
  return rows;
}

export interface EventRow {
  event_name: string;
  payload: unknown;
  payload_is_sql_null: boolean;
  emitted_at: Date;
}

/** The event row, or undefined when there is none. */
export async function eventRow(c: Queryable, queue: string, eventName: string): Promise<EventRow | undefined> {
  const { rows } = await c.query<EventRow>(
    `select event_name, payload, payload is null as payload_is_sql_null, emitted_at
       from ${table('e', queue)} where event_name = $1`,
    [eventName],
  );
  return rows[0];
}

/** Awaits `promise`, which must fail, and returns the server error. */
export async function sqlError(promise: Promise<unknown>): Promise<pg.DatabaseError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(pg.DatabaseError);
    return error as pg.DatabaseError;
  }
  throw new Error('expected the statement to fail, but it succeeded');
}

/** Expects a server error with this SQLSTATE and, when given, this message substring. */
export async function expectSqlError(promise: Promise<unknown>, code: string, messagePart?: string): Promise<pg.DatabaseError> {
  const error = await sqlError(promise);
  expect({ code: error.code, message: error.message }).toMatchObject({ code });
  if (messagePart !== undefined) expect(error.message).toContain(messagePart);
  return error;
}

/** The backend pid of a client, by asking the server. */
export async function backendPid(c: Queryable): Promise<number> {
  const { rows } = await c.query<{ pid: number }>('select pg_backend_pid() as pid');
  return rows[0]!.pid;
}

/**
 * Resolves once the backend `pid` is waiting for a heavyweight lock (row locks included), as
 * seen from `observer`. Used to order concurrent sessions deterministically: a statement is
 * started, and the test proceeds only once it is known to be blocked.
 */
export async function waitUntilBlocked(observer: Queryable, pid: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await observer.query<{ waiting: boolean }>(
      `select coalesce(wait_event_type = 'Lock', false) as waiting from pg_stat_activity where pid = $1`,
      [pid],
    );
    if (rows[0]?.waiting) return;
    if (Date.now() > deadline) throw new Error(`backend ${pid} did not block on a lock within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
