/**
 * Checkpoints: set_task_checkpoint_state (spec §2.17), get_task_checkpoint_state (§2.19) and
 * get_task_checkpoint_states (§2.20); checklist items 12 and 13.
 */
import type pg from 'pg';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import {
  at,
  checkpointRows,
  claimOne,
  clearNow,
  createQueue,
  expectSqlError,
  runRow,
  setNow,
  spawnAndClaim,
  spawnTask,
  table,
  taskRow,
  uniqueQueue,
  connectOutsideSchema,
} from './engine-calls.js';

const db = useTestDatabase();
let c: pg.Client;

const T0 = '2024-05-01T10:00:00.000Z';
const failure = JSON.stringify({ name: 'Error', message: 'boom', stack: null });

beforeAll(async () => {
  c = await connectOutsideSchema(db);
});

beforeEach(async () => {
  await clearNow(c);
});

async function newQueue(label: string): Promise<string> {
  const q = uniqueQueue(label);
  await createQueue(c, q);
  return q;
}

/** Calls the 5-argument form, or the 6-argument form when `extendBy` is given (null included). */
async function setCheckpoint(q: string, taskId: string, step: string | null, state: unknown, ownerRun: string, extendBy?: number | null) {
  const json = JSON.stringify(state);
  if (extendBy === undefined) {
    await c.query('select absurd.set_task_checkpoint_state($1, $2, $3, $4, $5)', [q, taskId, step, json, ownerRun]);
  } else {
    await c.query('select absurd.set_task_checkpoint_state($1, $2, $3, $4, $5, $6)', [q, taskId, step, json, ownerRun, extendBy]);
  }
}

