/**
 * Checkpoints: set_task_checkpoint_state (spec §2.17), get_task_checkpoint_state (§2.19) and
 * get_task_checkpoint_states (§2.20); checklist items 12 and 13.
 */
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import {
  checkpointRows,
  claimOne,
  expectPgError,
  failRun,
  newQueue,
  plus,
  runRow,
  setCheckpoint,
  setNow,
  spawn,
  spawnAndClaim,
  table,
  taskRow,
  useSession,
} from './helpers.js';

const db = useTestDatabase();
const c = useSession(db, { outsideSchema: true, now: null });

const T0 = '2024-05-01T10:00:00.000Z';

async function getCheckpoint(q: string, taskId: string, step: string, includePending?: boolean) {
  const { rows } =
    includePending === undefined
      ? await c.query('select * from absurd.get_task_checkpoint_state($1, $2, $3)', [q, taskId, step])
      : await c.query('select * from absurd.get_task_checkpoint_state($1, $2, $3, $4)', [q, taskId, step, includePending]);
  return rows;
}

async function getCheckpoints(q: string, taskId: string, runId: string) {
  const { rows } = await c.query('select * from absurd.get_task_checkpoint_states($1, $2, $3)', [q, taskId, runId]);
  return rows;
}

describe('set_task_checkpoint_state', () => {
  it('rejects a missing or blank step name', async () => {
    const q = await newQueue(c, 'cp-blank');
    const { task_id: taskId, run_id: runId } = await spawnAndClaim(c, q);
    for (const step of ['', '   ', null]) {
      await expectPgError(setCheckpoint(c, q, taskId, step, 1, runId), 'P0001', 'step_name must be provided');
    }
    expect(await checkpointRows(c, q, taskId)).toEqual([]);
  });

  it('rejects an owner run that does not exist', async () => {
    const q = await newQueue(c, 'cp-norun');
    const { task_id: taskId } = await spawnAndClaim(c, q);
    const missing = '01890a5d-ac96-774b-bcce-b302099a8057';
    await expectPgError(setCheckpoint(c, q, taskId, 'step', 1, missing), 'P0001', 'not found for checkpoint');
  });

  it('stores a committed checkpoint owned by the run, stamped with the current time', async () => {
    const q = await newQueue(c, 'cp-store');
    await setNow(c, T0);
    const { task_id: taskId, run_id: runId } = await spawnAndClaim(c, q);
    await setNow(c, plus(T0, 5));
    await setCheckpoint(c, q, taskId, 'charge', { paymentId: 'p-1', amount: 12 }, runId);
    const rows = await checkpointRows(c, q, taskId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      checkpoint_name: 'charge',
      state: { paymentId: 'p-1', amount: 12 },
      status: 'committed',
      owner_run_id: runId,
    });
    expect(rows[0]!.updated_at.toISOString()).toBe(plus(T0, 5));
  });

  it('stores any JSON value verbatim, including strings (sleep timestamps) and JSON null', async () => {
    const q = await newQueue(c, 'cp-json');
    const { task_id: taskId, run_id: runId } = await spawnAndClaim(c, q);
    const values: Array<[string, unknown, string]> = [
      ['a-string', '2024-05-01T10:00:30.000Z', 'string'],
      ['b-number', 42.5, 'number'],
      ['c-array', [1, 'x', null], 'array'],
      ['d-null', null, 'null'],
      ['e-false', false, 'boolean'],
    ];
    for (const [step, value] of values) await setCheckpoint(c, q, taskId, step, value, runId);
    const rows = await checkpointRows(c, q, taskId);
    expect(rows.map((r) => [r.checkpoint_name, r.state, r.state_type])).toEqual(values);
    // JSON null is a jsonb value, not SQL NULL.
    expect(rows.find((r) => r.checkpoint_name === 'd-null')?.state_is_sql_null).toBe(false);
    // Read back through the function too: the sleep timestamp stays a JSON string.
    const [row] = await getCheckpoint(q, taskId, 'a-string');
    expect(row?.state).toBe('2024-05-01T10:00:30.000Z');
  });

  it('lets the same run overwrite its own checkpoint', async () => {
    const q = await newQueue(c, 'cp-rewrite');
    await setNow(c, T0);
    const { task_id: taskId, run_id: runId } = await spawnAndClaim(c, q);
    await setNow(c, plus(T0, 1));
    await setCheckpoint(c, q, taskId, 'step', 'first', runId);
    await setNow(c, plus(T0, 2));
    await setCheckpoint(c, q, taskId, 'step', 'second', runId);
    const rows = await checkpointRows(c, q, taskId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ state: 'second', owner_run_id: runId, status: 'committed' });
    expect(rows[0]!.updated_at.toISOString()).toBe(plus(T0, 2));
  });

  it('raises AB001 when the task has been cancelled, and writes nothing', async () => {
    const q = await newQueue(c, 'cp-cancel');
    const { task_id: taskId, run_id: runId } = await spawnAndClaim(c, q);
    await c.query('select absurd.cancel_task($1, $2)', [q, taskId]);
    await expectPgError(setCheckpoint(c, q, taskId, 'step', 1, runId), 'AB001');
    await expectPgError(setCheckpoint(c, q, taskId, 'step', 1, runId, 60), 'AB001');
    expect(await checkpointRows(c, q, taskId)).toEqual([]);
  });

  it('raises AB001 rather than AB002 when the task is cancelled and the run failed', async () => {
    const q = await newQueue(c, 'cp-cancel-failed');
    await setNow(c, T0);
    // fail_run at +70 s would retry at +100 s, past max_duration 90 s: the task is cancelled and
    // the failed run stays failed (spec §2.15 step 5).
    const { task_id: taskId, run_id: runId } = await spawnAndClaim(c, q, {
      retry_strategy: { kind: 'fixed', base_seconds: 30 },
      cancellation: { max_duration: 90 },
    });
    await setNow(c, plus(T0, 70));
    await failRun(c, q, runId);
    expect((await taskRow(c, q, taskId)).state).toBe('cancelled');
    expect((await runRow(c, q, runId)).state).toBe('failed');
    await expectPgError(setCheckpoint(c, q, taskId, 'step', 1, runId), 'AB001');
  });

  it('raises AB002 when the owner run has failed, whether or not the task was retried', async () => {
    const q = await newQueue(c, 'cp-failed');
    const final = await spawnAndClaim(c, q, { max_attempts: 1 });
    await failRun(c, q, final.run_id);
    expect((await taskRow(c, q, final.task_id)).state).toBe('failed');
    await expectPgError(setCheckpoint(c, q, final.task_id, 'step', 1, final.run_id), 'AB002');

    const retried = await spawnAndClaim(c, q, { max_attempts: 3 });
    await failRun(c, q, retried.run_id);
    expect((await taskRow(c, q, retried.task_id)).state).toBe('pending');
    await expectPgError(setCheckpoint(c, q, retried.task_id, 'step', 1, retried.run_id), 'AB002');
    expect(await checkpointRows(c, q, retried.task_id)).toEqual([]);
  });

  it('accepts pending, sleeping and completed owner runs', async () => {
    const q = await newQueue(c, 'cp-states');
    const pending = await spawn(c, q);
    await setCheckpoint(c, q, pending.task_id, 'while-pending', 1, pending.run_id);

    const sleeping = await claimOne(c, q);
    await c.query(`select absurd.schedule_run($1, $2, '2999-01-01T00:00:00Z')`, [q, sleeping.run_id]);
    expect((await runRow(c, q, sleeping.run_id)).state).toBe('sleeping');
    await setCheckpoint(c, q, sleeping.task_id, 'while-sleeping', 2, sleeping.run_id);

    const other = await spawn(c, q);
    const completed = await claimOne(c, q);
    expect(completed.run_id).toBe(other.run_id);
    await c.query(`select absurd.complete_run($1, $2, '{"done":true}')`, [q, completed.run_id]);
    await setCheckpoint(c, q, completed.task_id, 'after-completion', 3, completed.run_id);

    expect((await checkpointRows(c, q, pending.task_id)).map((r) => r.state)).toEqual([1, 2]);
    expect((await checkpointRows(c, q, other.task_id)).map((r) => r.state)).toEqual([3]);
  });

  describe('claim extension', () => {
    it('sets the lease to now + N: 30 s into a 60 s lease, extending by 60 gives now + 60', async () => {
      const q = await newQueue(c, 'cp-extend');
      await setNow(c, T0);
      const { task_id: taskId, run_id: runId } = await spawnAndClaim(c, q, {}, 60);
      expect((await runRow(c, q, runId)).claim_expires_at?.toISOString()).toBe(plus(T0, 60));
      await setNow(c, plus(T0, 30));
      await setCheckpoint(c, q, taskId, 'step', 1, runId, 60);
      const run = await runRow(c, q, runId);
      expect(run.claim_expires_at?.toISOString()).toBe(plus(T0, 90));
      expect(run).toMatchObject({ state: 'running', claimed_by: 'worker-1' });
    });

    it('sets, not extends: a short extension can shorten the lease', async () => {
      const q = await newQueue(c, 'cp-shorten');
      await setNow(c, T0);
      const { task_id: taskId, run_id: runId } = await spawnAndClaim(c, q, {}, 120);
      await setNow(c, plus(T0, 30));
      await setCheckpoint(c, q, taskId, 'step', 1, runId, 10);
      expect((await runRow(c, q, runId)).claim_expires_at?.toISOString()).toBe(plus(T0, 40));
    });

    it('leaves the lease alone when the extension is omitted, NULL, zero or negative', async () => {
      const q = await newQueue(c, 'cp-noextend');
      await setNow(c, T0);
      const { task_id: taskId, run_id: runId } = await spawnAndClaim(c, q, {}, 60);
      await setNow(c, plus(T0, 30));
      for (const extendBy of [undefined, null, 0, -5]) {
        await setCheckpoint(c, q, taskId, 'step', extendBy ?? 'none', runId, extendBy);
        expect((await runRow(c, q, runId)).claim_expires_at?.toISOString()).toBe(plus(T0, 60));
      }
    });

    it('gives no lease to a run claimed without one, nor to a run that is not running', async () => {
      const q = await newQueue(c, 'cp-nolease');
      await setNow(c, T0);
      const unleased = await spawnAndClaim(c, q, {}, 0);
      expect((await runRow(c, q, unleased.run_id)).claim_expires_at).toBeNull();
      await setCheckpoint(c, q, unleased.task_id, 'step', 1, unleased.run_id, 60);
      expect((await runRow(c, q, unleased.run_id)).claim_expires_at).toBeNull();

      const asleep = await spawnAndClaim(c, q, {}, 60);
      await c.query('select absurd.schedule_run($1, $2, $3)', [q, asleep.run_id, plus(T0, 600)]);
      await setCheckpoint(c, q, asleep.task_id, 'step', 1, asleep.run_id, 60);
      const run = await runRow(c, q, asleep.run_id);
      expect(run.state).toBe('sleeping');
      expect(run.claim_expires_at).toBeNull();

      const pending = await spawn(c, q);
      await setCheckpoint(c, q, pending.task_id, 'step', 1, pending.run_id, 60);
      const pendingRun = await runRow(c, q, pending.run_id);
      expect(pendingRun.state).toBe('pending');
      expect(pendingRun.claim_expires_at).toBeNull();
    });
  });

  describe('attempt ordering', () => {
    it('lets a newer attempt overwrite an older attempt’s checkpoint', async () => {
      const q = await newQueue(c, 'cp-newer');
      await setNow(c, T0);
      const first = await spawnAndClaim(c, q, { max_attempts: 3 });
      await setCheckpoint(c, q, first.task_id, 'step', 'attempt 1', first.run_id);
      await failRun(c, q, first.run_id);
      await setNow(c, plus(T0, 10));
      const second = await claimOne(c, q);
      expect(second).toMatchObject({ task_id: first.task_id, attempt: 2 });
      await setNow(c, plus(T0, 11));
      await setCheckpoint(c, q, first.task_id, 'step', 'attempt 2', second.run_id);
      const rows = await checkpointRows(c, q, first.task_id);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ state: 'attempt 2', owner_run_id: second.run_id });
      expect(rows[0]!.updated_at.toISOString()).toBe(plus(T0, 11));
    });

    it('silently ignores an older attempt writing over a newer attempt’s checkpoint', async () => {
      const q = await newQueue(c, 'cp-older');
      await setNow(c, T0);
      // Task A: attempt 1, still running (not failed, not cancelled).
      const a = await spawnAndClaim(c, q, { max_attempts: 3 });
      // Task B: attempt 2 running, after attempt 1 failed.
      const b = await spawnAndClaim(c, q, { max_attempts: 3 });
      await failRun(c, q, b.run_id);
      const b2 = await claimOne(c, q);
      expect(b2).toMatchObject({ task_id: b.task_id, attempt: 2 });
      await setNow(c, plus(T0, 5));
      await setCheckpoint(c, q, b.task_id, 'step', 'from attempt 2', b2.run_id);

      // The run of attempt 1 writes the same key: no error, no change.
      await setNow(c, plus(T0, 6));
      await setCheckpoint(c, q, b.task_id, 'step', 'from attempt 1', a.run_id, 60);
      const rows = await checkpointRows(c, q, b.task_id);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ state: 'from attempt 2', owner_run_id: b2.run_id, status: 'committed' });
      expect(rows[0]!.updated_at.toISOString()).toBe(plus(T0, 5));
    });

    it('lets any attempt overwrite a checkpoint whose owner run is unknown', async () => {
      const q = await newQueue(c, 'cp-orphan');
      const { task_id: taskId, run_id: runId } = await spawnAndClaim(c, q);
      await setCheckpoint(c, q, taskId, 'gone', 'old', runId);
      await setCheckpoint(c, q, taskId, 'null-owner', 'old', runId);
      await c.query(`update ${table('c', q)} set owner_run_id = gen_random_uuid() where checkpoint_name = 'gone'`);
      await c.query(`update ${table('c', q)} set owner_run_id = null where checkpoint_name = 'null-owner'`);
      await setCheckpoint(c, q, taskId, 'gone', 'new', runId);
      await setCheckpoint(c, q, taskId, 'null-owner', 'new', runId);
      const rows = await checkpointRows(c, q, taskId);
      expect(rows.map((r) => [r.checkpoint_name, r.state, r.owner_run_id])).toEqual([
        ['gone', 'new', runId],
        ['null-owner', 'new', runId],
      ]);
    });
  });

  it('does not check that the owner run belongs to the given task', async () => {
    const q = await newQueue(c, 'cp-cross');
    const a = await spawnAndClaim(c, q);
    const b = await spawn(c, q);
    await setCheckpoint(c, q, b.task_id, 'borrowed', { from: 'a' }, a.run_id);
    const rows = await checkpointRows(c, q, b.task_id);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ checkpoint_name: 'borrowed', state: { from: 'a' }, owner_run_id: a.run_id });
    expect(await checkpointRows(c, q, a.task_id)).toEqual([]);
  });
});

