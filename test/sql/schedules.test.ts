/**
 * Migration 000015: cron schedules in the engine. The cron parser and its errors, the next tick
 * (Vixie day rule, DST gaps and repeats in New York and Berlin), upsert/pause/resume/remove,
 * firing from claim_task (headers, idempotency key, catch-up after downtime, paused schedules) and
 * exactly one task per tick with many sessions claiming at the same instant.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import {
  claim,
  createQueue,
  expectPgError,
  newQueue,
  one,
  queueName,
  setNow,
  taskRows,
  useSession,
  utcClient,
  type Queryable,
} from './helpers.js';

const db = useTestDatabase();
const c = useSession(db, { outsideSchema: true, now: null });

/** A row of kit_schedules as the functions return it. */
interface ScheduleRow {
  schedule_name: string;
  queue_name: string;
  task_name: string;
  cron: string;
  timezone: string;
  params: unknown;
  options: unknown;
  catch_up: string;
  paused: boolean;
  next_fire_at: Date | null;
  last_fired_at: Date | null;
  last_task_id: string | null;
  last_error: string | null;
}

async function parse(cron: string): Promise<Record<string, unknown>> {
  return one((await c.query<{ spec: Record<string, unknown> }>('select absurd.kit_cron_parse($1) as spec', [cron])).rows).spec;
}

/** kit_cron_next as an ISO string (null when it never fires). */
async function next(cron: string, timezone: string, after: string): Promise<string | null> {
  const { rows } = await c.query<{ at: Date | null }>('select absurd.kit_cron_next($1, $2, $3) as at', [cron, timezone, after]);
  return one(rows).at?.toISOString() ?? null;
}

/** The first `count` ticks after `after`, each found from the one before. */
async function ticks(cron: string, timezone: string, after: string, count: number): Promise<string[]> {
  const out: string[] = [];
  let from = after;
  for (let i = 0; i < count; i++) {
    const at = await next(cron, timezone, from);
    if (at === null) break;
    out.push(at);
    from = at;
  }
  return out;
}

let scheduleSequence = 0;

/** Creates (or updates) a schedule; the name is made unique unless `name` is given. */
async function upsert(
  client: Queryable,
  queue: string,
  fields: { name?: string; task?: string; cron: string; timezone?: string | null; params?: unknown; options?: unknown; catchUp?: string | null },
): Promise<ScheduleRow> {
  scheduleSequence += 1;
  const { rows } = await client.query<ScheduleRow>('select * from absurd.kit_upsert_schedule($1, $2, $3, $4, $5, $6, $7, $8)', [
    fields.name ?? `${queue}/s${scheduleSequence}`,
    queue,
    fields.task ?? 'scheduled-job',
    fields.cron,
    fields.timezone === undefined ? 'UTC' : fields.timezone,
    JSON.stringify(fields.params ?? {}),
    JSON.stringify(fields.options ?? {}),
    fields.catchUp === undefined ? 'skip' : fields.catchUp,
  ]);
  return one(rows);
}

async function schedule(client: Queryable, name: string): Promise<ScheduleRow> {
  return one((await client.query<ScheduleRow>('select * from absurd.kit_schedules where schedule_name = $1', [name])).rows);
}

async function fire(client: Queryable, queue: string): Promise<number> {
  return one((await client.query<{ n: number }>('select absurd.kit_fire_schedules($1) as n', [queue])).rows).n;
}

/** Each task of the queue as (scheduled_at header, idempotency key), oldest first. */
async function scheduledTasks(queue: string): Promise<{ at: unknown; key: string | null; schedule: unknown }[]> {
  return (await taskRows(c, queue)).map((t) => ({
    at: (t.headers as Record<string, unknown> | null)?.['absurd.scheduled_at'],
    schedule: (t.headers as Record<string, unknown> | null)?.['absurd.schedule'],
    key: t.idempotency_key,
  }));
}

