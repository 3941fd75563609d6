/**
 * Shared fixtures of the runtime and contract tests: what differs when the template holds Absurd's
 * schema (`ABSURD_TEST_SCHEMA=absurd`), clients and pools closed after the file, a client on one
 * session at a fake time, a connection that records every statement, a recording
 * log, a clock that moves the database's `absurd.fake_now` and `Date.now` together, gates and
 * polling, spawns with plain SQL, and fixture processes.
 *
 * Queue names, `table` and the task, run and event readers are the SQL tests' own (re-exported here).
 */
import { spawn as spawnProcess, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, afterEach, expect, vi } from 'vitest';
import { Absurd, type AbsurdOptions, type ClaimedTask, type Queryable as ClientConnection } from '../../packages/absurd-kit/src/index.js';
import type { TestDatabase } from '../support/db.js';
import { testSchemaFromEnvironment } from '../support/schema.js';
import { table, type Queryable, type TaskRow } from '../sql/helpers.js';

export { awkwardQueueNames, eventRow, queueName, runRows, table, taskRow, utf8QueueName57 } from '../sql/helpers.js';
export type { EventRow, RunRow, TaskRow } from '../sql/helpers.js';

// ---------------------------------------------------------------------------------------------
// The schema under test

/**
 * True when the test template holds Absurd's schema without absurd-kit's additions
 * (`ABSURD_TEST_SCHEMA=absurd`): clients then run on Absurd's standard functions. Tests of what
 * only absurd-kit's additions do skip there, saying why in their names.
 */
export const onAbsurdSchema = testSchemaFromEnvironment() === 'absurd';

/**
 * The INFO line a client logs once when its engine lacks absurd-kit's additions
 * (packages/absurd-kit/src/engine-features.ts).
 */
