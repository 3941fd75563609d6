/**
 * Concurrency and rate limits (engine migration 000016): kit_set_limit / kit_remove_limit /
 * kit_list_limits, what claim_task does on a queue with limits (slots, parking, un-parking in
 * FIFO order, rate windows), and every state change that releases a slot.
 */
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import {
  awaitEvent,
  callsDuring,
  cancelTask,
  claim,
  claimOne,
  completeRun,
  createQueue,
  expectPgError,
  failRun,
  newQueue,
  plus,
  type Queryable,
  queueName,
  runRow,
  scheduleRun,
  setNow,
  spawn,
  table,
  useSession,
} from './helpers.js';

const db = useTestDatabase();
const T0 = new Date('2024-05-01T10:00:00.000Z');
const c = useSession(db, { now: T0 });

interface LimitSpec {
  task?: string | null;
  key?: string[] | null;
  max?: number | null;
  rate?: number | null;
  period?: number | null;
}

async function setLimit(q: string, name: string, spec: LimitSpec, client: Queryable = c): Promise<boolean> {
  const { rows } = await client.query<{ changed: boolean }>(
    'select absurd.kit_set_limit($1, $2, $3, $4, $5, $6, $7) as changed',
    [q, name, spec.task ?? null, spec.key ?? null, spec.max ?? null, spec.rate ?? null, spec.period ?? null],
  );
  return rows[0]!.changed;
}

async function removeLimit(q: string, name: string): Promise<boolean> {
  const { rows } = await c.query<{ removed: boolean }>('select absurd.kit_remove_limit($1, $2) as removed', [q, name]);
  return rows[0]!.removed;
}

async function slots(q: string): Promise<{ limit_name: string; key: string; run_id: string }[]> {
  const { rows } = await c.query(
    'select limit_name, key, run_id from absurd.kit_limit_slots where queue_name = $1 order by limit_name, key, run_id',
    [q],
  );
  return rows;
}

async function waiters(q: string): Promise<{ run_id: string; key: string; woken: boolean }[]> {
  const { rows } = await c.query(
    'select run_id, key, woken from absurd.kit_limit_waiters where queue_name = $1 order by available_at, run_id',
    [q],
  );
  return rows;
}

async function hasTrigger(q: string): Promise<boolean> {
  const { rows } = await c.query(
    `select count(*)::int as n from pg_trigger where tgrelid = $1::regclass and tgname = 'kit_limits_release'`,
    [table('r', q)],
  );
  return rows[0].n === 1;
}

/** Spawns `n` tasks one millisecond apart (so their claim order is their spawn order). */
async function spawnSeries(q: string, n: number, params: (i: number) => unknown = () => ({}), task = 'job'): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 1) {
    await setNow(c, plus(T0, i / 1000));
    ids.push((await spawn(c, q, task, params(i))).run_id);
  }
  return ids;
}

async function claimIds(q: string, qty: number, timeout = 600): Promise<string[]> {
  return (await claim(c, q, 'w', timeout, qty)).map((r) => r.run_id);
}