async function failRun(q: string, runId: string): Promise<void> {
  await c.query('select absurd.fail_run($1, $2, $3, null)', [q, runId, failure]);
}

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
    const q = await newQueue('cp-blank');
    const { taskId, runId } = await spawnAndClaim(c, q);
    for (const step of ['', '   ', null]) {
      await expectSqlError(setCheckpoint(q, taskId, step, 1, runId), 'P0001', 'step_name must be provided');
    }
    expect(await checkpointRows(c, q, taskId)).toEqual([]);
  });

  it('rejects an owner run that does not exist', async () => {
    const q = await newQueue('cp-norun');
    const { taskId } = await spawnAndClaim(c, q);
    const missing = '01890a5d-ac96-774b-bcce-b302099a8057';
    await expectSqlError(setCheckpoint(q, taskId, 'step', 1, missing), 'P0001', 'not found for checkpoint');
  });

  it('stores a committed checkpoint owned by the run, stamped with the current time', async () => {
    const q = await newQueue('cp-store');
    await setNow(c, T0);
    const { taskId, runId } = await spawnAndClaim(c, q);
    await setNow(c, at(T0, 5));
    await setCheckpoint(q, taskId, 'charge', { paymentId: 'p-1', amount: 12 }, runId);
    const rows = await checkpointRows(c, q, taskId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      checkpoint_name: 'charge',
      state: { paymentId: 'p-1', amount: 12 },
      status: 'committed',
      owner_run_id: runId,
    });
    expect(rows[0]!.updated_at.toISOString()).toBe(at(T0, 5));
  });

  it('stores any JSON value verbatim, including strings (sleep timestamps) and JSON null', async () => {
    const q = await newQueue('cp-json');
    const { taskId, runId } = await spawnAndClaim(c, q);
    const values: Array<[string, unknown, string]> = [
      ['a-string', '2024-05-01T10:00:30.000Z', 'string'],
      ['b-number', 42.5, 'number'],
      ['c-array', [1, 'x', null], 'array'],
      ['d-null', null, 'null'],
      ['e-false', false, 'boolean'],
    ];
    for (const [step, value] of values) await setCheckpoint(q, taskId, step, value, runId);
    const rows = await checkpointRows(c, q, taskId);
    expect(rows.map((r) => [r.checkpoint_name, r.state, r.state_type])).toEqual(values);
    // JSON null is a jsonb value, not SQL NULL.
    expect(rows.find((r) => r.checkpoint_name === 'd-null')?.state_is_sql_null).toBe(false);
    // Read back through the function too: the sleep timestamp stays a JSON string.
    const [row] = await getCheckpoint(q, taskId, 'a-string');
    expect(row?.state).toBe('2024-05-01T10:00:30.000Z');
  });

  it('lets the same run overwrite its own checkpoint', async () => {
    const q = await newQueue('cp-rewrite');
    await setNow(c, T0);
    const { taskId, runId } = await spawnAndClaim(c, q);
    await setNow(c, at(T0, 1));
    await setCheckpoint(q, taskId, 'step', 'first', runId);
    await setNow(c, at(T0, 2));
    await setCheckpoint(q, taskId, 'step', 'second', runId);
    const rows = await checkpointRows(c, q, taskId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ state: 'second', owner_run_id: runId, status: 'committed' });
    expect(rows[0]!.updated_at.toISOString()).toBe(at(T0, 2));
  });

  it('raises AB001 when the task has been cancelled, and writes nothing', async () => {
    const q = await newQueue('cp-cancel');
    const { taskId, runId } = await spawnAndClaim(c, q);
    await c.query('select absurd.cancel_task($1, $2)', [q, taskId]);
    await expectSqlError(setCheckpoint(q, taskId, 'step', 1, runId), 'AB001');
    await expectSqlError(setCheckpoint(q, taskId, 'step', 1, runId, 60), 'AB001');
    expect(await checkpointRows(c, q, taskId)).toEqual([]);
  });

  it('raises AB001 rather than AB002 when the task is cancelled and the run failed', async () => {
    const q = await newQueue('cp-cancel-failed');
    await setNow(c, T0);
    // fail_run at +70 s would retry at +100 s, past max_duration 90 s: the task is cancelled and
    // the failed run stays failed (spec §2.15 step 5).
    const { taskId, runId } = await spawnAndClaim(c, q, {
      retry_strategy: { kind: 'fixed', base_seconds: 30 },
      cancellation: { max_duration: 90 },
    });
    await setNow(c, at(T0, 70));
    await failRun(q, runId);
    expect((await taskRow(c, q, taskId)).state).toBe('cancelled');
    expect((await runRow(c, q, runId)).state).toBe('failed');
    await expectSqlError(setCheckpoint(q, taskId, 'step', 1, runId), 'AB001');
  });

  it('raises AB002 when the owner run has failed, whether or not the task was retried', async () => {
    const q = await newQueue('cp-failed');
    const final = await spawnAndClaim(c, q, { max_attempts: 1 });
    await failRun(q, final.runId);
    expect((await taskRow(c, q, final.taskId)).state).toBe('failed');
    await expectSqlError(setCheckpoint(q, final.taskId, 'step', 1, final.runId), 'AB002');

    const retried = await spawnAndClaim(c, q, { max_attempts: 3 });
    await failRun(q, retried.runId);
    expect((await taskRow(c, q, retried.taskId)).state).toBe('pending');
    await expectSqlError(setCheckpoint(q, retried.taskId, 'step', 1, retried.runId), 'AB002');
    expect(await checkpointRows(c, q, retried.taskId)).toEqual([]);
  });

  it('accepts pending, sleeping and completed owner runs', async () => {
    const q = await newQueue('cp-states');
    const pending = await spawnTask(c, q);
    await setCheckpoint(q, pending.task_id, 'while-pending', 1, pending.run_id);

    const sleeping = await claimOne(c, q);
    await c.query(`select absurd.schedule_run($1, $2, '2999-01-01T00:00:00Z')`, [q, sleeping.run_id]);
    expect((await runRow(c, q, sleeping.run_id)).state).toBe('sleeping');
    await setCheckpoint(q, sleeping.task_id, 'while-sleeping', 2, sleeping.run_id);

    const other = await spawnTask(c, q);
    const completed = await claimOne(c, q);
    expect(completed.run_id).toBe(other.run_id);
    await c.query(`select absurd.complete_run($1, $2, '{"done":true}')`, [q, completed.run_id]);
    await setCheckpoint(q, completed.task_id, 'after-completion', 3, completed.run_id);

    expect((await checkpointRows(c, q, pending.task_id)).map((r) => r.state)).toEqual([1, 2]);
    expect((await checkpointRows(c, q, other.task_id)).map((r) => r.state)).toEqual([3]);
  });

  describe('claim extension', () => {
    it('sets the lease to now + N: 30 s into a 60 s lease, extending by 60 gives now + 60', async () => {
      const q = await newQueue('cp-extend');
      await setNow(c, T0);
      const { taskId, runId } = await spawnAndClaim(c, q, {}, 60);
      expect((await runRow(c, q, runId)).claim_expires_at?.toISOString()).toBe(at(T0, 60));
      await setNow(c, at(T0, 30));
      await setCheckpoint(q, taskId, 'step', 1, runId, 60);
      const run = await runRow(c, q, runId);
      expect(run.claim_expires_at?.toISOString()).toBe(at(T0, 90));
      expect(run).toMatchObject({ state: 'running', claimed_by: 'worker-1' });
    });

    it('sets, not extends: a short extension can shorten the lease', async () => {
      const q = await newQueue('cp-shorten');
      await setNow(c, T0);
      const { taskId, runId } = await spawnAndClaim(c, q, {}, 120);
      await setNow(c, at(T0, 30));
      await setCheckpoint(q, taskId, 'step', 1, runId, 10);
      expect((await runRow(c, q, runId)).claim_expires_at?.toISOString()).toBe(at(T0, 40));
    });

    it('leaves the lease alone when the extension is omitted, NULL, zero or negative', async () => {
      const q = await newQueue('cp-noextend');
      await setNow(c, T0);
      const { taskId, runId } = await spawnAndClaim(c, q, {}, 60);
      await setNow(c, at(T0, 30));
      for (const extendBy of [undefined, null, 0, -5]) {
        await setCheckpoint(q, taskId, 'step', extendBy ?? 'none', runId, extendBy);
        expect((await runRow(c, q, runId)).claim_expires_at?.toISOString()).toBe(at(T0, 60));
      }
    });

    it('gives no lease to a run claimed without one, nor to a run that is not running', async () => {
      const q = await newQueue('cp-nolease');
      await setNow(c, T0);
      const unleased = await spawnAndClaim(c, q, {}, 0);
      expect((await runRow(c, q, unleased.runId)).claim_expires_at).toBeNull();
      await setCheckpoint(q, unleased.taskId, 'step', 1, unleased.runId, 60);
      expect((await runRow(c, q, unleased.runId)).claim_expires_at).toBeNull();

      const asleep = await spawnAndClaim(c, q, {}, 60);
      await c.query('select absurd.schedule_run($1, $2, $3)', [q, asleep.runId, at(T0, 600)]);
      await setCheckpoint(q, asleep.taskId, 'step', 1, asleep.runId, 60);
      const run = await runRow(c, q, asleep.runId);
      expect(run.state).toBe('sleeping');
      expect(run.claim_expires_at).toBeNull();

      const pending = await spawnTask(c, q);
      await setCheckpoint(q, pending.task_id, 'step', 1, pending.run_id, 60);
      const pendingRun = await runRow(c, q, pending.run_id);
      expect(pendingRun.state).toBe('pending');
      expect(pendingRun.claim_expires_at).toBeNull();
    });
  });

  describe('attempt ordering', () => {
    it('lets a newer attempt overwrite an older attempt’s checkpoint', async () => {
      const q = await newQueue('cp-newer');
      await setNow(c, T0);
      const first = await spawnAndClaim(c, q, { max_attempts: 3 });
      await setCheckpoint(q, first.taskId, 'step', 'attempt 1', first.runId);
      await failRun(q, first.runId);
      await setNow(c, at(T0, 10));
      const second = await claimOne(c, q);
      expect(second).toMatchObject({ task_id: first.taskId, attempt: 2 });
      await setNow(c, at(T0, 11));
      await setCheckpoint(q, first.taskId, 'step', 'attempt 2', second.run_id);
      const rows = await checkpointRows(c, q, first.taskId);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ state: 'attempt 2', owner_run_id: second.run_id });
      expect(rows[0]!.updated_at.toISOString()).toBe(at(T0, 11));
    });

    it('silently ignores an older attempt writing over a newer attempt’s checkpoint', async () => {
      const q = await newQueue('cp-older');
      await setNow(c, T0);
      // Task A: attempt 1, still running (not failed, not cancelled).
      const a = await spawnAndClaim(c, q, { max_attempts: 3 });
      // Task B: attempt 2 running, after attempt 1 failed.
      const b = await spawnAndClaim(c, q, { max_attempts: 3 });
      await failRun(q, b.runId);
      const b2 = await claimOne(c, q);
      expect(b2).toMatchObject({ task_id: b.taskId, attempt: 2 });
      await setNow(c, at(T0, 5));
      await setCheckpoint(q, b.taskId, 'step', 'from attempt 2', b2.run_id);

      // The run of attempt 1 writes the same key: no error, no change.
      await setNow(c, at(T0, 6));
      await setCheckpoint(q, b.taskId, 'step', 'from attempt 1', a.runId, 60);
      const rows = await checkpointRows(c, q, b.taskId);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ state: 'from attempt 2', owner_run_id: b2.run_id, status: 'committed' });
      expect(rows[0]!.updated_at.toISOString()).toBe(at(T0, 5));
    });

    it('lets any attempt overwrite a checkpoint whose owner run is unknown', async () => {
      const q = await newQueue('cp-orphan');
      const { taskId, runId } = await spawnAndClaim(c, q);
      await setCheckpoint(q, taskId, 'gone', 'old', runId);
      await setCheckpoint(q, taskId, 'null-owner', 'old', runId);
      await c.query(`update ${table('c', q)} set owner_run_id = gen_random_uuid() where checkpoint_name = 'gone'`);
      await c.query(`update ${table('c', q)} set owner_run_id = null where checkpoint_name = 'null-owner'`);
      await setCheckpoint(q, taskId, 'gone', 'new', runId);
      await setCheckpoint(q, taskId, 'null-owner', 'new', runId);
      const rows = await checkpointRows(c, q, taskId);
      expect(rows.map((r) => [r.checkpoint_name, r.state, r.owner_run_id])).toEqual([
        ['gone', 'new', runId],
        ['null-owner', 'new', runId],
      ]);
    });
  });

  it('does not check that the owner run belongs to the given task', async () => {
    const q = await newQueue('cp-cross');
    const a = await spawnAndClaim(c, q);
    const b = await spawnTask(c, q);
    await setCheckpoint(q, b.task_id, 'borrowed', { from: 'a' }, a.runId);
    const rows = await checkpointRows(c, q, b.task_id);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ checkpoint_name: 'borrowed', state: { from: 'a' }, owner_run_id: a.runId });
    expect(await checkpointRows(c, q, a.taskId)).toEqual([]);
  });
});

