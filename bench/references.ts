/**
 * The references of the no-op figure: pg-boss and graphile-worker, each on a database of its own on
 * the same server, with the same number of no-op jobs queued in a template before the run (as the
 * Absurd sides' tasks are). Their workers run in child processes like ours (worker-pgboss.ts,
 * worker-graphile.ts).
 *
 * Where their time comes from: pg-boss keeps completed jobs, so as for ours, from the first
 * `started_on` to the last `completed_on` in the database. graphile-worker deletes a job when it
 * completes: from the first handler start (the worker's clock) until the orchestrator sees the job
 * table empty (polled every 2 ms once the last handler has returned).
 */
import pg from 'pg';
import { withClient } from './databases.js';
import { REFERENCE_OPTIONS, REFERENCE_QUEUE, type Reference } from './settings.js';

/** Queues `count` no-op jobs of `reference` in the empty database at `url` (its schema first). */
export async function buildReferenceTemplate(reference: Reference, url: string, count: number): Promise<void> {
  if (reference === 'pgboss') {
    const { PgBoss } = await import('pg-boss');
    const { schedule, supervise } = REFERENCE_OPTIONS.pgboss;
    const boss = new PgBoss({ connectionString: url, max: 2, schedule, supervise });
    boss.on('error', (error: unknown) => process.stderr.write(`pg-boss: ${String(error)}\n`));
    await boss.start();
    await boss.createQueue(REFERENCE_QUEUE);
    for (let from = 0; from < count; from += 1000) {
      const jobs = Array.from({ length: Math.min(1000, count - from) }, (_, k) => ({ data: { i: from + k } }));
      await boss.insert(REFERENCE_QUEUE, jobs);
    }
    await boss.stop({ graceful: false });
  } else {
    const { Logger, runMigrations } = await import('graphile-worker');
    await runMigrations({ connectionString: url, logger: new Logger(() => () => {}) });
    await withClient(url, (client) =>
      client.query(`select count(graphile_worker.add_job($1, json_build_object('i', g))) from generate_series(1, $2::int) g`, [
        REFERENCE_QUEUE,
        count,
      ]),
    );
  }
}

/** Jobs of the reference not yet completed (pg-boss) or not yet deleted (graphile-worker). */
export async function pendingJobs(reference: Reference, query: (sql: string) => Promise<pg.QueryResult<{ n: string }>>): Promise<number> {
  const sql =
    reference === 'pgboss'
      ? `select count(*) as n from pgboss.job where name = '${REFERENCE_QUEUE}' and state <> 'completed'`
      : 'select count(*) as n from graphile_worker.jobs';
  return Number((await query(sql)).rows[0]?.n);
}

/** pg-boss: first started_on and last completed_on of the completed jobs (epoch ms), and their count. */
export async function pgBossSpan(
  query: (sql: string) => Promise<pg.QueryResult<{ first: string; last: string; n: string }>>,
): Promise<{ first: number; last: number; count: number }> {
  const { rows } = await query(
    `select extract(epoch from min(started_on)) * 1000 as first, extract(epoch from max(completed_on)) * 1000 as last, count(*) as n
       from pgboss.job where name = '${REFERENCE_QUEUE}' and state = 'completed'`,
  );
  return { first: Number(rows[0]?.first), last: Number(rows[0]?.last), count: Number(rows[0]?.n) };
}

