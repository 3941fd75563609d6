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
    // The running run carries the deadline the engine keeps for it (migration 000028 fills it so for
    // a policy found on an existing or adopted schema): '-infinity' for a value that is not a whole
    // number, so that every claim's sweep reads the task and raises.
    const { rows } = await c.query<{ deadline: string }>(
      `update ${table('r', q)} r set cancel_deadline = absurd.kit_cancel_deadline(t.cancellation, t.enqueue_at, t.first_started_at)
         from ${table('t', q)} t where t.task_id = r.task_id and r.run_id = $1 returning r.cancel_deadline::text as deadline`,
      [claimed.run_id],
    );
    expect(rows).toEqual([{ deadline: '-infinity' }]);
    const before = await snapshot(c, q);
    await expectPgError(failRun(c, q, claimed.run_id), '22P02');
    await expectPgError(claim(c, q, 'worker-2'), '22P02');
    expect(await snapshot(c, q)).toEqual(before);
  });
});

// Since migration 000028 the sweep finds a task through the deadline its live run carries
// (r_<q>.cancel_deadline), which every function writing a run or starting a task keeps: each of
// them is checked here through the sweep's outcome.
describe('the deadline each live run carries', () => {
  it("a retry's run (fail_run) carries max_duration's: the task is cancelled while its retry sleeps", async () => {
    const q = await createQueue(c, queueName('retryrun'));
    const { task_id, run_id } = await spawn(c, q, 'job', {}, { cancellation: { max_duration: 90 } });
    await claimOne(c, q);
    await setNow(c, plus(T0, 10));
    await failRun(c, q, run_id, { message: 'x' }, plus(T0, 60));
    await setNow(c, plus(T0, 90));
    expect(await claim(c, q, 'worker-2')).toEqual([]);
    expect((await taskRow(c, q, task_id)).state).toBe('cancelled');
    expect((await runRows(c, q, task_id)).map((r) => r.state)).toEqual(['failed', 'cancelled']);
  });

  it("retry_task's new run carries max_duration's, from the first start", async () => {
    const q = await createQueue(c, queueName('retrytask'));
    const { task_id, run_id } = await spawn(c, q, 'job', {}, { cancellation: { max_duration: 90 }, max_attempts: 1 });
    await claimOne(c, q);
    await failRun(c, q, run_id);
    expect((await taskRow(c, q, task_id)).state).toBe('failed');
    await setNow(c, plus(T0, 100));
    await c.query('select * from absurd.retry_task($1, $2)', [q, task_id]);
    expect(await claim(c, q)).toEqual([]);
    expect((await taskRow(c, q, task_id)).state).toBe('cancelled');
  });

  it('kit_spawn_tasks gives each first run its max_delay deadline, and none to a task without a policy', async () => {
    const q = await createQueue(c, queueName('bulk'));
    const { rows } = await c.query<{ task_id: string }>(
      `select task_id from absurd.kit_spawn_tasks($1, $2::jsonb)`,
      [q, JSON.stringify([
        { task_name: 'late', params: {}, options: { cancellation: { max_delay: 60 } } },
        { task_name: 'free', params: {}, options: {} },
      ])],
    );
    await setNow(c, plus(T0, 60));
    const claimed = await claim(c, q);
    expect(claimed.map((r) => r.task_id)).toEqual([rows[1]!.task_id]);
    expect((await taskRow(c, q, rows[0]!.task_id)).state).toBe('cancelled');
  });

  it('a limited claim that starts a task gives its run max_duration\'s deadline', async () => {
    const q = await createQueue(c, queueName('limited'));
    await c.query(`select absurd.kit_set_limit($1, 'per-key', null, array['k'], 1, null, null)`, [q]);
    const { task_id } = await spawn(c, q, 'job', { k: 'a' }, { cancellation: { max_delay: 30, max_duration: 90 } });
    await setNow(c, plus(T0, 20));
    const started = await claimOne(c, q, 'worker-1', 0);
    expect(started).toMatchObject({ task_id });
    const { rows } = await c.query<{ d: string }>(
      `select cancel_deadline::text as d from ${table('r', q)} where run_id = $1`, [started.run_id]);
    expect(new Date(rows[0]!.d)).toEqual(plus(T0, 110));
    // max_delay no longer applies (its deadline, T0 + 30, has passed); max_duration's (T0 + 110) has not.
    await setNow(c, plus(T0, 109));
    expect(await claim(c, q, 'worker-2')).toEqual([]);
    expect((await taskRow(c, q, task_id)).state).toBe('running');
    await setNow(c, plus(T0, 110));
    expect(await claim(c, q, 'worker-2')).toEqual([]);
    expect((await taskRow(c, q, task_id)).state).toBe('cancelled');
  });

  it('the run of a task without a policy carries none; one with max_duration alone carries infinity until its start', async () => {
    const q = await createQueue(c, queueName('none'));
    const plain = await spawn(c, q, 'job');
    const timed = await spawn(c, q, 'job', {}, { cancellation: { max_duration: 90 } });
    const { rows: before } = await c.query<{ run_id: string; d: string | null }>(
      `select run_id, cancel_deadline::text as d from ${table('r', q)}`,
    );
    expect(Object.fromEntries(before.map((r) => [r.run_id, r.d]))).toEqual({
      [plain.run_id]: null,
      [timed.run_id]: 'infinity',
    });
    await claim(c, q, 'worker-1', 60, 2);
    const { rows } = await c.query<{ d: string }>(
      `select cancel_deadline::text as d from ${table('r', q)} where run_id = $1`, [timed.run_id]);
    expect(new Date(rows[0]!.d)).toEqual(plus(T0, 90));
  });
});
