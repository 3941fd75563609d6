/**
 * Helpers for the SQL-level tests of the engine: unique (and deliberately awkward) queue names,
 * the file's database session, fake time, thin wrappers over the `absurd.*` functions, direct
 * table reads and error assertions.
 *
 * JSON goes to the server as text (as every SDK sends it), never as a JS object.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { beforeAll, beforeEach, expect } from 'vitest';
import type { TestDatabase } from '../support/db.js';

/** Anything that can run a query: a pool, a client, a pool client, a session of `useSession`. */
export type Queryable = Pick<pg.ClientBase, 'query'>;

/** Marker for "send SQL NULL" where a JSON argument would otherwise be serialised. */
export const SQL_NULL = Symbol('SQL NULL');

// ---------------------------------------------------------------------------------------------
// Queue names

/**
 * How a queue name is spelled: `plain` ASCII; `quoted` with double and single quotes; `spaced`
 * with spaces and upper case; `utf8-57` exactly 57 UTF-8 bytes (the maximum), mostly two-byte
 * characters.
 */
export type QueueStyle = 'plain' | 'quoted' | 'spaced' | 'utf8-57';

/** The order in which `'rotating'` hands out the styles. */
const ROTATION: readonly QueueStyle[] = ['plain', 'quoted', 'spaced', 'utf8-57'];

const runTag = randomBytes(2).toString('hex');
let sequence = 0;

/**
 * A queue name unique within the test run, in the given style. `'rotating'` takes the styles in
 * turn, so that the tests of a file together exercise every kind of name the engine must quote.
 *
 * @example
 * const q = await createQueue(c, queueName('claim'));
 */
export function queueName(label = 'q', style: QueueStyle | 'rotating' = 'plain'): string {
  sequence += 1;
  const tag = `${runTag}${sequence}`;
  const chosen = style === 'rotating' ? (ROTATION[sequence % ROTATION.length] ?? 'plain') : style;
  switch (chosen) {
    case 'plain':
      return `${label.slice(0, 40)}_${tag}`;
    case 'quoted':
      return `${label.slice(0, 30)} "dq" it's ${tag}`;
    case 'spaced':
      return `Upper ${label.slice(0, 30).toUpperCase()} ${tag}`;
    case 'utf8-57': {
      let tail = label === '' ? `_${tag}` : `_${label.slice(0, 20)}_${tag}`;
      if ((57 - Buffer.byteLength(tail)) % 2 === 1) tail = `q${tail}`;
      const name = 'é'.repeat((57 - Buffer.byteLength(tail)) / 2) + tail;
      if (Buffer.byteLength(name, 'utf8') !== 57) throw new Error(`bad 57-byte name ${name}`);
      return name;
    }
  }
}

/** A unique queue name of exactly 57 UTF-8 bytes, mostly two-byte characters. */
export function utf8QueueName57(): string {
  return queueName('', 'utf8-57');
}

/** Unique names that only work when every identifier is quoted. */
export function awkwardQueueNames(): string[] {
  sequence += 1;
  const n = `${runTag}${sequence}`;
  return [`it's ${n}`, `with space ${n}`, `UpperCase${n}`, `"dq${n}"`, `-${n}`, `${n}.dot`, utf8QueueName57()];
}

/** Double-quotes an identifier the way `format('%I')` does for names that need it. */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** The qualified, quoted name of a per-queue table, e.g. `table('t', q)` → `absurd."t_<q>"`. */
export function table(prefix: 't' | 'r' | 'c' | 'e' | 'w' | 'i', queue: string): string {
  return `absurd.${ident(`${prefix}_${queue}`)}`;
}

// ---------------------------------------------------------------------------------------------
// Sessions

/** How `utcClient` sets up a client. */
export interface ClientOptions {
  /**
   * Leave schema `absurd` off the search_path. The test server's role is called `absurd`, so the
   * default `"$user", public` would put the schema on the path and hide engine code that forgets
   * to schema-qualify its own calls.
   */
  outsideSchema?: boolean;
}

