import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import {
  claim,
  claimOne,
  createQueue,
  expectPgError,
  failRun,
  insertWait,
  plus,
  queueName,
  runRows,
  scheduleRun,
  setNow,
  snapshot,
  spawn,
  table,
  taskRow,
  useSession,
  waitRows,
} from './helpers.js';

const db = useTestDatabase();
const T0 = new Date('2024-05-01T10:00:00.000Z');
const c = useSession(db, { now: T0 });

describe('max_delay (never started within N seconds of enqueue)', () => {
  it('cancels at claim time once N seconds have passed, and the claim returns nothing for it', async () => {
    const q = await createQueue(c, queueName('delay'));
    const { task_id, run_id } = await spawn(c, q, 'job', {}, { cancellation: { max_delay: 60 } });
    const at = await setNow(c, plus(T0, 61));
    expect(await claim(c, q)).toEqual([]);
    expect(await taskRow(c, q, task_id)).toMatchObject({ state: 'cancelled', cancelled_at: at, first_started_at: null });
    expect(await runRows(c, q, task_id)).toEqual([expect.objectContaining({ run_id, state: 'cancelled', claimed_by: null })]);
  });

  it('applies at exactly N seconds but not a millisecond before', async () => {
    const q = await createQueue(c, queueName('edge'));
    const early = await spawn(c, q, 'early', {}, { cancellation: { max_delay: 60 } });
    await setNow(c, plus(T0, 59.999));
    expect((await claimOne(c, q)).task_id).toBe(early.task_id);

    await setNow(c, T0);
    const exact = await spawn(c, q, 'exact', {}, { cancellation: { max_delay: 60 } });
    await setNow(c, plus(T0, 60));
    expect(await claim(c, q)).toEqual([]);
    expect((await taskRow(c, q, exact.task_id)).state).toBe('cancelled');
  });

  it('does not apply once the task has started, even to a later retry', async () => {
    const q = await createQueue(c, queueName('started'));
    const { task_id } = await spawn(c, q, 'job', {}, { cancellation: { max_delay: 10 } });
    await setNow(c, plus(T0, 5));
    const first = await claimOne(c, q);
    await failRun(c, q, first.run_id, { message: 'x' }, plus(T0, 100));
    await setNow(c, plus(T0, 100));
    expect(await claimOne(c, q)).toMatchObject({ task_id, attempt: 2 });
  });

  it('cancels every expired task in one sweep, whatever qty, and still claims other work', async () => {
    const q = await createQueue(c, queueName('sweep'));
    const expired = [];
    for (let i = 0; i < 3; i++) expired.push(await spawn(c, q, 'stale', {}, { cancellation: { max_delay: 10 } }));
    const fresh = await spawn(c, q, 'fresh');
    await setNow(c, plus(T0, 20));
    expect((await claim(c, q, 'w', 60, 1)).map((r) => r.task_id)).toEqual([fresh.task_id]);
    for (const t of expired) expect((await taskRow(c, q, t.task_id)).state).toBe('cancelled');
  });

  it('refuses fractional values at spawn (they would make every claim on the queue fail)', async () => {
    for (const value of ['1.5', '60.0']) {
      const q = await createQueue(c, queueName('frac'));
      const before = await snapshot(c, q);
      await expectPgError(
        c.query('select task_id from absurd.spawn_task($1, $2, $3, $4)', [q, 'job', '{}', `{"cancellation": {"max_delay": ${value}}}`]),
        'P0001',
        'cancellation.max_delay must be a whole number of seconds',
      );
      expect(await snapshot(c, q)).toEqual(before);
    }
  });
});

