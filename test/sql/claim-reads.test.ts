/**
 * What a claim reads: a handful of index entries per claimed run, however much history the queue
 * keeps and whatever the planner's statistics say. Both failures this guards against are plans, not
 * wrong results: a hash join that reads every run of the queue to find the claimed runs' earlier
 * versions (kit_claim_task's queue_lag), and a bitmap scan that reads every due run and sorts them
 * when the statistics predate a burst of spawns (claim_task's candidates). Counted with the
 * transaction's own table statistics (pg_stat_xact_user_tables), which include the reads of the
 * functions it calls.
 */
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { createQueue, ident, queueName, table, useSession, type Queryable } from './helpers.js';

const db = useTestDatabase();
const c = useSession(db);

/** `count` tasks spawned in one statement, then (when `completed`) moved to completed directly. */
async function fill(client: Queryable, q: string, count: number, completed: boolean): Promise<void> {
  await client.query(
    `select count(*) from absurd.kit_spawn_tasks($1,
       (select jsonb_agg(jsonb_build_object('task_name', 'noop', 'params', jsonb_build_object('n', i)))
          from generate_series(1, $2::integer) i))`,
    [q, count],
  );
  if (!completed) return;
  await client.query(
    `update ${table('r', q)} set state = 'completed', completed_at = absurd.current_time()
      where state = 'pending'`,
  );
  await client.query(`update ${table('t', q)} set state = 'completed' where state = 'pending'`);
}

interface Reads {
  seqScans: number;
  tuplesRead: number;
  /** Pages of the queue's claim index r_<q>_cai read (pg_stat_get_xact_blocks_fetched). */
  claimIndexPages: number;
}

type QueueTable = 'r' | 't' | 'c';

/**
 * The counters of sequential scans and rows read of the queue's tables `of` (its runs and tasks),
 * and of pages read of its claim index, in this session.
 */
async function counters(client: Queryable, q: string, of: readonly QueueTable[] = ['r', 't']): Promise<Reads> {
  const { rows } = await client.query<{ seq: string; tuples: string; pages: string }>(
    `select coalesce(sum(seq_scan), 0) as seq,
            coalesce(sum(seq_tup_read + coalesce(idx_tup_fetch, 0)), 0) as tuples,
            pg_stat_get_xact_blocks_fetched($2::regclass) as pages
       from pg_stat_xact_user_tables
      where relid = any($1::regclass[])`,
    [of.map((prefix) => table(prefix, q)), `absurd.${ident(`r_${q}_cai`)}`],
  );
  return { seqScans: Number(rows[0]?.seq), tuplesRead: Number(rows[0]?.tuples), claimIndexPages: Number(rows[0]?.pages) };
}

/**
 * Sequential scans and rows read of the queue's tables `of` (its runs and tasks), and pages read of
 * its claim index, by `statement` (the reads of the functions it calls included), with the rows it
 * returned. The session's counters may still hold earlier transactions' reads
 * (they are flushed when the session idles), so the statement's are the difference of two readings
 * in its own transaction.
 */
async function readsOf<R extends object = Record<string, unknown>>(
  client: Queryable,
  q: string,
  statement: string,
  params: unknown[],
  of: readonly QueueTable[] = ['r', 't'],
): Promise<Reads & { rows: number; result: R[] }> {
  await client.query('begin');
  try {
    const before = await counters(client, q, of);
    const result = await client.query<R>(statement, params);
    const after = await counters(client, q, of);
    return {
      seqScans: after.seqScans - before.seqScans,
      tuplesRead: after.tuplesRead - before.tuplesRead,
      claimIndexPages: after.claimIndexPages - before.claimIndexPages,
      rows: result.rowCount ?? 0,
      result: result.rows,
    };
  } finally {
    await client.query('rollback');
  }
}