describe('kit_set_limit, kit_remove_limit, kit_list_limits', () => {
  it('creates the release trigger with the first limit and drops it with the last', async () => {
    const q = await newQueue(c, 'lim-trigger');
    expect(await hasTrigger(q)).toBe(false);
    expect(await setLimit(q, 'a', { max: 2 })).toBe(true);
    expect(await setLimit(q, 'b', { rate: 5, period: 60 })).toBe(true);
    expect(await hasTrigger(q)).toBe(true);
    expect(await removeLimit(q, 'a')).toBe(true);
    expect(await hasTrigger(q)).toBe(true);
    expect(await removeLimit(q, 'b')).toBe(true);
    expect(await hasTrigger(q)).toBe(false);
    expect(await removeLimit(q, 'b')).toBe(false);
  });

  it('returns false for an unchanged definition and lists limits with running and parked counts', async () => {
    const q = await newQueue(c, 'lim-list');
    await setLimit(q, 'per-customer', { task: 'charge', key: ['customer', 'id'], max: 1, rate: 10, period: 90 });
    expect(await setLimit(q, 'per-customer', { task: 'charge', key: ['customer', 'id'], max: 1, rate: 10, period: 90 })).toBe(false);
    await spawnSeries(q, 2, () => ({ customer: { id: 7 } }), 'charge');
    await claim(c, q, 'w', 600, 2);
    const { rows } = await c.query('select * from absurd.kit_list_limits($1)', [q]);
    expect(rows).toEqual([
      {
        queue_name: q,
        limit_name: 'per-customer',
        task_name: 'charge',
        key_path: ['customer', 'id'],
        max_running: 1,
        rate_count: 10,
        rate_period_seconds: 90,
        running: '1',
        parked: '1',
      },
    ]);
  });

  it.each<[string, LimitSpec, string]>([
    ['', { max: 1 }, 'limit name must be provided'],
    ['x', { max: 0 }, 'max_running must be >= 1'],
    ['x', { rate: 0, period: 10 }, 'rate_count must be >= 1'],
    ['x', { rate: 3 }, 'go together'],
    ['x', { rate: 3, period: 0 }, 'rate_period_seconds must be more than 0'],
    ['x', {}, 'give max_running'],
    ['x', { max: 1, key: [] }, 'key path'],
    ['x', { max: 1, key: ['a', ''] }, 'key path'],
    ['x', { max: 1, task: ' ' }, 'task name'],
  ])('refuses limit %j %j with AB004', async (name, spec, message) => {
    const q = await newQueue(c, 'lim-bad');
    await expectPgError(setLimit(q, name, spec), 'AB004', message);
    expect(await hasTrigger(q)).toBe(false);
  });

  it('refuses a queue that does not exist with AB005', async () => {
    await expectPgError(setLimit(queueName('missing'), 'x', { max: 1 }), 'AB005', 'does not exist');
  });

  it('counts the runs already running when a limit is set', async () => {
    const q = await newQueue(c, 'lim-backfill');
    await spawnSeries(q, 3, (i) => ({ k: i < 2 ? 'a' : 'b' }));
    await claim(c, q, 'w', 600, 3);
    await setLimit(q, 'k', { key: ['k'], max: 2 });
    expect((await slots(q)).map((s) => s.key)).toEqual(['"a"', '"a"', '"b"']);
    const [next] = await spawnSeries(q, 1, () => ({ k: 'a' }));
    expect(await claimIds(q, 1)).toEqual([]);
    expect((await waiters(q)).map((w) => w.run_id)).toEqual([next]);
  });

  it('a queue created again after drop_queue does not inherit the limits of the dropped one', async () => {
    const q = await newQueue(c, 'lim-drop');
    await setLimit(q, 'one', { max: 1 });
    await c.query('select absurd.drop_queue($1)', [q]);
    await createQueue(c, q);
    const { rows } = await c.query('select * from absurd.kit_list_limits($1)', [q]);
    expect(rows).toEqual([]);
    await spawnSeries(q, 2);
    expect(await claimIds(q, 2)).toHaveLength(2);
  });

  it("drop_queue removes the queue's limits and their rows and functions, its schedules and its idle marks (000019)", async () => {
    const q = await newQueue(c, 'lim-dropped');
    const other = await newQueue(c, 'lim-kept');
    for (const queue of [q, other]) {
      await setLimit(queue, 'one', { max: 1 });
      await c.query(`select absurd.kit_upsert_schedule($1, $2, 'job', '0 * * * *', 'UTC', '{}', '{}', 'skip')`, [`${queue}-hourly`, queue]);
      await c.query(`select * from absurd.kit_claim_task($1, 'w', 30, 1, 'L1', 60)`, [queue]);
    }
    await spawnSeries(q, 2);
    expect(await claimIds(q, 2)).toHaveLength(1); // one slot held, one run parked
    const kept = async (queue: string) => {
      const { rows } = await c.query<{ limits: number; slots: number; waiters: number; functions: number; schedules: number; marks: number }>(
        `select (select count(*)::int from absurd.kit_limits where queue_name = $1) as limits,
                (select count(*)::int from absurd.kit_limit_slots where queue_name = $1) as slots,
                (select count(*)::int from absurd.kit_limit_waiters where queue_name = $1) as waiters,
                (select count(*)::int from pg_proc where proname like 'kit\_q\_' || md5($1) || '%') as functions,
                (select count(*)::int from absurd.kit_schedules where queue_name = $1) as schedules,
                (select count(*)::int from absurd.kit_idle_listeners where queue_name = $1) as marks`,
        [queue],
      );
      return rows[0];
    };
    expect(await kept(q)).toMatchObject({ limits: 1, slots: 1, waiters: 1, schedules: 1, marks: 1 });
    expect((await kept(q))!.functions).toBeGreaterThan(0);
    const before = await kept(other);
    await c.query('select absurd.drop_queue($1)', [q]);
    expect(await kept(q)).toEqual({ limits: 0, slots: 0, waiters: 0, functions: 0, schedules: 0, marks: 0 });
    expect(await kept(other)).toEqual(before);
  });
});