describe('cron parsing', () => {
  it('accepts lists, ranges, steps, names in any case, and folds weekday 7 into Sunday', async () => {
    expect(await parse('*/15 9-17/4 1,15,31 jan-MAR,Dec mon-fri,7')).toEqual({
      minute: [0, 15, 30, 45],
      hour: [9, 13, 17],
      dom: [1, 15, 31],
      month: [1, 2, 3, 12],
      dow: [0, 1, 2, 3, 4, 5],
      dom_star: false,
      dow_star: false,
    });
    expect(await parse('  50/5 0 * * 0,7  ')).toMatchObject({ minute: [50, 55], dow: [0], dom_star: true, dow_star: false });
    expect(await parse('1-5/2 * */10 * *')).toMatchObject({ minute: [1, 3, 5], dom: [1, 11, 21, 31], dom_star: true, dow_star: true });
  });

  it('expands the macros', async () => {
    const fields = async (cron: string) => {
      const spec = await parse(cron);
      return [spec.minute, spec.hour, spec.dom, spec.month, spec.dow].map((v) => (v as number[]).join(','));
    };
    const all = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i).join(',');
    expect(await fields('@hourly')).toEqual(['0', all(0, 23), all(1, 31), all(1, 12), all(0, 6)]);
    expect(await fields('@daily')).toEqual(['0', '0', all(1, 31), all(1, 12), all(0, 6)]);
    expect(await fields('@midnight')).toEqual(await fields('@daily'));
    expect(await fields('@weekly')).toEqual(['0', '0', all(1, 31), all(1, 12), '0']);
    expect(await fields('@monthly')).toEqual(['0', '0', '1', all(1, 12), all(0, 6)]);
    expect(await fields('@YEARLY')).toEqual(['0', '0', '1', '1', all(0, 6)]);
    expect(await fields('@annually')).toEqual(await fields('@yearly'));
  });

  it.each([
    ['61 * * * *', 'minute field "61": 61 is out of range 0-59'],
    ['* 24 * * *', 'hour field "24": 24 is out of range 0-23'],
    ['* * 0 * *', 'day-of-month field "0": 0 is out of range 1-31'],
    ['* * * 13 *', 'month field "13": 13 is out of range 1-12'],
    ['* * * * 8', 'day-of-week field "8": 8 is out of range 0-7'],
    ['* * * * Funday', 'day-of-week field "Funday": "Funday" is not a number or a name (SUN, MON, TUE, WED, THU, FRI, SAT)'],
    ['* * * JANUARY *', 'month field "JANUARY": "JANUARY" is not a number or a name'],
    ['* MON * * *', 'hour field "MON": "MON" is not a number'],
    ['*/0 * * * *', 'minute field "*/0": step must be at least 1'],
    ['5-1 * * * *', 'minute field "5-1": range "5-1" goes backwards'],
    ['1-2-3 * * * *', 'minute field "1-2-3": "1-2-3" is not a range'],
    ['1,,2 * * * *', 'minute field "1,,2": "" is not a value, range or step'],
    ['*/x * * * *', 'minute field "*/x": "*/x" is not a value, range or step'],
    ['* * * *', 'expected 5 fields (minute hour day-of-month month day-of-week), got 4'],
    ['* * * * * *', 'expected 5 fields (minute hour day-of-month month day-of-week), got 6'],
    ['', 'expected 5 fields (minute hour day-of-month month day-of-week), got 0'],
    ['@reboot', 'unknown macro'],
  ])('refuses %j with AB010 naming the field', async (cron, message) => {
    await expectPgError(parse(cron), 'AB010', `invalid cron expression "${cron}": ${message}`);
  });
});