describe('what a claim reads', () => {
  it('kit_claim_task finds the claimed runs by their keys, not by reading the queue, however much history it keeps', async () => {
    const q = await createQueue(c, queueName('history'));
    await fill(c, q, 30_000, true);
    await c.query(`analyze ${table('r', q)}, ${table('t', q)}`);
    await fill(c, q, 20, false);

    const reads = await readsOf(c, q, 'select * from absurd.kit_claim_task($1, $2, 60, 16)', [q, 'w1']);
    expect(reads.rows).toBe(16);
    expect(reads.seqScans).toBe(0);
    expect(reads.tuplesRead).toBeLessThan(500);
  });

  it('claim_task reads the next runs off the claim index after a burst its statistics have not seen', async () => {
    const q = await createQueue(c, queueName('burst'));
    for (const prefix of ['r', 't'] as const) {
      await c.query(`alter table ${table(prefix, q)} set (autovacuum_enabled = false)`);
    }
    await fill(c, q, 5_000, true);
    await fill(c, q, 50, false);
    await c.query(`analyze ${table('r', q)}, ${table('t', q)}`);
    // The statistics say 1 % of the runs are due; 4,000 more due runs arrive after them. With
    // such statistics PostgreSQL 15 planned the candidates as a hash join of every due run with
    // its task, sorted, rather than the first qty read off r_<q>_cai in order.
    await fill(c, q, 4_000, false);

    const reads = await readsOf(c, q, 'select * from absurd.claim_task($1, $2, 60, 16)', [q, 'w1']);
    expect(reads.rows).toBe(16);
    expect(reads.seqScans).toBe(0);
    expect(reads.tuplesRead).toBeLessThan(500);
  });

  it.each([
    ['without limits', false],
    ['with a per-key limit', true],
  ])('claim_task %s, planned once for a claim of unknown size, reads a few entries per run from a large backlog', async (_label, limited) => {
    const q = await createQueue(c, queueName('backlog'));
    if (limited) await c.query(`select absurd.kit_set_limit($1, 'per-n', null, '{n}', 1, null, null)`, [q]);
    await fill(c, q, 40_000, false);
    await c.query(`analyze ${table('r', q)}, ${table('t', q)}`);
    // A generic plan (kept by the session, migration 000022) estimates a LIMIT of unknown size at a
    // tenth of the runs: planned with hash joins, the claim's updates read every run and task.
    for (let i = 0; i < 3; i += 1) {
      const reads = await readsOf(c, q, 'select * from absurd.claim_task($1, $2, 60, 16)', [q, 'w1']);
      expect(reads.rows).toBe(16);
      expect(reads.seqScans).toBe(0);
      expect(reads.tuplesRead).toBeLessThan(500);
    }
  });

  it('the claim of a queue with a limit keeps plans made while the queue was small, and they read the claim index', async () => {
    const q = await createQueue(c, queueName('limited-burst'));
    for (const prefix of ['r', 't'] as const) {
      await c.query(`alter table ${table(prefix, q)} set (autovacuum_enabled = false)`);
    }
    await c.query(`select absurd.kit_set_limit($1, 'per-n', null, '{n}', 1, null, null)`, [q]);
    await fill(c, q, 5_000, true);
    await fill(c, q, 50, false);
    await c.query(`analyze ${table('r', q)}, ${table('t', q)}`);
    // Plans made now (generic ones, kept by the session: migration 000021) must not read the queue
    // once 4,000 more due runs arrive that the statistics have not seen.
    for (let i = 0; i < 3; i += 1) {
      await readsOf(c, q, 'select * from absurd.claim_task($1, $2, 60, 16)', [q, 'w1']);
    }
    await fill(c, q, 4_000, false);

    const reads = await readsOf(c, q, 'select * from absurd.claim_task($1, $2, 60, 16)', [q, 'w1']);
    expect(reads.rows).toBe(16);
    expect(reads.seqScans).toBe(0);
    expect(reads.tuplesRead).toBeLessThan(500);
  });
});

describe("what a claim's cancellation sweep reads", () => {
  it('reads the tasks whose policy has ended them, not every live task that has a policy', async () => {
    const q = await createQueue(c, queueName('policies'));
    const spawn = (count: number, cancellation: object) =>
      c.query(
        `select count(*) from generate_series(1, $2::integer) g,
                lateral absurd.spawn_task($1, 'noop', jsonb_build_object('n', g), $3::jsonb)`,
        [q, count, JSON.stringify({ cancellation })],
      );
    await spawn(3, { max_delay: 0 });
    await spawn(5_000, { max_delay: 3600 });
    await c.query(`analyze ${table('t', q)}`);

    const reads = await readsOf(c, q, `select * from absurd.kit_claim_task($1, 'w', 60, 4)`, [q], ['t']);
    expect(reads.rows).toBe(4);
    expect(reads.seqScans).toBe(0);
    // The three due tasks and the four claimed, read by key: not the 5,000 live tasks whose policy
    // has not ended them.
    expect(reads.tuplesRead).toBeLessThan(200);

    // And the sweep did its work (the reads above were rolled back): the due three cancelled, the
    // others claimable.
    await c.query(`select * from absurd.kit_claim_task($1, 'w', 60, 4)`, [q]);
    const { rows } = await c.query<{ state: string; n: string }>(
      `select state, count(*) as n from ${table('t', q)} group by state order by state`,
    );
    expect(rows.map((row) => [row.state, Number(row.n)])).toEqual([
      ['cancelled', 3],
      ['pending', 4996],
      ['running', 4],
    ]);
  });
});