describe('get_task_checkpoint_state', () => {
  it('returns no row for an unknown step', async () => {
    const q = await newQueue(c, 'gcs-none');
    const { task_id: taskId } = await spawnAndClaim(c, q);
    expect(await getCheckpoint(q, taskId, 'never-written')).toEqual([]);
  });

  it('returns the five columns of a committed checkpoint', async () => {
    const q = await newQueue(c, 'gcs-one');
    await setNow(c, T0);
    const { task_id: taskId, run_id: runId } = await spawnAndClaim(c, q);
    await setNow(c, plus(T0, 3));
    await setCheckpoint(c, q, taskId, 'step', { ok: true }, runId);
    const rows = await getCheckpoint(q, taskId, 'step');
    expect(rows).toHaveLength(1);
    expect(Object.keys(rows[0]!)).toEqual(['checkpoint_name', 'state', 'status', 'owner_run_id', 'updated_at']);
    expect(rows[0]).toMatchObject({ checkpoint_name: 'step', state: { ok: true }, status: 'committed', owner_run_id: runId });
    expect((rows[0]!.updated_at as Date).toISOString()).toBe(plus(T0, 3));
  });

  it('hides a pending checkpoint unless include_pending is true', async () => {
    const q = await newQueue(c, 'gcs-pending');
    const { task_id: taskId, run_id: runId } = await spawnAndClaim(c, q);
    await setCheckpoint(c, q, taskId, 'step', 7, runId);
    await c.query(`update ${table('c', q)} set status = 'pending' where task_id = $1 and checkpoint_name = 'step'`, [taskId]);
    expect(await getCheckpoint(q, taskId, 'step')).toEqual([]);
    expect(await getCheckpoint(q, taskId, 'step', false)).toEqual([]);
    const rows = await getCheckpoint(q, taskId, 'step', true);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ checkpoint_name: 'step', state: 7, status: 'pending', owner_run_id: runId });
  });
});

