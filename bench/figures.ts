/**
 * The measurements. Each figure runs `reps` times per side, the sides interleaved (ours, peer,
 * ours, peer, …), every run on a fresh database and with fresh child processes.
 *
 * Where the time comes from:
 * - spawn figures: the producing process's monotonic clock around the timed spawns;
 * - end-to-end figures: the database — from the earliest `started_at` (first claim) to the latest
 *   `completed_at` of the measured tasks, all of which must be `completed`;
 * - pick-up latency: handler start (worker process) minus the return of `spawn` (producer process);
 * - event latency: the run's `completed_at` (database) minus the return of `emitEvent` (producer).
 * Processes and server share one machine and its wall clock; the processes stamp with
 * `performance.timeOrigin + performance.now()` (sub-millisecond), the database with
 * `clock_timestamp()` (microseconds, through `absurd.current_time()`).
 */
import { BenchChild, type ChildLauncher } from './child-process.js';
import { ident, sleep, type BenchDatabase, type BenchDatabases, type TemplateKind } from './databases.js';
import type { ChildInit, Notice } from './protocol.js';
import {
  BENCH_QUEUE,
  TASK,
  WORKER_POOL_SIZE,
  sampleGapMs,
  wakeEventName,
  type FigureId,
  type Scale,
  type Side,
} from './settings.js';
import { percentile } from './stats.js';

/** What every figure needs. */
export interface FigureContext {
  readonly scale: Scale;
  readonly launcher: ChildLauncher;
  readonly dbs: BenchDatabases;
  progress(line: string): void;
}

/** One row of the results: per-rep values of two columns. */
export interface Row {
  readonly key: string;
  readonly label: string;
  readonly unit: string;
  readonly better: 'higher' | 'lower';
  /** Column names: the two sides, or (validation) ours typed and ours untyped. */
  readonly columns: readonly [string, string];
  readonly values: readonly [number[], number[]];
  /** How to compare the columns: a/b, or the time overhead of a over b in percent. */
  readonly compare: 'ratio' | 'overhead';
}

/** Per-run details kept in the JSON output. */
export type RunRecord = Record<string, unknown> & { figure: FigureId; side: string; rep: number };

export interface FigureOutcome {
  readonly rows: Row[];
  readonly runs: RunRecord[];
  /** Peak RSS (kB) of each worker process, per side. */
  readonly rss: Record<Side, number[]>;
}

const SIDES: readonly Side[] = ['ours', 'peer'];
/** A per-queue table of the bench queue, e.g. `t('r')` for its runs. */
const t = (prefix: 't' | 'r') => `absurd.${ident(`${prefix}_${BENCH_QUEUE}`)}`;

/** Options of {@link runFigure}. */
export interface FigureOptions {
  /** With `step3`: also run the typed variant and report the validation figure from the same loop. */
  withValidation?: boolean;
}

