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
import { ENGINE_OF, ident, sleep, type BenchDatabase, type BenchDatabases, type Engine, type TemplateKind } from './databases.js';
import { PostgresCpu } from './postgres-cpu.js';
import { wallClockMs, type ChildInit, type Notice } from './protocol.js';
import { buildReferenceTemplate, pendingJobs, pgBossSpan } from './references.js';
import {
  BENCH_QUEUE,
  REFERENCES,
  RUNNER_LABEL,
  TASK,
  WORKER_POOL_SIZE,
  sampleGapMs,
  wakeEventName,
  type FigureId,
  type Reference,
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
  /**
   * How to compare the columns: a/b of the medians, or the time overhead of a over b in percent —
   * with `paired`, the median of the ratios (overheads) of each repetition's pair (a[i] against
   * b[i], run one after the other), so that one disturbed run moves one pair only.
   */
  readonly compare: 'ratio' | 'overhead';
  readonly paired?: boolean;
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

/** Changes a fresh database before a measurement (run by the orchestrator, untimed). */
type Prepare = (db: BenchDatabase) => Promise<void>;

/**
 * Drops the task list's indexes of migration 000028 (r_<q>_lsi, t_<q>_nti; `absurd dashboard` and
 * `absurd tasks list` page with them) from the bench queue, to measure what they cost on writes.
 */
const withoutListIndexes: Prepare = async (db) => {
  for (const index of [`r_${BENCH_QUEUE}_lsi`, `t_${BENCH_QUEUE}_nti`]) await db.query(`drop index absurd.${ident(index)}`);
};

/**
 * Gives the bench queue a concurrency limit that never binds (migration 000016): at most one
 * running run per value of the params' `i`, which every task has its own of. Every claim then takes
 * the limited path (a bucket lock, a count and a slot per run; a release trigger on completion).
 */
const withNonBindingLimit: Prepare = async (db) => {
  await db.query(`select absurd.kit_set_limit($1, 'bench-per-i', null, '{i}', 1, null, null)`, [BENCH_QUEUE]);
};

/** Spreads the bench queue's pending runs over three priorities (-1, 0, 1): claims walk three levels. */
const withPriorities: Prepare = async (db) => {
  await db.query(`update ${t('r')} set priority = (abs(hashtext(run_id::text)) % 3) - 1 where state = 'pending'`);
};

/** Runs one figure. */
export async function runFigure(ctx: FigureContext, id: Exclude<FigureId, 'pgbench' | 'tracing'>): Promise<FigureOutcome> {
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
        const perSecond = await measureSpawns(ctx, side, callers, 1);
        runs.push({ figure: id, side, rep, spawnsPerSecond: perSecond });
        return perSecond;
      });
      const row: Row =
        id === 'spawn-seq'
          ? sideRow('spawn_seq', 'spawn/s, one connection', 'spawns/s', 'higher', values)
          : sideRow('spawn_pool', `spawn/s, ${callers} concurrent callers`, 'spawns/s', 'higher', values);
      return { rows: [row], runs, rss };
    }
    case 'spawn-bulk': {
      // Ours only (the peer has no bulk spawn): spawnMany against spawn, one connection each,
      // alternating which goes first.
      const batch = ctx.scale.bulkBatch;
      const bulk: number[] = [];
      const single: number[] = [];
      for (let rep = 1; rep <= reps; rep++) {
        for (const variant of rep % 2 === 1 ? (['bulk', 'single'] as const) : (['single', 'bulk'] as const)) {
          ctx.progress(label(`ours ${variant}`, rep));
          const perSecond = await measureSpawns(ctx, 'ours', 1, variant === 'bulk' ? batch : 1);
          runs.push({ figure: id, side: `ours ${variant}`, rep, spawnsPerSecond: perSecond });
          (variant === 'bulk' ? bulk : single).push(perSecond);
        }
      }
      return {
        rows: [
          {
            key: 'spawn_bulk',
            label: `spawn/s, spawnMany of ${batch} vs spawn, one connection`,
            unit: 'spawns/s',
            better: 'higher',
            columns: [`ours spawnMany`, 'ours spawn'],
            values: [bulk, single],
            compare: 'ratio',
          },
        ],
        runs,
        rss,
      };
    }
    case 'list-indexes': {
      // Ours only: with the dashboard's task-list indexes (as installed) and without them, one
      // right after the other in every repetition, alternating which goes first.
      const spawn = { with: [] as number[], without: [] as number[] };
      const noop = { with: [] as number[], without: [] as number[] };
      for (let rep = 1; rep <= reps; rep++) {
        for (const variant of rep % 2 === 1 ? (['with', 'without'] as const) : (['without', 'with'] as const)) {
          const prepare = variant === 'without' ? withoutListIndexes : undefined;
          ctx.progress(label(`ours ${variant} spawn`, rep));
          const perSecond = await measureSpawns(ctx, 'ours', ctx.scale.spawnCallers, 1, prepare);
          spawn[variant].push(perSecond);
          ctx.progress(label(`ours ${variant} no-op`, rep));
          const run = await measureEndToEnd(ctx, 'ours', 'noop', 'untyped', prepare);
          noop[variant].push(run.tasksPerSecond);
          runs.push({ figure: id, side: `ours ${variant}`, rep, spawnsPerSecond: perSecond, ...run });
        }
      }
      const row = (key: string, text: string, unit: string, values: { with: number[]; without: number[] }): Row => ({
        key,
        label: text,
        unit,
        better: 'higher',
        columns: ['with list indexes', 'without'],
        values: [values.with, values.without],
        compare: 'ratio',
        paired: true,
      });
      return {
        rows: [
          row('listidx_spawn', `spawn/s, ${ctx.scale.spawnCallers} callers: dashboard list indexes`, 'spawns/s', spawn),
          row('listidx_noop', 'no-op tasks/s: dashboard list indexes', 'tasks/s', noop),
        ],
        runs,
        rss,
      };
    }
    case 'flow-control': {
      // Ours only: no-op tasks on the queue as installed, with a non-binding limit, and with runs
      // over three priorities, one right after the other in every repetition (the order rotating).
      const tps = { plain: [] as number[], limit: [] as number[], priority: [] as number[] };
      const variants = ['plain', 'limit', 'priority'] as const;
      for (let rep = 1; rep <= reps; rep++) {
        for (let k = 0; k < variants.length; k++) {
          const variant = variants[(k + rep - 1) % variants.length]!;
          const prepare = variant === 'limit' ? withNonBindingLimit : variant === 'priority' ? withPriorities : undefined;
          ctx.progress(label(`ours ${variant}`, rep));
          const run = await measureEndToEnd(ctx, 'ours', 'noop', 'untyped', prepare);
          tps[variant].push(run.tasksPerSecond);
          runs.push({ figure: id, side: `ours ${variant}`, rep, ...run });
        }
      }
      const row = (key: string, text: string, variant: 'limit' | 'priority'): Row => ({
        key,
        label: text,
        unit: 'tasks/s',
        better: 'higher',
        columns: [variant === 'limit' ? 'with a limit' : 'three priorities', 'plain'],
        values: [tps[variant], tps.plain],
        compare: 'ratio',
        paired: true,
      });
      return {
        rows: [
          row('limits_noop', 'no-op tasks/s: a non-binding per-key concurrency limit', 'limit'),
          row('priority_noop', 'no-op tasks/s: runs over three priorities', 'priority'),
        ],
        runs,
        rss,
      };
    }
    case 'noop': {
      // Ours, the peer and the references in turn, each on a fresh database of its own.
      const tps: Record<Side | Reference, number[]> = { ours: [], peer: [], pgboss: [], graphile: [] };
      const cpu: Record<Side | Reference, number[]> = { ours: [], peer: [], pgboss: [], graphile: [] };
      for (let rep = 1; rep <= reps; rep++) {
        for (const side of SIDES) {
          ctx.progress(label(side, rep));
          const run = await measureEndToEnd(ctx, side, 'noop', 'untyped');
          runs.push({ figure: id, side, rep, ...run });
          rss[side].push(run.peakRssKb);
          tps[side].push(run.tasksPerSecond);
          cpu[side].push(run.cpuMsPerTask);
        }
        for (const reference of REFERENCES) {
          ctx.progress(label(RUNNER_LABEL[reference], rep));
          const run = await measureReference(ctx, reference);
          runs.push({ figure: id, side: reference, rep, ...run });
          tps[reference].push(run.tasksPerSecond);
          cpu[reference].push(run.cpuMsPerTask);
        }
      }
      const versus = (key: string, labelText: string, unit: string, better: 'higher' | 'lower', values: Record<string, number[]>, other: Side | Reference): Row => ({
        key,
        label: labelText,
        unit,
        better,
        columns: ['ours', RUNNER_LABEL[other]],
        values: [values.ours ?? [], values[other] ?? []],
        compare: 'ratio',
      });
      return {
        rows: [
          sideRow('noop_tps', 'end-to-end no-op tasks/s', 'tasks/s', 'higher', tps),
          versus('pgboss_noop', '  the same, against pg-boss (batch 16)', 'tasks/s', 'higher', tps, 'pgboss'),
          versus('graphile_noop', '  the same, against graphile-worker (local queue)', 'tasks/s', 'higher', tps, 'graphile'),
          sideRow('noop_cpu', 'Postgres CPU per no-op task', 'ms', 'lower', cpu),
          versus('pgboss_cpu', '  the same, against pg-boss', 'ms', 'lower', cpu, 'pgboss'),
          versus('graphile_cpu', '  the same, against graphile-worker', 'ms', 'lower', cpu, 'graphile'),
        ],
        runs,
        rss,
      };
    }
    case 'history': {
      const values = await perSide(async (side, rep) => {
        const run = await measureEndToEnd(ctx, side, 'history', 'untyped');
        runs.push({ figure: id, side, rep, ...run });
        rss[side].push(run.peakRssKb);
        return run.tasksPerSecond;
      });
      const row = sideRow(
        'history_tps',
        `no-op tasks/s, ${ctx.scale.historyTasks.toLocaleString('en-US')} completed retained`,
        'tasks/s',
        'higher',
        values,
      );
      return { rows: [row], runs, rss };
    }
    case 'step3': {
      const values = await perSide(async (side, rep) => {
        const run = await measureEndToEnd(ctx, side, 'steps', 'untyped');
        runs.push({ figure: id, side, rep, ...run });
        rss[side].push(run.peakRssKb);
        return run.tasksPerSecond;
      });
      return { rows: [sideRow('step3_tps', 'end-to-end 3-step tasks/s', 'tasks/s', 'higher', values)], runs, rss };
    }
    case 'validation': {
      // Ours only: the 3-step task registered by contract (typed) and by name (untyped), one right
      // after the other in every repetition, alternating which goes first; the overhead is the
      // median of the repetitions' own overheads. Throughput moves with everything else on the
      // machine; the worker's own CPU per task, the second row, is what validation adds to.
      const typed: number[] = [];
      const untyped: number[] = [];
      const cpu = { typed: [] as number[], untyped: [] as number[] };
      for (let rep = 1; rep <= reps; rep++) {
        for (const variant of rep % 2 === 1 ? (['typed', 'untyped'] as const) : (['untyped', 'typed'] as const)) {
          ctx.progress(label(`ours ${variant}`, rep));
          const run = await measureEndToEnd(ctx, 'ours', 'steps', variant);
          runs.push({ figure: id, side: `ours ${variant}`, rep, ...run });
          (variant === 'typed' ? typed : untyped).push(run.tasksPerSecond);
          cpu[variant].push(run.workerCpuMsPerTask);
        }
      }
      return {
        rows: [
          {
            key: 'validation',
            label: 'validation overhead, 3-step tasks/s (paired per repetition)',
            unit: 'tasks/s',
            better: 'higher',
            columns: ['ours typed', 'ours untyped'],
            values: [typed, untyped],
            compare: 'overhead',
            paired: true,
          },
          {
            key: 'validation_cpu',
            label: 'validation overhead, worker CPU per 3-step task (paired)',
            unit: 'ms',
            better: 'lower',
            columns: ['ours typed', 'ours untyped'],
            values: [cpu.typed, cpu.untyped],
            compare: 'overhead',
            paired: true,
          },
        ],
        runs,
        rss,
      };
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

/**
 * Spawns/s of one producing process with `callers` concurrent callers over a pool of that size;
 * with `batch` > 1, in `spawnMany` calls of `batch` tasks.
 */
async function measureSpawns(ctx: FigureContext, side: Side, callers: number, batch: number, prepare?: Prepare): Promise<number> {
  const { spawns, spawnWarmup } = ctx.scale;
  return withDatabase(ctx, 'empty', `spawn_${side}`, ENGINE_OF[side], async (db) => {
    await prepare?.(db);
    const client = await startChild(ctx, { side, role: 'client', url: db.url, poolSize: callers });
    let seconds: number;
    try {
      ({ seconds } = await client.request<{ seconds: number }>(
        { op: 'spawnLoad', total: spawns, warmup: spawnWarmup, callers, batch },
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
  prepare?: Prepare,
  options: { tracing?: boolean } = {},
): Promise<{ tasksPerSecond: number; seconds: number; peakRssKb: number; cpuMsPerTask: number; workerCpuMsPerTask: number }> {
  const n = ctx.scale.e2eTasks;
  const task = kind === 'steps' ? TASK.steps : TASK.noop;
  return withDatabase(ctx, kind, `${kind}_${side}_${variant}${options.tracing ? '_traced' : ''}`, ENGINE_OF[side], async (db) => {
    await prepare?.(db);
    const worker = await startChild(ctx, { side, role: 'worker', url: db.url, poolSize: WORKER_POOL_SIZE, variant, ...options });
    try {
      const timeoutMs = Math.max(120_000, n * 100);
      const drained = worker.waitFor(
        (m): m is Extract<Notice, { notice: 'drained' }> => m.notice === 'drained',
        timeoutMs,
        `for ${n} ${task} handlers to return`,
      );
      const cpu = await PostgresCpu.of(db);
      const cpuBefore = cpu.sample();
      await worker.request({ op: 'startWorker', expected: n });
      const { workerCpuMs } = await drained.catch(async (error: unknown) => {
        throw new Error(`${(error as Error).message}; task states: ${await stateSummary(db, task)}`);
      });
      await waitUntil(
        async () => (await countTasks(db, task, 'completed')) === n,
        30_000,
        async () => `all ${n} ${task} tasks completed (states: ${await stateSummary(db, task)})`,
      );
      const cpuMsPerTask = (cpu.sample() - cpuBefore) / n;
      const { rows } = await db.query<{ first: string; last: string }>(
        `select extract(epoch from min(r.started_at)) * 1000 as first, extract(epoch from max(r.completed_at)) * 1000 as last
           from ${t('t')} t join ${t('r')} r on r.task_id = t.task_id
          where t.task_name = $1 and r.state = 'completed'`,
        [task],
      );
      const seconds = (Number(rows[0]?.last) - Number(rows[0]?.first)) / 1000;
      const { peakRssKb } = await worker.stop();
      return { tasksPerSecond: n / seconds, seconds, peakRssKb, cpuMsPerTask, workerCpuMsPerTask: workerCpuMs / n };
    } finally {
      worker.kill();
    }
  });
}

/** One worker process of a reference works its template's no-op jobs (see references.ts). */
async function measureReference(
  ctx: FigureContext,
  reference: Reference,
): Promise<{ tasksPerSecond: number; seconds: number; peakRssKb: number; cpuMsPerTask: number }> {
  const n = ctx.scale.e2eTasks;
  const db = await ctx.dbs.cloneOther(reference, (url) => buildReferenceTemplate(reference, url, n), `noop_${reference}`);
  try {
    const worker = await startChild(ctx, { side: reference, role: 'worker', url: db.url, poolSize: 1 });
    try {
      const timeoutMs = Math.max(120_000, n * 100);
      const drained = worker.waitFor(
        (m): m is Extract<Notice, { notice: 'drained' }> => m.notice === 'drained',
        timeoutMs,
        `for ${n} ${reference} jobs to return`,
      );
      const cpu = await PostgresCpu.of(db);
      const cpuBefore = cpu.sample();
      await worker.request({ op: 'startWorker', expected: n });
      const { firstStartAt } = await drained;
      const query = <R extends Record<string, unknown>>(sql: string) => db.query<R>(sql);
      let emptyAt = NaN;
      const deadline = Date.now() + 30_000;
      for (;;) {
        if ((await pendingJobs(reference, query)) === 0) {
          emptyAt = wallClockMs();
          break;
        }
        if (Date.now() > deadline) throw new Error(`${reference}: jobs still pending 30 s after the last handler returned`);
        await sleep(2);
      }
      const cpuMsPerTask = (cpu.sample() - cpuBefore) / n;
      let seconds: number;
      if (reference === 'pgboss') {
        const span = await pgBossSpan(query);
        if (span.count !== n) throw new Error(`pg-boss: ${span.count} jobs completed, expected ${n}`);
        seconds = (span.last - span.first) / 1000;
      } else {
        seconds = (emptyAt - firstStartAt) / 1000;
      }
      const { peakRssKb } = await worker.stop();
      return { tasksPerSecond: n / seconds, seconds, peakRssKb, cpuMsPerTask };
    } finally {
      worker.kill();
    }
  } finally {
    await db.drop().catch(() => undefined);
  }
}

/** Latencies (ms) from spawn return to handler start, one task at a time on an idle worker. */
async function measurePickup(ctx: FigureContext, side: Side): Promise<number[]> {
  const { latencySamples, latencyWarmup } = ctx.scale;
  return withDatabase(ctx, 'empty', `pickup_${side}`, ENGINE_OF[side], async (db) => {
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
  return withDatabase(ctx, 'empty', `event_${side}`, ENGINE_OF[side], async (db) => {
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
  engine: Engine,
  fn: (db: BenchDatabase) => Promise<T>,
): Promise<T> {
  const db = await ctx.dbs.clone(kind, label, engine);
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
