import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import {
  SQL_NULL,
  cancelTask,
  claim,
  claimOne,
  completeRun,
  createQueue,
  expectPgError,
  failRun,
  insertWait,
  one,
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

describe('complete_run', () => {
  it('completes the run and the task, keeping the claim columns', async () => {
    const { q, task_id, run_id } = await runningTask(c, 'basic');
    const at = await setNow(c, plus(T0, 12));
    await completeRun(c, q, run_id, { total: 42 });
    expect(await runRow(c, q, run_id)).toMatchObject({
      state: 'completed',
      completed_at: at,
      result: { total: 42 },
      claimed_by: 'worker-1',
      claim_expires_at: plus(T0, 60),
      failed_at: null,
    });
    expect(await taskRow(c, q, task_id)).toMatchObject({
      state: 'completed',
      completed_payload: { total: 42 },
      last_attempt_run: run_id,
      attempts: 1,
    });
  });

  it('stores SQL NULL as NULL and the JSON text null as jsonb null', async () => {
    const a = await runningTask(c, 'nullres');
    await c.query('select absurd.complete_run($1, $2)', [a.q, a.run_id]);
    const b = await spawn(c, a.q);
    await claimOne(c, a.q);
    await completeRun(c, a.q, b.run_id, null);
    const d = await spawn(c, a.q);
    await claimOne(c, a.q);
    await completeRun(c, a.q, d.run_id, SQL_NULL);
    const { rows } = await c.query<{ task_id: string; r: string | null; p: string | null }>(
      `select t.task_id, jsonb_typeof(r.result) as r, jsonb_typeof(t.completed_payload) as p
         from ${table('t', a.q)} t join ${table('r', a.q)} r on r.run_id = t.last_attempt_run`,
    );
    const byTask = new Map(rows.map((row) => [row.task_id, [row.r, row.p]]));
    expect(byTask.get(a.task_id)).toEqual([null, null]);
    expect(byTask.get(b.task_id)).toEqual(['null', 'null']);
    expect(byTask.get(d.task_id)).toEqual([null, null]);
  });

  it("deletes the run's waits but not other runs' waits", async () => {
    const { q, task_id, run_id } = await runningTask(c, 'waits');
    const other = await spawn(c, q);
    await claimOne(c, q);
    await insertWait(c, q, task_id, run_id, 'mine', 'e', null);
    await insertWait(c, q, other.task_id, other.run_id, 'theirs', 'e', null);
    await completeRun(c, q, run_id, 1);
    expect((await waitRows(c, q)).map((w) => w.step_name)).toEqual(['theirs']);
  });

  it('does not check ownership, and completes an expired lease nobody has swept', async () => {
    const { q, task_id, run_id } = await runningTask(c, 'expired');
    await setNow(c, plus(T0, 3600));
    await completeRun(c, q, run_id, 'late');
    expect(await taskRow(c, q, task_id)).toMatchObject({ state: 'completed', completed_payload: 'late' });
  });

  it('raises AB001 for a cancelled run', async () => {
    const { q, task_id, run_id } = await runningTask(c, 'cancelled');
    await cancelTask(c, q, task_id);
    const before = await snapshot(c, q);
    await expectPgError(completeRun(c, q, run_id, 1), 'AB001', 'Task has been cancelled');
    expect(await snapshot(c, q)).toEqual(before);
  });

  it('raises AB002 for a failed run', async () => {
    const { q, run_id } = await runningTask(c, 'failed', { max_attempts: 1 });
    await failRun(c, q, run_id);
    const before = await snapshot(c, q);
    await expectPgError(completeRun(c, q, run_id, 1), 'AB002', `Run "${run_id}" has already failed in queue "${q}"`);
    expect(await snapshot(c, q)).toEqual(before);
  });

  it('raises P0001 for a missing run', async () => {
    const { q } = await runningTask(c, 'missing');
    const ghost = '018f2d6c-0000-7000-8000-000000000000';
    const before = await snapshot(c, q);
    await expectPgError(completeRun(c, q, ghost, 1), 'P0001', `Run "${ghost}" not found in queue "${q}"`);
    expect(await snapshot(c, q)).toEqual(before);
  });

  it('raises P0001 for pending, sleeping and completed runs', async () => {
    const q = await createQueue(c, queueName('notrunning'));
    const pending = await spawn(c, q);
    let before = await snapshot(c, q);
    await expectPgError(completeRun(c, q, pending.run_id), 'P0001', `Run "${pending.run_id}" is not currently running in queue "${q}"`);
    expect(await snapshot(c, q)).toEqual(before);

    await claimOne(c, q);
    await scheduleRun(c, q, pending.run_id, plus(T0, 100));
    before = await snapshot(c, q);
    await expectPgError(completeRun(c, q, pending.run_id), 'P0001', 'is not currently running in queue');
    expect(await snapshot(c, q)).toEqual(before);

    await setNow(c, plus(T0, 100));
    await claimOne(c, q);
    await completeRun(c, q, pending.run_id, 'first');
    before = await snapshot(c, q);
    await expectPgError(completeRun(c, q, pending.run_id, 'second'), 'P0001', 'is not currently running in queue');
    expect(await snapshot(c, q)).toEqual(before);
  });

  it('fails with undefined_table for a missing queue', async () => {
    await expectPgError(completeRun(c, queueName('ghost'), '018f2d6c-0000-7000-8000-000000000000'), '42P01');
  });
});

describe('schedule_run', () => {
  it('puts the run and task to sleep, clearing the claim and keeping event_payload', async () => {
    const { q, task_id, run_id } = await runningTask(c, 'sleep');
    await c.query(`update ${table('r', q)} set wake_event = 'old', event_payload = '"kept"' where run_id = $1`, [run_id]);
    const wake = plus(T0, 300);
    await scheduleRun(c, q, run_id, wake);
    expect(await runRow(c, q, run_id)).toMatchObject({
      state: 'sleeping',
      claimed_by: null,
      claim_expires_at: null,
      available_at: wake,
      wake_event: null,
      event_payload: 'kept',
    });
    expect((await taskRow(c, q, task_id)).state).toBe('sleeping');
  });

  it('resumes the same run with the same attempt when due', async () => {
    const { q, task_id, run_id } = await runningTask(c, 'resume');
    await scheduleRun(c, q, run_id, plus(T0, 30));
    await setNow(c, plus(T0, 29));
    expect(await claim(c, q)).toEqual([]);
    await setNow(c, plus(T0, 30));
    const resumed = await claimOne(c, q, 'worker-2');
    expect(resumed).toMatchObject({ run_id, task_id, attempt: 1 });
    expect(await runRows(c, q, task_id)).toHaveLength(1);
    expect(await taskRow(c, q, task_id)).toMatchObject({ state: 'running', attempts: 1, last_attempt_run: run_id });
  });

  it('accepts a wake time in the past (immediately claimable) and infinity (never claimable)', async () => {
    const { q, run_id } = await runningTask(c, 'past');
    await scheduleRun(c, q, run_id, plus(T0, -3600));
    expect((await claimOne(c, q)).run_id).toBe(run_id);
    await scheduleRun(c, q, run_id, 'infinity');
    const { rows } = await c.query(`select available_at = 'infinity' as inf from ${table('r', q)} where run_id = $1`, [run_id]);
    expect(one(rows)).toEqual({ inf: true });
    await setNow(c, plus(T0, 10 * 365 * 86400));
    expect(await claim(c, q)).toEqual([]);
  });

  it('raises plain P0001 (never AB001/AB002) for runs that are not running, changing nothing', async () => {
    const q = await createQueue(c, queueName('notrunning'));
    const ghost = '018f2d6c-0000-7000-8000-000000000000';
    const cancelled = await spawn(c, q, 'cancelled');
    await cancelTask(c, q, cancelled.task_id);
    const failed = await spawn(c, q, 'failed', {}, { max_attempts: 1 });
    const completed = await spawn(c, q, 'completed');
    const sleeping = await spawn(c, q, 'sleeping');
    for (const claimed of await claim(c, q, 'w', 60, 10)) {
      if (claimed.task_name === 'failed') await failRun(c, q, claimed.run_id);
      if (claimed.task_name === 'completed') await completeRun(c, q, claimed.run_id);
      if (claimed.task_name === 'sleeping') await scheduleRun(c, q, claimed.run_id, plus(T0, 1000));
    }
    const pending = await spawn(c, q, 'pending');
    const before = await snapshot(c, q);
    for (const runId of [ghost, pending.run_id, cancelled.run_id, failed.run_id, completed.run_id, sleeping.run_id]) {
      await expectPgError(scheduleRun(c, q, runId, plus(T0, 5)), 'P0001', `Run "${runId}" is not currently running in queue "${q}"`);
    }
    expect(await snapshot(c, q)).toEqual(before);
  });
});
