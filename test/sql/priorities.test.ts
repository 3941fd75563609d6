/**
 * Run priorities (engine migration 000016): the spawn option `priority`, the claim order
 * (priority desc, then available_at, then run_id), retries keeping the priority, the claim index
 * and its walk over priority levels.
 */
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import {
  awaitEvent,
  claim,
  claimOne,
  createQueue,
  expectPgError,
  failRun,
  newQueue,
  plus,
  queueName,
  runRow,
  runRows,
  setNow,
  spawn,
  table,
  useSession,
} from './helpers.js';

const db = useTestDatabase();
const T0 = new Date('2024-05-01T10:00:00.000Z');
const c = useSession(db, { now: T0 });

describe('spawn option priority', () => {
  it('is stored on the first run; absent, null or {} options give 0', async () => {
    const q = await newQueue(c, 'prio-store');
    const high = await spawn(c, q, 'job', {}, { priority: 7 });
    const low = await spawn(c, q, 'job', {}, { priority: -3 });
    const none = await spawn(c, q, 'job', {}, {});
    const nul = await spawn(c, q, 'job', {}, { priority: null });
    expect((await runRow(c, q, high.run_id)).priority).toBe(7);
    expect((await runRow(c, q, low.run_id)).priority).toBe(-3);
    expect((await runRow(c, q, none.run_id)).priority).toBe(0);
    expect((await runRow(c, q, nul.run_id)).priority).toBe(0);
  });

  it.each([1.5, '3', true, { n: 1 }, 2147483648, -2147483649])('refuses %j with AB003, writing nothing', async (bad) => {
    const q = await newQueue(c, 'prio-bad');
    await expectPgError(spawn(c, q, 'job', {}, { priority: bad }), 'AB003', 'priority must be an integer');
    const { rows } = await c.query(`select count(*)::int as n from ${table('t', q)}`);
    expect(rows[0].n).toBe(0);
  });

  it('accepts the integer bounds', async () => {
    const q = await newQueue(c, 'prio-bounds');
    const top = await spawn(c, q, 'job', {}, { priority: 2147483647 });
    const bottom = await spawn(c, q, 'job', {}, { priority: -2147483648 });
    const rows = await claim(c, q, 'w', 60, 5);
    expect(rows.map((r) => r.run_id)).toEqual([top.run_id, bottom.run_id]);
  });

  it('kit_spawn_tasks stores each element’s priority and refuses a bad one naming the element', async () => {
    const q = await newQueue(c, 'prio-bulk');
    const { rows } = await c.query<{ run_id: string }>('select run_id from absurd.kit_spawn_tasks($1, $2)', [
      q,
      JSON.stringify([
        { task_name: 'a', params: {}, options: { priority: 2 } },
        { task_name: 'b', params: {}, options: {} },
        { task_name: 'c', params: {} },
      ]),
    ]);
    expect(await Promise.all(rows.map(async (r) => (await runRow(c, q, r.run_id)).priority))).toEqual([2, 0, 0]);
    await expectPgError(
      c.query('select * from absurd.kit_spawn_tasks($1, $2)', [
        q,
        JSON.stringify([
          { task_name: 'a', params: {}, options: { priority: 1 } },
          { task_name: 'b', params: {}, options: { priority: 'high' } },
        ]),
      ]),
      'AB003',
      'tasks[1]: priority must be an integer',
    );
  });
});

