import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { expect } from 'vitest';
import type { TestDatabase } from '../support/db.js';

/** Anything that can run a query: a pool, a client, a pool client. */
export type Queryable = Pick<pg.ClientBase, 'query'>;

/** Marker for "send SQL NULL" where a JSON argument would otherwise be serialised. */
export const SQL_NULL = Symbol('SQL NULL');

const runTag = randomBytes(2).toString('hex');
let sequence = 0;

/** A queue name unique within the test run (ASCII, well under the 57-byte limit). */
export function queueName(label = 'q'): string {
  sequence += 1;
  return `${label.slice(0, 40)}_${runTag}${sequence}`;
}

/** A unique queue name of exactly 57 UTF-8 bytes, mostly two-byte characters. */
export function utf8QueueName57(): string {
  sequence += 1;
  let suffix = `_${runTag}${sequence}`;
  if ((57 - suffix.length) % 2 === 1) suffix = `q${suffix}`;
  const name = 'é'.repeat((57 - suffix.length) / 2) + suffix;
  if (Buffer.byteLength(name, 'utf8') !== 57) throw new Error(`bad 57-byte name ${name}`);
  return name;
}

/** Unique names that only work when every identifier is quoted. */
export function awkwardQueueNames(): string[] {
  sequence += 1;
  const n = `${runTag}${sequence}`;
  return [`it's ${n}`, `with space ${n}`, `UpperCase${n}`, `"dq${n}"`, `-${n}`, `${n}.dot`, utf8QueueName57()];
}

/** Double-quotes an identifier the way `format('%I')` would. */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** The qualified, quoted name of a per-queue table, e.g. `table('t', q)` → `absurd."t_<q>"`. */
export function table(prefix: 't' | 'r' | 'c' | 'e' | 'w' | 'i', queue: string): string {
  return `absurd.${ident(`${prefix}_${queue}`)}`;
}

/** A dedicated client whose session time zone is UTC (for fake time and exact timestamps). */
export async function utcClient(db: TestDatabase): Promise<pg.Client> {
  const client = await db.connect();
  await client.query(`set timezone = 'UTC'`);
  return client;
}

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

/** `base` plus `seconds` (fractions allowed). */
export function plus(base: Date, seconds: number): Date {
  return new Date(base.getTime() + seconds * 1000);
}

/** JSON-encodes a value for a jsonb parameter, the way the SDKs send it. */
export function jsonParam(value: unknown): string | null {
  if (value === SQL_NULL || value === undefined) return null;
  return JSON.stringify(value);
}

export async function createQueue(client: Queryable, queue: string): Promise<string> {
  await client.query('select absurd.create_queue($1)', [queue]);
  return queue;
}

export interface SpawnResult {
  task_id: string;
  run_id: string;
  attempt: number;
  created: boolean;
}

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

export async function claim(
  client: Queryable,
  queue: string,
  worker: string | null = 'worker-a',
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
export async function claimOne(client: Queryable, queue: string, worker = 'worker-a', claimTimeout = 60): Promise<ClaimedRun> {
  const rows = await claim(client, queue, worker, claimTimeout, 1);
  expect(rows).toHaveLength(1);
  return one(rows);
}

export async function completeRun(client: Queryable, queue: string, runId: string, result: unknown = null): Promise<void> {
  await client.query('select absurd.complete_run($1, $2, $3)', [queue, runId, jsonParam(result)]);
}

export async function failRun(
  client: Queryable,
  queue: string,
  runId: string,
  reason: unknown = { name: 'Error', message: 'boom' },
  retryAt: Date | null = null,
): Promise<void> {
  await client.query('select absurd.fail_run($1, $2, $3, $4)', [queue, runId, jsonParam(reason), retryAt]);
}

export async function scheduleRun(client: Queryable, queue: string, runId: string, wakeAt: Date | string): Promise<void> {
  await client.query('select absurd.schedule_run($1, $2, $3)', [queue, runId, wakeAt]);
}

export async function cancelTask(client: Queryable, queue: string, taskId: string): Promise<void> {
  await client.query('select absurd.cancel_task($1, $2)', [queue, taskId]);
}

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
}

/** The task row, read straight from `t_<q>`; fails the test when missing. */
export async function task(client: Queryable, queue: string, taskId: string): Promise<TaskRow> {
  const { rows } = await client.query<TaskRow>(`select * from ${table('t', queue)} where task_id = $1`, [taskId]);
  return one(rows);
}

/** All tasks of a queue, oldest id first. */
export async function tasks(client: Queryable, queue: string): Promise<TaskRow[]> {
  return (await client.query<TaskRow>(`select * from ${table('t', queue)} order by task_id`)).rows;
}

/** The task's runs from `r_<q>`, by attempt. */
export async function runs(client: Queryable, queue: string, taskId: string): Promise<RunRow[]> {
  const { rows } = await client.query<RunRow>(`select * from ${table('r', queue)} where task_id = $1 order by attempt, run_id`, [
    taskId,
  ]);
  return rows;
}

/** One run row by id; fails the test when missing. */
export async function run(client: Queryable, queue: string, runId: string): Promise<RunRow> {
  const { rows } = await client.query<RunRow>(`select * from ${table('r', queue)} where run_id = $1`, [runId]);
  return one(rows);
}

export interface WaitRow {
  task_id: string;
  run_id: string;
  step_name: string;
  event_name: string;
  timeout_at: Date | null;
  created_at: Date;
}

export async function waits(client: Queryable, queue: string): Promise<WaitRow[]> {
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

/** Asserts that a statement fails with `code` and a message containing `message`. */
export async function expectPgError(promise: Promise<unknown>, code: string, message?: string): Promise<pg.DatabaseError> {
  const error = await pgError(promise);
  expect({ code: error.code, message: error.message }).toEqual({
    code,
    message: message === undefined ? error.message : expect.stringContaining(message),
  });
  return error;
}

/** Waits until backend `pid` is blocked on a lock (seen from another session). */
export async function waitUntilBlocked(observer: Queryable, pid: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const { rows } = await observer.query<{ waiting: boolean }>(
      `select coalesce(wait_event_type = 'Lock', false) as waiting from pg_stat_activity where pid = $1`,
      [pid],
    );
    if (rows[0]?.waiting) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`backend ${pid} did not block on a lock within ${timeoutMs} ms`);
}

/** The backend pid of a dedicated client. */
export async function backendPid(client: Queryable): Promise<number> {
  return one((await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows).pid;
}

/** The only element of `rows`; fails when there is not exactly one. */
export function one<T>(rows: readonly T[]): T {
  if (rows.length !== 1) throw new Error(`expected exactly one row, got ${rows.length}`);
  return rows[0] as T;
}

/** Milliseconds since the epoch of a timestamp column value (Date), for exact comparisons. */
export function ms(value: Date | null | undefined): number | null {
  return value == null ? null : value.getTime();
}
