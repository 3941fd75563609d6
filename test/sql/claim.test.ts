import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import {
  backendPid,
  claim,
  claimOne,
  completeRun,
  createQueue,
  expectPgError,
  insertWait,
  plus,
  queueName,
  runRow,
  runRows,
  scheduleRun,
  setNow,
  spawn,
  table,
  taskRow,
  useSession,
  utcClient,
  waitRows,
} from './helpers.js';

const db = useTestDatabase();
const T0 = new Date('2024-05-01T10:00:00.000Z');
const c = useSession(db, { now: T0 });

describe('claim_task', () => {
  it('returns the ten documented columns for a claimed run', async () => {
    const q = await createQueue(c, queueName('cols'));
    const options = {
      headers: { h: '1' },
      retry_strategy: { kind: 'fixed', base_seconds: 5 },
      max_attempts: 4,
      cancellation: { max_duration: 1000 },
    };
    const spawned = await spawn(c, q, 'resize', { img: 'a.png' }, options);
    const { rows, fields } = await c.query('select * from absurd.claim_task($1, $2, $3, $4)', [q, 'w1', 60, 1]);
    expect(fields.map((f) => f.name)).toEqual([
      'run_id',
      'task_id',
      'attempt',
      'task_name',
      'params',
      'retry_strategy',
      'max_attempts',
      'headers',
      'wake_event',
      'event_payload',
    ]);
    expect(rows).toEqual([
      {
        run_id: spawned.run_id,
        task_id: spawned.task_id,
        attempt: 1,
        task_name: 'resize',
        params: { img: 'a.png' },
        retry_strategy: options.retry_strategy,
        max_attempts: 4,
        headers: options.headers,
        wake_event: null,
        event_payload: null,
      },
    ]);
  });

  it('marks the run and the task running with a lease', async () => {
    const q = await createQueue(c, queueName('lease'));
    const spawned = await spawn(c, q);
    const claimAt = await setNow(c, plus(T0, 7));
    await claimOne(c, q, 'worker-7', 45);
    expect(await runRow(c, q, spawned.run_id)).toMatchObject({
      state: 'running',
      claimed_by: 'worker-7',
      claim_expires_at: plus(claimAt, 45),
      started_at: claimAt,
      available_at: claimAt,
      created_at: T0,
    });
    expect(await taskRow(c, q, spawned.task_id)).toMatchObject({
      state: 'running',
      attempts: 1,
      first_started_at: claimAt,
      last_attempt_run: spawned.run_id,
      enqueue_at: T0,
    });
  });

  it('defaults to a 30 second lease and one run', async () => {
    const q = await createQueue(c, queueName('defaults'));
    await spawn(c, q);
    await spawn(c, q);
    const { rows } = await c.query<{ run_id: string }>('select * from absurd.claim_task($1, $2)', [q, 'w']);
    expect(rows).toHaveLength(1);
    expect((await runRow(c, q, rows[0]!.run_id)).claim_expires_at).toEqual(plus(T0, 30));
  });

  it('normalises NULL and out-of-range arguments', async () => {
    const q = await createQueue(c, queueName('norm'));
    const a = await spawn(c, q);
    const b = await spawn(c, q);
    const d = await spawn(c, q);
    const e = await spawn(c, q);
    const ordered = [a, b, d, e].sort((x, y) => (x.run_id < y.run_id ? -1 : 1));
    // NULL timeout -> 30 s, NULL worker -> 'worker', NULL qty -> 1.
    expect(await claim(c, q, null, null, null)).toHaveLength(1);
    expect(await runRow(c, q, ordered[0]!.run_id)).toMatchObject({ claimed_by: 'worker', claim_expires_at: plus(T0, 30) });
    // Empty worker -> 'worker', negative timeout -> 0 (no lease), qty 0 -> 1.
    expect(await claim(c, q, '', -5, 0)).toHaveLength(1);
    expect(await runRow(c, q, ordered[1]!.run_id)).toMatchObject({ claimed_by: 'worker', claim_expires_at: null });
    // Negative qty -> 1.
    expect(await claim(c, q, 'w', 10, -4)).toHaveLength(1);
    expect(await runRow(c, q, ordered[2]!.run_id)).toMatchObject({ claimed_by: 'w', claim_expires_at: plus(T0, 10) });
  });

  it('claim_timeout 0 gives a lease that never expires', async () => {
    const q = await createQueue(c, queueName('nolease'));
    const spawned = await spawn(c, q);
    await claimOne(c, q, 'w', 0);
    expect((await runRow(c, q, spawned.run_id)).claim_expires_at).toBeNull();
    await setNow(c, plus(T0, 365 * 86400));
    expect(await claim(c, q, 'other', 60, 10)).toEqual([]);
    expect(await runRow(c, q, spawned.run_id)).toMatchObject({ state: 'running', claimed_by: 'w' });
  });

  it('claims by available_at and then run_id, at most qty at a time', async () => {
    const q = await createQueue(c, queueName('order'));
    const spawned = [];
    for (let i = 0; i < 5; i++) {
      await setNow(c, plus(T0, 10 - i));
      spawned.push(await spawn(c, q, `job-${i}`));
    }
    await setNow(c, plus(T0, 20));
    const first = await claim(c, q, 'w', 60, 3);
    expect(first.map((r) => r.task_name)).toEqual(['job-4', 'job-3', 'job-2']);
    const second = await claim(c, q, 'w', 60, 3);
    expect(second.map((r) => r.task_name)).toEqual(['job-1', 'job-0']);
    expect(await claim(c, q, 'w', 60, 3)).toEqual([]);
  });

  it('breaks ties on available_at by run_id', async () => {
    const q = await createQueue(c, queueName('ties'));
    const ids = [];
    for (let i = 0; i < 6; i++) ids.push((await spawn(c, q)).run_id);
    const claimed = await claim(c, q, 'w', 60, 6);
    expect(claimed.map((r) => r.run_id)).toEqual([...ids].sort());
  });

  it('orders the result by the available_at before the claim, not by run_id', async () => {
    const q = await createQueue(c, queueName('preorder'));
    const a = await spawn(c, q, 'a');
    await setNow(c, plus(T0, 1));
    const b = await spawn(c, q, 'b');
    expect(a.run_id < b.run_id).toBe(true);
    await claim(c, q, 'w', 60, 2);
    await scheduleRun(c, q, b.run_id, plus(T0, 30));
    await scheduleRun(c, q, a.run_id, plus(T0, 40));
    await setNow(c, plus(T0, 50));
    const claimed = await claim(c, q, 'w', 60, 2);
    expect(claimed.map((r) => r.task_name)).toEqual(['b', 'a']);
  });

  it('does not claim runs before available_at, and claims them exactly at it', async () => {
    const q = await createQueue(c, queueName('due'));
    const spawned = await spawn(c, q);
    await claimOne(c, q);
    await scheduleRun(c, q, spawned.run_id, plus(T0, 60));
    await setNow(c, plus(T0, 59.999));
    expect(await claim(c, q)).toEqual([]);
    await setNow(c, plus(T0, 60));
    expect((await claimOne(c, q)).run_id).toBe(spawned.run_id);
  });

  it('returns nothing on an empty queue and fails with undefined_table for a missing one', async () => {
    const q = await createQueue(c, queueName('empty'));
    expect(await claim(c, q)).toEqual([]);
    await expectPgError(claim(c, queueName('ghost')), '42P01');
  });

  it('sets started_at and available_at on every claim, including resumes of the same run', async () => {
    const q = await createQueue(c, queueName('resume'));
    const spawned = await spawn(c, q);
    const t1 = await setNow(c, plus(T0, 1));
    await claimOne(c, q, 'w1', 30);
    await scheduleRun(c, q, spawned.run_id, plus(T0, 100));
    const t3 = await setNow(c, plus(T0, 150));
    const resumed = await claimOne(c, q, 'w2', 30);
    expect(resumed).toMatchObject({ run_id: spawned.run_id, attempt: 1 });
    expect(await runRow(c, q, spawned.run_id)).toMatchObject({
      state: 'running',
      claimed_by: 'w2',
      claim_expires_at: plus(t3, 30),
      started_at: t3,
      available_at: t3,
    });
    expect(await taskRow(c, q, spawned.task_id)).toMatchObject({ state: 'running', attempts: 1, first_started_at: t1 });
  });

  it('keeps wake_event and event_payload on the run and returns them', async () => {
    const q = await createQueue(c, queueName('wake'));
    const spawned = await spawn(c, q);
    await claimOne(c, q);
    await scheduleRun(c, q, spawned.run_id, plus(T0, 10));
    await c.query(`update ${table('r', q)} set wake_event = 'ev', event_payload = '{"x": 1}' where run_id = $1`, [spawned.run_id]);
    await setNow(c, plus(T0, 10));
    const claimed = await claimOne(c, q);
    expect(claimed).toMatchObject({ wake_event: 'ev', event_payload: { x: 1 } });
    expect(await runRow(c, q, spawned.run_id)).toMatchObject({ state: 'running', wake_event: 'ev', event_payload: { x: 1 } });
  });

  it('deletes the expired waits of the runs it claims, and only those', async () => {
    const q = await createQueue(c, queueName('waits'));
    const a = await spawn(c, q, 'a');
    const b = await spawn(c, q, 'b');
    await claim(c, q, 'w', 60, 2);
    await scheduleRun(c, q, a.run_id, plus(T0, 10));
    await scheduleRun(c, q, b.run_id, plus(T0, 1000));
    await insertWait(c, q, a.task_id, a.run_id, 'expired', 'e1', plus(T0, 10));
    await insertWait(c, q, a.task_id, a.run_id, 'later', 'e2', plus(T0, 500));
    await insertWait(c, q, a.task_id, a.run_id, 'forever', 'e3', null);
    await insertWait(c, q, b.task_id, b.run_id, 'other-run', 'e1', plus(T0, 5));
    await setNow(c, plus(T0, 10));
    expect((await claimOne(c, q)).run_id).toBe(a.run_id);
    expect((await waitRows(c, q)).map((w) => w.step_name).sort()).toEqual(['forever', 'later', 'other-run']);
  });

  it('never claims runs whose task is completed, failed or cancelled', async () => {
    const q = await createQueue(c, queueName('terminal'));
    for (const state of ['completed', 'failed', 'cancelled']) {
      const spawned = await spawn(c, q, state);
      await c.query(`update ${table('t', q)} set state = $2 where task_id = $1`, [spawned.task_id, state]);
    }
    expect(await claim(c, q, 'w', 60, 10)).toEqual([]);
    const live = await spawn(c, q, 'live');
    expect((await claim(c, q, 'w', 60, 10)).map((r) => r.task_id)).toEqual([live.task_id]);
  });

  it('only claims pending or sleeping runs', async () => {
    const q = await createQueue(c, queueName('runstates'));
    const spawned = await spawn(c, q);
    await claimOne(c, q);
    expect(await claim(c, q, 'w', 60, 10)).toEqual([]);
    await completeRun(c, q, spawned.run_id);
    await c.query(`update ${table('t', q)} set state = 'pending' where task_id = $1`, [spawned.task_id]);
    expect(await claim(c, q, 'w', 60, 10)).toEqual([]);
  });

  it('raises attempts to the claimed attempt but never lowers it', async () => {
    const q = await createQueue(c, queueName('attempts'));
    const spawned = await spawn(c, q);
    await c.query(`update ${table('t', q)} set attempts = 5 where task_id = $1`, [spawned.task_id]);
    await claimOne(c, q);
    expect((await taskRow(c, q, spawned.task_id)).attempts).toBe(5);
    expect(await runRows(c, q, spawned.task_id)).toHaveLength(1);
  });
});

