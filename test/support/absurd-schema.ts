/**
 * A database as Absurd's own install script leaves it (test/fixtures/absurd-main.sql: contract
 * level `main`, none of absurd-kit's additions), for the tests that run absurd-kit on it, adopt
 * it (`migrate(db, { adopt: true })`) or run Absurd's SDK against it. Also: tasks in every state,
 * made with the contract's functions as any Absurd client would, and a snapshot of every row.
 *
 * `ABSURD_TEST_SCHEMA=absurd` (or `adopted`) makes the test template itself such a database (or
 * one adopted from it); see schema.ts.
 */
import pg from 'pg';
import { useEmptyDatabases } from '../engine/empty-databases.js';
import { installAbsurdSchema } from './absurd-install.js';

export { absurdSchemaScript, installAbsurdSchema } from './absurd-install.js';

/** Anything that can run a query: a pool, a client. */
export type Queryable = Pick<pg.ClientBase, 'query'>;

/** Databases holding Absurd's schema, made on demand; see {@link useAbsurdDatabases}. */
export interface AbsurdDatabases {
  /** A new database with Absurd's schema and nothing else; dropped after the file. */
  create(): Promise<string>;
}

/**
 * Creates databases with Absurd's schema installed (and drops them after the file's tests). Call
 * at the top level of a test file.
 *
 * @example
 * const absurd = useAbsurdDatabases();
 * it('adopts', async () => { const url = await absurd.create(); await migrate(url, { adopt: true }); });
 */