describe('concurrency limits', () => {
  it('a queue-wide limit parks what does not fit and un-parks in FIFO order as slots free', async () => {
    const q = await newQueue(c, 'lim-queue');
    await setLimit(q, 'all', { max: 2 });
    const ids = await spawnSeries(q, 5);
    expect(await claimIds(q, 5)).toEqual(ids.slice(0, 2));
    for (const id of ids.slice(2)) expect((await runRow(c, q, id)).available_at_infinite).toBe(true);
    expect((await waiters(q)).map((w) => w.run_id)).toEqual(ids.slice(2));
    await completeRun(c, q, ids[1]!);
    expect((await runRow(c, q, ids[2]!)).available_at_infinite).toBe(false);
    expect((await runRow(c, q, ids[3]!)).available_at_infinite).toBe(true);
    expect(await claimIds(q, 5)).toEqual([ids[2]]);
    await completeRun(c, q, ids[0]!);
    await completeRun(c, q, ids[2]!);
    expect(await claimIds(q, 5)).toEqual(ids.slice(3));
    expect(await waiters(q)).toEqual([]);
  });

  it('a per-task limit leaves the other tasks of the queue alone', async () => {
    const q = await newQueue(c, 'lim-task');
    await setLimit(q, 'slow', { task: 'slow', max: 1 });
    const slow = await spawnSeries(q, 2, () => ({}), 'slow');
    const fast = await spawnSeries(q, 2, () => ({}), 'fast');
    expect((await claimIds(q, 10)).sort()).toEqual([slow[0], ...fast].sort());
    expect((await waiters(q)).map((w) => w.run_id)).toEqual([slow[1]]);
  });

  it('a per-key limit serves each key on its own; a missing key is the bucket null', async () => {
    const q = await newQueue(c, 'lim-key');
    await setLimit(q, 'customer', { key: ['customerId'], max: 1 });
    const keys = ['c1', 'c1', 'c2', undefined, 'c2', null, 'c3'];
    const ids = await spawnSeries(q, keys.length, (i) => (keys[i] === undefined ? {} : { customerId: keys[i] }));
    expect(await claimIds(q, 10)).toEqual([ids[0], ids[2], ids[3], ids[6]]);
    expect((await waiters(q)).map((w) => [w.run_id, w.key])).toEqual([
      [ids[1], '"c1"'],
      [ids[4], '"c2"'],
      [ids[5], 'null'],
    ]);
  });

  it('a run un-parked for one free slot counts against the next release (one slot, one waiter)', async () => {
    const q = await newQueue(c, 'lim-woken');
    await setLimit(q, 'all', { max: 1 });
    const ids = await spawnSeries(q, 3);
    expect(await claimIds(q, 3)).toEqual([ids[0]]);
    await completeRun(c, q, ids[0]!);
    expect((await waiters(q)).map((w) => w.woken)).toEqual([true, false]);
    expect((await runRow(c, q, ids[2]!)).available_at_infinite).toBe(true);
  });

  it('a woken run that is cancelled before it is claimed hands its turn on', async () => {
    const q = await newQueue(c, 'lim-baton');
    await setLimit(q, 'all', { max: 1 });
    const tasks = [];
    for (let i = 0; i < 3; i += 1) {
      await setNow(c, plus(T0, i / 1000));
      tasks.push(await spawn(c, q));
    }
    expect(await claimIds(q, 3)).toEqual([tasks[0]!.run_id]);
    await completeRun(c, q, tasks[0]!.run_id);
    await cancelTask(c, q, tasks[1]!.task_id);
    expect(await claimIds(q, 3)).toEqual([tasks[2]!.run_id]);
  });

  it('removing a limit makes its parked runs claimable, in their order', async () => {
    const q = await newQueue(c, 'lim-remove');
    await setLimit(q, 'all', { max: 1 });
    const ids = await spawnSeries(q, 4);
    expect(await claimIds(q, 4)).toEqual([ids[0]]);
    await removeLimit(q, 'all');
    expect(await waiters(q)).toEqual([]);
    expect(await slots(q)).toEqual([]);
    expect(await claimIds(q, 4)).toEqual(ids.slice(1));
  });

  it('changing a limit frees its parked runs for the new definition to judge', async () => {
    const q = await newQueue(c, 'lim-change');
    await setLimit(q, 'all', { max: 1 });
    const ids = await spawnSeries(q, 4);
    expect(await claimIds(q, 4)).toEqual([ids[0]]);
    await setLimit(q, 'all', { max: 3 });
    expect(await claimIds(q, 4)).toEqual(ids.slice(1, 3));
    expect((await waiters(q)).map((w) => w.run_id)).toEqual([ids[3]]);
  });

  it('a resumed run is checked again: a sleeping run holds no slot', async () => {
    const q = await newQueue(c, 'lim-resume');
    await setLimit(q, 'all', { max: 1 });
    const [a, b] = await spawnSeries(q, 2);
    expect(await claimIds(q, 2)).toEqual([a]);
    await scheduleRun(c, q, a!, plus(T0, 10));
    expect(await claimIds(q, 2)).toEqual([b]);
    await setNow(c, plus(T0, 11));
    expect(await claimIds(q, 2)).toEqual([]);
    expect((await waiters(q)).map((w) => w.run_id)).toEqual([a]);
    await completeRun(c, q, b!);
    expect(await claimIds(q, 2)).toEqual([a]);
  });

  it('a priority does not let a run past a full bucket, and the bucket serves it first once free', async () => {
    const q = await newQueue(c, 'lim-prio');
    await setLimit(q, 'all', { max: 1 });
    const first = await spawn(c, q);
    expect(await claimIds(q, 1)).toEqual([first.run_id]);
    await setNow(c, plus(T0, 1));
    const low = await spawn(c, q);
    await setNow(c, plus(T0, 2));
    const high = await spawn(c, q, 'job', {}, { priority: 5 });
    expect(await claimIds(q, 5)).toEqual([]);
    await completeRun(c, q, first.run_id);
    // The oldest waiter is un-parked (FIFO within the bucket), then claims take it.
    expect(await claimIds(q, 5)).toEqual([low.run_id]);
    await completeRun(c, q, low.run_id);
    expect(await claimIds(q, 5)).toEqual([high.run_id]);
  });
});