describe('next tick', () => {
  it('finds the next minute, hour, day and month in UTC', async () => {
    expect(await ticks('*/20 * * * *', 'UTC', '2024-05-01T10:05:00Z', 4)).toEqual([
      '2024-05-01T10:20:00.000Z',
      '2024-05-01T10:40:00.000Z',
      '2024-05-01T11:00:00.000Z',
      '2024-05-01T11:20:00.000Z',
    ]);
    // Strictly after: a tick exactly at `after` is not returned again; seconds round up.
    expect(await next('0 12 * * *', 'UTC', '2024-05-01T12:00:00Z')).toBe('2024-05-02T12:00:00.000Z');
    expect(await next('0 12 * * *', 'UTC', '2024-05-01T11:59:59.999Z')).toBe('2024-05-01T12:00:00.000Z');
    expect(await next('0 0 1 * *', 'UTC', '2024-12-15T00:00:00Z')).toBe('2025-01-01T00:00:00.000Z');
    expect(await next('@yearly', 'UTC', '2024-01-01T00:00:00Z')).toBe('2025-01-01T00:00:00.000Z');
    expect(await next('30 6 * * *', 'Asia/Kolkata', '2024-05-01T00:00:00Z')).toBe('2024-05-01T01:00:00.000Z');
  });

  it('follows Vixie cron for the day fields: either when both are restricted, both when one starts with *', async () => {
    // The 13th OR any Friday (2024-09-06 is a Friday, the 13th a Friday too).
    expect(await ticks('0 0 13 * FRI', 'UTC', '2024-09-01T00:00:00Z', 4)).toEqual([
      '2024-09-06T00:00:00.000Z',
      '2024-09-13T00:00:00.000Z',
      '2024-09-20T00:00:00.000Z',
      '2024-09-27T00:00:00.000Z',
    ]);
    expect(await ticks('0 0 10 * 1', 'UTC', '2024-09-01T00:00:00Z', 3)).toEqual([
      '2024-09-02T00:00:00.000Z',
      '2024-09-09T00:00:00.000Z',
      '2024-09-10T00:00:00.000Z',
    ]);
    // Day of week alone; `*/2` in day-of-month starts with `*`, so both must match: odd Mondays.
    expect(await ticks('0 0 * * MON', 'UTC', '2024-09-01T00:00:00Z', 2)).toEqual(['2024-09-02T00:00:00.000Z', '2024-09-09T00:00:00.000Z']);
    expect(await ticks('0 0 */2 * 1', 'UTC', '2024-09-01T00:00:00Z', 2)).toEqual(['2024-09-09T00:00:00.000Z', '2024-09-23T00:00:00.000Z']);
  });

  it('finds the 29th of February years ahead, and NULL for a day that never comes', async () => {
    expect(await next('0 0 29 2 *', 'UTC', '2096-03-01T00:00:00Z')).toBe('2104-02-29T00:00:00.000Z');
    expect(await next('0 0 30 2 *', 'UTC', '2024-01-01T00:00:00Z')).toBeNull();
    expect(await next('0 0 31 4,6,9,11 *', 'UTC', '2024-01-01T00:00:00Z')).toBeNull();
  });

  it('America/New_York spring forward: 02:30 fires once at 03:00 EDT, a gap full of ticks fires once', async () => {
    // 2024-03-10: 02:00 EST (07:00Z) becomes 03:00 EDT.
    expect(await ticks('30 2 * * *', 'America/New_York', '2024-03-09T12:00:00Z', 3)).toEqual([
      '2024-03-10T07:00:00.000Z', // 03:00 EDT, the first instant after the gap
      '2024-03-11T06:30:00.000Z', // 02:30 EDT
      '2024-03-12T06:30:00.000Z',
    ]);
    expect(await ticks('*/20 * * * *', 'America/New_York', '2024-03-10T06:30:00Z', 4)).toEqual([
      '2024-03-10T06:40:00.000Z', // 01:40 EST
      '2024-03-10T07:00:00.000Z', // 02:00, 02:20, 02:40 (in the gap) and 03:00 EDT: one instant, one tick
      '2024-03-10T07:20:00.000Z',
      '2024-03-10T07:40:00.000Z',
    ]);
  });

  it('America/New_York fall back: 01:30 fires once, at its first occurrence (EDT)', async () => {
    // 2024-11-03: 02:00 EDT (06:00Z) becomes 01:00 EST.
    expect(await ticks('30 1 * * *', 'America/New_York', '2024-11-02T12:00:00Z', 3)).toEqual([
      '2024-11-03T05:30:00.000Z', // 01:30 EDT; 01:30 EST (06:30Z) does not fire
      '2024-11-04T06:30:00.000Z',
      '2024-11-05T06:30:00.000Z',
    ]);
    expect(await ticks('0 * * * *', 'America/New_York', '2024-11-03T04:30:00Z', 3)).toEqual([
      '2024-11-03T05:00:00.000Z', // 01:00 EDT
      '2024-11-03T07:00:00.000Z', // 02:00 EST: the repeated 01:00 fired already
      '2024-11-03T08:00:00.000Z',
    ]);
    // Asked from inside the repeated hour, the repeat still does not fire.
    expect(await next('45 1 * * *', 'America/New_York', '2024-11-03T06:10:00Z')).toBe('2024-11-04T06:45:00.000Z');
  });

  it('Europe/Berlin: spring forward and fall back at 02:30', async () => {
    // 2024-03-31: 02:00 CET (01:00Z) becomes 03:00 CEST; 2024-10-27: 03:00 CEST (01:00Z) becomes 02:00 CET.
    expect(await ticks('30 2 * * *', 'Europe/Berlin', '2024-03-30T12:00:00Z', 2)).toEqual([
      '2024-03-31T01:00:00.000Z',
      '2024-04-01T00:30:00.000Z',
    ]);
    expect(await ticks('30 2 * * *', 'Europe/Berlin', '2024-10-26T12:00:00Z', 2)).toEqual([
      '2024-10-27T00:30:00.000Z',
      '2024-10-28T01:30:00.000Z',
    ]);
  });
});

