/**
 * Fan-out against independent spawns, with production durability (fsync and synchronous_commit
 * on): a parent that spawns N children with one `ctx.spawnMany` (and, beside it, with a loop of
 * `ctx.spawn`) and collects them with `ctx.awaitAll`, and the same N tasks spawned one by one by a
 * client. One worker (concurrency 16) serves both, in this
 * process. Interleaved repetitions; prints medians (min–max), the children/s of each way and
 * their ratio, how many times the parent ran, and a machine-readable line:
 *
 *   FANOUT children=<N> fanout_per_s=<n> fanout_loop_per_s=<n> independent_per_s=<n>
 *          ratio=<spawnMany fan-out / independent> loop_ratio=<spawn-loop fan-out / independent> parent_executions=<n>
 *
 *   npx tsx bench/fan-out.ts                      N = 1000, 3 repetitions of each
 *   npx tsx bench/fan-out.ts --children 200 --reps 5
 *
 * Server: ABSURD_BENCH_DATABASE_URL (any database; the role needs CREATEDB), otherwise an embedded
 * PostgreSQL with its data in a temporary directory (started once, not timed).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { Absurd, migrate, type SpawnResult } from 'absurd-kit';
import { startPostgresServer } from '../packages/cli/src/database/postgres-server.js';
import { databaseUrlFor } from '../packages/cli/src/database/urls.js';

const { values } = parseArgs({ options: { children: { type: 'string', default: '1000' }, reps: { type: 'string', default: '3' } } });
const children = Number(values.children);
const reps = Number(values.reps);
const CONCURRENCY = 16;

interface Sample {
  seconds: number;
  executions: number;
}

async function withServer<T>(run: (url: string) => Promise<T>): Promise<T> {
  const configured = process.env.ABSURD_BENCH_DATABASE_URL;
  if (configured) return run(configured);
  const dataDir = await mkdtemp(path.join(tmpdir(), 'absurd-bench-fanout-'));
  const server = await startPostgresServer({
    dataDir,
    ephemeral: true,
    binaries: { kind: 'embedded' },
    settings: { fsync: 'on', synchronous_commit: 'on', full_page_writes: 'on' },
  });
  try {
    return await run(server.url);
  } finally {
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** A fresh database with the engine, for one repetition. */
async function freshDatabase(serverUrl: string, label: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `bench_fanout_${label}_${process.pid}_${Math.floor(performance.now())}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = databaseUrlFor(serverUrl, name);
  await migrate(url);
  return {
    url,
    async drop() {
      const client = new pg.Client({ connectionString: serverUrl });
      await client.connect();
      await client.query(`drop database if exists ${name} with (force)`);
      await client.end();
    },
  };
}

/** A client on its own pool, ended with the client. */
function quietApp(url: string): Absurd & { end(): Promise<void> } {
  const pool = new pg.Pool({ connectionString: url, max: CONCURRENCY + 4 });
  const app = new Absurd({ db: pool, queueName: 'bench', log: { log() {}, info() {}, warn: console.warn, error: console.error } });
  return Object.assign(app, {
    async end() {
      await app.close();
      await pool.end();
    },
  });
}

/** The parent spawns the children (one `ctx.spawn` each, or one `ctx.spawnMany`) and awaits them all; spawn of the parent → its completion. */
async function fanOut(url: string, how: 'spawn' | 'spawnMany'): Promise<Sample> {
  const app = quietApp(url);
  await app.createQueue();
  let executions = 0;
  app.registerTask({ name: 'child' }, async (params: { n: number }) => params.n);
  app.registerTask({ name: 'parent' }, async (_params, ctx) => {
    executions += 1;
    let handles: SpawnResult[];
    if (how === 'spawnMany') {
      handles = await ctx.spawnMany('child', Array.from({ length: children }, (_, n) => ({ n })));
    } else {
      handles = [];
      for (let n = 0; n < children; n++) handles.push(await ctx.spawn('child', { n }, { stepName: `child-${n}` }));
    }
    return (await ctx.awaitAll(handles)).length;
  });
  const worker = await app.startWorker({ concurrency: CONCURRENCY });
  try {
    const started = performance.now();
    const { taskID } = await app.spawn('parent', null);
    const snapshot = await app.awaitTaskResult(taskID, { timeout: 600 });
    const seconds = (performance.now() - started) / 1000;
    if (snapshot.state !== 'completed' || snapshot.result !== children) throw new Error(`fan-out ended ${JSON.stringify(snapshot)}`);
    return { seconds, executions };
  } finally {
    await worker.close();
    await app.end();
  }
}

/** The same number of tasks spawned one by one by a client; first spawn → last completion. */
async function independent(url: string): Promise<Sample> {
  const app = quietApp(url);
  await app.createQueue();
  app.registerTask({ name: 'child' }, async (params: { n: number }) => params.n);
  const worker = await app.startWorker({ concurrency: CONCURRENCY });
  try {
    const started = performance.now();
    const spawned: SpawnResult[] = [];
    for (let n = 0; n < children; n++) spawned.push(await app.spawn('child', { n }));
    for (const { taskID } of spawned) {
      const snapshot = await app.awaitTaskResult(taskID, { timeout: 600 });
      if (snapshot.state !== 'completed') throw new Error(`task ended ${JSON.stringify(snapshot)}`);
    }
    return { seconds: (performance.now() - started) / 1000, executions: 0 };
  } finally {
    await worker.close();
    await app.end();
  }
}

function median(samples: readonly number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

function line(label: string, samples: readonly Sample[]): string {
  const rates = samples.map((sample) => children / sample.seconds);
  return `${label.padEnd(24)} ${median(rates).toFixed(0).padStart(6)} children/s  (${Math.min(...rates).toFixed(0)}–${Math.max(...rates).toFixed(0)})`;
}

await withServer(async (serverUrl) => {
  const many: Sample[] = [];
  const loop: Sample[] = [];
  const solo: Sample[] = [];
  const ways = [
    ['fanout_many', (url: string) => fanOut(url, 'spawnMany'), many],
    ['fanout_loop', (url: string) => fanOut(url, 'spawn'), loop],
    ['independent', independent, solo],
  ] as const;
  for (let rep = 0; rep < reps; rep++) {
    for (const [label, measure, into] of ways) {
      const database = await freshDatabase(serverUrl, label);
      try {
        into.push(await measure(database.url));
      } finally {
        await database.drop();
      }
    }
  }
  const rate = (samples: readonly Sample[]) => median(samples.map((sample) => children / sample.seconds));
  const executions = (samples: readonly Sample[]) => samples.map((sample) => sample.executions).join(', ');
  process.stdout.write(`fan-out of ${children} children, ${reps} repetitions, fsync on, one worker of concurrency ${CONCURRENCY}\n`);
  process.stdout.write(`${line('ctx.spawnMany + awaitAll', many)}   parent ran ${executions(many)} times\n`);
  process.stdout.write(`${line('ctx.spawn loop + awaitAll', loop)}   parent ran ${executions(loop)} times\n`);
  process.stdout.write(`${line('independent spawns', solo)}\n`);
  process.stdout.write(
    `FANOUT children=${children} fanout_per_s=${rate(many).toFixed(0)} fanout_loop_per_s=${rate(loop).toFixed(0)} independent_per_s=${rate(solo).toFixed(0)} ratio=${(rate(many) / rate(solo)).toFixed(2)} loop_ratio=${(rate(loop) / rate(solo)).toFixed(2)} parent_executions=${median(many.map((sample) => sample.executions))}\n`,
  );
});