export function useAbsurdDatabases(): AbsurdDatabases {
  const empty = useEmptyDatabases();
  return {
    async create() {
      const url = await empty.create();
      await installAbsurdSchema(url);
      return url;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Tasks in every state

/**
 * The params of the task `job` that {@link populateEveryState} spawns. A handler that finishes
 * these tasks (see {@link runJob}) does: step `double` (n * 2); with `sleep`, `sleepFor('nap',
 * sleep)`; with `event`, `awaitEvent(event, { timeout })`; returns `{ n, doubled, event }`.
 */
export interface JobParams {
  n: number;
  sleep?: number;
  event?: string;
  timeout?: number;
}

/** What `job` returns. */
export interface JobResult {
  n: number;
  doubled: number;
  event: unknown;
}

/** The part of a task context `job` uses: absurd-kit's and absurd-sdk's both have it. */
export interface JobContext {
  step<T>(name: string, fn: () => Promise<T>): Promise<T>;
  sleepFor(name: string, seconds: number): Promise<void>;
  awaitEvent(name: string, options?: { timeout?: number }): Promise<unknown>;
}

/**
 * The handler of `job`, the same for absurd-kit's worker and absurd-sdk's, and consistent with the
 * checkpoints {@link populateEveryState} writes with plain SQL (step names as the SDKs derive
 * them: `double`, `nap`, `$awaitEvent:<event>`).
 */
export async function runJob(params: JobParams, ctx: JobContext): Promise<JobResult> {
  const doubled = await ctx.step('double', async () => params.n * 2);
  if (params.sleep !== undefined) await ctx.sleepFor('nap', params.sleep);
  const event =
    params.event === undefined
      ? null
      : await ctx.awaitEvent(params.event, params.timeout === undefined ? undefined : { timeout: params.timeout });
  return { n: params.n, doubled, event };
}

/** The tasks made by {@link populateEveryState}, by the state they were left in. */
export interface EveryState {
  /** Spawned, never claimed. */
  pending: string;
  /** Spawned with an idempotency key, never claimed. */
  pendingWithKey: string;
  /** Claimed by a worker that then vanished: running, its one-second lease soon expired. */
  running: string;
  /** Asleep (`sleepFor('nap', 2)`) until two seconds after it was made. */
  sleeping: string;
  /** Waiting for event `go` without a timeout. */
  waiting: string;
  /** Waiting for event `go-later` with an hour's timeout. */
  waitingWithTimeout: string;
  /** Its first attempt failed; its retry is due one second after. */
  retrying: string;
  completed: string;
  /** Failed for good (max_attempts 1). */
  failed: string;
  cancelled: string;
}

/** How the tasks of {@link populateEveryState} end once `go` and `go-later` are emitted. */
export function expectedEnds(tasks: EveryState): Record<string, { state: string; n: number }> {
  const ns: Record<keyof EveryState, number> = {
    pending: 1,
    pendingWithKey: 2,
    running: 3,
    sleeping: 4,
    waiting: 5,
    waitingWithTimeout: 6,
    retrying: 7,
    completed: 8,
    failed: 9,
    cancelled: 10,
  };
  return Object.fromEntries(
    (Object.keys(ns) as (keyof EveryState)[]).map((key) => [
      tasks[key],
      { state: key === 'failed' ? 'failed' : key === 'cancelled' ? 'cancelled' : 'completed', n: ns[key] },
    ]),
  );
}

/**
 * Spawns `job` tasks into `queue` and moves each into one state of {@link EveryState}, with the
 * contract's functions only (as absurdctl, a Python worker or absurd-sdk would), writing the
 * checkpoints a worker of {@link runJob} would have written. Also emits event `ready` (nobody
 * waits for it). Real time: the sleeping task wakes, the retry falls due and the running task's
 * lease expires within two seconds.
 */
export async function populateEveryState(db: Queryable, queue: string): Promise<EveryState> {
  const json = (value: unknown) => JSON.stringify(value);
  const spawn = async (params: JobParams, options: Record<string, unknown> = {}) => {
    const { rows } = await db.query<{ task_id: string }>('select task_id from absurd.spawn_task($1, $2, $3, $4)', [
      queue,
      'job',
      json(params),
      json({ max_attempts: 3, ...options }),
    ]);
    return rows[0]!.task_id;
  };
  /** Claims the one due task (the one just spawned) and runs its first step. */
  const claim = async (taskId: string, n: number, claimTimeout = 60) => {
    const { rows } = await db.query<{ run_id: string; task_id: string }>(
      'select run_id, task_id from absurd.claim_task($1, $2, $3, $4)',
      [queue, 'vanished-worker', claimTimeout, 1],
    );
    if (rows[0]?.task_id !== taskId) throw new Error(`expected to claim ${taskId}, got ${JSON.stringify(rows)}`);
    await db.query('select absurd.set_task_checkpoint_state($1, $2, $3, $4, $5, $6)', [
      queue,
      taskId,
      'double',
      json(n * 2),
      rows[0].run_id,
      claimTimeout,
    ]);
    return rows[0].run_id;
  };

  const tasks = {} as EveryState;

  tasks.completed = await spawn({ n: 8 });
  const completedRun = await claim(tasks.completed, 8);
  await db.query('select absurd.complete_run($1, $2, $3)', [queue, completedRun, json({ n: 8, doubled: 16, event: null })]);

  tasks.failed = await spawn({ n: 9 }, { max_attempts: 1 });
  const failedRun = await claim(tasks.failed, 9);
  await db.query('select absurd.fail_run($1, $2, $3, $4)', [
    queue,
    failedRun,
    json({ name: 'Error', message: 'planned failure', stack: null }),
    null,
  ]);

  for (const [key, n, event, timeout] of [
    ['waiting', 5, 'go', null],
    ['waitingWithTimeout', 6, 'go-later', 3600],
  ] as const) {
    tasks[key] = await spawn({ n, event, ...(timeout === null ? {} : { timeout }) });
    const run = await claim(tasks[key], n);
    const { rows } = await db.query<{ should_suspend: boolean }>(
      'select should_suspend from absurd.await_event($1, $2, $3, $4, $5, $6)',
      [queue, tasks[key], run, `$awaitEvent:${event}`, event, timeout],
    );
    if (!rows[0]?.should_suspend) throw new Error(`task ${key} did not suspend on ${event}`);
  }

  tasks.sleeping = await spawn({ n: 4, sleep: 2 });
  const sleepingRun = await claim(tasks.sleeping, 4);
  const { rows: wake } = await db.query<{ at: Date }>(`select absurd.current_time() + interval '2 seconds' as at`);
  await db.query('select absurd.set_task_checkpoint_state($1, $2, $3, $4, $5, $6)', [
    queue,
    tasks.sleeping,
    'nap',
    json(wake[0]!.at.toISOString()),
    sleepingRun,
    60,
  ]);
  await db.query('select absurd.schedule_run($1, $2, $3)', [queue, sleepingRun, wake[0]!.at]);

  tasks.retrying = await spawn({ n: 7 }, { retry_strategy: { kind: 'fixed', base_seconds: 1 } });
  const retryingRun = await claim(tasks.retrying, 7);
  await db.query('select absurd.fail_run($1, $2, $3, $4)', [
    queue,
    retryingRun,
    json({ name: 'Error', message: 'first attempt failed', stack: null }),
    null,
  ]);

  tasks.cancelled = await spawn({ n: 10 });
  await db.query('select absurd.cancel_task($1, $2)', [queue, tasks.cancelled]);

  // Last of the claims: the retry above falls due only a second later.
  tasks.running = await spawn({ n: 3 });
  await claim(tasks.running, 3, 1);

  tasks.pending = await spawn({ n: 1 });
  tasks.pendingWithKey = await spawn({ n: 2 }, { idempotency_key: `key-of-${queue}` });

  await db.query('select absurd.emit_event($1, $2, $3)', [queue, 'ready', json({ ok: true })]);
  return tasks;
}

// ---------------------------------------------------------------------------------------------
// Rows

/**
 * Every row of every table of schema `absurd` (absurd-kit's tracking table left out), as sorted
 * JSON text per table; rows of partitioned queues appear under their partitions. `queues` limits
 * the per-queue tables to those queues (absurd.queues itself is always included).
 */
export async function snapshotRows(db: Queryable, queues?: readonly string[]): Promise<Record<string, string[]>> {
  const { rows: tables } = await db.query<{ name: string; parent: string | null }>(`
    select c.relname as name, p.relname as parent
      from pg_class c
      left join pg_inherits i on i.inhrelid = c.oid
      left join pg_class p on p.oid = i.inhparent
     where c.relnamespace = 'absurd'::regnamespace and c.relkind = 'r' and c.relname not like 'kit\\_%'
     order by c.relname`);
  const wanted = queues && new Set(queues.flatMap((q) => ['t', 'r', 'c', 'e', 'w', 'i'].map((p) => `${p}_${q}`)));
  const snapshot: Record<string, string[]> = {};
  for (const { name, parent } of tables) {
    if (wanted && name !== 'queues' && !wanted.has(parent ?? name)) continue;
    // Absurd's columns only: absurd-kit's own columns of the runs (r_<q>.priority, migration 000016;
    // r_<q>.cancel_deadline and r_<q>.superseded, 000028) are added by adoption and dropped when going back; the rows'
    // contract data must not change.
    const { rows: columns } = await db.query<{ name: string }>(
      `select a.attname as name from pg_attribute a
        where a.attrelid = $1::regclass and a.attnum > 0 and not a.attisdropped order by a.attnum`,
      [`absurd.${pg.escapeIdentifier(name)}`],
    );
    const runs = (parent ?? name).startsWith('r_');
    const kept = columns.map((c) => c.name).filter((column) => !(runs && ['priority', 'cancel_deadline', 'superseded'].includes(column)));
    const { rows } = await db.query<{ row: string }>(
      `select row(${kept.map((column) => `t.${pg.escapeIdentifier(column)}`).join(', ')})::text as row
         from absurd.${pg.escapeIdentifier(name)} t order by 1`,
    );
    snapshot[name] = rows.map((r) => r.row);
  }
  return snapshot;
}