describe('rounds of a claim', () => {
  it('a round of un-parked runs and a round of fresh runs in one claim count what each other took', async () => {
    const q = await newQueue(c, 'lim-rounds');
    await setLimit(q, 'all', { max: 3 });
    const holders = await spawnSeries(q, 3);
    expect(await claimIds(q, 3)).toEqual(holders);
    await setNow(c, plus(T0, 1));
    const high = await spawn(c, q, 'job', {}, { priority: 2 });
    await setNow(c, plus(T0, 2));
    const low = await spawn(c, q);
    expect(await claimIds(q, 5)).toEqual([]);
    for (const id of holders) await completeRun(c, q, id);
    expect((await waiters(q)).map((w) => [w.run_id, w.woken])).toEqual([
      [high.run_id, true],
      [low.run_id, true],
    ]);
    // One claim walks three priorities: the un-parked run of priority 2 (a round that decides run
    // by run), two fresh runs of priority 1 (the common round, decided and claimed in one
    // statement), then the un-parked run of priority 0, which must see the three running.
    const fresh: string[] = [];
    for (const at of [3, 3.001]) {
      await setNow(c, plus(T0, at));
      fresh.push((await spawn(c, q, 'job', {}, { priority: 1 })).run_id);
    }
    expect(await claimIds(q, 5)).toEqual([high.run_id, ...fresh]);
    expect((await slots(q)).map((s) => s.run_id).sort()).toEqual([high.run_id, ...fresh].sort());
    expect((await waiters(q)).map((w) => [w.run_id, w.woken])).toEqual([[low.run_id, false]]);
    expect((await runRow(c, q, low.run_id)).available_at_infinite).toBe(true);
  });
});