/** Runs one figure. */
export async function runFigure(
  ctx: FigureContext,
  id: Exclude<FigureId, 'pgbench' | 'tracing'>,
  options: FigureOptions = {},
): Promise<FigureOutcome> {
  const runs: RunRecord[] = [];
  const rss: Record<Side, number[]> = { ours: [], peer: [] };
  const reps = ctx.scale.reps;
  const label = (side: string, rep: number) => `${id} ${side} ${rep}/${reps}`;

  const perSide = async <T>(measure: (side: Side, rep: number) => Promise<T>): Promise<Record<Side, T[]>> => {
    const out: Record<Side, T[]> = { ours: [], peer: [] };
    for (let rep = 1; rep <= reps; rep++) {
      for (const side of SIDES) {
        ctx.progress(label(side, rep));
        out[side].push(await measure(side, rep));
      }
    }
    return out;
  };

  switch (id) {
    case 'spawn-seq':
    case 'spawn-pool': {
      const callers = id === 'spawn-seq' ? 1 : ctx.scale.spawnCallers;
      const values = await perSide(async (side, rep) => {
        const perSecond = await measureSpawns(ctx, side, callers);
        runs.push({ figure: id, side, rep, spawnsPerSecond: perSecond });
        return perSecond;
      });
      const row: Row =
        id === 'spawn-seq'
          ? sideRow('spawn_seq', 'spawn/s, one connection', 'spawns/s', 'higher', values)
          : sideRow('spawn_pool', `spawn/s, ${callers} concurrent callers`, 'spawns/s', 'higher', values);
      return { rows: [row], runs, rss };
    }
    case 'noop':
    case 'history': {
      const kind: TemplateKind = id === 'noop' ? 'noop' : 'history';
      const values = await perSide(async (side, rep) => {
        const run = await measureEndToEnd(ctx, side, kind, 'untyped');
        runs.push({ figure: id, side, rep, ...run });
        rss[side].push(run.peakRssKb);
        return run.tasksPerSecond;
      });
      const row =
        id === 'noop'
          ? sideRow('noop_tps', 'end-to-end no-op tasks/s', 'tasks/s', 'higher', values)
          : sideRow(
              'history_tps',
              `no-op tasks/s, ${ctx.scale.historyTasks.toLocaleString('en-US')} completed retained`,
              'tasks/s',
              'higher',
              values,
            );
      return { rows: [row], runs, rss };
    }
    case 'step3':
    case 'validation': {
      // One loop for both figures when both run: ours untyped, peer, ours typed, … — the untyped
      // runs of ours are the 3-step figure and the baseline of the validation overhead.
      type Variant = { column: 'ours' | 'peer' | 'typed'; name: string; side: Side; variant: 'typed' | 'untyped' };
      const untyped: Variant = { column: 'ours', name: id === 'step3' ? 'ours' : 'ours untyped', side: 'ours', variant: 'untyped' };
      const peer: Variant = { column: 'peer', name: 'peer', side: 'peer', variant: 'untyped' };
      const typed: Variant = { column: 'typed', name: 'ours typed', side: 'ours', variant: 'typed' };
      const variants = id === 'validation' ? [typed, untyped] : options.withValidation ? [untyped, peer, typed] : [untyped, peer];
      const values = { ours: [] as number[], peer: [] as number[], typed: [] as number[] };
      for (let rep = 1; rep <= reps; rep++) {
        for (const { column, name, side, variant } of variants) {
          ctx.progress(label(name, rep));
          const run = await measureEndToEnd(ctx, side, 'steps', variant);
          runs.push({ figure: column === 'typed' || id === 'validation' ? 'validation' : 'step3', side: name, rep, ...run });
          if (id === 'step3' && column !== 'typed') rss[side].push(run.peakRssKb);
          values[column].push(run.tasksPerSecond);
        }
      }
      const rows: Row[] = [];
      if (id === 'step3') rows.push(sideRow('step3_tps', 'end-to-end 3-step tasks/s', 'tasks/s', 'higher', values));
      if (id === 'validation' || options.withValidation) {
        rows.push({
          key: 'validation',
          label: 'validation overhead, 3-step tasks/s',
          unit: 'tasks/s',
          better: 'higher',
          columns: ['ours typed', 'ours untyped'],
          values: [values.typed, values.ours],
          compare: 'overhead',
        });
      }
      return { rows, runs, rss };
    }
    case 'pickup': {
      const values = await perSide(async (side, rep) => {
        const latencies = await measurePickup(ctx, side);
        const run = { p50: percentile(latencies, 50), p95: percentile(latencies, 95), p99: percentile(latencies, 99) };
        runs.push({ figure: id, side, rep, ...run, samples: latencies.map(round3) });
        return run;
      });
      const pick = (p: 'p50' | 'p95' | 'p99') => ({ ours: values.ours.map((v) => v[p]), peer: values.peer.map((v) => v[p]) });
      return {
        rows: [
          sideRow('pickup_p50', 'pick-up latency p50', 'ms', 'lower', pick('p50')),
          sideRow('pickup_p95', 'pick-up latency p95', 'ms', 'lower', pick('p95')),
          sideRow('pickup_p99', 'pick-up latency p99', 'ms', 'lower', pick('p99')),
        ],
        runs,
        rss,
      };
    }
    case 'event': {
      const values = await perSide(async (side, rep) => {
        const { complete, resume } = await measureEventWake(ctx, side);
        const run = {
          p50: percentile(complete, 50),
          p95: percentile(complete, 95),
          resumeP50: percentile(resume, 50),
        };
        runs.push({ figure: id, side, rep, ...run, samples: complete.map(round3), resumeSamples: resume.map(round3) });
        return run;
      });
      return {
        rows: [
          sideRow('event_p50', 'event wake latency p50 (emit → completed)', 'ms', 'lower', {
            ours: values.ours.map((v) => v.p50),
            peer: values.peer.map((v) => v.p50),
          }),
          sideRow('event_p95', 'event wake latency p95', 'ms', 'lower', {
            ours: values.ours.map((v) => v.p95),
            peer: values.peer.map((v) => v.p95),
          }),
        ],
        runs,
        rss,
      };
    }
  }
}

