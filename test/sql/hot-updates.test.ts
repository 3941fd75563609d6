/**
 * The task rows' updates are HOT (heap-only: no new index entry) since migration 000028: no index
 * of t_<q> names a column that a claim, a sleep, a wake-up or a completion changes. An index that
 * names one (`state`, `first_started_at`, `last_attempt_run`, …) makes every such update write an
 * entry into each index of the table again; these tests count, inside each transaction, the task
 * updates and the HOT ones (pg_stat_get_xact_tuples_hot_updated).
 */
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { claim, completeRun, createQueue, queueName, scheduleRun, spawn, table, useSession, type Queryable } from './helpers.js';

const db = useTestDatabase();
const T0 = new Date('2024-05-01T10:00:00.000Z');
const c = useSession(db, { now: T0 });

/** Runs `work` in a transaction; returns the updates of t_<q> it made and how many were HOT. */
async function taskUpdates(client: Queryable, queue: string, work: () => Promise<unknown>): Promise<{ updated: number; hot: number }> {
  // The counters also hold what earlier transactions counted until the session reports it, which
  // it does only between transactions: the difference within one transaction is its own.
  const counts = async () =>
    (
      await client.query<{ updated: number; hot: number }>(
        `select pg_stat_get_xact_tuples_updated($1::regclass)::int as updated,
                pg_stat_get_xact_tuples_hot_updated($1::regclass)::int as hot`,
        [table('t', queue)],
      )
    ).rows[0]!;
  await client.query('begin');
  try {
    const before = await counts();
    await work();
    const after = await counts();
    await client.query('commit');
    return { updated: after.updated - before.updated, hot: after.hot - before.hot };
  } catch (error) {
    await client.query('rollback');
    throw error;
  }
}

describe('updates of the task rows', () => {
  it('are HOT when a claim starts them and when they complete, with and without a cancellation policy', async () => {
    const q = await createQueue(c, queueName('hot'));
    for (let i = 0; i < 4; i++) await spawn(c, q, 'job', { i }, i % 2 === 0 ? { cancellation: { max_duration: 600 } } : {});

    const claimed = await (async () => {
      let runs: Awaited<ReturnType<typeof claim>> = [];
      expect(await taskUpdates(c, q, async () => (runs = await claim(c, q, 'worker-1', 60, 4)))).toEqual({ updated: 4, hot: 4 });
      return runs;
    })();
    expect(claimed).toHaveLength(4);

    expect(
      await taskUpdates(c, q, async () => {
        for (const run of claimed) await completeRun(c, q, run.run_id, { ok: true });
      }),
    ).toEqual({ updated: 4, hot: 4 });
  });

  it('are HOT through a limited claim, a sleep and a resume, and a batch completion', async () => {
    const q = await createQueue(c, queueName('hotlim'));
    await c.query(`select absurd.kit_set_limit($1, 'per-key', null, array['k'], 1, null, null)`, [q]);
    for (let i = 0; i < 3; i++) await spawn(c, q, 'job', { k: `k${i}` });

    let runs: Awaited<ReturnType<typeof claim>> = [];
    expect(await taskUpdates(c, q, async () => (runs = await claim(c, q, 'worker-1', 60, 3)))).toEqual({ updated: 3, hot: 3 });
    expect(runs).toHaveLength(3);
    expect(await taskUpdates(c, q, () => scheduleRun(c, q, runs[0]!.run_id, T0))).toEqual({ updated: 1, hot: 1 });
    expect(await taskUpdates(c, q, () => claim(c, q, 'worker-1', 60, 1))).toEqual({ updated: 1, hot: 1 });
    expect(
      await taskUpdates(c, q, () =>
        c.query('select absurd.kit_complete_runs($1, $2::uuid[], $3::jsonb[])', [q, runs.map((r) => r.run_id), runs.map(() => '{}')]),
      ),
    ).toEqual({ updated: 3, hot: 3 });
  });
});
