import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import {
  backendPid,
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
  runRows,
  scheduleRun,
  setNow,
  snapshot,
  spawn,
  taskRow,
  useSession,
  utcClient,
  waitRows,
  waitUntilBlocked,
} from './helpers.js';

const db = useTestDatabase();
const T0 = new Date('2024-05-01T10:00:00.000Z');
const c = useSession(db, { now: T0 });

describe('cancel_task', () => {
  it('cancels a pending task and its run, without setting run timestamps', async () => {
    const q = await createQueue(c, queueName('pending'));
    const { task_id, run_id } = await spawn(c, q);
    const at = await setNow(c, plus(T0, 9));
    await cancelTask(c, q, task_id);
    expect(await taskRow(c, q, task_id)).toMatchObject({ state: 'cancelled', cancelled_at: at, last_attempt_run: run_id });
    expect(await runRows(c, q, task_id)).toEqual([
      expect.objectContaining({
        run_id,
        state: 'cancelled',
        claimed_by: null,
        claim_expires_at: null,
        started_at: null,
        completed_at: null,
        failed_at: null,
      }),
    ]);
    expect(await claim(c, q)).toEqual([]);
  });

  it('cancels a running task: the claim is cleared and the worker gets AB001 or P0001', async () => {
    const q = await createQueue(c, queueName('running'));
    const { task_id, run_id } = await spawn(c, q);
    await claimOne(c, q, 'worker-1', 60);
    await cancelTask(c, q, task_id);
    expect((await runRows(c, q, task_id))[0]).toMatchObject({
      state: 'cancelled',
      claimed_by: null,
      claim_expires_at: null,
      started_at: T0,
      completed_at: null,
      failed_at: null,
    });
    await expectPgError(completeRun(c, q, run_id), 'AB001', 'Task has been cancelled');
    await expectPgError(failRun(c, q, run_id), 'AB001');
    await expectPgError(scheduleRun(c, q, run_id, plus(T0, 10)), 'P0001', 'is not currently running');
  });

  it('cancels a sleeping task and deletes all of its waits', async () => {
    const q = await createQueue(c, queueName('sleeping'));
    const { task_id, run_id } = await spawn(c, q);
    const other = await spawn(c, q);
    // No lease, so the other task's run cannot expire and be retried below.
    await claim(c, q, 'w', 0, 2);
    await scheduleRun(c, q, run_id, plus(T0, 100));
    await insertWait(c, q, task_id, run_id, 'a', 'e1', null);
    await insertWait(c, q, task_id, run_id, 'b', 'e2', plus(T0, 50));
    await insertWait(c, q, other.task_id, other.run_id, 'c', 'e1', null);
    await cancelTask(c, q, task_id);
    expect((await taskRow(c, q, task_id)).state).toBe('cancelled');
    expect((await runRows(c, q, task_id))[0]).toMatchObject({ state: 'cancelled', available_at: plus(T0, 100) });
    expect((await waitRows(c, q)).map((w) => w.step_name)).toEqual(['c']);
    await setNow(c, plus(T0, 200));
    expect(await claim(c, q)).toEqual([]);
  });

  it('leaves earlier failed runs as they are and cancels the pending retry', async () => {
    const q = await createQueue(c, queueName('retry'));
    const { task_id, run_id } = await spawn(c, q, 'job', {}, { retry_strategy: { kind: 'fixed', base_seconds: 30 } });
    await claimOne(c, q, 'worker-1', 60);
    await failRun(c, q, run_id);
    await cancelTask(c, q, task_id);
    const [failed, retry] = await runRows(c, q, task_id);
    expect(failed).toMatchObject({ state: 'failed', claimed_by: 'worker-1', claim_expires_at: plus(T0, 60) });
    expect(retry).toMatchObject({ attempt: 2, state: 'cancelled' });
    expect(await taskRow(c, q, task_id)).toMatchObject({ state: 'cancelled', attempts: 2 });
  });

  it('is a no-op on completed, failed and already cancelled tasks', async () => {
    const q = await createQueue(c, queueName('terminal'));
    const done = await spawn(c, q, 'done');
    const failed = await spawn(c, q, 'failed', {}, { max_attempts: 1 });
    const cancelled = await spawn(c, q, 'cancelled');
    for (const claimed of await claim(c, q, 'w', 60, 3)) {
      if (claimed.task_name === 'done') await completeRun(c, q, claimed.run_id, 'ok');
      if (claimed.task_name === 'failed') await failRun(c, q, claimed.run_id);
    }
    await cancelTask(c, q, cancelled.task_id);
    await setNow(c, plus(T0, 500));
    const before = await snapshot(c, q);
    for (const t of [done, failed, cancelled]) await cancelTask(c, q, t.task_id);
    expect(await snapshot(c, q)).toEqual(before);
    expect((await taskRow(c, q, cancelled.task_id)).cancelled_at).toEqual(T0);
  });

  it('raises P0001 for a missing task', async () => {
    const q = await createQueue(c, queueName('missing'));
    await spawn(c, q);
    const ghost = '018f2d6c-0000-7000-8000-000000000000';
    const before = await snapshot(c, q);
    await expectPgError(cancelTask(c, q, ghost), 'P0001', `Task "${ghost}" not found in queue "${q}"`);
    expect(await snapshot(c, q)).toEqual(before);
  });
});

describe('cancel_task against a concurrent completion or failure', () => {
  async function race(label: string, finish: (worker: pg.Client, q: string, runId: string) => Promise<void>, options: unknown = {}) {
    const q = await createQueue(c, queueName(label));
    const { task_id, run_id } = await spawn(c, q, 'job', {}, options);
    await claimOne(c, q);
    const worker = await utcClient(db);
    const canceller = await utcClient(db);
    await canceller.query(`set statement_timeout = '10s'`);
    const cancellerPid = await backendPid(canceller);
    await worker.query('begin');
    let cancelling: Promise<unknown> | undefined;
    try {
      await finish(worker, q, run_id);
      cancelling = cancelTask(canceller, q, task_id);
      cancelling.catch(() => undefined);
      await waitUntilBlocked(c, cancellerPid);
    } finally {
      await worker.query('commit');
    }
    await cancelling;
    return { q, task_id, run_id };
  }

  it('the completion wins and the cancel becomes a no-op', async () => {
    const { q, task_id, run_id } = await race('complete', (w, q, runId) => completeRun(w, q, runId, 'won'));
    expect(await taskRow(c, q, task_id)).toMatchObject({ state: 'completed', completed_payload: 'won', cancelled_at: null });
    expect((await runRows(c, q, task_id)).map((r) => [r.run_id, r.state])).toEqual([[run_id, 'completed']]);
  });

  it('the final failure wins and the cancel becomes a no-op', async () => {
    const { q, task_id } = await race('fail', (w, q, runId) => failRun(w, q, runId), { max_attempts: 1 });
    expect(await taskRow(c, q, task_id)).toMatchObject({ state: 'failed', cancelled_at: null });
    expect((await runRows(c, q, task_id)).map((r) => r.state)).toEqual(['failed']);
  });
});