function sideRow(key: string, label: string, unit: string, better: 'higher' | 'lower', values: Record<Side, number[]>): Row {
  return { key, label, unit, better, columns: ['ours', 'peer'], values: [values.ours, values.peer], compare: 'ratio' };
}

/** Spawns/s of one producing process with `callers` concurrent callers over a pool of that size. */
async function measureSpawns(ctx: FigureContext, side: Side, callers: number): Promise<number> {
  const { spawns, spawnWarmup } = ctx.scale;
  return withDatabase(ctx, 'empty', `spawn_${side}`, async (db) => {
    const client = await startChild(ctx, { side, role: 'client', url: db.url, poolSize: callers });
    let seconds: number;
    try {
      ({ seconds } = await client.request<{ seconds: number }>(
        { op: 'spawnLoad', total: spawns, warmup: spawnWarmup, callers },
        600_000,
      ));
      await client.stop();
    } finally {
      client.kill();
    }
    const { rows } = await db.query<{ n: string }>(`select count(*) as n from ${t('t')} where task_name = $1`, [TASK.noop]);
    if (Number(rows[0]?.n) !== spawns + spawnWarmup) {
      throw new Error(`${side}: ${rows[0]?.n} tasks in the queue after ${spawns + spawnWarmup} spawns`);
    }
    return spawns / seconds;
  });
}

/** One worker process drains the template's pre-spawned tasks (`tracing`: with the OpenTelemetry SDK). */
export async function measureEndToEnd(
  ctx: FigureContext,
  side: Side,
  kind: TemplateKind,
  variant: 'typed' | 'untyped',
  options: { tracing?: boolean } = {},
): Promise<{ tasksPerSecond: number; seconds: number; peakRssKb: number }> {
  const n = ctx.scale.e2eTasks;
  const task = kind === 'steps' ? TASK.steps : TASK.noop;
  return withDatabase(ctx, kind, `${kind}_${side}_${variant}${options.tracing ? '_traced' : ''}`, async (db) => {
    const worker = await startChild(ctx, { side, role: 'worker', url: db.url, poolSize: WORKER_POOL_SIZE, variant, ...options });
    try {
      const timeoutMs = Math.max(120_000, n * 100);
      const drained = worker.waitFor((m) => m.notice === 'drained', timeoutMs, `for ${n} ${task} handlers to return`);
      await worker.request({ op: 'startWorker', expected: n });
      await drained.catch(async (error: unknown) => {
        throw new Error(`${(error as Error).message}; task states: ${await stateSummary(db, task)}`);
      });
      await waitUntil(
        async () => (await countTasks(db, task, 'completed')) === n,
        30_000,
        async () => `all ${n} ${task} tasks completed (states: ${await stateSummary(db, task)})`,
      );
      const { rows } = await db.query<{ first: string; last: string }>(
        `select extract(epoch from min(r.started_at)) * 1000 as first, extract(epoch from max(r.completed_at)) * 1000 as last
           from ${t('t')} t join ${t('r')} r on r.task_id = t.task_id
          where t.task_name = $1 and r.state = 'completed'`,
        [task],
      );
      const seconds = (Number(rows[0]?.last) - Number(rows[0]?.first)) / 1000;
      const { peakRssKb } = await worker.stop();
      return { tasksPerSecond: n / seconds, seconds, peakRssKb };
    } finally {
      worker.kill();
    }
  });
}

/** Latencies (ms) from spawn return to handler start, one task at a time on an idle worker. */
async function measurePickup(ctx: FigureContext, side: Side): Promise<number[]> {
  const { latencySamples, latencyWarmup } = ctx.scale;
  return withDatabase(ctx, 'empty', `pickup_${side}`, async (db) => {
    const worker = await startChild(ctx, { side, role: 'worker', url: db.url, poolSize: WORKER_POOL_SIZE, reportTasks: true });
    const client = await startChild(ctx, { side, role: 'client', url: db.url, poolSize: 1 }).catch((error: unknown) => {
      worker.kill();
      throw error;
    });
    try {
      await worker.request({ op: 'startWorker', expected: 0 });
      await sleep(500); // its first claim found nothing: the worker is idle
      const latencies: number[] = [];
      for (let i = 0; i < latencyWarmup + latencySamples; i++) {
        const started = worker.waitFor(
          (m): m is Extract<Notice, { notice: 'start' }> => m.notice === 'start' && m.i === i,
          10_000,
          `for task ${i} to start`,
        );
        const spawned = await client.request<{ at: number }>({ op: 'spawnOne', task: TASK.noop, i });
        const start = await started;
        if (i >= latencyWarmup) latencies.push(start.at - spawned.at);
        await sleep(sampleGapMs(i));
      }
      await client.stop();
      await worker.stop();
      return latencies;
    } finally {
      client.kill();
      worker.kill();
    }
  });
}