describe('managing schedules', () => {
  it('upsert computes the first tick from absurd.current_time() and returns the row', async () => {
    const q = await newQueue(c, 'upsert');
    await setNow(c, '2024-05-01T10:07:30Z');
    const row = await upsert(c, q, { cron: '*/15 * * * *', timezone: 'Europe/Berlin', params: { n: 1 }, options: { max_attempts: 2 }, catchUp: 'latest' });
    expect(row).toMatchObject({
      queue_name: q,
      task_name: 'scheduled-job',
      timezone: 'Europe/Berlin',
      params: { n: 1 },
      options: { max_attempts: 2 },
      catch_up: 'latest',
      paused: false,
      next_fire_at: new Date('2024-05-01T10:15:00Z'),
      last_fired_at: null,
    });
  });

  it('re-declaring keeps the next tick unless cron or time zone change', async () => {
    const q = await newQueue(c, 'redeclare');
    await setNow(c, '2024-05-01T10:00:30Z');
    const name = `${q}/daily`;
    await upsert(c, q, { name, cron: '0 9 * * *' });
    await setNow(c, '2024-05-03T00:00:00Z'); // ticks have passed unfired: re-declaring must not skip them
    expect((await upsert(c, q, { name, cron: '0 9 * * *', params: { v: 2 } })).next_fire_at).toEqual(new Date('2024-05-02T09:00:00Z'));
    expect((await schedule(c, name)).params).toEqual({ v: 2 });
    expect((await upsert(c, q, { name, cron: '0 9 * * *', timezone: 'America/New_York' })).next_fire_at).toEqual(
      new Date('2024-05-03T13:00:00Z'),
    );
    expect((await upsert(c, q, { name, cron: '0 10 * * *', timezone: 'America/New_York' })).next_fire_at).toEqual(
      new Date('2024-05-03T14:00:00Z'),
    );
  });

  it('refuses bad arguments with stable codes and changes nothing', async () => {
    const q = await newQueue(c, 'refuse');
    await expectPgError(upsert(c, q, { cron: '0 0 30 2 *' }), 'AB010', 'it never fires');
    await expectPgError(upsert(c, q, { cron: '* * *' }), 'AB010', 'expected 5 fields');
    await expectPgError(upsert(c, q, { cron: '@daily', timezone: 'Mars/Olympus_Mons' }), 'AB011', 'unknown time zone "Mars/Olympus_Mons"');
    await expectPgError(upsert(c, q, { cron: '@daily', timezone: 'UTC+5' }), 'AB011');
    await expectPgError(upsert(c, queueName('missing'), { cron: '@daily' }), 'AB013', 'does not exist');
    await expectPgError(upsert(c, q, { cron: '@daily', catchUp: 'all' }), 'AB014', "catch_up must be 'skip' or 'latest'");
    await expectPgError(upsert(c, q, { cron: '@daily', options: { idempotency_key: 'k' } }), 'AB014', 'idempotency_key');
    await expectPgError(upsert(c, q, { cron: '@daily', options: [] }), 'AB014', 'options must be a JSON object');
    await expectPgError(upsert(c, q, { cron: '@daily', task: ' ' }), 'AB014', 'task name');
    await expectPgError(upsert(c, q, { name: '', cron: '@daily' }), 'AB014', 'schedule name');
    expect((await c.query('select * from absurd.kit_list_schedules($1)', [q])).rows).toEqual([]);
  });

  it('pause, resume, remove and list', async () => {
    const q = await newQueue(c, 'pause');
    await setNow(c, '2024-05-01T10:00:30Z');
    const a = await upsert(c, q, { name: `${q}/a`, cron: '0 * * * *' });
    await upsert(c, q, { name: `${q}/b`, cron: '30 * * * *' });
    const paused = one((await c.query<ScheduleRow>('select * from absurd.kit_set_schedule_paused($1, true)', [a.schedule_name])).rows);
    expect(paused.paused).toBe(true);
    // Re-declaring keeps the operator's pause.
    expect((await upsert(c, q, { name: a.schedule_name, cron: '0 * * * *' })).paused).toBe(true);
    await setNow(c, '2024-05-01T15:10:00Z');
    const resumed = one((await c.query<ScheduleRow>('select * from absurd.kit_set_schedule_paused($1, false)', [a.schedule_name])).rows);
    expect(resumed).toMatchObject({ paused: false, next_fire_at: new Date('2024-05-01T16:00:00Z') });
    const listed = (await c.query<ScheduleRow>('select * from absurd.kit_list_schedules($1)', [q])).rows;
    expect(listed.map((r) => r.schedule_name)).toEqual([`${q}/a`, `${q}/b`]);
    expect(one((await c.query<{ ok: boolean }>('select absurd.kit_remove_schedule($1) as ok', [`${q}/b`])).rows).ok).toBe(true);
    expect(one((await c.query<{ ok: boolean }>('select absurd.kit_remove_schedule($1) as ok', [`${q}/b`])).rows).ok).toBe(false);
    await expectPgError(c.query('select * from absurd.kit_set_schedule_paused($1, true)', [`${q}/b`]), 'AB012', `schedule "${q}/b" does not exist`);
    expect((await c.query<ScheduleRow>('select * from absurd.kit_list_schedules($1)', [q])).rows.map((r) => r.schedule_name)).toEqual([`${q}/a`]);
  });
});

