/**
 * `npm run bench`: absurd-kit on its schema against the `absurd-sdk` npm package on Absurd's own
 * schema, with pg-boss and graphile-worker as references for the no-op figure, on one Postgres
 * server, in the same run, interleaved, each run on a fresh database. The server writes with
 * production durability (fsync and synchronous_commit on) unless `--fast` says otherwise. Prints
 * a table with ratios, the pgbench ceiling of the server, the settings, and a final
 * machine-readable `RATIOS …` line; writes everything to bench/results/latest.json.
 *
 *   npm run bench                              full run (about a quarter of an hour on 2 cores)
 *   npm run bench -- --fast                    the embedded server with fsync off (as npm start)
 *   npm run bench -- --quick                   small smoke configuration (a minute or two)
 *   npm run bench -- --only noop,pickup        some figures only (repeatable)
 *   npm run bench -- --reps 5 --out file.json
 *   npm run bench -- --only step3 --profile bench/results/profiles   CPU profiles of the children
 *
 * Server: ABSURD_BENCH_DATABASE_URL (any database on it; the role needs CREATEDB), otherwise the
 * embedded PostgreSQL (data under .absurd/bench-pgdata).
 *
 * The children import `absurd-kit` as users do, from its compiled `dist/`: `npm run bench` builds
 * it first, so that the figures are those of the sources as they are (`tsx bench/run.ts` alone
 * measures whatever was built last).
 */
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { prepareChildren } from './child-process.js';
import { BenchDatabases, provideServer, type Durability, type TemplateKind } from './databases.js';
import { runFigure, type FigureOutcome, type Row, type RunRecord } from './figures.js';
import { runTracingFigure } from './figure-tracing.js';
import { runPgbench, type PgbenchResult } from './pgbench.js';
import { computeRatios, formatPgbench, formatTable, ratiosLine, summariseRow } from './report.js';
import {
  FIGURES,
  FULL,
  QUICK,
  REFERENCE_OPTIONS,
  WORKER_OPTIONS,
  WORKER_POOL_SIZE,
  type FigureId,
  type Scale,
  type Side,
} from './settings.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const USAGE = `usage: npm run bench -- [--fast] [--quick] [--only <figure>[,<figure>…]] [--reps <n>] [--out <file>] [--profile <dir>]

figures: ${FIGURES.join(', ')}
  --fast    the embedded server with fsync, synchronous_commit and full_page_writes off (default:
            on, as in production; a server of ABSURD_BENCH_DATABASE_URL keeps its own settings)
  --quick   small smoke configuration (1 run per figure and side, a few hundred tasks)
  --only    run only these figures (repeatable)
  --reps    runs per figure and side (default 3, --quick 1)
  --out     where to write the JSON results (default bench/results/latest.json)
  --profile write a V8 CPU profile of every child process under <dir>/<side>-<role>/
            (open in Chrome DevTools; profiling slows both sides, so read its figures alone)