describe('get_task_checkpoint_state', () => {
  it('returns no row for an unknown step', async () => {
    const q = await newQueue('gcs-none');
    const { taskId } = await spawnAndClaim(c, q);
    expect(await getCheckpoint(q, taskId, 'never-written')).toEqual([]);
  });

  it('returns the five columns of a committed checkpoint', async () => {
    const q = await newQueue('gcs-one');
    await setNow(c, T0);
    const { taskId, runId } = await spawnAndClaim(c, q);
    await setNow(c, at(T0, 3));
    await setCheckpoint(q, taskId, 'step', { ok: true }, runId);
    const rows = await getCheckpoint(q, taskId, 'step');
    expect(rows).toHaveLength(1);
    expect(Object.keys(rows[0]!)).toEqual(['checkpoint_name', 'state', 'status', 'owner_run_id', 'updated_at']);
    expect(rows[0]).toMatchObject({ checkpoint_name: 'step', state: { ok: true }, status: 'committed', owner_run_id: runId });
    expect((rows[0]!.updated_at as Date).toISOString()).toBe(at(T0, 3));
  });

  it('hides a pending checkpoint unless include_pending is true', async () => {
    const q = await newQueue('gcs-pending');
    const { taskId, runId } = await spawnAndClaim(c, q);
    await setCheckpoint(q, taskId, 'step', 7, runId);
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
    const q = await newQueue('gcss-norun');
    const { taskId } = await spawnAndClaim(c, q);
    const missing = '01890a5d-ac96-774b-bcce-b302099a8057';
    await expectSqlError(getCheckpoints(q, taskId, missing), 'P0001', 'not found in queue');
  });

  it('fails when the run belongs to another task', async () => {
    const q = await newQueue('gcss-foreign');
    const a = await spawnAndClaim(c, q);
    const b = await spawnTask(c, q);
    await setCheckpoint(q, a.taskId, 'step', 1, a.runId);
    await expectSqlError(getCheckpoints(q, b.task_id, a.runId), 'P0001', 'does not belong');
  });

  it('returns the committed checkpoints ordered by updated_at, not by name', async () => {
    const q = await newQueue('gcss-order');
    await setNow(c, T0);
    const { taskId, runId } = await spawnAndClaim(c, q);
    const steps: Array<[string, number]> = [
      ['zeta', 1],
      ['alpha', 2],
      ['mid', 3],
      ['alpha', 4],
      ['hidden', 5],
    ];
    for (const [step, second] of steps) {
      await setNow(c, at(T0, second));
      await setCheckpoint(q, taskId, step, second, runId);
    }
    await c.query(`update ${table('c', q)} set status = 'pending' where checkpoint_name = 'hidden'`);
    const rows = await getCheckpoints(q, taskId, runId);
    expect(rows.map((r) => [r.checkpoint_name, r.state, (r.updated_at as Date).toISOString()])).toEqual([
      ['zeta', 1, at(T0, 1)],
      ['mid', 3, at(T0, 3)],
      ['alpha', 4, at(T0, 4)],
    ]);
    expect(Object.keys(rows[0]!)).toEqual(['checkpoint_name', 'state', 'status', 'owner_run_id', 'updated_at']);
  });

  it('hides checkpoints of later attempts and keeps the original owner of earlier ones', async () => {
    const q = await newQueue('gcss-attempts');
    await setNow(c, T0);
    const first = await spawnAndClaim(c, q, { max_attempts: 3 });
    await setNow(c, at(T0, 1));
    await setCheckpoint(q, first.taskId, 'first', 'one', first.runId);
    await setNow(c, at(T0, 2));
    await failRun(q, first.runId);
    await setNow(c, at(T0, 3));
    const second = await claimOne(c, q);
    expect(second).toMatchObject({ task_id: first.taskId, attempt: 2 });
    await setNow(c, at(T0, 4));
    await setCheckpoint(q, first.taskId, 'second', 'two', second.run_id);

    const forFirst = await getCheckpoints(q, first.taskId, first.runId);
    expect(forFirst.map((r) => [r.checkpoint_name, r.owner_run_id])).toEqual([['first', first.runId]]);
    const forSecond = await getCheckpoints(q, first.taskId, second.run_id);
    expect(forSecond.map((r) => [r.checkpoint_name, r.state, r.owner_run_id])).toEqual([
      ['first', 'one', first.runId],
      ['second', 'two', second.run_id],
    ]);
  });

  it('includes checkpoints whose owner run is gone', async () => {
    const q = await newQueue('gcss-orphan');
    await setNow(c, T0);
    const { taskId, runId } = await spawnAndClaim(c, q);
    await setCheckpoint(q, taskId, 'orphan', 1, runId);
    await setNow(c, at(T0, 1));
    await setCheckpoint(q, taskId, 'ownerless', 2, runId);
    await c.query(`update ${table('c', q)} set owner_run_id = gen_random_uuid() where checkpoint_name = 'orphan'`);
    await c.query(`update ${table('c', q)} set owner_run_id = null where checkpoint_name = 'ownerless'`);
    const rows = await getCheckpoints(q, taskId, runId);
    expect(rows.map((r) => r.checkpoint_name)).toEqual(['orphan', 'ownerless']);
  });
});