describe('get_task_checkpoint_states', () => {
  it('fails for an unknown run', async () => {
    const q = await newQueue(c, 'gcss-norun');
    const { task_id: taskId } = await spawnAndClaim(c, q);
    const missing = '01890a5d-ac96-774b-bcce-b302099a8057';
    await expectPgError(getCheckpoints(q, taskId, missing), 'P0001', 'not found in queue');
  });

  it('fails when the run belongs to another task', async () => {
    const q = await newQueue(c, 'gcss-foreign');
    const a = await spawnAndClaim(c, q);
    const b = await spawn(c, q);
    await setCheckpoint(c, q, a.task_id, 'step', 1, a.run_id);
    await expectPgError(getCheckpoints(q, b.task_id, a.run_id), 'P0001', 'does not belong');
  });

  it('returns the committed checkpoints ordered by updated_at, not by name', async () => {
    const q = await newQueue(c, 'gcss-order');
    await setNow(c, T0);
    const { task_id: taskId, run_id: runId } = await spawnAndClaim(c, q);
    const steps: Array<[string, number]> = [
      ['zeta', 1],
      ['alpha', 2],
      ['mid', 3],
      ['alpha', 4],
      ['hidden', 5],
    ];
    for (const [step, second] of steps) {
      await setNow(c, plus(T0, second));
      await setCheckpoint(c, q, taskId, step, second, runId);
    }
    await c.query(`update ${table('c', q)} set status = 'pending' where checkpoint_name = 'hidden'`);
    const rows = await getCheckpoints(q, taskId, runId);
    expect(rows.map((r) => [r.checkpoint_name, r.state, (r.updated_at as Date).toISOString()])).toEqual([
      ['zeta', 1, plus(T0, 1)],
      ['mid', 3, plus(T0, 3)],
      ['alpha', 4, plus(T0, 4)],
    ]);
    expect(Object.keys(rows[0]!)).toEqual(['checkpoint_name', 'state', 'status', 'owner_run_id', 'updated_at']);
  });

  it('hides checkpoints of later attempts and keeps the original owner of earlier ones', async () => {
    const q = await newQueue(c, 'gcss-attempts');
    await setNow(c, T0);
    const first = await spawnAndClaim(c, q, { max_attempts: 3 });
    await setNow(c, plus(T0, 1));
    await setCheckpoint(c, q, first.task_id, 'first', 'one', first.run_id);
    await setNow(c, plus(T0, 2));
    await failRun(c, q, first.run_id);
    await setNow(c, plus(T0, 3));
    const second = await claimOne(c, q);
    expect(second).toMatchObject({ task_id: first.task_id, attempt: 2 });
    await setNow(c, plus(T0, 4));
    await setCheckpoint(c, q, first.task_id, 'second', 'two', second.run_id);

    const forFirst = await getCheckpoints(q, first.task_id, first.run_id);
    expect(forFirst.map((r) => [r.checkpoint_name, r.owner_run_id])).toEqual([['first', first.run_id]]);
    const forSecond = await getCheckpoints(q, first.task_id, second.run_id);
    expect(forSecond.map((r) => [r.checkpoint_name, r.state, r.owner_run_id])).toEqual([
      ['first', 'one', first.run_id],
      ['second', 'two', second.run_id],
    ]);
  });

  it('includes checkpoints whose owner run is gone', async () => {
    const q = await newQueue(c, 'gcss-orphan');
    await setNow(c, T0);
    const { task_id: taskId, run_id: runId } = await spawnAndClaim(c, q);
    await setCheckpoint(c, q, taskId, 'orphan', 1, runId);
    await setNow(c, plus(T0, 1));
    await setCheckpoint(c, q, taskId, 'ownerless', 2, runId);
    await c.query(`update ${table('c', q)} set owner_run_id = gen_random_uuid() where checkpoint_name = 'orphan'`);
    await c.query(`update ${table('c', q)} set owner_run_id = null where checkpoint_name = 'ownerless'`);
    const rows = await getCheckpoints(q, taskId, runId);
    expect(rows.map((r) => r.checkpoint_name)).toEqual(['orphan', 'ownerless']);
  });
});
