/**
 * Shared fixtures of the runtime tests: unique (and awkward) queue names, pools and clients that
 * are closed after the file, a connection wrapper that records every statement, a recording log,
 * readers of the per-queue tables, and a clock that moves the database's `absurd.fake_now` and
 * `Date.now` together.
 */
import pg from 'pg';
import { afterAll, afterEach, beforeAll, vi } from 'vitest';
import { Absurd, type AbsurdOptions, type ClaimedTask, type Log, type Queryable } from '../../src/index.js';
import type { TestDatabase } from '../support/db.js';

let queueCounter = 0;

/** A queue name unique within the file. */
export function uniqueQueue(base = 'q'): string {
  queueCounter += 1;
  return `${base}_${queueCounter}`;
}

/** A unique queue name with quotes, spaces and upper case (every identifier must be quoted). */
export function awkwardQueue(): string {
  queueCounter += 1;
  return `Bad "Q" it's ${queueCounter}`;
}

/** A unique queue name of exactly 57 UTF-8 bytes (the longest allowed), with multi-byte characters. */
export function longestQueue(): string {
  queueCounter += 1;
  const prefix = `ü${queueCounter}_`;
  let name = prefix;
  while (Buffer.byteLength(name, 'utf8') + 2 <= 57) name += 'é';
  while (Buffer.byteLength(name, 'utf8') < 57) name += 'x';
  return name;
}

/** `absurd."<prefix>_<queue>"`, quoted for any queue name. */
export function table(prefix: 't' | 'r' | 'c' | 'e' | 'w' | 'i', queue: string): string {
  return `absurd."${`${prefix}_${queue}`.replace(/"/g, '""')}"`;
}

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
  target?: Queryable,
  before?: (query: RecordedQuery) => void,
): { con: Queryable; queries: RecordedQuery[]; texts(): string[] } {
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
  return { con: con as unknown as Queryable, queries, texts: () => queries.map((q) => q.text) };
}

/** A log that keeps every line. */
export function recordingLog(): { log: Log; lines: { level: keyof Log; args: unknown[] }[]; messages(level: keyof Log): string[] } {
  const lines: { level: keyof Log; args: unknown[] }[] = [];
  const at = (level: keyof Log) => (...args: unknown[]) => {
    lines.push({ level, args });
  };
  return {
    log: { log: at('log'), info: at('info'), warn: at('warn'), error: at('error') },
    lines,
    messages: (level) => lines.filter((l) => l.level === level).map((l) => l.args.map(String).join(' ')),
  };
}

/** Pools and clients of one test file, ended after it. */
export function useRuntime(db: TestDatabase) {
  const pools: pg.Pool[] = [];
  const apps: Absurd[] = [];
  beforeAll(() => {
    // The same teardown race as below, for the file's shared pool.
    db.pool.on('error', () => undefined);
  });
  afterAll(async () => {
    for (const app of apps) await app.close().catch(() => undefined);
    for (const pool of pools) await pool.end().catch(() => undefined);
  });
  const newPool = (max = 5) => {
    // idleTimeoutMillis 0: a single-connection pool keeps its session (and its fake time).
    const pool = new pg.Pool({ connectionString: db.url, max, idleTimeoutMillis: 0 });
    // pool.end() does not wait for the sockets to close, so dropping the database right after can
    // still reach an idle connection; without a listener that error would crash the test run.
    pool.on('error', () => undefined);
    pools.push(pool);
    return pool;
  };
  return {
    newPool,
    /** A client on its own pool (or on `db`), closed after the file; the log is recorded. */
    newApp(options: AbsurdOptions & { queueName: string }) {
      const recorded = recordingLog();
      const app = new Absurd({ db: options.db ?? newPool(), log: recorded.log, ...options });
      apps.push(app);
      return Object.assign(app, { recorded });
    },
  };
}

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
    async set(pool: Queryable, at: string | number, options: { dbOnly?: boolean } = {}) {
      const ms = typeof at === 'number' ? at : Date.parse(at);
      await pool.query(`select set_config('absurd.fake_now', $1, false)`, [new Date(ms).toISOString()]);
      if (!options.dbOnly) {
        nowMs = ms;
        if (!vi.isMockFunction(Date.now)) vi.spyOn(Date, 'now').mockImplementation(() => nowMs);
      }
    },
    async advance(pool: Queryable, seconds: number) {
      await clock.set(pool, nowMs + seconds * 1000);
    },
  };
  return clock;
}

/** Claims once and executes what was claimed; returns the claimed runs. */
export async function workOnce(app: Absurd, claimTimeout = 120, batchSize = 1): Promise<ClaimedTask[]> {
  const tasks = await app.claimTasks({ batchSize, claimTimeout });
  for (const task of tasks) await app.executeTask(task, claimTimeout);
  return tasks;
}

/** The task row. */
export async function taskRow(con: Queryable, queue: string, taskId: string): Promise<Record<string, any>> {
  const { rows } = await con.query(`select * from ${table('t', queue)} where task_id = $1`, [taskId]);
  return rows[0] as Record<string, any>;
}

/** The task's runs, oldest attempt first. */
export async function runRows(con: Queryable, queue: string, taskId: string): Promise<Record<string, any>[]> {
  const { rows } = await con.query(`select * from ${table('r', queue)} where task_id = $1 order by attempt, run_id`, [
    taskId,
  ]);
  return rows as Record<string, any>[];
}

/** The task's checkpoints as `{ name: state }`. */
export async function checkpoints(con: Queryable, queue: string, taskId: string): Promise<Record<string, unknown>> {
  const { rows } = await con.query(
    `select checkpoint_name, state from ${table('c', queue)} where task_id = $1 order by checkpoint_name`,
    [taskId],
  );
  return Object.fromEntries((rows as { checkpoint_name: string; state: unknown }[]).map((r) => [r.checkpoint_name, r.state]));
}

/** A promise with its resolve function exposed. */
export function deferred<T = void>(): { promise: Promise<T>; resolve(value: T): void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The deferral jitter of an unknown task, computed independently: FNV-1a over the char codes. */
export function fnv1aJitter(runId: string): number {
  let h = 2166136261;
  for (const ch of runId) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 16777619);
  }
  return Math.abs(h) % 16;
}