const pids = new WeakMap<pg.Client, number>();

/** A dedicated client whose session time zone is UTC (for fake time and exact timestamps). */
export async function utcClient(db: Pick<TestDatabase, 'connect'>, options: ClientOptions = {}): Promise<pg.Client> {
  const client = await db.connect();
  if (options.outsideSchema) await client.query(`set search_path = public`);
  await client.query(`set timezone = 'UTC'`);
  pids.set(client, await backendPid(client));
  return client;
}

/**
 * The backend pid of a client made by `utcClient`, known without a round trip (the client may be
 * busy with a blocked statement when it is needed).
 */
export function pidOf(client: pg.Client): number {
  const pid = pids.get(client);
  if (pid === undefined) throw new Error('pidOf needs a client made by utcClient');
  return pid;
}

/** The backend pid of a client, by asking the server. */
export async function backendPid(client: Queryable): Promise<number> {
  return one((await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows).pid;
}

/** How `useSession` sets up the file's session. */
export interface SessionOptions extends ClientOptions {
  /**
   * Fake time to set before each test; `null` goes back to real time before each test. Left out,
   * the session's clock is not touched between tests.
   */
  now?: Date | string | null;
}

/**
 * The file's main session: a `utcClient` connected before the file's tests, with fake time reset
 * before each test as `options.now` says. Returns a `Queryable` that runs on that client, to be
 * used inside tests and hooks.
 *
 * @example
 * const db = useTestDatabase();
 * const c = useSession(db, { now: T0 });
 */
export function useSession(db: TestDatabase, options: SessionOptions = {}): Queryable {
  let client: pg.Client | undefined;
  const query = (...args: unknown[]): unknown => {
    if (!client) throw new Error('the session is only available inside tests and hooks');
    return (client.query as (...a: unknown[]) => unknown).apply(client, args);
  };
  const session = { query } as unknown as Queryable;
  beforeAll(async () => {
    client = await utcClient(db, options);
  });
  const { now } = options;
  if (now !== undefined) {
    beforeEach(async () => {
      if (now === null) await clearNow(session);
      else await setNow(session, now);
    });
  }
  return session;
}

/**
 * Resolves once backend `pid` is waiting for a heavyweight lock (row locks included), as seen
 * from `observer`. Orders concurrent sessions deterministically: a statement is started, and the
 * test goes on only once it is known to be blocked.
 */
export async function waitUntilBlocked(observer: Queryable, pid: number, timeoutMs = 5000): Promise<void> {
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

// ---------------------------------------------------------------------------------------------
// Time

/** Sets `absurd.fake_now` for the session of `client` and returns the time as a Date. */
export async function setNow(client: Queryable, at: Date | string): Promise<Date> {
  const date = typeof at === 'string' ? new Date(at) : at;
  await client.query(`select set_config('absurd.fake_now', $1, false)`, [date.toISOString()]);
  return date;
}

/** Goes back to real time for the session of `client`. */
export async function clearNow(client: Queryable): Promise<void> {
  await client.query(`set absurd.fake_now = default`);
}

/** `base` plus `seconds` (fractions allowed): a Date for a Date, an ISO string with `Z` for a string. */
export function plus(base: Date, seconds: number): Date;
export function plus(base: string, seconds: number): string;
export function plus(base: Date | string, seconds: number): Date | string {
  if (typeof base === 'string') return new Date(Date.parse(base) + seconds * 1000).toISOString();
  return new Date(base.getTime() + seconds * 1000);
}

// ---------------------------------------------------------------------------------------------
// Engine calls

/** JSON-encodes a value for a jsonb parameter, the way the SDKs send it. */
export function jsonParam(value: unknown): string | null {
  if (value === SQL_NULL || value === undefined) return null;
  return JSON.stringify(value);
}

/** Creates the queue and returns its name. */
export async function createQueue(client: Queryable, queue: string): Promise<string> {
  await client.query('select absurd.create_queue($1)', [queue]);
  return queue;
}

/** Creates a queue named after `label`, its name style rotating (see `queueName`), and returns the name. */
export async function newQueue(client: Queryable, label: string): Promise<string> {
  return createQueue(client, queueName(label, 'rotating'));
}

/** A row of `absurd.spawn_task` (and of `absurd.retry_task`). */
export interface SpawnResult {
  task_id: string;
  run_id: string;
  attempt: number;
  created: boolean;
}

/** `absurd.spawn_task`, its arguments in the function's order. */
export async function spawn(
  client: Queryable,
  queue: string,
  taskName = 'job',
  params: unknown = {},
  options: unknown = {},
): Promise<SpawnResult> {
  const { rows } = await client.query<SpawnResult>(
    'select task_id, run_id, attempt, created from absurd.spawn_task($1, $2, $3, $4)',
    [queue, taskName, jsonParam(params), jsonParam(options)],
  );
  return one(rows);
}

/** A row of `absurd.claim_task`. */
export interface ClaimedRun {
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

/** `absurd.claim_task`; every argument may be SQL NULL. */
export async function claim(
  client: Queryable,
  queue: string,
  worker: string | null = 'worker-1',
  claimTimeout: number | null = 60,
  qty: number | null = 1,
): Promise<ClaimedRun[]> {
  const { rows } = await client.query<ClaimedRun>('select * from absurd.claim_task($1, $2, $3, $4)', [
    queue,
    worker,
    claimTimeout,
    qty,
  ]);
  return rows;
}

/** Claims exactly one run and returns it. */
export async function claimOne(client: Queryable, queue: string, worker = 'worker-1', claimTimeout = 60): Promise<ClaimedRun> {
  const rows = await claim(client, queue, worker, claimTimeout, 1);
  expect(rows).toHaveLength(1);
  return one(rows);
}

/**
 * Spawns one task (`job`, params `{}`) with `options` and claims it as `worker-1`: the usual
 * starting point, a running run of attempt 1.
 */
export async function spawnAndClaim(client: Queryable, queue: string, options: unknown = {}, claimTimeout = 60): Promise<SpawnResult> {
  const spawned = await spawn(client, queue, 'job', {}, options);
  const claimed = await claimOne(client, queue, 'worker-1', claimTimeout);
  expect(claimed.run_id).toBe(spawned.run_id);
  return spawned;
}

/**
 * A new queue (plain name after `label`) holding one task spawned with `options` and claimed as
 * by `spawnAndClaim`: the usual starting point of a test that finishes a run.
 *
 * @example
 * const { q, task_id, run_id } = await runningTask(c, 'complete', { max_attempts: 1 });
 */
export async function runningTask(client: Queryable, label: string, options: unknown = {}): Promise<SpawnResult & { q: string }> {
  const q = await createQueue(client, queueName(label));
  return { q, ...(await spawnAndClaim(client, q, options)) };
}

/** `absurd.complete_run`; `result` is sent as JSON (`SQL_NULL` for SQL NULL). */
export async function completeRun(client: Queryable, queue: string, runId: string, result: unknown = null): Promise<void> {
  await client.query('select absurd.complete_run($1, $2, $3)', [queue, runId, jsonParam(result)]);
}

/** `absurd.fail_run`; the default reason is what an SDK sends for `new Error('boom')`. */
export async function failRun(
  client: Queryable,
  queue: string,
  runId: string,
  reason: unknown = { name: 'Error', message: 'boom', stack: null },
  retryAt: Date | null = null,
): Promise<void> {
  await client.query('select absurd.fail_run($1, $2, $3, $4)', [queue, runId, jsonParam(reason), retryAt]);
}

/** `absurd.schedule_run`. */
export async function scheduleRun(client: Queryable, queue: string, runId: string, wakeAt: Date | string): Promise<void> {
  await client.query('select absurd.schedule_run($1, $2, $3)', [queue, runId, wakeAt]);
}

/** `absurd.cancel_task`. */
export async function cancelTask(client: Queryable, queue: string, taskId: string): Promise<void> {
  await client.query('select absurd.cancel_task($1, $2)', [queue, taskId]);
}

/**
 * `absurd.set_task_checkpoint_state`: the 5-argument form, or the 6-argument form when
 * `extendBy` is given (null included).
 */
export async function setCheckpoint(
  client: Queryable,
  queue: string,
  taskId: string,
  step: string | null,
  state: unknown,
  ownerRun: string,
  extendBy?: number | null,
): Promise<void> {
  const json = jsonParam(state);
  if (extendBy === undefined) {
    await client.query('select absurd.set_task_checkpoint_state($1, $2, $3, $4, $5)', [queue, taskId, step, json, ownerRun]);
  } else {
    await client.query('select absurd.set_task_checkpoint_state($1, $2, $3, $4, $5, $6)', [queue, taskId, step, json, ownerRun, extendBy]);
  }
}

/** A row of `absurd.await_event`, with whether the payload is SQL NULL rather than JSON null. */
export interface AwaitResult {
  should_suspend: boolean;
  payload: unknown;
  payload_is_sql_null: boolean;
}

/** `absurd.await_event`: the 5-argument form, or the 6-argument form when `timeout` is given (null included). */
export async function awaitEvent(
  client: Queryable,
  queue: string,
  taskId: string,
  runId: string,
  step: string | null,
  event: string | null,
  timeout?: number | null,
): Promise<AwaitResult> {
  const cols = 'should_suspend, payload, payload is null as payload_is_sql_null';
  const { rows } =
    timeout === undefined
      ? await client.query<AwaitResult>(`select ${cols} from absurd.await_event($1, $2, $3, $4, $5)`, [queue, taskId, runId, step, event])
      : await client.query<AwaitResult>(`select ${cols} from absurd.await_event($1, $2, $3, $4, $5, $6)`, [
          queue,
          taskId,
          runId,
          step,
          event,
          timeout,
        ]);
  return one(rows);
}

// ---------------------------------------------------------------------------------------------
// Table reads

/** A row of `t_<q>` as `select *` returns it. */
export interface TaskRow {
  task_id: string;
  task_name: string;
  params: unknown;
  headers: unknown;
  retry_strategy: unknown;
  max_attempts: number | null;
  cancellation: unknown;
  enqueue_at: Date;
  first_started_at: Date | null;
  state: string;
  attempts: number;
  last_attempt_run: string | null;
  completed_payload: unknown;
  cancelled_at: Date | null;
  idempotency_key: string | null;
}

/** A row of `r_<q>` as `select *` returns it (`available_at` of a run waiting forever is not a Date). */
export interface RunRow {
  run_id: string;
  task_id: string;
  attempt: number;
  state: string;
  claimed_by: string | null;
  claim_expires_at: Date | null;
  available_at: Date;
  wake_event: string | null;
  event_payload: unknown;
  started_at: Date | null;
  completed_at: Date | null;
  failed_at: Date | null;
  result: unknown;
  failure_reason: unknown;
  created_at: Date;
  /** absurd-kit's own column (migration 000016): the run's claim priority, higher first. */
  priority: number;
}

/** What `runRow` reads besides the columns: facts a Date or a parsed JSON value cannot show. */
export interface RunFacts {
  /** `available_at` as an ISO string with `Z` (null when it is `infinity`). */
  available_at_text: string | null;
  available_at_infinite: boolean;
  /** Whether `event_payload` is SQL NULL (`event_payload: null` may also be JSON null). */
  event_payload_is_sql_null: boolean;
}

/** A row of `w_<q>`. */
export interface WaitRow {
  task_id: string;
  run_id: string;
  step_name: string;
  event_name: string;
  timeout_at: Date | null;
  created_at: Date;
}

/** A row of `c_<q>` without its task id, with the JSON type of `state` and whether it is SQL NULL. */
export interface CheckpointRow {
  checkpoint_name: string;
  state: unknown;
  state_is_sql_null: boolean;
  state_type: string | null;
  status: string;
  owner_run_id: string | null;
  updated_at: Date;
}

/** A row of `e_<q>`, with whether the payload is SQL NULL (an event awaited but not yet emitted). */
export interface EventRow {
  event_name: string;
  payload: unknown;
  payload_is_sql_null: boolean;
  emitted_at: Date;
}

/** The task row, read straight from `t_<q>`; fails the test when missing. */
export async function taskRow(client: Queryable, queue: string, taskId: string): Promise<TaskRow> {
  const { rows } = await client.query<TaskRow>(`select * from ${table('t', queue)} where task_id = $1`, [taskId]);
  return one(rows);
}

/** All tasks of a queue, oldest id first. */
export async function taskRows(client: Queryable, queue: string): Promise<TaskRow[]> {
  return (await client.query<TaskRow>(`select * from ${table('t', queue)} order by task_id`)).rows;
}

/** One run row by id, with its `RunFacts`; fails the test when missing. */
export async function runRow(client: Queryable, queue: string, runId: string): Promise<RunRow & RunFacts> {
  const { rows } = await client.query<RunRow & RunFacts>(
    `select *,
            to_char(available_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as available_at_text,
            available_at = 'infinity' as available_at_infinite,
            event_payload is null as event_payload_is_sql_null
       from ${table('r', queue)} where run_id = $1`,
    [runId],
  );
  return one(rows);
}

/** The task's runs from `r_<q>`, by attempt. */
export async function runRows(client: Queryable, queue: string, taskId: string): Promise<RunRow[]> {
  const { rows } = await client.query<RunRow>(`select * from ${table('r', queue)} where task_id = $1 order by attempt, run_id`, [
    taskId,
  ]);
  return rows;
}

/** All wait rows of a queue, by run and step. */
export async function waitRows(client: Queryable, queue: string): Promise<WaitRow[]> {
  return (await client.query<WaitRow>(`select * from ${table('w', queue)} order by run_id, step_name`)).rows;
}

/** Registers a wait row directly (arranging state for claim/complete/fail/cancel tests). */
export async function insertWait(
  client: Queryable,
  queue: string,
  taskId: string,
  runId: string,
  stepName: string,
  eventName: string,
  timeoutAt: Date | null,
): Promise<void> {
  await client.query(
    `insert into ${table('w', queue)} (task_id, run_id, step_name, event_name, timeout_at) values ($1, $2, $3, $4, $5)`,
    [taskId, runId, stepName, eventName, timeoutAt],
  );
}

/** All checkpoint rows of a task, read directly from `c_<q>`, by name. */
export async function checkpointRows(client: Queryable, queue: string, taskId: string): Promise<CheckpointRow[]> {
  const { rows } = await client.query<CheckpointRow>(
    `select checkpoint_name, state, state is null as state_is_sql_null, jsonb_typeof(state) as state_type,
            status, owner_run_id, updated_at
       from ${table('c', queue)} where task_id = $1 order by checkpoint_name`,
    [taskId],
  );
  return rows;
}

/** The event row, or undefined when there is none. */
export async function eventRow(client: Queryable, queue: string, eventName: string): Promise<EventRow | undefined> {
  const { rows } = await client.query<EventRow>(
    `select event_name, payload, payload is null as payload_is_sql_null, emitted_at
       from ${table('e', queue)} where event_name = $1`,
    [eventName],
  );
  return rows[0];
}

/** The number of rows in one of the queue's tables. */
export async function countRows(client: Queryable, queue: string, prefix: 't' | 'r' | 'c' | 'e' | 'w'): Promise<number> {
  const { rows } = await client.query<{ n: number }>(`select count(*)::int as n from ${table(prefix, queue)}`);
  return one(rows).n;
}

/**
 * Every row of the queue's five tables and its `absurd.queues` row, as JSON, in a stable order.
 * Compare two snapshots to assert that a rejected call changed nothing.
 */
export async function snapshot(client: Queryable, queue: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const prefix of ['t', 'r', 'c', 'e', 'w'] as const) {
    const exists = await client.query<{ ok: boolean }>('select to_regclass($1) is not null as ok', [table(prefix, queue)]);
    out[prefix] = one(exists.rows).ok
      ? one(
          (
            await client.query<{ rows: unknown }>(
              `select coalesce(jsonb_agg(to_jsonb(x) order by to_jsonb(x)::text), '[]'::jsonb) as rows from ${table(prefix, queue)} x`,
            )
          ).rows,
        ).rows
      : null;
  }
  const queueRow = await client.query<{ row: unknown }>('select to_jsonb(x) as row from absurd.queues x where queue_name = $1', [queue]);
  out.queue = queueRow.rows[0]?.row ?? null;
  return out;
}

/** Every relation in schema `absurd` plus every `absurd.queues` row (for DDL-level "nothing changed"). */
export async function schemaSnapshot(client: Queryable): Promise<{ relations: string[]; queues: unknown }> {
  const relations = await client.query<{ relname: string }>(
    `select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'absurd' order by c.relname`,
  );
  const queues = await client.query<{ rows: unknown }>(
    `select coalesce(jsonb_agg(to_jsonb(q) order by q.queue_name), '[]'::jsonb) as rows from absurd.queues q`,
  );
  return { relations: relations.rows.map((r) => r.relname), queues: one(queues.rows).rows };
}

// ---------------------------------------------------------------------------------------------
// Errors and results

/** Awaits a statement that must fail and returns the Postgres error. */
export async function pgError(promise: Promise<unknown>): Promise<pg.DatabaseError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof pg.DatabaseError) return error;
    throw error;
  }
  throw new Error('expected the statement to fail, but it succeeded');
}