/**
 * Latencies (ms) from `emitEvent` returning to the waiting task's completion (`complete`, from the
 * database) and to its wait returning in the handler (`resume`, worker clock), one event at a time.
 */
async function measureEventWake(ctx: FigureContext, side: Side): Promise<{ complete: number[]; resume: number[] }> {
  const warmup = ctx.scale.latencyWarmup;
  const total = warmup + ctx.scale.eventSamples;
  return withDatabase(ctx, 'empty', `event_${side}`, async (db) => {
    const worker = await startChild(ctx, { side, role: 'worker', url: db.url, poolSize: WORKER_POOL_SIZE, reportTasks: true });
    const client = await startChild(ctx, { side, role: 'client', url: db.url, poolSize: 1 }).catch((error: unknown) => {
      worker.kill();
      throw error;
    });
    try {
      await worker.request({ op: 'startWorker', expected: 0 });
      for (let i = 0; i < total; i++) await client.request({ op: 'spawnOne', task: TASK.event, i });
      await waitUntil(
        async () => (await countTasks(db, TASK.event, 'sleeping')) === total,
        60_000,
        async () => `all ${total} event tasks waiting (states: ${await stateSummary(db, TASK.event)})`,
      );
      await sleep(500); // idle again after suspending them all
      const emitted: number[] = [];
      const resumed: number[] = [];
      for (let i = 0; i < total; i++) {
        const wait = worker.waitFor(
          (m): m is Extract<Notice, { notice: 'resumed' }> => m.notice === 'resumed' && m.i === i,
          10_000,
          `for task ${i} to resume`,
        );
        const { at } = await client.request<{ at: number }>({ op: 'emit', event: wakeEventName(i), i });
        emitted[i] = at;
        resumed[i] = (await wait).at;
        await sleep(sampleGapMs(i));
      }
      await waitUntil(
        async () => (await countTasks(db, TASK.event, 'completed')) === total,
        30_000,
        async () => `all ${total} event tasks completed (states: ${await stateSummary(db, TASK.event)})`,
      );
      const { rows } = await db.query<{ i: number; ms: string }>(
        `select (t.params->>'i')::int as i, extract(epoch from max(r.completed_at)) * 1000 as ms
           from ${t('t')} t join ${t('r')} r on r.task_id = t.task_id
          where t.task_name = $1 and r.state = 'completed'
          group by 1`,
        [TASK.event],
      );
      const completedAt = new Map(rows.map((row) => [row.i, Number(row.ms)]));
      const complete: number[] = [];
      const resume: number[] = [];
      for (let i = warmup; i < total; i++) {
        complete.push((completedAt.get(i) ?? NaN) - emitted[i]!);
        resume.push(resumed[i]! - emitted[i]!);
      }
      await client.stop();
      await worker.stop();
      return { complete, resume };
    } finally {
      client.kill();
      worker.kill();
    }
  });
}

async function startChild(
  ctx: FigureContext,
  init: Omit<ChildInit, 'variant' | 'reportTasks'> & Partial<Pick<ChildInit, 'variant' | 'reportTasks'>>,
): Promise<BenchChild> {
  return BenchChild.start(ctx.launcher, { variant: 'untyped', reportTasks: false, ...init });
}

async function withDatabase<T>(
  ctx: FigureContext,
  kind: TemplateKind,
  label: string,
  fn: (db: BenchDatabase) => Promise<T>,
): Promise<T> {
  const db = await ctx.dbs.clone(kind, label);
  try {
    return await fn(db);
  } finally {
    await db.drop().catch(() => undefined);
  }
}

async function countTasks(db: BenchDatabase, task: string, state: string): Promise<number> {
  const { rows } = await db.query<{ n: string }>(`select count(*) as n from ${t('t')} where task_name = $1 and state = $2`, [
    task,
    state,
  ]);
  return Number(rows[0]?.n);
}

async function stateSummary(db: BenchDatabase, task: string): Promise<string> {
  const { rows } = await db.query<{ state: string; n: string }>(
    `select state, count(*) as n from ${t('t')} where task_name = $1 group by state order by state`,
    [task],
  );
  return rows.map((row) => `${row.state} ${row.n}`).join(', ') || 'none';
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: () => Promise<string>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${await what()}`);
    await sleep(20);
  }
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}
