import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import {
  cancelTask,
  claim,
  claimOne,
  completeRun,
  createQueue,
  expectPgError,
  failRun,
  insertWait,
  plus,
  queueName,
  runningTask,
  runRow,
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

/** Fails the task's current run at `at` and returns the new latest run (or the failed one). */
async function failAt(q: string, taskId: string, at: Date, retryAt: Date | null = null) {
  await setNow(c, at);
  const current = (await taskRow(c, q, taskId)).last_attempt_run;
  if (!current) throw new Error('task without last_attempt_run');
  await failRun(c, q, current, { name: 'Error', message: `failed at ${at.toISOString()}` }, retryAt);
  const all = await runRows(c, q, taskId);
  return all[all.length - 1]!;
}

describe('fail_run', () => {
  it('fails the run, keeps its claim and payload, and requeues at once without a strategy', async () => {
    const { q, task_id, run_id } = await runningTask(c, 'basic');
    await c.query(`update ${table('r', q)} set wake_event = 'ev', event_payload = '{"p": 1}' where run_id = $1`, [run_id]);
    const at = await setNow(c, plus(T0, 5));
    const reason = { name: 'TypeError', message: 'bad', stack: 'at x' };
    await failRun(c, q, run_id, reason);
    const [failed, next] = await runRows(c, q, task_id);
    expect(failed).toMatchObject({
      run_id,
      attempt: 1,
      state: 'failed',
      failed_at: at,
      failure_reason: reason,
      wake_event: null,
      event_payload: { p: 1 },
      claimed_by: 'worker-1',
      claim_expires_at: plus(T0, 60),
      completed_at: null,
    });
    expect(next).toMatchObject({
      attempt: 2,
      state: 'pending',
      available_at: at,
      claimed_by: null,
      claim_expires_at: null,
      wake_event: null,
      event_payload: null,
      started_at: null,
      result: null,
      failure_reason: null,
      created_at: at,
    });
    expect(await taskRow(c, q, task_id)).toMatchObject({ state: 'pending', attempts: 2, last_attempt_run: next!.run_id });
    expect((await claimOne(c, q)).attempt).toBe(2);
  });

  it('treats kind none, an unknown kind and a strategy without kind as an immediate retry', async () => {
    for (const strategy of [{ kind: 'none', base_seconds: 99 }, { kind: 'bogus', base_seconds: 99 }, { base_seconds: 99 }]) {
      const { q, task_id } = await runningTask(c, 'none', { retry_strategy: strategy });
      const next = await failAt(q, task_id, plus(T0, 3));
      expect(next, JSON.stringify(strategy)).toMatchObject({ attempt: 2, state: 'pending', available_at: plus(T0, 3) });
    }
  });

  it('fixed: waits base_seconds, 60 by default, with the task sleeping meanwhile', async () => {
    const { q, task_id } = await runningTask(c, 'fixed-default', { retry_strategy: { kind: 'fixed' } });
    const next = await failAt(q, task_id, plus(T0, 1));
    expect(next).toMatchObject({ attempt: 2, state: 'sleeping', available_at: plus(T0, 61) });
    expect((await taskRow(c, q, task_id)).state).toBe('sleeping');
    await setNow(c, plus(T0, 60.999));
    expect(await claim(c, q)).toEqual([]);
    await setNow(c, plus(T0, 61));
    expect((await claimOne(c, q)).attempt).toBe(2);
    const third = await failAt(q, task_id, plus(T0, 70));
    expect(third).toMatchObject({ attempt: 3, available_at: plus(T0, 130) });

    const other = await runningTask(c, 'fixed-5', { retry_strategy: { kind: 'fixed', base_seconds: 5 } });
    expect(await failAt(other.q, other.task_id, T0)).toMatchObject({ state: 'sleeping', available_at: plus(T0, 5) });
  });

  it('exponential: base 30 and factor 2 by default, exponent from the failed attempt', async () => {
    const { q, task_id } = await runningTask(c, 'exp-default', { retry_strategy: { kind: 'exponential' } });
    let now = T0;
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      const next = await failAt(q, task_id, now);
      delays.push((next.available_at.getTime() - now.getTime()) / 1000);
      now = next.available_at;
      await setNow(c, now);
      await claimOne(c, q);
    }
    expect(delays).toEqual([30, 60, 120, 240]);
  });

  it('exponential with base 40, factor 3 and max 90 waits 40 s then 90 s', async () => {
    const { q, task_id } = await runningTask(c, 'exp-spec', {
      retry_strategy: { kind: 'exponential', base_seconds: 40, factor: 3, max_seconds: 90 },
    });
    const second = await failAt(q, task_id, T0);
    expect(second).toMatchObject({ attempt: 2, state: 'sleeping', available_at: plus(T0, 40) });
    await setNow(c, plus(T0, 40));
    await claimOne(c, q);
    const third = await failAt(q, task_id, plus(T0, 45));
    expect(third).toMatchObject({ attempt: 3, state: 'sleeping', available_at: plus(T0, 135) });
  });

  it('allows fractional delays', async () => {
    const { q, task_id } = await runningTask(c, 'frac', { retry_strategy: { kind: 'exponential', base_seconds: 1.5, factor: 2 } });
    expect(await failAt(q, task_id, T0)).toMatchObject({ available_at: plus(T0, 1.5) });
    await setNow(c, plus(T0, 1.5));
    await claimOne(c, q);
    expect(await failAt(q, task_id, plus(T0, 2))).toMatchObject({ available_at: plus(T0, 5) });
  });

  it('p_retry_at wins over the strategy, and a past retry time is clamped to now', async () => {
    const { q, task_id } = await runningTask(c, 'retry-at', { retry_strategy: { kind: 'fixed', base_seconds: 60 } });
    expect(await failAt(q, task_id, T0, plus(T0, 5))).toMatchObject({ state: 'sleeping', available_at: plus(T0, 5) });
    await setNow(c, plus(T0, 5));
    await claimOne(c, q);
    expect(await failAt(q, task_id, plus(T0, 10), plus(T0, -100))).toMatchObject({ state: 'pending', available_at: plus(T0, 10) });
    expect((await taskRow(c, q, task_id)).state).toBe('pending');

    const none = await runningTask(c, 'retry-at-none');
    expect(await failAt(none.q, none.task_id, T0, plus(T0, 7))).toMatchObject({ state: 'sleeping', available_at: plus(T0, 7) });
    expect((await taskRow(c, none.q, none.task_id)).state).toBe('sleeping');
  });

  it('fails the task when max_attempts is reached', async () => {
    const { q, task_id, run_id } = await runningTask(c, 'max2', { max_attempts: 2 });
    const second = await failAt(q, task_id, plus(T0, 1));
    expect(await taskRow(c, q, task_id)).toMatchObject({ state: 'pending', attempts: 2 });
    await claimOne(c, q);
    const last = await failAt(q, task_id, plus(T0, 2));
    expect(last.run_id).toBe(second.run_id);
    expect(last).toMatchObject({ state: 'failed', attempt: 2 });
    expect((await runRows(c, q, task_id)).map((r) => r.run_id)).toEqual([run_id, second.run_id]);
    expect(await taskRow(c, q, task_id)).toMatchObject({ state: 'failed', attempts: 2, last_attempt_run: second.run_id });
    expect(await claim(c, q)).toEqual([]);

    const single = await runningTask(c, 'max1', { max_attempts: 1, retry_strategy: { kind: 'fixed' } });
    await failAt(single.q, single.task_id, T0);
    expect(await runRows(c, single.q, single.task_id)).toHaveLength(1);
    expect(await taskRow(c, single.q, single.task_id)).toMatchObject({ state: 'failed', attempts: 1, last_attempt_run: single.run_id });
  });

  it('retries without limit when max_attempts is NULL', async () => {
    const { q, task_id } = await runningTask(c, 'unlimited', { max_attempts: null });
    for (let i = 0; i < 7; i++) {
      await failAt(q, task_id, plus(T0, i));
      await claimOne(c, q);
    }
    const all = await runRows(c, q, task_id);
    expect(all.map((r) => r.attempt)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(await taskRow(c, q, task_id)).toMatchObject({ state: 'running', attempts: 8 });
  });

  it('can fail a sleeping run', async () => {
    const { q, task_id, run_id } = await runningTask(c, 'sleeping');
    await scheduleRun(c, q, run_id, plus(T0, 1000));
    await setNow(c, plus(T0, 5));
    await failRun(c, q, run_id);
    const [failed, next] = await runRows(c, q, task_id);
    expect(failed).toMatchObject({ state: 'failed', failed_at: plus(T0, 5) });
    expect(next).toMatchObject({ attempt: 2, state: 'pending' });
  });

  it("deletes the failed run's waits", async () => {
    const { q, task_id, run_id } = await runningTask(c, 'waits');
    const other = await spawn(c, q);
    await insertWait(c, q, task_id, run_id, 'mine', 'e', null);
    await insertWait(c, q, other.task_id, other.run_id, 'theirs', 'e', null);
    await failRun(c, q, run_id);
    expect((await waitRows(c, q)).map((w) => w.step_name)).toEqual(['theirs']);
  });

  it('accepts the three-argument form', async () => {
    const { q, task_id, run_id } = await runningTask(c, 'three');
    await c.query('select absurd.fail_run($1, $2, $3)', [q, run_id, '{"message": "x"}']);
    expect((await runRow(c, q, run_id)).failure_reason).toEqual({ message: 'x' });
    expect((await taskRow(c, q, task_id)).attempts).toBe(2);
  });

  describe('rejections change nothing', () => {
    it('raises P0001 for a missing run', async () => {
      const { q } = await runningTask(c, 'missing');
      const ghost = '018f2d6c-0000-7000-8000-000000000000';
      const before = await snapshot(c, q);
      await expectPgError(failRun(c, q, ghost), 'P0001', `Run "${ghost}" cannot be failed in queue "${q}"`);
      expect(await snapshot(c, q)).toEqual(before);
    });

    it('raises P0001 for pending and completed runs', async () => {
      const q = await createQueue(c, queueName('states'));
      const done = await spawn(c, q);
      await claimOne(c, q);
      await completeRun(c, q, done.run_id);
      const pending = await spawn(c, q);
      const before = await snapshot(c, q);
      for (const runId of [pending.run_id, done.run_id]) {
        await expectPgError(failRun(c, q, runId), 'P0001', `Run "${runId}" cannot be failed in queue "${q}"`);
      }
      expect(await snapshot(c, q)).toEqual(before);
    });

    it('raises AB002 for a run that already failed', async () => {
      const { q, run_id } = await runningTask(c, 'twice');
      await failRun(c, q, run_id);
      const before = await snapshot(c, q);
      await expectPgError(failRun(c, q, run_id), 'AB002');
      expect(await snapshot(c, q)).toEqual(before);
    });

    it('raises AB001 for a cancelled run', async () => {
      const { q, task_id, run_id } = await runningTask(c, 'cancelled');
      await cancelTask(c, q, task_id);
      const before = await snapshot(c, q);
      await expectPgError(failRun(c, q, run_id), 'AB001');
      expect(await snapshot(c, q)).toEqual(before);
    });
  });
});
