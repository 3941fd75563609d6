/**
 * Migration 000030: kit_now() and kit_uuidv7() give what the contract's current_time() and
 * portable_uuidv7() give, as SQL expressions that PostgreSQL inlines into the statements of each
 * queue's functions, which call them instead of the two PL/pgSQL functions.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { callsDuring, clearNow, createQueue, one, queueName, setNow, spawn, table, useSession } from './helpers.js';

const db = useTestDatabase();
const c = useSession(db);

beforeEach(async () => {
  await clearNow(c);
  await c.query(`set timezone = 'UTC'`);
});

/** The settings of absurd.fake_now a test runs under, each as the statements that make it. */
const FAKE_SETTINGS: [string, string[]][] = [
  ['an instant in UTC', [`select set_config('absurd.fake_now', '2024-05-06T07:08:09.123Z', false)`]],
  ['an explicit offset', [`select set_config('absurd.fake_now', '2024-05-06T09:08:09.123+02:00', false)`]],
  ['no offset, in the session time zone', [`set timezone = 'Asia/Tokyo'`, `set absurd.fake_now = '2024-01-01 12:00:00'`]],
  ['blanks around it', [`select set_config('absurd.fake_now', '  2030-01-02T03:04:05Z  ', false)`]],
];

/** The settings under which both read the wall clock. */
const WALL_CLOCK: string[] = [`set absurd.fake_now = default`, `select set_config('absurd.fake_now', '   ', false)`, `set absurd.fake_now = ''`];

describe('kit_now', () => {
  it('is current_time() under every fake time', async () => {
    for (const [label, setup] of FAKE_SETTINGS) {
      await c.query(`set timezone = 'UTC'`);
      for (const statement of setup) await c.query(statement);
      const { rows } = await c.query<{ kit: Date; contract: Date }>('select absurd.kit_now() as kit, absurd.current_time() as contract');
      const row = one(rows);
      expect(row.kit, label).toEqual(row.contract);
    }
  });

  it('reads the wall clock when no fake time is set, and moves inside a transaction', async () => {
    for (const setup of WALL_CLOCK) {
      await setNow(c, '2001-01-01T00:00:00Z');
      await c.query(setup);
      const { rows } = await c.query<{ before: Date; t: Date; after: Date; txn: Date }>(
        'select clock_timestamp() as before, absurd.kit_now() as t, clock_timestamp() as after, now() as txn',
      );
      const row = one(rows);
      expect(row.t.getTime(), setup).toBeGreaterThanOrEqual(row.before.getTime());
      expect(row.t.getTime(), setup).toBeLessThanOrEqual(row.after.getTime());
    }
    await c.query('begin');
    try {
      const first = one((await c.query<{ t: Date }>('select absurd.kit_now() as t')).rows).t;
      await c.query('select pg_sleep(0.01)');
      const second = one((await c.query<{ t: Date; txn: Date }>('select absurd.kit_now() as t, now() as txn')).rows);
      expect(second.t.getTime()).toBeGreaterThan(first.getTime());
      expect(second.t.getTime()).toBeGreaterThan(second.txn.getTime());
    } finally {
      await c.query('rollback');
    }
  });
});

describe('kit_uuidv7', () => {
  it('embeds the fake time to the millisecond, with the version and variant bits, all distinct', async () => {
    for (const [label, setup] of FAKE_SETTINGS) {
      await c.query(`set timezone = 'UTC'`);
      for (const statement of setup) await c.query(statement);
      const { rows } = await c.query<{ id: string; ts: Date; now: Date }>(
        `select id, absurd.uuidv7_timestamp(id) as ts, date_trunc('milliseconds', absurd.current_time()) as now
           from (select absurd.kit_uuidv7() as id from generate_series(1, 20)) x`,
      );
      expect(rows).toHaveLength(20);
      for (const row of rows) {
        expect(row.ts, label).toEqual(row.now);
        expect(row.id[14], label).toBe('7');
        expect('89ab', label).toContain(row.id[19]);
      }
      expect(new Set(rows.map((row) => row.id)).size, label).toBe(20);
    }
  });

  it('follows the wall clock when no fake time is set', async () => {
    for (const setup of WALL_CLOCK) {
      await setNow(c, '2001-01-01T00:00:00Z');
      await c.query(setup);
      const { rows } = await c.query<{ before: Date; id: string; ts: Date; after: Date }>(
        `select clock_timestamp() as before, id, absurd.uuidv7_timestamp(id) as ts, clock_timestamp() as after
           from (select absurd.kit_uuidv7() as id) x`,
      );
      const row = one(rows);
      expect(row.ts.getTime(), setup).toBeGreaterThanOrEqual(row.before.getTime());
      expect(row.ts.getTime(), setup).toBeLessThanOrEqual(row.after.getTime());
      expect(row.id[14], setup).toBe('7');
    }
  });
});

describe("the queue's functions", () => {
  it('call neither portable_uuidv7 (on PostgreSQL 18) nor current_time for a spawn (only the runs table default reads the clock)', async () => {
    const q = await createQueue(c, queueName('inline-clock'));
    await spawn(c, q); // the session's first call of the queue's functions
    const version = one((await c.query<{ v: number }>(`select current_setting('server_version_num')::int as v`)).rows).v;
    await c.query('begin');
    try {
      await c.query(`set local track_functions = 'all'`);
      const calls = await callsDuring(c, ['portable_uuidv7', 'current_time'], () => spawn(c, q));
      // r_<q>.created_at defaults to current_time(), as Absurd's schema has it. Before
      // PostgreSQL 18, kit_uuidv7() is portable_uuidv7() itself, which reads current_time():
      // two ids, two more calls of each.
      const before18 = version < 180000 ? 2 : 0;
      expect(calls).toEqual({ portable_uuidv7: before18, current_time: 1 + before18 });
    } finally {
      await c.query('rollback');
    }
  });

  it('still give a spawn the fake time and ids of that time', async () => {
    const q = await createQueue(c, queueName('inline-clock-fake'));
    const at = await setNow(c, '2024-05-06T07:08:09.123Z');
    const spawned = await spawn(c, q);
    const { rows } = await c.query<{ task: Date; run: Date; enqueue_at: Date; available_at: Date }>(
      `select absurd.uuidv7_timestamp(t.task_id) as task, absurd.uuidv7_timestamp(r.run_id) as run, t.enqueue_at, r.available_at
         from ${table('t', q)} t join ${table('r', q)} r on r.task_id = t.task_id
        where t.task_id = $1`,
      [spawned.task_id],
    );
    expect(one(rows)).toEqual({ task: at, run: at, enqueue_at: at, available_at: at });
  });
});