export const ENGINE_NOTE = /^schema "absurd" (was installed by Absurd|lacks some of absurd-kit's functions)/;

/**
 * The poll interval of a worker that is to be woken rather than poll: an hour on absurd-kit's
 * schema (notifications, and the engine's next due time, wake it); on Absurd's schema, which has
 * neither, a tenth of a second, as an absurd-sdk worker would poll.
 */
export const WAKE_UP_POLL = onAbsurdSchema ? 0.1 : 3600;

/**
 * How a run that fails without retry (invalid stored data, an invalid result) leaves its task with
 * attempts left. absurd-kit's engine fails the task (kit_fail_task): one failed run, the task
 * `failed` with its reason. Absurd's contract has no such call: there the run fails with its reason
 * and the task is cancelled in the same statement, which cancels the retry fail_run scheduled
 * (attempt 2, never started); the task's snapshot then carries no failure.
 */
export const withoutRetry = onAbsurdSchema
  ? {
      taskState: 'cancelled',
      runStates: ['failed', 'cancelled'],
      snapshot: (_failure: unknown) => ({ state: 'cancelled' }),
      logSuffix: '— failed without retry; its task is cancelled',
    }
  : {
      taskState: 'failed',
      runStates: ['failed'],
      snapshot: (failure: unknown) => ({ state: 'failed', failure }),
      logSuffix: '— failed without retry',
    };

/**
 * Expects the task to have ended with an attempt that failed without retry (see
 * {@link withoutRetry}), after runs in the states `earlier`: no further attempt ran. Returns that
 * attempt's failure reason.
 */
export async function expectFailedWithoutRetry(
  con: Queryable,
  queue: string,
  taskId: string,
  earlier: string[] = [],
): Promise<Record<string, unknown>> {
  const { rows: tasks } = await con.query<TaskRow>(`select * from ${table('t', queue)} where task_id = $1`, [taskId]);
  expect(tasks[0]?.state).toBe(withoutRetry.taskState);
  const { rows: runs } = await con.query<{ state: string; started_at: Date | null; failure_reason: Record<string, unknown> }>(
    `select state, started_at, failure_reason from ${table('r', queue)} where task_id = $1 order by attempt, run_id`,
    [taskId],
  );
  expect(runs.map((run) => run.state)).toEqual([...earlier, ...withoutRetry.runStates]);
  expect(tasks[0]?.attempts).toBe(runs.length);
  const never = runs.slice(earlier.length + 1);
  expect(never.map((run) => run.started_at)).toEqual(never.map(() => null));
  return runs[earlier.length]!.failure_reason;
}

// ---------------------------------------------------------------------------------------------
// Recording

/** One statement as sent by the runtime. */
export interface RecordedQuery {
  text: string;
  values: unknown[] | undefined;
}

/**
 * A connection that records every statement. With a target it forwards to it (and `before` may
 * throw to make a statement fail); without one it answers every statement with no rows.
 */
export function recordingConnection(
  target?: ClientConnection,
  before?: (query: RecordedQuery) => void,
): { con: ClientConnection; queries: RecordedQuery[]; texts(): string[] } {
  const queries: RecordedQuery[] = [];
  const con = {
    query(text: string, values?: unknown[]) {
      const query = { text, values };
      queries.push(query);
      try {
        before?.(query);
      } catch (error) {
        return Promise.reject(error);
      }
      if (!target) return Promise.resolve({ rows: [], rowCount: 0 });
      return (target as { query(text: string, values?: unknown[]): Promise<unknown> }).query(text, values);
    },
  };
  return { con: con as unknown as ClientConnection, queries, texts: () => queries.map((q) => q.text) };
}

/** What a client logs to (the `log` option). */
type Log = NonNullable<AbsurdOptions['log']>;

/** A log that keeps every line (instead of printing it) so that tests can look at warnings and errors. */
export interface RecordingLog extends Log {
  readonly lines: { level: keyof Log; args: unknown[] }[];
  /** With `setAsideEngineNote`: the {@link ENGINE_NOTE} lines, kept out of `lines`. */
  readonly engineNotes: string[];
  /** The lines of one level, each with its arguments joined by spaces. */
  messages(level: keyof Log): string[];
}

/**
 * A log that records. With `setAsideEngineNote`, the one INFO line about an engine without
 * absurd-kit's additions goes to `engineNotes` instead of `lines`, so that tests of the other lines
 * read the same on either schema.
 */
export function recordingLog(options: { setAsideEngineNote?: boolean } = {}): RecordingLog {
  const lines: RecordingLog['lines'] = [];
  const engineNotes: string[] = [];
  const at = (level: keyof Log) => (...args: unknown[]) => {
    const text = args.map(String).join(' ');
    if (options.setAsideEngineNote && level === 'info' && ENGINE_NOTE.test(text)) engineNotes.push(text);
    else lines.push({ level, args });
  };
  return {
    lines,
    engineNotes,
    log: at('log'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    messages: (level) => lines.filter((l) => l.level === level).map((l) => l.args.map(String).join(' ')),
  };
}

// ---------------------------------------------------------------------------------------------
// Clients

/** What `clients.app` takes: the client's options, and whether to create its queue. */
export type TestAppOptions = Omit<AbsurdOptions, 'queueName' | 'log'> & {
  /** Create the client's queue before returning it (default true). */
  createQueue?: boolean;
};

/** A client made by `useClients`, with the log it writes to. */
export type TestApp = Absurd & { readonly recorded: RecordingLog };

/** What `useClients` returns. */
export interface Clients {
  /** A pool of its own on the test database (default max 4), ended after the file. */
  pool(config?: pg.PoolConfig): pg.Pool;
  /**
   * A client on `queueName`, closed after the file; on a pool of its own unless `options.db` says
   * otherwise. Creates the queue unless `options.createQueue` is false. Logs are recorded, not
   * printed.
   */
  app(queueName: string, options?: TestAppOptions): Promise<TestApp>;
  /** Remembers a child process so that it is killed if a test leaves it behind. */
  track(child: ChildProcess): ChildProcess;
}

/**
 * Builds clients and pools on the file's database and closes them after the file.
 *
 * @example
 * const clients = useClients(db);
 * const app = await clients.app(queueName('orders'));
 */
export function useClients(db: TestDatabase): Clients {
  const apps: Absurd[] = [];
  const pools: pg.Pool[] = [];
  const children: ChildProcess[] = [];
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const app of apps) await app.close({ timeout: 1 }).catch(() => undefined);
    for (const pool of pools) await pool.end().catch(() => undefined);
  });
  const pool = (config: pg.PoolConfig = {}): pg.Pool => {
    const created = new pg.Pool({ connectionString: db.url, max: 4, ...config });
    // pool.end() does not wait for the sockets to close, so dropping the database right after can
    // still reach an idle connection; without a listener that error would crash the test run.
    created.on('error', () => undefined);
    pools.push(created);
    return created;
  };
  return {
    pool,
    async app(queueName, options = {}) {
      const { createQueue = true, db: connection, ...rest } = options;
      const recorded = recordingLog({ setAsideEngineNote: onAbsurdSchema });
      const app = Object.assign(new Absurd({ db: connection ?? pool(), queueName, log: recorded, ...rest }), { recorded });
      apps.push(app);
      if (createQueue) await app.createQueue();
      return app;
    },
    track(child) {
      children.push(child);
      return child;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Time

/** What `useFakeClock` returns. */
export type FakeClock = ReturnType<typeof useFakeClock>;

/**
 * Moves the database clock (`absurd.fake_now` on a single-connection pool) and `Date.now`
 * together; `Date.now` is restored after each test.
 */
export function useFakeClock() {
  let nowMs = 0;
  afterEach(() => {
    vi.restoreAllMocks();
  });
  const clock = {
    get nowMs() {
      return nowMs;
    },
    get iso() {
      return new Date(nowMs).toISOString();
    },
    /** Sets the database clock of `pool` (which must have max 1) and, unless `dbOnly`, `Date.now`. */
    async set(pool: ClientConnection, at: string | number, options: { dbOnly?: boolean } = {}) {
      const ms = typeof at === 'number' ? at : Date.parse(at);
      await pool.query(`select set_config('absurd.fake_now', $1, false)`, [new Date(ms).toISOString()]);
      if (!options.dbOnly) {
        nowMs = ms;
        if (!vi.isMockFunction(Date.now)) vi.spyOn(Date, 'now').mockImplementation(() => nowMs);
      }
    },
    async advance(pool: ClientConnection, seconds: number) {
      await clock.set(pool, nowMs + seconds * 1000);
    },
  };
  return clock;
}

/** What `appAtFakeTime` takes besides the queue and the time. */
export interface AppAtFakeTimeOptions {
  /** Move `Date.now` to `at` as well (default: only the database clock). */
  moveDateNow?: boolean;
  /** Record the client's statements (default true); off, the client uses the pool itself. */
  record?: boolean;
  /** Called before each recorded statement is sent; throwing makes the statement fail. */
  before?: (query: RecordedQuery) => void;
}

/**
 * A client with its queue on a single-connection pool whose database clock stands at `at`. The
 * pool keeps its one session (idle connections are never closed), so the fake time holds for every
 * statement of the client and for the test's own reads through `pool`.
 *
 * @example
 * const { app, pool, queries } = await appAtFakeTime(clients, clock, queueName('sleep'), T0);
 */
export async function appAtFakeTime(
  clients: Clients,
  clock: FakeClock,
  queue: string,
  at: string | number,
  options: AppAtFakeTimeOptions = {},
): Promise<{ app: TestApp; pool: pg.Pool; queries: RecordedQuery[] }> {
  const { moveDateNow = false, record = true, before } = options;
  const pool = clients.pool({ max: 1, idleTimeoutMillis: 0 });
  const recorder = record ? recordingConnection(pool, before) : undefined;
  const app = await clients.app(queue, { db: recorder?.con ?? pool });
  await clock.set(pool, at, { dbOnly: !moveDateNow });
  return { app, pool, queries: recorder?.queries ?? [] };
}

// ---------------------------------------------------------------------------------------------
// Running and waiting

/** Claims once and executes what was claimed; returns the claimed runs. */
export async function workOnce(app: Absurd, claimTimeout = 120, batchSize = 1): Promise<ClaimedTask[]> {
  const tasks = await app.claimTasks({ batchSize, claimTimeout });
  for (const task of tasks) await app.executeTask(task, claimTimeout);
  return tasks;
}

/** A promise with its resolve function, to hold a handler until the test lets it go. */
export interface Gate<T = void> {
  promise: Promise<T>;
  open: (value: T) => void;
}

export function gate<T = void>(): Gate<T> {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns something other than undefined/false; fails after `timeoutMs`. */
export async function waitFor<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMs = 10_000, intervalMs = 25, what = 'condition' }: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(intervalMs);
  }
}

