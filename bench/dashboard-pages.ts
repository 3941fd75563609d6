/**
 * How long the dashboard's reads take with a million tasks retained (docs/dashboard.md quotes it).
 *
 *   ABSURD_DATABASE_URL=… npx tsx bench/dashboard-pages.ts [--tasks 1000000] [--reps 15] [--without-list-indexes]
 *
 * Makes a queue `dashboard_bench` (dropped and made again) holding `--tasks` tasks spread over 30
 * days, each with one run — 90% completed, 5% failed, 3% cancelled, 1% pending, 0.5% sleeping,
 * 0.5% running; five task names, and a sixth, `import-v1`, on the oldest 0.1% only; params with
 * a customer id — then times every kind of page the
 * dashboard reads, through the same code (readTaskPage, readQueueOverview, readTaskDetails), and
 * prints the median and the slowest of `--reps` runs of each. `--without-list-indexes` drops the
 * task list's indexes of migration 000028 first, r_<q>_lsi (state, task_id) on the runs,
 * t_<q>_cli (task_id) over the cancelled tasks and t_<q>_nti (task_name, task_id), to see what
 * they are for.
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { ContractSchemas } from '../packages/cli/src/dashboard/contract-schemas.js';
import { readQueueOverview } from '../packages/cli/src/dashboard/queue-overview.js';
import { readTaskDetails } from '../packages/cli/src/dashboard/task-details.js';
import { readTaskPage, type TaskFilter } from '../packages/cli/src/dashboard/task-page.js';

const { values } = parseArgs({
  options: {
    tasks: { type: 'string', default: '1000000' },
    reps: { type: 'string', default: '15' },
    keep: { type: 'boolean', default: false },
    'without-list-indexes': { type: 'boolean', default: false },
  },
});
const TASKS = Number(values.tasks);
const REPS = Number(values.reps);
const QUEUE = 'dashboard_bench';
const url = process.env.ABSURD_DATABASE_URL;
if (!url) throw new Error('set ABSURD_DATABASE_URL (for example from `absurd dev`)');

const db = new pg.Client({ connectionString: url });
await db.connect();

async function seed(): Promise<void> {
  const started = Date.now();
  await db.query('select absurd.drop_queue($1)', [QUEUE]);
  await db.query('select absurd.create_queue($1)', [QUEUE]);
  // Task ids are UUIDv7s over the last 30 days (the first 48 bits: milliseconds), made in SQL.
  await db.query(
    `insert into absurd.t_dashboard_bench (task_id, task_name, params, enqueue_at, state, attempts, last_attempt_run, max_attempts,
                                           cancelled_at)
     select id, name, params, at, state, 1, run_id, 5, case when state = 'cancelled' then at + interval '2 seconds' end
       from (select i,
                    now() - interval '30 days' + (i::double precision / $1) * interval '30 days' as at,
                    case when i <= $1 / 1000 then 'import-v1' else (array['charge', 'ship', 'notify', 'refund', 'audit'])[1 + i % 5] end as name,
                    jsonb_build_object('orderId', 'o-' || i, 'customer', jsonb_build_object('id', 'c-' || (i % 50000))) as params,
                    case when i % 200 = 7 then 'sleeping' when i % 200 = 8 then 'running'
                         when i % 100 = 1 then 'pending' when i % 100 < 4 then 'cancelled'
                         when i % 100 < 9 then 'failed' else 'completed' end as state,
                    md5(i::text) as h
               from generate_series(1, $1) i) s,
            lateral (select (lpad(to_hex((extract(epoch from s.at) * 1000)::bigint), 12, '0') || '7' || substr(h, 1, 3) || '8' || substr(h, 4, 15))::uuid as id,
                            (lpad(to_hex((extract(epoch from s.at) * 1000)::bigint), 12, '0') || '7' || substr(h, 18, 3) || '9' || substr(h, 21, 12) || 'abc')::uuid as run_id) ids`,
    [TASKS],
  );
  await db.query(
    `insert into absurd.r_dashboard_bench (run_id, task_id, attempt, state, available_at, started_at, completed_at, failed_at, created_at, failure_reason)
     select last_attempt_run, task_id, 1, state, enqueue_at + interval '1 second', enqueue_at + interval '1 second',
            case when state = 'completed' then enqueue_at + interval '2 seconds' end,
            case when state = 'failed' then enqueue_at + interval '2 seconds' end,
            enqueue_at,
            case when state = 'failed' then '{"name":"Error","message":"boom"}'::jsonb end
       from absurd.t_dashboard_bench`,
  );
  if (values['without-list-indexes']) {
    await db.query('drop index absurd.r_dashboard_bench_lsi');
    await db.query('drop index absurd.t_dashboard_bench_nti');
    await db.query('drop index absurd.t_dashboard_bench_cli');
  }
  await db.query('vacuum analyze absurd.t_dashboard_bench');
  await db.query('vacuum analyze absurd.r_dashboard_bench');
  const { rows } = await db.query<{ size: string }>(`select pg_size_pretty(pg_total_relation_size('absurd.t_dashboard_bench')) as size`);
  console.log(`seeded ${TASKS.toLocaleString('en')} tasks and runs in ${((Date.now() - started) / 1000).toFixed(0)} s (t_ with indexes: ${rows[0]!.size})`);
}

async function time(label: string, fn: () => Promise<unknown>): Promise<void> {
  await fn(); // warm the cache: the figures are for a dashboard in use
  const samples: number[] = [];
  for (let i = 0; i < REPS; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  samples.sort((a, b) => a - b);
  const median = samples[Math.floor(samples.length / 2)]!;
  console.log(`| ${label.padEnd(58)} | ${median.toFixed(1).padStart(7)} | ${samples.at(-1)!.toFixed(1).padStart(7)} |`);
}

await seed();
const ids = await db.query<{ id: string }>(
  `select task_id as id from absurd.t_dashboard_bench order by task_id desc offset $1 limit 1`,
  [Math.floor(TASKS / 2)],
);
const middle = ids.rows[0]!.id;
const failedMiddle = (
  await db.query<{ id: string }>(
    `select task_id as id from absurd.t_dashboard_bench where state = 'failed' order by task_id desc offset $1 limit 1`,
    [Math.floor(TASKS / 40)],
  )
).rows[0]!.id;
const day = new Date(Date.now() - 15 * 86_400_000);
const since = new Date(Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate())).toISOString();
const until = new Date(Date.parse(since) + 86_400_000).toISOString();
const q: TaskFilter = { queue: QUEUE };
const schemas = new ContractSchemas({});

console.log(`\n| page (${TASKS.toLocaleString('en')} tasks retained, 50 per page) | median ms | max ms |`);
console.log(`|${'-'.repeat(60)}|---------:|-------:|`);
await time('queues overview (capped counts, 100,000 rows per count)', () => readQueueOverview(db));
await time('tasks: newest page, every queue', () => readTaskPage(db, {}));
await time('tasks: newest page, one queue', () => readTaskPage(db, q));
await time('tasks: page in the middle (keyset cursor at 50%)', () => readTaskPage(db, { ...q, after: middle }));
await time('tasks: newer page from the middle (before cursor)', () => readTaskPage(db, { ...q, before: middle }));
await time('tasks: state failed (5%), newest page', () => readTaskPage(db, { ...q, state: 'failed' }));
await time('tasks: state failed, page in the middle', () => readTaskPage(db, { ...q, state: 'failed', after: failedMiddle }));
await time('tasks: state running (0.5%)', () => readTaskPage(db, { ...q, state: 'running' }));
await time('tasks: task name (20%)', () => readTaskPage(db, { ...q, name: 'refund' }));
await time('tasks: task name and state failed', () => readTaskPage(db, { ...q, name: 'refund', state: 'failed' }));
await time('tasks: task name of the oldest 0.1% only', () => readTaskPage(db, { ...q, name: 'import-v1' }));
await time('tasks: that name and state failed', () => readTaskPage(db, { ...q, name: 'import-v1', state: 'failed' }));
await time('tasks: one day, 15 days ago', () => readTaskPage(db, { ...q, since, until }));
await time('tasks: one day and state failed', () => readTaskPage(db, { ...q, since, until, state: 'failed' }));
await time('tasks: params customer.id = c-123 (5,000 read per page)', () => readTaskPage(db, { ...q, field: 'customer.id', value: 'c-123' }));
await time('task page (by id, with runs, checkpoints, waits)', () => readTaskDetails(db, QUEUE, middle, schemas));

if (!values.keep) await db.query('select absurd.drop_queue($1)', [QUEUE]);
await db.end();