Server: ABSURD_BENCH_DATABASE_URL, otherwise the embedded PostgreSQL in .absurd/bench-pgdata.`;

interface Options {
  durability: Durability;
  scale: Scale;
  figures: FigureId[];
  out: string;
  profileDir: string | undefined;
}

function parseOptions(argv: string[]): Options | string {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      fast: { type: 'boolean', default: false },
      only: { type: 'string', multiple: true },
      reps: { type: 'string' },
      out: { type: 'string' },
      profile: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return USAGE;
  let scale = values.quick ? QUICK : FULL;
  if (values.reps !== undefined) {
    const reps = Number(values.reps);
    if (!Number.isInteger(reps) || reps < 1) throw new Error(`--reps must be a positive integer, got "${values.reps}"`);
    scale = { ...scale, reps };
  }
  const only = (values.only ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  for (const figure of only) {
    if (!(FIGURES as readonly string[]).includes(figure)) throw new Error(`unknown figure "${figure}" (figures: ${FIGURES.join(', ')})`);
  }
  const figures = only.length ? FIGURES.filter((f) => only.includes(f)) : [...FIGURES];
  return {
    durability: values.fast ? 'fast' : 'durable',
    scale,
    figures,
    out: path.resolve(values.out ?? path.join(ROOT, 'bench', 'results', 'latest.json')),
    profileDir: values.profile,
  };
}

const TEMPLATE_OF: Record<Exclude<FigureId, 'pgbench'>, TemplateKind> = {
  'spawn-seq': 'empty',
  'spawn-pool': 'empty',
  'spawn-bulk': 'empty',
  noop: 'noop',
  step3: 'steps',
  pickup: 'empty',
  event: 'empty',
  validation: 'steps',
  history: 'history',
  tracing: 'steps',
  'list-indexes': 'noop',
  'flow-control': 'noop',
};

async function main(argv: string[]): Promise<number> {
  let options: Options | string;
  try {
    options = parseOptions(argv);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (typeof options === 'string') {
    process.stdout.write(`${options}\n`);
    return 0;
  }
  const { durability, scale, figures, out, profileDir } = options;
  const started = Date.now();
  const progress = (line: string) => {
    const seconds = Math.round((Date.now() - started) / 1000);
    process.stderr.write(`[${String(seconds).padStart(4)} s] ${line}\n`);
  };
  const loadAtStart = loadavg();

  const server = await provideServer(progress, durability);
  const dbs = new BenchDatabases(server.adminUrl, scale);
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    process.stderr.write('interrupted: dropping the bench databases\n');
    void dbs
      .dropAll()
      .catch(() => undefined)
      .then(() => server.stop())
      .finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const outcomes: { id: FigureId; outcome: FigureOutcome }[] = [];
  const errors: { figure: FigureId; message: string }[] = [];
  let pgbench: PgbenchResult | undefined;
  let serverSettings: Record<string, string> = {};
  let engine = '';
  let childDescription = '';
  try {
    serverSettings = await dbs.serverSettings();
    engine = await dbs.engineDescription();
    const launcher = await prepareChildren({ profileDir });
    childDescription = launcher.description + (profileDir ? `, CPU profiles in ${profileDir}` : '');
    const measured = figures.filter((f): f is Exclude<FigureId, 'pgbench'> => f !== 'pgbench');
    for (const kind of new Set(measured.map((f) => TEMPLATE_OF[f]))) {
      for (const engine of ['kit', 'absurd'] as const) {
        progress(`building template database "${kind}" on ${engine === 'kit' ? "absurd-kit's" : "Absurd's"} schema`);
        await dbs.template(kind, engine);
      }
    }
    for (const id of measured) {
      try {
        const figureContext = { scale, launcher, dbs, progress };
        const outcome = id === 'tracing' ? await runTracingFigure(figureContext) : await runFigure(figureContext, id);
        outcomes.push({ id, outcome });
      } catch (error) {
        const message = (error as Error).stack ?? String(error);
        progress(`${id} failed: ${message}`);
        errors.push({ figure: id, message });
      }
    }
    if (figures.includes('pgbench')) {
      try {
        pgbench = await runPgbench(dbs, scale.pgbenchSeconds, progress);
      } catch (error) {
        errors.push({ figure: 'pgbench', message: (error as Error).message });
      }
    }
  } finally {
    await dbs.dropAll().catch(() => undefined);
    await server.stop().catch(() => undefined);
  }

  const rows: Row[] = outcomes.flatMap(({ outcome }) => outcome.rows);
  const rss: Record<Side, number[]> = { ours: [], peer: [] };
  for (const { outcome } of outcomes) {
    rss.ours.push(...outcome.rss.ours);
    rss.peer.push(...outcome.rss.peer);
  }
  if (rss.ours.length || rss.peer.length) {
    rows.push({
      key: 'rss',
      label: 'worker peak RSS per process (end-to-end runs)',
      unit: 'MB',
      better: 'lower',
      columns: ['ours', 'peer'],
      values: [rss.ours.map((kb) => kb / 1024), rss.peer.map((kb) => kb / 1024)],
      compare: 'ratio',
    });
  }
  const summaries = rows.map(summariseRow);
  const noop = summaries.find((r) => r.key === 'noop_tps');
  const history = summaries.find((r) => r.key === 'history_tps');
  if (noop && history) {
    summaries.splice(summaries.indexOf(history) + 1, 0, summariseRow({
      key: 'history_keep',
      label: '  with history / empty (no-op tasks/s)',
      unit: '×',
      better: 'higher',
      columns: ['ours', 'peer'],
      values: [[history.a.median / noop.a.median], [history.b.median / noop.b.median]],
      compare: 'ratio',
    }));
  }
  const ratios = computeRatios(summaries);
  const loadAtEnd = loadavg();
  const peerVersion = readPeerVersion();
  const settings = {
    server: `${server.description}, PostgreSQL ${serverSettings.server_version ?? '?'}`,
    serverSettings,
    durability: durabilityLine(durability, serverSettings, server.description),
    engine: `ours: sql/absurd.sql (up to migration ${engine}); peer: Absurd's own schema (test/fixtures/absurd-main.sql); each installed in one query into a template; every run on a fresh clone`,
    processes: `${childDescription}; one process per worker and per producer, started fresh for every run`,
    ours: `absurd-kit startWorker(${JSON.stringify(WORKER_OPTIONS.ours)}) — defaults: batchSize = concurrency, pollInterval 0.25 s, claimTimeout 120 s, LISTEN on; pg.Pool max ${WORKER_POOL_SIZE} (+1 LISTEN connection)`,
    peer: `absurd-sdk ${peerVersion} startWorker(${JSON.stringify(WORKER_OPTIONS.peer)}); pg.Pool max ${WORKER_POOL_SIZE}`,
    pgboss: `pg-boss ${readVersion('pg-boss')} work(${JSON.stringify({ batchSize: REFERENCE_OPTIONS.pgboss.batchSize, burstWhenBatchFull: REFERENCE_OPTIONS.pgboss.burstWhenBatchFull })}), pool max ${REFERENCE_OPTIONS.pgboss.poolMax}, schedule and supervise off; its own database; time from first started_on to last completed_on`,
    graphile: `graphile-worker ${readVersion('graphile-worker')} run(${JSON.stringify(REFERENCE_OPTIONS.graphile)}); its own database; time from the first handler start to an empty job table (it deletes completed jobs)`,
    scale: `${scale.name}: ${scale.reps} run(s) per figure and side, interleaved ours/peer (no-op: ours/peer/pg-boss/graphile-worker); spawns ${scale.spawns} (+${scale.spawnWarmup} warm-up), ${scale.spawnCallers} callers over a pool of ${scale.spawnCallers}, spawnMany in batches of ${scale.bulkBatch}; ${scale.e2eTasks} pre-spawned tasks; history ${scale.historyTasks} completed tasks; ${scale.latencySamples} pick-up samples and ${scale.eventSamples} event samples (+${scale.latencyWarmup} warm-up each), 5–55 ms apart (spread over the peer's poll interval)`,
    timing: 'end-to-end: first claim (started_at) to last completed_at in the database; latencies: wall clock (performance.timeOrigin + performance.now()) of the processes and clock_timestamp() of the server on one machine; spawn: monotonic clock of the producer',
    machine: `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}; load average ${loadAtStart.map((l) => l.toFixed(2)).join('/')} at start, ${loadAtEnd.map((l) => l.toFixed(2)).join('/')} at end`,
  };

  const lines: string[] = [];
  lines.push(
    '',
    `absurd-kit (ours) vs absurd-sdk ${peerVersion} on Absurd's schema (peer), pg-boss and graphile-worker (no-op figure): median (min–max) of ${scale.reps} run(s); ↓ = lower is better`,
    `durability: ${settings.durability}`,
    '',
  );
  lines.push(formatTable(summaries));
  if (pgbench) lines.push('', formatPgbench(pgbench));
  lines.push('', 'settings:');
  for (const [key, value] of Object.entries(settings)) {
    if (typeof value === 'string') lines.push(`  ${key.padEnd(10)} ${value}`);
  }
  lines.push(
    `  ${'server cfg'.padEnd(10)} ${Object.entries(serverSettings)
      .filter(([k]) => k !== 'server_version')
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
  );
  if (errors.length) {
    lines.push('', 'errors:');
    for (const error of errors) lines.push(`  ${error.figure}: ${error.message.split('\n')[0]}`);
  }
  lines.push('', ratiosLine(ratios));
  process.stdout.write(`${lines.join('\n')}\n`);

  const runs: RunRecord[] = outcomes.flatMap(({ outcome }) => outcome.runs);
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(
    out,
    `${JSON.stringify(
      {
        startedAt: new Date(started).toISOString(),
        durationSeconds: Math.round((Date.now() - started) / 1000),
        figures,
        settings,
        rows: summaries,
        runs,
        pgbench: pgbench ?? null,
        ratios: Object.fromEntries(Object.entries(ratios).map(([k, v]) => [k, Number.isFinite(v) ? v : null])),
        errors,
      },
      null,
      2,
    )}\n`,
  );
  progress(`results written to ${path.relative(process.cwd(), out) || out}`);
  return errors.length ? 1 : 0;
}

function readPeerVersion(): string {
  return readVersion('absurd-sdk');
}

function readVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}

/** What the server's settings mean for the figures, and a warning when they are not what was asked. */
function durabilityLine(asked: Durability, settings: Record<string, string>, server: string): string {
  const actual = `fsync=${settings.fsync ?? '?'} synchronous_commit=${settings.synchronous_commit ?? '?'} full_page_writes=${settings.full_page_writes ?? '?'}`;
  const durable = settings.fsync === 'on' && settings.synchronous_commit !== 'off';
  const wanted = asked === 'durable' ? durable : !durable;
  const what = durable ? 'production durability: every commit waits for its WAL flush' : 'fast mode: commits do not wait for the disk';
  return `${actual} (${what})${wanted ? '' : ` — NOT what ${asked === 'durable' ? 'the default' : '--fast'} asks for: ${server} keeps its own settings`}`;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