describe('claim order', () => {
  it('takes higher priorities first, then older available_at, then run_id', async () => {
    const q = await newQueue(c, 'prio-order');
    const low1 = await spawn(c, q, 'low', {}, { priority: -1 });
    await setNow(c, plus(T0, 1));
    const mid1 = await spawn(c, q, 'mid');
    const high1 = await spawn(c, q, 'high', {}, { priority: 5 });
    await setNow(c, plus(T0, 2));
    const mid2 = await spawn(c, q, 'mid');
    const high2 = await spawn(c, q, 'high', {}, { priority: 5 });
    await setNow(c, plus(T0, 3));
    const rows = await claim(c, q, 'w', 60, 10);
    expect(rows.map((r) => r.run_id)).toEqual([high1.run_id, high2.run_id, mid1.run_id, mid2.run_id, low1.run_id]);
  });

  it('claims across levels in one call, qty at a time', async () => {
    const q = await newQueue(c, 'prio-qty');
    const runs: { p: number; id: string }[] = [];
    for (const [i, p] of [0, 3, 1, 3, 0, 1].entries()) {
      await setNow(c, plus(T0, i));
      runs.push({ p, id: (await spawn(c, q, 'job', {}, { priority: p })).run_id });
    }
    const first = await claim(c, q, 'w', 60, 3);
    const second = await claim(c, q, 'w', 60, 3);
    const byP = (p: number) => runs.filter((r) => r.p === p).map((r) => r.id);
    expect(first.map((r) => r.run_id)).toEqual([...byP(3), byP(1)[0]]);
    expect(second.map((r) => r.run_id)).toEqual([byP(1)[1], ...byP(0)]);
  });

  it('does not claim a future-dated higher-priority run early, and claims it first once due', async () => {
    const q = await newQueue(c, 'prio-future');
    const sleeper = await spawn(c, q, 'job', {}, { priority: 9 });
    await claimOne(c, q);
    await c.query('select absurd.schedule_run($1, $2, $3)', [q, sleeper.run_id, plus(T0, 60)]);
    const low = await spawn(c, q, 'job', {}, {});
    expect((await claim(c, q, 'w', 0, 5)).map((r) => r.run_id)).toEqual([low.run_id]);
    const later = await spawn(c, q, 'job', {}, {});
    await setNow(c, plus(T0, 61));
    expect((await claim(c, q, 'w', 0, 5)).map((r) => r.run_id)).toEqual([sleeper.run_id, later.run_id]);
  });

  it('walks levels through their index, not through the future-dated runs of a higher level', async () => {
    const q = await createQueue(c, queueName('prio-scan'));
    // 2,000 runs of priority 5, all sleeping until tomorrow, above one due run of priority 0.
    await c.query(
      `insert into ${table('t', q)} (task_id, task_name, params, state, attempts, enqueue_at)
       select gen_random_uuid(), 'sleepy', '{}', 'sleeping', 1, $1 from generate_series(1, 2000)`,
      [T0],
    );
    await c.query(
      `insert into ${table('r', q)} (run_id, task_id, attempt, state, available_at, priority)
       select gen_random_uuid(), t.task_id, 1, 'sleeping', $1, 5 from ${table('t', q)} t`,
      [plus(T0, 86400)],
    );
    await c.query(`analyze ${table('r', q)}`);
    await c.query(`analyze ${table('t', q)}`);
    const due = await spawn(c, q, 'job');
    // One transaction: pg_statio_xact_user_tables counts what this transaction read so far.
    await c.query('begin');
    const before = await blocksRead(q);
    const claimed = await claim(c, q, 'w', 60, 1);
    const after = await blocksRead(q);
    await c.query('commit');
    expect(claimed.map((r) => r.run_id)).toEqual([due.run_id]);
    // Filtering the 2,000 sleeping runs would fetch them all; the walk reads a handful of rows.
    expect(after - before).toBeLessThan(20);
  });

  it('keeps the priority of a retried run (fail_run) and of retry_task, in place or spawn_new', async () => {
    const q = await newQueue(c, 'prio-retry');
    const spawned = await spawn(c, q, 'job', {}, { priority: 4, max_attempts: 2 });
    await claimOne(c, q);
    await failRun(c, q, spawned.run_id);
    const [, retry] = await runRows(c, q, spawned.task_id);
    expect(retry).toMatchObject({ attempt: 2, priority: 4, state: 'pending' });
    const claimed = await claimOne(c, q);
    await failRun(c, q, claimed.run_id);
    const inPlace = (await c.query('select * from absurd.retry_task($1, $2, $3)', [q, spawned.task_id, '{}'])).rows[0];
    expect((await runRow(c, q, inPlace.run_id)).priority).toBe(4);
    const again = await claimOne(c, q);
    await failRun(c, q, again.run_id);
    const fresh = (await c.query('select * from absurd.retry_task($1, $2, $3)', [q, spawned.task_id, '{"spawn_new": true}']))
      .rows[0];
    expect(fresh.task_id).not.toBe(spawned.task_id);
    expect((await runRow(c, q, fresh.run_id)).priority).toBe(4);
  });

  it('resumes a run woken by its event at its own priority', async () => {
    const q = await newQueue(c, 'prio-event');
    const waiter = await spawn(c, q, 'job', {}, { priority: 2 });
    await claimOne(c, q);
    await awaitEvent(c, q, waiter.task_id, waiter.run_id, 'wait', 'go');
    const plain = await spawn(c, q, 'job');
    await c.query('select absurd.emit_event($1, $2, $3)', [q, 'go', '1']);
    expect((await claim(c, q, 'w', 60, 5)).map((r) => r.run_id)).toEqual([waiter.run_id, plain.run_id]);
  });

  it('kit_seconds_until_next_run sees the earliest due time of every level', async () => {
    const q = await newQueue(c, 'prio-next');
    const a = await spawn(c, q, 'job', {}, { priority: 3 });
    const b = await spawn(c, q, 'job', {}, { priority: -3 });
    await claim(c, q, 'w', 60, 2);
    await c.query('select absurd.schedule_run($1, $2, $3)', [q, a.run_id, plus(T0, 100)]);
    await c.query('select absurd.schedule_run($1, $2, $3)', [q, b.run_id, plus(T0, 30)]);
    await c.query(`update ${table('r', q)} set claim_expires_at = null where state = 'running'`);
    const { rows } = await c.query('select absurd.kit_seconds_until_next_run($1) as s', [q]);
    expect(rows[0].s).toBe(30);
  });
});

/** Rows of the queue's runs table read so far by the current transaction, by index or sequential scans. */
async function blocksRead(q: string): Promise<number> {
  const { rows } = await c.query<{ n: string }>(
    `select (coalesce(idx_tup_fetch, 0) + coalesce(seq_tup_read, 0))::text as n
       from pg_stat_xact_user_tables where relid = $1::regclass`,
    [table('r', q)],
  );
  return Number(rows[0]?.n ?? 0);
}