describe('firing', () => {
  it('claim_task fires a due tick and claims its task: params, options, headers and the tick key', async () => {
    const q = await newQueue(c, 'fire');
    await setNow(c, '2024-05-01T09:59:00Z');
    const s = await upsert(c, q, {
      cron: '0 10 * * *',
      params: { report: 'daily' },
      options: { max_attempts: 3, headers: { team: 'ops' } },
    });
    expect(await claim(c, q)).toEqual([]);
    await setNow(c, '2024-05-01T10:00:02Z');
    const [run, ...rest] = await claim(c, q);
    expect(rest).toEqual([]);
    expect(run).toMatchObject({
      task_name: 'scheduled-job',
      params: { report: 'daily' },
      max_attempts: 3,
      headers: { team: 'ops', 'absurd.schedule': s.schedule_name, 'absurd.scheduled_at': '2024-05-01T10:00:00Z' },
    });
    const task = one(await taskRows(c, q));
    expect(task.idempotency_key).toBe(`$schedule:${s.schedule_name}:2024-05-01T10:00:00Z`);
    expect(await schedule(c, s.schedule_name)).toMatchObject({
      next_fire_at: new Date('2024-05-02T10:00:00Z'),
      last_fired_at: new Date('2024-05-01T10:00:00Z'),
      last_task_id: task.task_id,
      last_error: null,
    });
    // Nothing more until the next tick.
    expect(await claim(c, q)).toEqual([]);
    expect(await taskRows(c, q)).toHaveLength(1);
  });

  it("'skip' after downtime fires nothing for missed ticks and waits for the next one; a tick under 60 s late fires", async () => {
    const q = await newQueue(c, 'skip');
    await setNow(c, '2024-05-01T09:00:30Z');
    const s = await upsert(c, q, { cron: '*/10 * * * *', catchUp: 'skip' });
    await setNow(c, '2024-05-03T17:21:30Z'); // two days of ticks missed; the latest (17:20) is 90 s late
    expect(await fire(c, q)).toBe(0);
    expect(await taskRows(c, q)).toEqual([]);
    expect((await schedule(c, s.schedule_name)).next_fire_at).toEqual(new Date('2024-05-03T17:30:00Z'));
    await setNow(c, '2024-05-03T17:31:00Z'); // 60 s late: still fires
    expect(await fire(c, q)).toBe(1);
    expect(await scheduledTasks(q)).toEqual([
      { at: '2024-05-03T17:30:00Z', schedule: s.schedule_name, key: `$schedule:${s.schedule_name}:2024-05-03T17:30:00Z` },
    ]);
  });

  it("'latest' after downtime fires the latest missed tick once, computed without walking every tick", async () => {
    const q = await newQueue(c, 'latest');
    await setNow(c, '2023-01-01T00:00:30Z');
    const s = await upsert(c, q, { cron: '* * * * *', catchUp: 'latest' });
    await setNow(c, '2024-06-01T10:00:42Z'); // ~760,000 missed ticks
    const started = Date.now();
    expect(await fire(c, q)).toBe(1);
    expect(Date.now() - started).toBeLessThan(2000);
    expect((await scheduledTasks(q)).map((t) => t.at)).toEqual(['2024-06-01T10:00:00Z']);
    expect(await schedule(c, s.schedule_name)).toMatchObject({
      next_fire_at: new Date('2024-06-01T10:01:00Z'),
      last_fired_at: new Date('2024-06-01T10:00:00Z'),
    });
    expect(await fire(c, q)).toBe(0);
  });

  it("'latest' with a DST gap in the missed span fires the latest local tick", async () => {
    const q = await newQueue(c, 'latest-dst');
    await setNow(c, '2024-03-08T12:00:00Z');
    await upsert(c, q, { cron: '30 2 * * *', timezone: 'America/New_York', catchUp: 'latest' });
    await setNow(c, '2024-03-10T09:00:00Z'); // missed 03-09 02:30 EST and 03-10 03:00 EDT (the gap's tick)
    expect(await fire(c, q)).toBe(1);
    expect((await scheduledTasks(q)).map((t) => t.at)).toEqual(['2024-03-10T07:00:00Z']);
  });

  it('a paused schedule fires nothing; resumed, it starts from the next tick', async () => {
    const q = await newQueue(c, 'paused');
    await setNow(c, '2024-05-01T09:00:30Z');
    const s = await upsert(c, q, { cron: '0 * * * *', catchUp: 'latest' });
    await c.query('select absurd.kit_set_schedule_paused($1, true)', [s.schedule_name]);
    await setNow(c, '2024-05-01T12:00:00Z');
    expect(await claim(c, q)).toEqual([]);
    expect(await fire(c, q)).toBe(0);
    await c.query('select absurd.kit_set_schedule_paused($1, false)', [s.schedule_name]);
    expect(await fire(c, q)).toBe(0);
    await setNow(c, '2024-05-01T13:00:00Z');
    expect(await fire(c, q)).toBe(1);
    expect((await scheduledTasks(q)).map((t) => t.at)).toEqual(['2024-05-01T13:00:00Z']);
  });

  it('a second firing of the same tick creates nothing (the idempotency key)', async () => {
    const q = await newQueue(c, 'refire');
    await setNow(c, '2024-05-01T09:59:00Z');
    const s = await upsert(c, q, { cron: '0 10 * * *', catchUp: 'latest' });
    await setNow(c, '2024-05-01T10:00:00Z');
    expect(await fire(c, q)).toBe(1);
    // As if a racing caller had got past the row lock with the old next_fire_at.
    await c.query(`update absurd.kit_schedules set next_fire_at = '2024-05-01T10:00:00Z' where schedule_name = $1`, [s.schedule_name]);
    expect(await fire(c, q)).toBe(0);
    expect(await taskRows(c, q)).toHaveLength(1);
    expect((await schedule(c, s.schedule_name)).next_fire_at).toEqual(new Date('2024-05-02T10:00:00Z'));
  });

  it('only the queue claimed on fires its schedules', async () => {
    const q1 = await newQueue(c, 'own-1');
    const q2 = await newQueue(c, 'own-2');
    await setNow(c, '2024-05-01T09:59:00Z');
    await upsert(c, q1, { cron: '0 10 * * *' });
    await upsert(c, q2, { cron: '0 10 * * *' });
    await setNow(c, '2024-05-01T10:00:00Z');
    expect(await claim(c, q1)).toHaveLength(1);
    expect(await taskRows(c, q2)).toEqual([]);
  });

  it('a spawn that fails is recorded in last_error and does not block claims', async () => {
    const q = await newQueue(c, 'broken');
    await setNow(c, '2024-05-01T09:59:00Z');
    const s = await upsert(c, q, { cron: '0 10 * * *', options: { max_attempts: 0 } });
    await setNow(c, '2024-05-01T10:00:00Z');
    expect(await claim(c, q)).toEqual([]);
    expect(await schedule(c, s.schedule_name)).toMatchObject({
      last_error: 'max_attempts must be >= 1',
      last_task_id: null,
      next_fire_at: new Date('2024-05-02T10:00:00Z'),
    });
  });

  it('kit_seconds_until_next_run counts the next tick of unpaused schedules', async () => {
    const q = await newQueue(c, 'until');
    await setNow(c, '2024-05-01T09:59:00Z');
    const seconds = async () => one((await c.query<{ s: number | null }>('select absurd.kit_seconds_until_next_run($1) as s', [q])).rows).s;
    expect(await seconds()).toBeNull();
    const s = await upsert(c, q, { cron: '0 10 * * *' });
    expect(await seconds()).toBe(60);
    await c.query('select absurd.kit_set_schedule_paused($1, true)', [s.schedule_name]);
    expect(await seconds()).toBeNull();
  });
});