/** Waits until the task exists and is in `state`, and returns its row. */
export async function waitForTaskState(con: Queryable, queue: string, taskId: string, state: string, timeoutMs = 10_000) {
  return waitFor(
    async () => {
      // Not `taskRow`: a task that is not there yet is waited for, not an error.
      const { rows } = await con.query<TaskRow>(`select * from ${table('t', queue)} where task_id = $1`, [taskId]);
      return rows[0]?.state === state ? rows[0] : undefined;
    },
    { timeoutMs, what: `task ${taskId} to be ${state}` },
  );
}

/**
 * Records the claim calls of a client by replacing its `claimTasks` instance method (the worker loop
 * must call it through the instance). A call is recorded when it starts; `claimed` is filled in
 * when it returns.
 */
export function recordClaims(app: Absurd) {
  const calls: { options: { batchSize?: number; claimTimeout?: number; workerId?: string }; claimed?: number }[] = [];
  const original = app.claimTasks.bind(app);
  app.claimTasks = async (options = {}) => {
    const call: (typeof calls)[number] = { options };
    calls.push(call);
    const tasks = await original(options);
    call.claimed = tasks.length;
    return tasks;
  };
  return calls;
}

// ---------------------------------------------------------------------------------------------
// Plain SQL

/** The task's committed checkpoints as `{ name: state }`. */
export async function checkpoints(con: Queryable, queue: string, taskId: string): Promise<Record<string, unknown>> {
  const { rows } = await con.query<{ checkpoint_name: string; state: unknown }>(
    `select checkpoint_name, state from ${table('c', queue)} where task_id = $1 order by checkpoint_name`,
    [taskId],
  );
  return Object.fromEntries(rows.map((r) => [r.checkpoint_name, r.state]));
}