describe('max_duration (N seconds after the first start)', () => {
  it('cancels a running task from another worker’s claim call', async () => {
    const q = await createQueue(c, queueName('running'));
    const { task_id, run_id } = await spawn(c, q, 'job', {}, { cancellation: { max_duration: 100 } });
    await claimOne(c, q, 'worker-1', 1000);
    await setNow(c, plus(T0, 99.999));
    expect(await claim(c, q, 'worker-2')).toEqual([]);
    expect((await taskRow(c, q, task_id)).state).toBe('running');
    const at = await setNow(c, plus(T0, 100));
    expect(await claim(c, q, 'worker-2')).toEqual([]);
    expect(await taskRow(c, q, task_id)).toMatchObject({ state: 'cancelled', cancelled_at: at });
    expect((await runRows(c, q, task_id))[0]).toMatchObject({ run_id, state: 'cancelled', claimed_by: null, claim_expires_at: null });
    await expectPgError(c.query('select absurd.complete_run($1, $2, $3)', [q, run_id, '1']), 'AB001', 'Task has been cancelled');
  });

  it('cancels a sleeping task before it can be resumed, deleting its waits', async () => {
    const q = await createQueue(c, queueName('sleeping'));
    const { task_id, run_id } = await spawn(c, q, 'job', {}, { cancellation: { max_duration: 100 } });
    await claimOne(c, q);
    await scheduleRun(c, q, run_id, plus(T0, 150));
    await insertWait(c, q, task_id, run_id, 'step', 'ev', plus(T0, 150));
    await setNow(c, plus(T0, 150));
    expect(await claim(c, q)).toEqual([]);
    expect((await taskRow(c, q, task_id)).state).toBe('cancelled');
    expect(await waitRows(c, q)).toEqual([]);
  });

  it('is measured from first_started_at, not from enqueue', async () => {
    const q = await createQueue(c, queueName('fromstart'));
    const { task_id } = await spawn(c, q, 'job', {}, { cancellation: { max_duration: 100 } });
    await setNow(c, plus(T0, 500));
    const claimed = await claimOne(c, q);
    expect(claimed.task_id).toBe(task_id);
    await scheduleRun(c, q, claimed.run_id, plus(T0, 599));
    await setNow(c, plus(T0, 599));
    expect((await claimOne(c, q)).task_id).toBe(task_id);
  });

  it('fail_run cancels instead of retrying when the next retry would pass max_duration (spec example)', async () => {
    const q = await createQueue(c, queueName('failrun'));
    const { task_id, run_id } = await spawn(c, q, 'job', {}, {
      retry_strategy: { kind: 'fixed', base_seconds: 30 },
      cancellation: { max_duration: 90 },
    });
    await claimOne(c, q);
    await failRun(c, q, run_id);
    const second = (await runRows(c, q, task_id))[1]!;
    expect(second).toMatchObject({ attempt: 2, state: 'sleeping', available_at: plus(T0, 30) });
    await setNow(c, plus(T0, 30));
    await claimOne(c, q);
    const at = await setNow(c, plus(T0, 61));
    await failRun(c, q, second.run_id);
    expect(await runRows(c, q, task_id)).toHaveLength(2);
    expect((await runRows(c, q, task_id))[1]).toMatchObject({ state: 'failed', failed_at: at });
    expect(await taskRow(c, q, task_id)).toMatchObject({
      state: 'cancelled',
      cancelled_at: at,
      last_attempt_run: second.run_id,
      attempts: 2,
    });
  });

  it('fail_run still retries when the next retry stays within max_duration', async () => {
    const q = await createQueue(c, queueName('within'));
    const { task_id, run_id } = await spawn(c, q, 'job', {}, {
      retry_strategy: { kind: 'fixed', base_seconds: 30 },
      cancellation: { max_duration: 90 },
    });
    await claimOne(c, q);
    await setNow(c, plus(T0, 59.999));
    await failRun(c, q, run_id);
    expect((await runRows(c, q, task_id))[1]).toMatchObject({ attempt: 2, state: 'sleeping', available_at: plus(T0, 89.999) });
    expect((await taskRow(c, q, task_id)).state).toBe('sleeping');
  });

  it('fail_run with an explicit retry time checks that time', async () => {
    const q = await createQueue(c, queueName('retryat'));
    const { task_id, run_id } = await spawn(c, q, 'job', {}, { cancellation: { max_duration: 90 } });
    await claimOne(c, q);
    await failRun(c, q, run_id, { message: 'x' }, plus(T0, 90));
    expect(await runRows(c, q, task_id)).toHaveLength(1);
    expect((await taskRow(c, q, task_id)).state).toBe('cancelled');
  });

  it('raises for a fractional value, in fail_run and in the claim sweep', async () => {
    const q = await createQueue(c, queueName('frac'));
    const { task_id } = await spawn(c, q);
    const claimed = await claimOne(c, q);
    await c.query(`update ${table('t', q)} set cancellation = '{"max_duration": 60.5}' where task_id = $1`, [task_id]);
    const before = await snapshot(c, q);
    await expectPgError(failRun(c, q, claimed.run_id), '22P02');
    await expectPgError(claim(c, q, 'worker-2'), '22P02');
    expect(await snapshot(c, q)).toEqual(before);
  });
});