describe("the queue's claim function (kit_q_<md5>_claim_limited, migration 000024)", () => {
  const claimFunction = (q: string) =>
    c
      .query<{ n: number }>(`select count(*)::int as n from pg_proc where proname = 'kit_q_' || md5($1) || '_claim_limited'`, [q])
      .then((r) => r.rows[0]!.n);

  it('is written with the first limit and dropped with the last', async () => {
    const q = await newQueue(c, 'lim-fn');
    expect(await claimFunction(q)).toBe(0);
    await setLimit(q, 'per-k', { key: ['k'], max: 1 });
    expect(await claimFunction(q)).toBe(1);
    await removeLimit(q, 'per-k');
    expect(await claimFunction(q)).toBe(0);
  });

  it('a first round that comes back short goes on past the runs it looked at, and the next priority is claimed too', async () => {
    const q = await newQueue(c, 'lim-short');
    await setLimit(q, 'per-k', { key: ['k'], max: 1 });
    // Priority 1: a, a (the second parks), b; priority 0: c.
    const [a1, a2, b1] = await spawnSeries(q, 3, (i) => ({ k: ['a', 'a', 'b'][i] }));
    await c.query(`update ${table('r', q)} set priority = 1 where run_id = any($1::uuid[])`, [[a1, a2, b1]]);
    await setNow(c, plus(T0, 1));
    const c1 = (await spawn(c, q, 'job', { k: 'c' })).run_id;
    expect(await claimIds(q, 4)).toEqual([a1, b1, c1]);
    expect((await waiters(q)).map((w) => w.run_id)).toEqual([a2]);
  });

  it('a session that claimed through it claims through the new one after the limits change', async () => {
    const q = await newQueue(c, 'lim-fn-rewritten');
    await setLimit(q, 'per-k', { key: ['k'], max: 1 });
    const [a1, a2, b1] = await spawnSeries(q, 3, (i) => ({ k: ['a', 'a', 'b'][i] }));
    expect(await claimIds(q, 1)).toEqual([a1]);
    // kit_set_limit writes the queue's functions anew (dropped and created): plans that call the old
    // one are made again.
    await setLimit(q, 'per-k', { key: ['k'], max: 2 });
    expect(await claimIds(q, 3)).toEqual([a2, b1]);
  });

  it('claims through the general rounds when it is missing', async () => {
    const q = await newQueue(c, 'lim-fn-missing');
    await setLimit(q, 'per-k', { key: ['k'], max: 1 });
    await c.query(`select format('drop function absurd.%I(text, timestamptz, timestamptz, integer)', 'kit_q_' || md5($1) || '_claim_limited') as sql`, [q])
      .then((r) => c.query(r.rows[0].sql));
    expect(await claimFunction(q)).toBe(0);
    const [a1, a2, b1] = await spawnSeries(q, 3, (i) => ({ k: ['a', 'a', 'b'][i] }));
    expect(await claimIds(q, 3)).toEqual([a1, b1]);
    expect((await waiters(q)).map((w) => w.run_id)).toEqual([a2]);
  });
});