describe("what a claim reads of the queue's checkpoints", () => {
  it('kit_claim_task reads a claimed run\'s checkpoints by key after the checkpoint table was analysed empty', async () => {
    const q = await createQueue(c, queueName('checkpoints'));
    await c.query(`alter table ${table('c', q)} set (autovacuum_enabled = false)`);
    await fill(c, q, 2_000, false);
    await c.query(`vacuum analyze ${table('c', q)}`);
    // Plans made now see an empty checkpoint table, and the session keeps them (migration 000020).
    for (let i = 0; i < 6; i += 1) await c.query(`select * from absurd.kit_claim_task($1, 'w', 60, 4)`, [q]);
    await c.query(
      `insert into ${table('c', q)} (task_id, checkpoint_name, state, status, owner_run_id, updated_at)
       select t.task_id, 'step-' || g, '1', 'committed', t.last_attempt_run, absurd.current_time()
         from ${table('t', q)} t, generate_series(1, 3) g`,
    );
    const reads = await readsOf<{ checkpoints: Record<string, unknown> }>(
      c,
      q,
      `select checkpoints from absurd.kit_claim_task($1, 'w', 60, 16)`,
      [q],
      ['c'],
    );
    expect(reads.rows).toBe(16);
    expect(Object.keys(reads.result[0]!.checkpoints)).toHaveLength(3);
    expect(reads.seqScans).toBe(0);
  });
});

describe('what a completion reads', () => {
  it('kit_complete_runs finds its runs by key, however many runs of the queue are running', async () => {
    const q = await createQueue(c, queueName('completions'));
    for (const prefix of ['r', 't'] as const) {
      await c.query(`alter table ${table(prefix, q)} set (autovacuum_enabled = false)`);
    }
    await fill(c, q, 3_000, false);
    // The statistics say no run is running; then 2,000 are.
    await c.query(`analyze ${table('r', q)}, ${table('t', q)}`);
    const { rows: claimed } = await c.query<{ run_id: string }>('select run_id from absurd.claim_task($1, $2, 600, 2000)', [q, 'w0']);
    expect(claimed).toHaveLength(2000);
    // Runs completed in twos, as a worker whose slots free one by one does; the plan is kept after
    // the first calls (migration 000022), so several calls are read.
    for (let i = 0; i < 8; i += 1) {
      const runs = claimed.slice(2 * i, 2 * i + 2).map((r) => r.run_id);
      const reads = await readsOf(c, q, 'select * from absurd.kit_complete_runs($1, $2::uuid[], $3::jsonb[])', [q, runs, ['1', '2']]);
      expect(reads.rows).toBe(2);
      expect(reads.seqScans).toBe(0);
      expect(reads.tuplesRead).toBeLessThan(50);
    }
  });
});

describe('what a claim reads of its index after a drain', () => {
  it.each([
    ['without limits', false],
    ['with a limit', true],
  ])('claim_task %s walks the entries its earlier claims left dead once, not twice', async (_label, limited) => {
    const q = await createQueue(c, queueName('drained'));
    await c.query(`alter table ${table('r', q)} set (autovacuum_enabled = false)`);
    // A limit that never binds (the runs' params repeat, so a per-key one would park them).
    if (limited) await c.query(`select absurd.kit_set_limit($1, 'wide', null, null, 1000000, null, null)`, [q]);
    await fill(c, q, 10_000, false);
    // Claimed runs leave their entries at the front of r_<q>_cai, dead until a VACUUM.
    for (let i = 0; i < 2; i += 1) await c.query('select count(*) from absurd.claim_task($1, $2, 600, 5000)', [q, 'w0']);
    await fill(c, q, 50, false);

    // The front itself: the pages of the first live entry's read (which also marks the dead ones).
    const front = await readsOf(
      c,
      q,
      `select 1 from (select set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true)) s,
              lateral (select r.run_id from ${table('r', q)} r
                        where r.state in ('pending', 'sleeping') and r.priority < 2147483648
                        order by r.priority desc, r.available_at, r.run_id limit 1) f`,
      [],
    );
    expect(front.claimIndexPages).toBeGreaterThan(40);

    const claim = await readsOf(c, q, 'select * from absurd.claim_task($1, $2, 60, 16)', [q, 'w1']);
    expect(claim.claimIndexPages).toBeGreaterThan(front.claimIndexPages / 2);
    expect(claim.claimIndexPages).toBeLessThan(front.claimIndexPages + 15);
  });
});
