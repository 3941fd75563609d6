import { spawn as spawnProcess, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll } from 'vitest';
import { Absurd, type AbsurdOptions, type Log } from '../../src/index.js';
import type { TestDatabase } from '../support/db.js';
import { table, type RunRow, type TaskRow } from '../sql/helpers.js';

export { awkwardQueueNames, queueName, table, utf8QueueName57 } from '../sql/helpers.js';
export type { RunRow, TaskRow };

/** A log that keeps every line (instead of printing it) so tests can look at warnings and errors. */
export interface RecordingLog extends Log {
  readonly lines: { level: 'log' | 'info' | 'warn' | 'error'; args: unknown[] }[];
}

export function recordingLog(): RecordingLog {
  const lines: RecordingLog['lines'] = [];
  return {
    lines,
    log: (...args) => lines.push({ level: 'log', args }),
    info: (...args) => lines.push({ level: 'info', args }),
    warn: (...args) => lines.push({ level: 'warn', args }),
    error: (...args) => lines.push({ level: 'error', args }),
  };
}

/**
 * Builds clients on the file's database and closes them (and their pools) after the file.
 *
 * @example
 * const clients = useClients(db);
 * const app = await clients.app('orders');
 */
export function useClients(db: TestDatabase) {
  const apps: Absurd[] = [];
  const pools: pg.Pool[] = [];
  const children: ChildProcess[] = [];
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const app of apps) await app.close({ timeout: 1 }).catch(() => undefined);
    for (const pool of pools) await pool.end().catch(() => undefined);
  });
  return {
    /** A pool of its own on the test database (ended after the file). */
    pool(config: pg.PoolConfig = {}): pg.Pool {
      const pool = new pg.Pool({ connectionString: db.url, max: 4, ...config });
      pool.on('error', () => undefined);
      pools.push(pool);
      return pool;
    },
    /** A client on `queueName` with its own pool; creates the queue. Logs are recorded, not printed. */
    async app(queueName: string, options: Omit<AbsurdOptions, 'db' | 'queueName'> & { pool?: pg.Pool } = {}): Promise<Absurd> {
      const { pool, ...rest } = options;
      const app = new Absurd({ db: pool ?? this.pool(), queueName, log: recordingLog(), ...rest });
      apps.push(app);
      await app.createQueue();
      return app;
    },
    /** Remembers a child process so that it is killed if a test leaves it behind. */
    track(child: ChildProcess): ChildProcess {
      children.push(child);
      return child;
    },
  };
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

/** The task row from `t_<q>` (undefined when missing). */
export async function taskRow(pool: pg.Pool, queue: string, taskId: string): Promise<TaskRow | undefined> {
  const { rows } = await pool.query<TaskRow>(`select * from ${table('t', queue)} where task_id = $1`, [taskId]);
  return rows[0];
}

/** The task's runs from `r_<q>`, by attempt. */
export async function runRows(pool: pg.Pool, queue: string, taskId: string): Promise<RunRow[]> {
  const { rows } = await pool.query<RunRow>(`select * from ${table('r', queue)} where task_id = $1 order by attempt, run_id`, [
    taskId,
  ]);
  return rows;
}

/** The task's committed checkpoints, by name. */
export async function checkpoints(pool: pg.Pool, queue: string, taskId: string): Promise<Record<string, unknown>> {
  const { rows } = await pool.query<{ checkpoint_name: string; state: unknown }>(
    `select checkpoint_name, state from ${table('c', queue)} where task_id = $1 order by checkpoint_name`,
    [taskId],
  );
  return Object.fromEntries(rows.map((r) => [r.checkpoint_name, r.state]));
}

/** Waits until the task reaches `state` and returns its row. */
export async function waitForTaskState(pool: pg.Pool, queue: string, taskId: string, state: string, timeoutMs = 10_000) {
  return waitFor(
    async () => {
      const row = await taskRow(pool, queue, taskId);
      return row?.state === state ? row : undefined;
    },
    { timeoutMs, what: `task ${taskId} to be ${state}` },
  );
}

/** Spawns a task with plain SQL: no notification, the way pg_cron or psql would. */
export async function rawSpawn(pool: pg.Pool, queue: string, taskName: string, params: unknown = {}, options: unknown = {}) {
  const { rows } = await pool.query<{ task_id: string; run_id: string }>(
    'select task_id, run_id from absurd.spawn_task($1, $2, $3, $4)',
    [queue, taskName, JSON.stringify(params), JSON.stringify(options)],
  );
  const row = rows[0];
  if (!row) throw new Error('spawn_task returned no row');
  return row;
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