describe('every way out of running releases the slot', () => {
  /** Takes the run out of 'running'; returns the runs it claimed meanwhile, if it claims. */
  type Exit = (q: string, run: { run_id: string; task_id: string }) => Promise<void | string[]>;
  const exits: [string, Exit][] = [
    ['complete_run', (q, r) => completeRun(c, q, r.run_id)],
    [
      'kit_complete_runs',
      async (q, r) => {
        await c.query('select * from absurd.kit_complete_runs($1, $2::uuid[], $3::jsonb[])', [q, [r.run_id], ['1']]);
      },
    ],
    ['fail_run (retry)', (q, r) => failRun(c, q, r.run_id)],
    [
      'kit_fail_task',
      async (q, r) => {
        await c.query('select absurd.kit_fail_task($1, $2, $3)', [q, r.run_id, '{"message": "x"}']);
      },
    ],
    ['cancel_task', (q, r) => cancelTask(c, q, r.task_id)],
    ['schedule_run', (q, r) => scheduleRun(c, q, r.run_id, plus(T0, 3600))],
    [
      'await_event',
      async (q, r) => {
        expect((await awaitEvent(c, q, r.task_id, r.run_id, 'wait', 'never')).should_suspend).toBe(true);
      },
    ],
    [
      'kit_await_events',
      async (q, r) => {
        await c.query('select * from absurd.kit_await_events($1, $2, $3, $4, $5, $6)', [
          q,
          r.task_id,
          r.run_id,
          JSON.stringify([{ step: 's', event: 'e1' }]),
          null,
          'all',
        ]);
      },
    ],
    [
      'lease expiry (claim_task phase B)',
      async (q) => {
        // The claim that fails the expired run may claim the run it un-parks, in the same call.
        await setNow(c, plus(T0, 700));
        return (await claim(c, q, 'other', 6000, 1)).map((r) => r.run_id);
      },
    ],
  ];

  it.each(exits)('%s', async (_label, exit) => {
    const q = await newQueue(c, 'lim-exit');
    await setLimit(q, 'all', { max: 1, task: 'job' });
    const holder = await spawn(c, q, 'job', {}, { retry_strategy: { kind: 'fixed', base_seconds: 86400 } });
    await setNow(c, plus(T0, 0.001));
    const parked = await spawn(c, q);
    expect(await claimIds(q, 2)).toEqual([holder.run_id]);
    expect((await waiters(q)).map((w) => w.run_id)).toEqual([parked.run_id]);
    const claimedByExit = (await exit(q, holder)) ?? [];
    expect((await runRow(c, q, holder.run_id)).state).not.toBe('running');
    expect((await slots(q)).map((s) => s.run_id)).not.toContain(holder.run_id);
    expect((await runRow(c, q, parked.run_id)).available_at_infinite).toBe(false);
    const claimed = [...claimedByExit, ...(await claim(c, q, 'w', 6000, 2)).map((r) => r.run_id)];
    expect(claimed).toEqual([parked.run_id]);
    expect((await slots(q)).map((s) => s.run_id)).toEqual([parked.run_id]);
  });
});