describe('exactly one task per tick', () => {
  const SESSIONS = 8;
  const sessions: pg.Client[] = [];

  beforeAll(async () => {
    for (let i = 0; i < SESSIONS; i++) {
      const session = await utcClient(db, { outsideSchema: true });
      await session.query(`set statement_timeout = '20s'`);
      sessions.push(session);
    }
  });

  afterAll(async () => {
    for (const session of sessions) await session.query('rollback').catch(() => undefined);
  });

  it('8 sessions claiming at the same instant, tick after tick, create one task per tick', async () => {
    const q = await createQueue(c, queueName('crowd'));
    await setNow(c, '2024-05-01T09:59:30Z');
    const s = await upsert(c, q, { cron: '* * * * *', catchUp: 'latest' });
    const expected: string[] = [];
    for (let minute = 0; minute < 5; minute++) {
      const at = new Date(Date.parse('2024-05-01T10:00:00Z') + minute * 60_000);
      expected.push(at.toISOString().replace('.000Z', 'Z'));
      for (const session of sessions) await setNow(session, new Date(at.getTime() + 5_000));
      // Each session holds its claim's transaction open until all have claimed, so that they
      // overlap; every one of them must either fire the tick or skip the locked schedule row.
      await Promise.all(sessions.map((session) => session.query('begin')));
      const claimed = await Promise.all(
        sessions.map((session, i) => session.query('select * from absurd.claim_task($1, $2, 3600, 4)', [q, `w${i}`])),
      );
      await Promise.all(sessions.map((session) => session.query('commit')));
      expect(claimed.reduce((n, r) => n + r.rows.length, 0)).toBe(1);
    }
    const tasks = await scheduledTasks(q);
    expect(tasks.map((t) => t.at)).toEqual(expected);
    expect(new Set(tasks.map((t) => t.key)).size).toBe(5);
    expect((await schedule(c, s.schedule_name)).next_fire_at).toEqual(new Date('2024-05-01T10:05:00Z'));
  });

  it('8 sessions firing concurrently in autocommit create one task per tick too', async () => {
    const q = await createQueue(c, queueName('crowd-auto'));
    await setNow(c, '2024-05-01T09:59:30Z');
    await upsert(c, q, { cron: '* * * * *', catchUp: 'latest' });
    for (let minute = 0; minute < 3; minute++) {
      const at = new Date(Date.parse('2024-05-01T10:00:00Z') + minute * 60_000);
      for (const session of sessions) await setNow(session, at);
      const fired = await Promise.all(sessions.map((session) => fire(session, q)));
      expect(fired.reduce((a, b) => a + b, 0)).toBe(1);
    }
    expect(await taskRows(c, q)).toHaveLength(3);
  });
});