describe('claim_task concurrency', () => {
  it('skips a run locked by another transaction instead of waiting', async () => {
    const q = await createQueue(c, queueName('skip'));
    const a = await spawn(c, q, 'a');
    await setNow(c, plus(T0, 1));
    const b = await spawn(c, q, 'b');
    const one = await utcClient(db);
    const two = await utcClient(db);
    await setNow(one, plus(T0, 5));
    await setNow(two, plus(T0, 5));
    await two.query(`set statement_timeout = '5s'`);
    await one.query('begin');
    try {
      expect((await claimOne(one, q, 'first')).task_id).toBe(a.task_id);
      expect((await claimOne(two, q, 'second')).task_id).toBe(b.task_id);
      expect(await claim(two, q, 'second', 60, 5)).toEqual([]);
    } finally {
      await one.query('commit');
    }
    expect((await runRow(c, q, a.run_id)).claimed_by).toBe('first');
    expect((await runRow(c, q, b.run_id)).claimed_by).toBe('second');
    expect(await claim(two, q, 'second', 60, 5)).toEqual([]);
  });

  it('also skips a run whose task row is locked', async () => {
    const q = await createQueue(c, queueName('tasklock'));
    const a = await spawn(c, q, 'a');
    await setNow(c, plus(T0, 1));
    const b = await spawn(c, q, 'b');
    const locker = await utcClient(db);
    const claimer = await utcClient(db);
    await setNow(claimer, plus(T0, 5));
    await claimer.query(`set statement_timeout = '5s'`);
    await locker.query('begin');
    try {
      await locker.query(`select 1 from ${table('t', q)} where task_id = $1 for update`, [a.task_id]);
      expect((await claimOne(claimer, q)).task_id).toBe(b.task_id);
    } finally {
      await locker.query('rollback');
    }
    expect((await claimOne(claimer, q)).task_id).toBe(a.task_id);
  });

  it('two workers claiming at once never get the same run', async () => {
    const q = await createQueue(c, queueName('race'));
    for (let i = 0; i < 20; i++) await spawn(c, q, `job-${i}`);
    const workers = await Promise.all([utcClient(db), utcClient(db)]);
    for (const w of workers) await setNow(w, plus(T0, 1));
    const results = await Promise.all(
      workers.map(async (w, i) => {
        const got: string[] = [];
        for (;;) {
          const rows = await claim(w, q, `w${i}`, 60, 3);
          if (rows.length === 0) return got;
          got.push(...rows.map((r) => r.run_id));
        }
      }),
    );
    const all = results.flat();
    expect(all).toHaveLength(20);
    expect(new Set(all).size).toBe(20);
    expect(await backendPid(workers[0]!)).not.toBe(await backendPid(workers[1]!));
  });
});