describe('a batch of completions (kit_complete_runs, migration 000023)', () => {
  it("releases the batch's slots together and un-parks each bucket's next waiter, the trigger held back for its own update only", async () => {
    const q = await newQueue(c, 'lim-batch');
    await setLimit(q, 'per-k', { key: ['k'], max: 1 });
    const [a1, b1, c1, a2, b2] = await spawnSeries(q, 5, (i) => ({ k: ['a', 'b', 'c', 'a', 'b'][i] }));
    expect(await claimIds(q, 5)).toEqual([a1, b1, c1]);
    expect((await waiters(q)).map((w) => w.run_id)).toEqual([a2, b2]);

    await c.query('begin');
    try {
      await c.query(`set local track_functions = 'all'`);
      let outcomes: string[] = [];
      const batch = await callsDuring(c, ['kit_limits_release'], async () => {
        const { rows } = await c.query<{ run_id: string; outcome: string }>(
          'select * from absurd.kit_complete_runs($1, $2::uuid[], $3::jsonb[])',
          [q, [a1, b1, c1], ['1', '2', '3']],
        );
        outcomes = rows.map((r) => r.outcome);
      });
      expect(outcomes).toEqual(['completed', 'completed', 'completed']);
      expect(batch).toEqual({ kit_limits_release: 0 });
      expect(await slots(q)).toEqual([]);
      expect(await waiters(q)).toEqual([
        { run_id: a2, key: '"a"', woken: true },
        { run_id: b2, key: '"b"', woken: true },
      ]);
      const { rows: setting } = await c.query<{ v: string | null }>(
        `select current_setting('absurd.kit_batch_release', true) as v`,
      );
      expect(setting[0]!.v).not.toBe('on');
      // Later statements of the same transaction release through the trigger again.
      let claimed: string[] = [];
      const later = await callsDuring(c, ['kit_limits_release'], async () => {
        claimed = await claimIds(q, 5);
        await failRun(c, q, a2!);
      });
      expect(claimed).toEqual([a2, b2]);
      expect(later).toEqual({ kit_limits_release: 1 });
      expect((await slots(q)).map((s) => s.run_id)).toEqual([b2]);
      await c.query('commit');
    } catch (error) {
      await c.query('rollback');
      throw error;
    }
  });

  it('kit_limits_ensure_trigger replaces a release trigger of the earlier definition', async () => {
    const q = await newQueue(c, 'lim-old-trigger');
    await setLimit(q, 'all', { max: 1 });
    const r = table('r', q);
    await c.query(`drop trigger kit_limits_release on ${r}`);
    await c.query(
      `create trigger kit_limits_release after update of state on ${r} for each row
         when (old.state is distinct from new.state and (old.state = 'running' or new.state in ('completed', 'failed', 'cancelled')))
         execute function absurd.kit_limits_release('${q.replace(/'/g, "''")}')`,
    );
    const definition = async () =>
      (
        await c.query<{ def: string }>(
          `select pg_get_triggerdef(oid) as def from pg_trigger where tgrelid = $1::regclass and tgname = 'kit_limits_release'`,
          [r],
        )
      ).rows.map((row) => row.def);
    expect((await definition())[0]).not.toContain('kit_batch_release');
    await c.query('select absurd.kit_limits_ensure_trigger($1)', [q]);
    const after = await definition();
    expect(after).toHaveLength(1);
    expect(after[0]).toContain('kit_batch_release');
    // The batch path then holds it back and releases by itself.
    const [a, b] = await spawnSeries(q, 2);
    expect(await claimIds(q, 2)).toEqual([a]);
    await c.query('select * from absurd.kit_complete_runs($1, $2::uuid[], $3::jsonb[])', [q, [a], ['1']]);
    expect(await claimIds(q, 2)).toEqual([b]);
  });
});

