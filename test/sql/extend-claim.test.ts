/**
 * Heartbeats: extend_claim (spec §2.18, §3.3, checklist item 6).
 */
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import {
  claim,
  claimOne,
  expectPgError,
  failRun,
  newQueue,
  plus,
  runRow,
  setNow,
  spawn,
  spawnAndClaim,
  taskRow,
  useSession,
} from './helpers.js';

const db = useTestDatabase();
const c = useSession(db, { outsideSchema: true, now: null });

const T0 = '2024-06-03T08:00:00.000Z';

async function extendClaim(q: string, runId: string, by: number | null): Promise<void> {
  await c.query('select absurd.extend_claim($1, $2, $3)', [q, runId, by]);
}

async function expiry(q: string, runId: string): Promise<string | undefined> {
  return (await runRow(c, q, runId)).claim_expires_at?.toISOString();
}

describe('extend_claim', () => {
  it('rejects an extension that is NULL, zero or negative', async () => {
    const q = await newQueue(c, 'ec-by');
    await setNow(c, T0);
    const { run_id: runId } = await spawnAndClaim(c, q, {}, 60);
    for (const by of [0, -1, null]) {
      await expectPgError(extendClaim(q, runId, by), 'P0001', 'extend_by must be > 0');
    }
    expect(await expiry(q, runId)).toBe(plus(T0, 60));
  });

  it('checks the extension before looking for the run', async () => {
    const q = await newQueue(c, 'ec-by-first');
    await expectPgError(extendClaim(q, '01890a5d-ac96-774b-bcce-b302099a8057', 0), 'P0001', 'extend_by must be > 0');
  });

  it('fails for an unknown run', async () => {
    const q = await newQueue(c, 'ec-missing');
    await spawnAndClaim(c, q);
    const missing = '01890a5d-ac96-774b-bcce-b302099a8057';
    await expectPgError(extendClaim(q, missing, 30), 'P0001', 'not found');
  });

  it('sets the lease to now + N: claimed at base with 60 s, extended by 30 at +10 s gives base + 40', async () => {
    const q = await newQueue(c, 'ec-example');
    await setNow(c, T0);
    const { run_id: runId, task_id: taskId } = await spawnAndClaim(c, q, {}, 60);
    expect(await expiry(q, runId)).toBe(plus(T0, 60));
    await setNow(c, plus(T0, 10));
    await extendClaim(q, runId, 30);
    expect(await expiry(q, runId)).toBe(plus(T0, 40));
    const run = await runRow(c, q, runId);
    expect(run).toMatchObject({ state: 'running', claimed_by: 'worker-1' });
    expect((await taskRow(c, q, taskId)).state).toBe('running');
  });

  it('can push the lease past its original end', async () => {
    const q = await newQueue(c, 'ec-longer');
    await setNow(c, T0);
    const { run_id: runId } = await spawnAndClaim(c, q, {}, 30);
    await setNow(c, plus(T0, 20));
    await extendClaim(q, runId, 300);
    expect(await expiry(q, runId)).toBe(plus(T0, 320));
  });

  it('keeps an extended run from being reaped at its old expiry, but not at its new one', async () => {
    const q = await newQueue(c, 'ec-reap');
    await setNow(c, T0);
    const { run_id: runId, task_id: taskId } = await spawnAndClaim(c, q, { max_attempts: 3 }, 30);
    await setNow(c, plus(T0, 20));
    await extendClaim(q, runId, 60); // lease now ends at +80 s
    await setNow(c, plus(T0, 50));
    expect(await claim(c, q, 'worker-2', 30)).toEqual([]);
    expect((await runRow(c, q, runId)).state).toBe('running');
    await setNow(c, plus(T0, 81));
    const next = await claimOne(c, q, 'worker-2', 30);
    expect(next).toMatchObject({ task_id: taskId, attempt: 2 });
    expect((await runRow(c, q, runId)).state).toBe('failed');
  });

  it('extends a lease that has expired but was not swept yet', async () => {
    const q = await newQueue(c, 'ec-late');
    await setNow(c, T0);
    const { run_id: runId } = await spawnAndClaim(c, q, {}, 30);
    await setNow(c, plus(T0, 45));
    await extendClaim(q, runId, 30);
    expect(await expiry(q, runId)).toBe(plus(T0, 75));
    await setNow(c, plus(T0, 50));
    expect(await claim(c, q, 'worker-2', 30)).toEqual([]);
    expect((await runRow(c, q, runId)).state).toBe('running');
  });

  it('raises AB001 when the task was cancelled (checked before the run state)', async () => {
    const q = await newQueue(c, 'ec-cancel');
    const { run_id: runId, task_id: taskId } = await spawnAndClaim(c, q);
    await c.query('select absurd.cancel_task($1, $2)', [q, taskId]);
    // The run is cancelled too; the task check must come first.
    expect((await runRow(c, q, runId)).state).toBe('cancelled');
    await expectPgError(extendClaim(q, runId, 30), 'AB001');
  });

  it('raises AB001 for a cancelled task whose run failed', async () => {
    const q = await newQueue(c, 'ec-cancel-failed');
    await setNow(c, T0);
    const { run_id: runId, task_id: taskId } = await spawnAndClaim(c, q, {
      retry_strategy: { kind: 'fixed', base_seconds: 30 },
      cancellation: { max_duration: 90 },
    });
    await setNow(c, plus(T0, 70)); // the retry at +100 s would pass max_duration: task cancelled
    await failRun(c, q, runId);
    expect((await taskRow(c, q, taskId)).state).toBe('cancelled');
    expect((await runRow(c, q, runId)).state).toBe('failed');
    await expectPgError(extendClaim(q, runId, 30), 'AB001');
  });

  it('raises AB002 when the run has failed', async () => {
    const q = await newQueue(c, 'ec-failed');
    const final = await spawnAndClaim(c, q, { max_attempts: 1 });
    await failRun(c, q, final.run_id);
    await expectPgError(extendClaim(q, final.run_id, 30), 'AB002');

    const retried = await spawnAndClaim(c, q, { max_attempts: 5 });
    await failRun(c, q, retried.run_id);
    await expectPgError(extendClaim(q, retried.run_id, 30), 'AB002');
  });

  it('raises AB002 for a zombie whose lease was reaped by another worker', async () => {
    const q = await newQueue(c, 'ec-zombie');
    await setNow(c, T0);
    const { run_id: runId, task_id: taskId } = await spawnAndClaim(c, q, { max_attempts: 3 }, 30);
    await setNow(c, plus(T0, 31));
    const next = await claimOne(c, q, 'worker-2', 30);
    expect(next).toMatchObject({ task_id: taskId, attempt: 2 });
    await expectPgError(extendClaim(q, runId, 30), 'AB002');
  });

  it('rejects runs that are pending, sleeping or completed as not currently running', async () => {
    const q = await newQueue(c, 'ec-state');
    await setNow(c, T0);
    const pending = await spawn(c, q);
    await expectPgError(extendClaim(q, pending.run_id, 30), 'P0001', 'not currently running');

    const sleeping = await claimOne(c, q);
    await c.query('select absurd.schedule_run($1, $2, $3)', [q, sleeping.run_id, plus(T0, 600)]);
    await expectPgError(extendClaim(q, sleeping.run_id, 30), 'P0001', 'not currently running');

    const done = await spawnAndClaim(c, q);
    await c.query(`select absurd.complete_run($1, $2, 'null')`, [q, done.run_id]);
    await expectPgError(extendClaim(q, done.run_id, 30), 'P0001', 'not currently running');
  });

  it('rejects a run claimed with timeout 0, which has no lease to extend', async () => {
    const q = await newQueue(c, 'ec-nolease');
    await setNow(c, T0);
    const { run_id: runId } = await spawnAndClaim(c, q, {}, 0);
    const run = await runRow(c, q, runId);
    expect(run.state).toBe('running');
    expect(run.claim_expires_at).toBeNull();
    await expectPgError(extendClaim(q, runId, 30), 'P0001', 'does not have an active claim');
    expect((await runRow(c, q, runId)).claim_expires_at).toBeNull();
  });
});
