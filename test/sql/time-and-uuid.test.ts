import { beforeEach, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { clearNow, expectPgError, one, setNow, useSession } from './helpers.js';

const db = useTestDatabase();
const c = useSession(db);

beforeEach(async () => {
  await clearNow(c);
  await c.query(`set timezone = 'UTC'`);
});

async function value<T>(sql: string, params: unknown[] = []): Promise<T> {
  const { rows } = await c.query<{ v: T }>(sql, params);
  return one(rows).v;
}

/** The smallest v7 UUID of the millisecond `msSinceEpoch`, computed independently of the engine. */
function floorUuid(msSinceEpoch: number): string {
  const hex = msSinceEpoch.toString(16).padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7000-8000-000000000000`;
}

describe('current_time', () => {
  it('returns the fake time when absurd.fake_now is set', async () => {
    await setNow(c, '2024-05-06T07:08:09.123Z');
    expect(await value<Date>('select absurd.current_time() as v')).toEqual(new Date('2024-05-06T07:08:09.123Z'));
  });

  it('honours an explicit offset in the fake time', async () => {
    await c.query(`select set_config('absurd.fake_now', '2024-05-06T09:08:09.123+02:00', false)`);
    expect(await value<Date>('select absurd.current_time() as v')).toEqual(new Date('2024-05-06T07:08:09.123Z'));
  });

  it('reads fake time without an offset in the session time zone', async () => {
    await c.query(`select set_config('absurd.fake_now', '2024-01-01 12:00:00', false)`);
    expect(await value<Date>('select absurd.current_time() as v')).toEqual(new Date('2024-01-01T12:00:00Z'));
    await c.query(`set timezone = 'Asia/Tokyo'`);
    expect(await value<Date>('select absurd.current_time() as v')).toEqual(new Date('2024-01-01T03:00:00Z'));
  });

  it('works with SET and SET LOCAL as well as set_config', async () => {
    await c.query(`set absurd.fake_now = '2030-01-02T03:04:05Z'`);
    expect(await value<Date>('select absurd.current_time() as v')).toEqual(new Date('2030-01-02T03:04:05Z'));
    await c.query('begin');
    await c.query(`set local absurd.fake_now = '2031-01-02T03:04:05Z'`);
    expect(await value<Date>('select absurd.current_time() as v')).toEqual(new Date('2031-01-02T03:04:05Z'));
    await c.query('commit');
    expect(await value<Date>('select absurd.current_time() as v')).toEqual(new Date('2030-01-02T03:04:05Z'));
  });

  it('uses the wall clock when the setting was never defined in the session', async () => {
    const fresh = await db.connect();
    const { rows } = await fresh.query<{ before: Date; t: Date; after: Date }>(
      'select clock_timestamp() as before, absurd.current_time() as t, clock_timestamp() as after',
    );
    const row = one(rows);
    expect(row.t.getTime()).toBeGreaterThanOrEqual(row.before.getTime());
    expect(row.t.getTime()).toBeLessThanOrEqual(row.after.getTime());
  });

  it('uses the wall clock when the setting is blank or reset to default', async () => {
    for (const setup of [`set absurd.fake_now = default`, `select set_config('absurd.fake_now', '   ', false)`, `set absurd.fake_now = ''`]) {
      await setNow(c, '2001-01-01T00:00:00Z');
      await c.query(setup);
      const { rows } = await c.query<{ before: Date; t: Date; after: Date }>(
        'select clock_timestamp() as before, absurd.current_time() as t, clock_timestamp() as after',
      );
      const row = one(rows);
      expect(row.t.getTime(), setup).toBeGreaterThanOrEqual(row.before.getTime());
      expect(row.t.getTime(), setup).toBeLessThanOrEqual(row.after.getTime());
    }
  });

  it('advances inside a transaction (clock_timestamp, not now())', async () => {
    await c.query('begin');
    try {
      const first = await value<Date>('select absurd.current_time() as v');
      await c.query('select pg_sleep(0.05)');
      const { rows } = await c.query<{ t: Date; txn: Date }>('select absurd.current_time() as t, now() as txn');
      const second = one(rows);
      expect(second.t.getTime()).toBeGreaterThan(first.getTime());
      expect(second.t.getTime()).toBeGreaterThan(second.txn.getTime());
    } finally {
      await c.query('rollback');
    }
  });

  it('is a volatile plpgsql function without arguments', async () => {
    const { rows } = await c.query<{ volatile: string; lang: string; result: string }>(
      `select p.provolatile as volatile, l.lanname as lang, p.prorettype::regtype::text as result
         from pg_proc p join pg_language l on l.oid = p.prolang
        where p.oid = 'absurd.current_time()'::regprocedure`,
    );
    expect(one(rows)).toEqual({ volatile: 'v', lang: 'plpgsql', result: 'timestamp with time zone' });
  });
});

describe('get_schema_version', () => {
  it("returns 'main'", async () => {
    expect(await value<string>('select absurd.get_schema_version() as v')).toBe('main');
  });

  it('is probed by to_regprocedure and can be replaced with create or replace', async () => {
    expect(await value<boolean>(`select to_regprocedure('absurd.get_schema_version()') is not null as v`)).toBe(true);
    await c.query('begin');
    try {
      await c.query(`create or replace function absurd.get_schema_version() returns text language sql as $$ select '0.1.1' $$`);
      expect(await value<string>('select absurd.get_schema_version() as v')).toBe('0.1.1');
    } finally {
      await c.query('rollback');
    }
    expect(await value<string>('select absurd.get_schema_version() as v')).toBe('main');
  });
});

describe('UUIDv7 helpers', () => {
  it('portable_uuidv7 embeds the fake time to the millisecond', async () => {
    const at = await setNow(c, '2024-05-06T07:08:09.123Z');
    const { rows } = await c.query<{ id: string; ts: Date }>(
      'select id, absurd.uuidv7_timestamp(id) as ts from (select absurd.portable_uuidv7() as id) x',
    );
    const row = one(rows);
    expect(row.ts).toEqual(at);
    expect(row.id.slice(0, 13)).toBe(floorUuid(at.getTime()).slice(0, 13));
  });

  it('portable_uuidv7 sets the version and variant bits and stays within the millisecond floor bounds', async () => {
    await setNow(c, '2024-05-06T07:08:09.123Z');
    const { rows } = await c.query<{ id: string; lower_ok: boolean; upper_ok: boolean }>(
      `select id,
              id >= absurd.uuidv7_floor(absurd.current_time()) as lower_ok,
              id < absurd.uuidv7_floor(absurd.current_time() + interval '1 millisecond') as upper_ok
         from (select absurd.portable_uuidv7() as id from generate_series(1, 50)) x`,
    );
    expect(rows).toHaveLength(50);
    for (const row of rows) {
      expect(row.id[14]).toBe('7');
      expect('89ab').toContain(row.id[19]);
      expect(row.lower_ok && row.upper_ok).toBe(true);
    }
    expect(new Set(rows.map((r) => r.id)).size).toBe(50);
  });

  it('portable_uuidv7 follows the wall clock without fake time', async () => {
    const { rows } = await c.query<{ before: Date; ts: Date; after: Date }>(
      `select clock_timestamp() as before, absurd.uuidv7_timestamp(absurd.portable_uuidv7()) as ts, clock_timestamp() as after`,
    );
    const row = one(rows);
    expect(row.ts.getTime()).toBeGreaterThanOrEqual(Math.floor(row.before.getTime()));
    expect(row.ts.getTime()).toBeLessThanOrEqual(row.after.getTime());
  });

  it('uuidv7_timestamp is NULL for a version-4 UUID and for NULL', async () => {
    expect(await value<Date | null>('select absurd.uuidv7_timestamp(gen_random_uuid()) as v')).toBeNull();
    expect(await value<Date | null>('select absurd.uuidv7_timestamp(null) as v')).toBeNull();
  });

  it('uuidv7_timestamp decodes the first 48 bits of a v7 UUID', async () => {
    const at = new Date('2023-11-14T22:13:20.456Z');
    expect(await value<Date>('select absurd.uuidv7_timestamp($1::uuid) as v', [floorUuid(at.getTime()).replace(/0000$/, 'beef')])).toEqual(
      at,
    );
  });

  it('uuidv7_floor gives the smallest v7 UUID of the millisecond, rounding down', async () => {
    const at = new Date('2024-05-06T07:08:09.123Z');
    expect(await value<string>(`select absurd.uuidv7_floor('2024-05-06T07:08:09.123Z') as v`)).toBe(floorUuid(at.getTime()));
    expect(await value<string>(`select absurd.uuidv7_floor('2024-05-06T07:08:09.123999Z') as v`)).toBe(floorUuid(at.getTime()));
    expect(await value<string>(`select absurd.uuidv7_floor('1970-01-01T00:00:00Z') as v`)).toBe('00000000-0000-7000-8000-000000000000');
    expect(await value<Date>(`select absurd.uuidv7_timestamp(absurd.uuidv7_floor('2024-05-06T07:08:09.123999Z')) as v`)).toEqual(at);
    expect(await value<string | null>('select absurd.uuidv7_floor(null) as v')).toBeNull();
  });

  it('uuidv7_floor accepts the largest 48-bit millisecond and rejects times outside the range', async () => {
    const maxMs = 2 ** 48 - 1;
    // 2^48 - 1 ms after the epoch is 10889-08-02 05:31:50.655 UTC.
    expect(await value<string>(`select absurd.uuidv7_floor(make_timestamptz(10889, 8, 2, 5, 31, 50.655, 'UTC')) as v`)).toBe(
      floorUuid(maxMs),
    );
    expect(floorUuid(maxMs)).toBe('ffffffff-ffff-7000-8000-000000000000');
    await expectPgError(c.query(`select absurd.uuidv7_floor('1969-12-31T23:59:59.999Z')`), 'P0001');
    await expectPgError(c.query(`select absurd.uuidv7_floor(make_timestamptz(10889, 8, 2, 5, 31, 50.656, 'UTC'))`), 'P0001');
  });

  it('week_bucket_utc returns Monday 00:00 UTC of the ISO week', async () => {
    expect(await value<Date>(`select absurd.week_bucket_utc('2024-04-03 15:30Z') as v`)).toEqual(new Date('2024-04-01T00:00:00Z'));
    expect(await value<Date>(`select absurd.week_bucket_utc('2024-04-01 00:00Z') as v`)).toEqual(new Date('2024-04-01T00:00:00Z'));
    expect(await value<Date>(`select absurd.week_bucket_utc('2024-03-31 23:59:59.999Z') as v`)).toEqual(
      new Date('2024-03-25T00:00:00Z'),
    );
  });

  it('week_bucket_utc works in UTC whatever the session time zone', async () => {
    await c.query(`set timezone = 'Asia/Tokyo'`);
    // 2024-04-01 05:00 in Tokyo is still Sunday 2024-03-31 20:00 UTC.
    expect(await value<Date>(`select absurd.week_bucket_utc('2024-04-01 05:00+09') as v`)).toEqual(new Date('2024-03-25T00:00:00Z'));
  });

  it('partition_week_tag is the last ISO-year digit and the two-digit ISO week', async () => {
    expect(await value<string>(`select absurd.partition_week_tag('2021-01-01Z') as v`)).toBe('053');
    expect(await value<string>(`select absurd.partition_week_tag('2024-12-31Z') as v`)).toBe('501');
    expect(await value<string>(`select absurd.partition_week_tag('2024-04-03 15:30Z') as v`)).toBe('414');
    await c.query(`set timezone = 'Asia/Tokyo'`);
    expect(await value<string>(`select absurd.partition_week_tag('2024-04-01 05:00+09') as v`)).toBe('413');
  });

  it('declares the documented volatility and strictness', async () => {
    const { rows } = await c.query<{ name: string; volatile: string; strict: boolean }>(
      `select p.proname as name, p.provolatile as volatile, p.proisstrict as strict
         from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'absurd'
          and p.proname in ('portable_uuidv7', 'uuidv7_timestamp', 'uuidv7_floor', 'week_bucket_utc', 'partition_week_tag')
        order by p.proname`,
    );
    expect(rows).toEqual([
      { name: 'partition_week_tag', volatile: 'i', strict: true },
      { name: 'portable_uuidv7', volatile: 'v', strict: expect.any(Boolean) },
      { name: 'uuidv7_floor', volatile: 'i', strict: true },
      { name: 'uuidv7_timestamp', volatile: 'i', strict: true },
      { name: 'week_bucket_utc', volatile: 'i', strict: true },
    ]);
  });
});