describe('rate limits', () => {
  it('admits rate_count starts per window and puts the rest back until the window admits them', async () => {
    const q = await newQueue(c, 'rate-window');
    await setLimit(q, 'r', { rate: 2, period: 60 });
    const ids = await spawnSeries(q, 5);
    await setNow(c, plus(T0, 1));
    expect(await claimIds(q, 5)).toEqual(ids.slice(0, 2));
    // Both starts at T0+1: the third start is admitted at T0+61.
    expect((await runRow(c, q, ids[2]!)).available_at_text).toBe('2024-05-01T10:01:01.000Z');
    await setNow(c, plus(T0, 60.9));
    expect(await claimIds(q, 5)).toEqual([]);
    await setNow(c, plus(T0, 61));
    expect(await claimIds(q, 5)).toEqual(ids.slice(2, 4));
    await setNow(c, plus(T0, 121));
    expect(await claimIds(q, 5)).toEqual(ids.slice(4));
    // Starts that left the window are pruned as claims count.
    const { rows } = await c.query('select count(*)::int as n from absurd.kit_limit_starts where queue_name = $1', [q]);
    expect(rows[0].n).toBe(1);
  });

  it('counts per key: each key has its own window', async () => {
    const q = await newQueue(c, 'rate-key');
    await setLimit(q, 'r', { key: ['tenant'], rate: 1, period: 10 });
    const ids = await spawnSeries(q, 4, (i) => ({ tenant: i % 2 === 0 ? 'a' : 'b' }));
    expect(await claimIds(q, 4)).toEqual([ids[0], ids[1]]);
    // Both started at T0+0.003 (the clock of the last spawn): admitted again at T0+10.003.
    await setNow(c, plus(T0, 10));
    expect(await claimIds(q, 4)).toEqual([]);
    await setNow(c, plus(T0, 10.003));
    expect(await claimIds(q, 4)).toEqual([ids[2], ids[3]]);
  });

  it('a resumed run does not start again; a retry does', async () => {
    const q = await newQueue(c, 'rate-resume');
    await setLimit(q, 'r', { rate: 1, period: 100 });
    const [a, b] = await spawnSeries(q, 2);
    expect(await claimIds(q, 2)).toEqual([a]);
    await scheduleRun(c, q, a!, plus(T0, 5));
    await setNow(c, plus(T0, 5));
    expect(await claimIds(q, 2)).toEqual([a]);
    await failRun(c, q, a!, { message: 'x' }, plus(T0, 6));
    await setNow(c, plus(T0, 6));
    expect(await claimIds(q, 2)).toEqual([]);
    // The window admits one start per 100 s: b (put back at its first claim) and the retry.
    await setNow(c, plus(T0, 100.001));
    const first = await claimIds(q, 2);
    await setNow(c, plus(T0, 150));
    expect(await claimIds(q, 2)).toEqual([]);
    await setNow(c, plus(T0, 200.001));
    const second = await claimIds(q, 2);
    expect([first.length, second.length]).toEqual([1, 1]);
    expect([...first, ...second]).toContain(b);
    expect(first).not.toEqual(second);
  });

  it('combines with a concurrency limit on the same bucket', async () => {
    const q = await newQueue(c, 'rate-both');
    await setLimit(q, 'both', { max: 1, rate: 2, period: 60 });
    const ids = await spawnSeries(q, 3);
    expect(await claimIds(q, 3)).toEqual([ids[0]]);
    await completeRun(c, q, ids[0]!);
    expect(await claimIds(q, 3)).toEqual([ids[1]]);
    await completeRun(c, q, ids[1]!);
    expect(await claimIds(q, 3)).toEqual([]);
    await setNow(c, plus(T0, 60.002));
    expect(await claimIds(q, 3)).toEqual([ids[2]]);
  });
});

describe('a partitioned queue', () => {
  it('parks, releases through the trigger on the partitioned runs table, and un-parks', async () => {
    const q = queueName('lim-part', 'quoted');
    await c.query('select absurd.create_queue($1, $2)', [q, 'partitioned']);
    await setLimit(q, 'all', { max: 1 });
    expect(await hasTrigger(q)).toBe(true);
    const [a, b] = await spawnSeries(q, 2);
    expect(await claimIds(q, 2)).toEqual([a]);
    expect((await waiters(q)).map((w) => w.run_id)).toEqual([b]);
    await completeRun(c, q, a!);
    expect(await claimIds(q, 2)).toEqual([b]);
    await removeLimit(q, 'all');
    expect(await hasTrigger(q)).toBe(false);
  });
});

describe('a queue without limits', () => {
  it('has no trigger and writes no flow-control rows', async () => {
    const q = await createQueue(c, queueName('nolimits', 'quoted'));
    await spawnSeries(q, 3);
    const [run] = await claim(c, q, 'w', 600, 3);
    await completeRun(c, q, run!.run_id);
    expect(await hasTrigger(q)).toBe(false);
    expect(await slots(q)).toEqual([]);
    expect(await waiters(q)).toEqual([]);
  });

  it('claims through the plain path when another queue has limits', async () => {
    const limited = await newQueue(c, 'lim-other');
    await setLimit(limited, 'all', { max: 1 });
    const q = await newQueue(c, 'nolimit-free');
    await spawnSeries(q, 3);
    expect(await claimOne(c, q)).toBeTruthy();
    expect(await claimIds(q, 5)).toHaveLength(2);
  });
});