/** Asserts that a statement fails with SQLSTATE `code` and, when given, a message containing `message`. */
export async function expectPgError(promise: Promise<unknown>, code: string, message?: string): Promise<pg.DatabaseError> {
  const error = await pgError(promise);
  expect({ code: error.code, message: error.message }).toEqual({
    code,
    message: message === undefined ? error.message : expect.stringContaining(message),
  });
  return error;
}

/** The only element of `rows`; fails when there is not exactly one. */
export function one<T>(rows: readonly T[]): T {
  if (rows.length !== 1) throw new Error(`expected exactly one row, got ${rows.length}`);
  return rows[0] as T;
}

// Function calls

/** The session's not yet reported calls of each absurd function named in `names` (track_functions on). */
async function pendingCalls(client: Queryable, names: readonly string[]): Promise<Record<string, number>> {
  const { rows } = await client.query<{ funcname: string; calls: number }>(
    `select funcname, sum(calls)::int as calls from pg_stat_xact_user_functions
      where schemaname = 'absurd' and funcname = any($1::text[]) group by funcname`,
    [names],
  );
  return Object.fromEntries(names.map((name) => [name, rows.find((row) => row.funcname === name)?.calls ?? 0]));
}

/**
 * How many times each absurd function named in `names` ran during `body`, inside a transaction of
 * the caller's with track_functions on. A difference: pg_stat_xact_user_functions also holds calls
 * of the session's earlier transactions until the session reports them (at most once a second).
 *
 * @example
 * await c.query(`set local track_functions = 'all'`);
 * expect(await callsDuring(c, ['kit_queue_statement'], () => spawn(c, q))).toEqual({ kit_queue_statement: 0 });
 */
export async function callsDuring(client: Queryable, names: readonly string[], body: () => Promise<unknown>): Promise<Record<string, number>> {
  const before = await pendingCalls(client, names);
  await body();
  const after = await pendingCalls(client, names);
  return Object.fromEntries(names.map((name) => [name, (after[name] ?? 0) - (before[name] ?? 0)]));
}