/** Spawns with `absurd.spawn_task` directly: no client, no validation, no notification (psql, pg_cron, another language). */
export async function rawSpawn(
  con: Queryable,
  queue: string,
  taskName: string,
  params: unknown = {},
  options: unknown = {},
): Promise<{ task_id: string; run_id: string }> {
  const { rows } = await con.query<{ task_id: string; run_id: string }>(
    'select task_id, run_id from absurd.spawn_task($1, $2, $3, $4)',
    [queue, taskName, JSON.stringify(params), JSON.stringify(options)],
  );
  const row = rows[0];
  if (!row) throw new Error('spawn_task returned no row');
  return row;
}

/** The deferral jitter of an unknown task, computed independently: FNV-1a over the char codes. */
export function fnv1aJitter(runId: string): number {
  let h = 2166136261;
  for (const ch of runId) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 16777619);
  }
  return Math.abs(h) % 16;
}

// ---------------------------------------------------------------------------------------------
// Fixture processes

const fixturesDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');

/**
 * Starts `fixtures/<name>.ts` in a separate Node process (through tsx) and resolves once it has
 * printed `ready`. Its other output is collected in `output()`.
 */
export async function startFixture(name: string, env: Record<string, string>) {
  const child = spawnProcess(process.execPath, ['--import', 'tsx', path.join(fixturesDir, `${name}.ts`)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void exited.then((result) => {
    exit = result;
  });
  await waitFor(
    () => {
      if (exit) throw new Error(`fixture ${name} exited early (${JSON.stringify(exit)}): ${out}`);
      return /^ready$/m.test(out);
    },
    { timeoutMs: 20_000, what: `fixture ${name} to start` },
  );
  return { child, exited, output: () => out };
}
