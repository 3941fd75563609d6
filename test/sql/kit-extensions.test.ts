/**
 * absurd-kit's additive engine functions (migration 000006, and kit_fail_run of 000002):
 * kit_seconds_until_next_run, kit_fail_task, kit_claim_task, kit_complete_runs and
 * kit_set_checkpoints, each against the behaviour its header comment promises.
 */
import type pg from 'pg';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import {
  at,
  checkpointRows,
  claimOne,
  claimTasks,
  clearNow,
  connectOutsideSchema,
  createQueue,
  expectSqlError,
  pidOf,
  runRow,
  setNow,
  spawnAndClaim,
  spawnTask,
  table,
  taskRow,
  uniqueQueue,
  waitRows,
  waitUntilBlocked,
  type Claimed,
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

async function secondsUntilNext(q: string): Promise<number | null> {
  const { rows } = await c.query<{ s: number | null }>('select absurd.kit_seconds_until_next_run($1) as s', [q]);
  return rows[0]!.s;
}

async function failRun(q: string, runId: string): Promise<void> {
  await c.query('select absurd.fail_run($1, $2, $3, null)', [q, runId, failure]);
}

async function kitFailTask(client: pg.Client, q: string, runId: string, reason = failure): Promise<void> {
  await client.query('select absurd.kit_fail_task($1, $2, $3)', [q, runId, reason]);
}

async function setCheckpoint(q: string, taskId: string, step: string, state: unknown, ownerRun: string): Promise<void> {
  await c.query('select absurd.set_task_checkpoint_state($1, $2, $3, $4, $5)', [q, taskId, step, JSON.stringify(state), ownerRun]);
}

async function awaitEvent(q: string, taskId: string, runId: string, step: string, event: string, timeout: number | null) {
  await c.query('select * from absurd.await_event($1, $2, $3, $4, $5, $6)', [q, taskId, runId, step, event, timeout]);
}

async function insertWait(q: string, taskId: string, runId: string, step: string, event: string): Promise<void> {
  await c.query(`insert into ${table('w', q)} (task_id, run_id, step_name, event_name, timeout_at) values ($1, $2, $3, $4, null)`, [
    taskId,
    runId,
    step,
    event,
  ]);
}

/** Every row of the queue's run, task, checkpoint and wait tables, for "nothing changed" checks. */
async function tables(q: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const prefix of ['t', 'r', 'c', 'w'] as const) {
    const { rows } = await c.query<{ rows: unknown }>(
      `select coalesce(jsonb_agg(to_jsonb(x) order by to_jsonb(x)::text), '[]'::jsonb) as rows from ${table(prefix, q)} x`,
    );
    out[prefix] = rows[0]!.rows;
  }
  return out;
}

type KitClaimed = Claimed & { checkpoints: Record<string, unknown> };

async function kitClaim(client: pg.Client, q: string, worker = 'worker-1', timeout = 60, qty = 1): Promise<KitClaimed[]> {
  const { rows } = await client.query<KitClaimed>('select * from absurd.kit_claim_task($1, $2, $3, $4)', [q, worker, timeout, qty]);
  return rows;
}

async function kitComplete(client: pg.Client, q: string, runIds: string[], results: (string | null)[]) {
  const { rows } = await client.query<{ run_id: string; outcome: string }>('select * from absurd.kit_complete_runs($1, $2, $3)', [
    q,
    runIds,
    results,
  ]);
  return rows;
}

interface Write {
  taskId: string;
  step: string;
  /** JSON text, or null for SQL NULL. */
  state: string | null;
  ownerRun: string;
  extendBy: number | null;
}

async function kitSetCheckpoints(q: string, writes: Write[]) {
  const { rows } = await c.query<{ ord: string; outcome: string }>(
    'select ord, outcome from absurd.kit_set_checkpoints($1, $2, $3, $4, $5, $6)',
    [
      q,
      writes.map((w) => w.taskId),
      writes.map((w) => w.step),
      writes.map((w) => w.state),
      writes.map((w) => w.ownerRun),
      writes.map((w) => w.extendBy),
    ],
  );
  return rows.map((r) => [Number(r.ord), r.outcome]);
}

const missingRun = '00000000-0000-7000-8000-000000000001';

describe('kit_seconds_until_next_run', () => {
  it('is NULL for an empty queue and for a queue with only finished, cancelled or lease-less work', async () => {
    const q = await newQueue('next-none');
    expect(await secondsUntilNext(q)).toBeNull();
    await setNow(c, T0);
    const done = await spawnAndClaim(c, q);
    await c.query('select absurd.complete_run($1, $2, $3)', [q, done.runId, '1']);
    const cancelled = await spawnTask(c, q);
    await c.query('select absurd.cancel_task($1, $2)', [q, cancelled.task_id]);
    const failed = await spawnAndClaim(c, q, { max_attempts: 1 });
    await failRun(q, failed.runId);
    // Claimed without a lease (timeout 0): it never expires.
    await spawnTask(c, q);
    await claimOne(c, q, 'worker-1', 0);
    expect(await secondsUntilNext(q)).toBeNull();
  });

  it('ignores runs waiting for an event without timeout (available at infinity)', async () => {
    const q = await newQueue('next-infinity');
    await setNow(c, T0);
    const { taskId, runId } = await spawnAndClaim(c, q, {}, 0);
    await awaitEvent(q, taskId, runId, 'wait', 'never', null);
    expect((await runRow(c, q, runId)).available_at_infinite).toBe(true);
    expect(await secondsUntilNext(q)).toBeNull();
    // A timed wait counts.
    const other = await spawnAndClaim(c, q, {}, 0);
    await awaitEvent(q, other.taskId, other.runId, 'wait', 'later', 45);
    await setNow(c, at(T0, 5));
    expect(await secondsUntilNext(q)).toBe(40);
  });

  it('counts a due pending run as 0 or less', async () => {
    const q = await newQueue('next-pending');
    await setNow(c, T0);
    await spawnTask(c, q);
    expect(await secondsUntilNext(q)).toBe(0);
    await setNow(c, at(T0, 7.25));
    expect(await secondsUntilNext(q)).toBe(-7.25);
  });

  it('takes the earliest of sleeping runs and lease expiries, with fractions of a second', async () => {
    const q = await newQueue('next-min');
    await setNow(c, T0);
    const leased = await spawnAndClaim(c, q, {}, 60); // lease ends at T0+60
    expect(leased.runId).toBeTruthy();
    const sleeper = await spawnAndClaim(c, q, {}, 0);
    await c.query('select absurd.schedule_run($1, $2, $3)', [q, sleeper.runId, at(T0, 90.5)]);
    await setNow(c, at(T0, 10));
    expect(await secondsUntilNext(q)).toBe(50);
    await c.query(`update ${table('r', q)} set available_at = $2 where run_id = $1`, [sleeper.runId, at(T0, 30.5)]);
    expect(await secondsUntilNext(q)).toBe(20.5);
    // An expired lease is due (negative).
    await c.query(`update ${table('r', q)} set available_at = $2 where run_id = $1`, [sleeper.runId, at(T0, 200)]);
    await setNow(c, at(T0, 61));
    expect(await secondsUntilNext(q)).toBe(-1);
  });
});

describe('kit_fail_task', () => {
  it('fails the run and the task with attempts left and a retry strategy, and deletes only its waits', async () => {
    const q = await newQueue('kft-running');
    await setNow(c, T0);
    const { taskId, runId } = await spawnAndClaim(c, q, { max_attempts: 5, retry_strategy: { kind: 'fixed', base_seconds: 1 } });
    const other = await spawnAndClaim(c, q);
    await insertWait(q, taskId, runId, 'mine', 'ev');
    await insertWait(q, other.taskId, other.runId, 'theirs', 'ev');
    await setNow(c, at(T0, 3));
    const reason = JSON.stringify({ name: 'SchemaError', message: 'bad params' });
    await kitFailTask(c, q, runId, reason);

    const r = await runRow(c, q, runId);
    expect(r).toMatchObject({
      state: 'failed',
      attempt: 1,
      claimed_by: 'worker-1',
      wake_event: null,
      failure_reason: { name: 'SchemaError', message: 'bad params' },
      result: null,
    });
    expect(r.failed_at?.toISOString()).toBe(at(T0, 3));
    expect(r.claim_expires_at?.toISOString()).toBe(at(T0, 60));
    expect(await taskRow(c, q, taskId)).toMatchObject({ state: 'failed', attempts: 1, last_attempt_run: runId, cancelled_at: null });
    const { rows } = await c.query(`select run_id from ${table('r', q)} where task_id = $1`, [taskId]);
    expect(rows).toEqual([{ run_id: runId }]);
    expect((await waitRows(c, q)).map((w) => [w.run_id, w.step_name])).toEqual([[other.runId, 'theirs']]);
    expect((await runRow(c, q, other.runId)).state).toBe('running');
  });

  it('fails a sleeping run with unlimited attempts for good, deleting its wait', async () => {
    const q = await newQueue('kft-sleeping');
    await setNow(c, T0);
    const { taskId, runId } = await spawnAndClaim(c, q, { max_attempts: null });
    await awaitEvent(q, taskId, runId, 'wait', 'ev', 30);
    expect(await waitRows(c, q)).toHaveLength(1);
    await kitFailTask(c, q, runId);
    expect(await runRow(c, q, runId)).toMatchObject({ state: 'failed', wake_event: null, failure_reason: JSON.parse(failure) });
    expect(await taskRow(c, q, taskId)).toMatchObject({ state: 'failed', attempts: 1, last_attempt_run: runId });
    expect(await waitRows(c, q)).toEqual([]);
    expect(await c.query(`select 1 from ${table('r', q)}`).then((r) => r.rowCount)).toBe(1);
  });

  it('raises fail_run’s errors and changes nothing', async () => {
    const q = await newQueue('kft-errors');
    await setNow(c, T0);
    const cancelled = await spawnAndClaim(c, q);
    await c.query('select absurd.cancel_task($1, $2)', [q, cancelled.taskId]);
    const completed = await spawnAndClaim(c, q);
    await c.query('select absurd.complete_run($1, $2, $3)', [q, completed.runId, '1']);
    const failed = await spawnAndClaim(c, q, { max_attempts: 3 });
    await failRun(q, failed.runId);
    const pendingRun = (await c.query<{ run_id: string }>(`select run_id from ${table('r', q)} where state = 'pending'`)).rows;
    expect(pendingRun).toHaveLength(1);
    const before = await tables(q);

    await expectSqlError(kitFailTask(c, q, cancelled.runId), 'AB001', 'Task has been cancelled');
    await expectSqlError(kitFailTask(c, q, failed.runId), 'AB002', `Run "${failed.runId}" has already failed in queue "${q}"`);
    await expectSqlError(kitFailTask(c, q, missingRun), 'P0001', `Run "${missingRun}" cannot be failed in queue "${q}"`);
    await expectSqlError(kitFailTask(c, q, pendingRun[0]!.run_id), 'P0001', 'cannot be failed');
    await expectSqlError(kitFailTask(c, q, completed.runId), 'P0001', 'cannot be failed');
    expect(await tables(q)).toEqual(before);
  });
});

describe('kit_claim_task', () => {
  it('returns nothing when nothing is claimable', async () => {
    const q = await newQueue('kct-empty');
    expect(await kitClaim(c, q, 'w', 30, 5)).toEqual([]);
  });

  it('returns claim_task’s rows in claim_task’s order, with {} for runs without checkpoints', async () => {
    const q = await newQueue('kct-order');
    await setNow(c, T0);
    const a = await spawnTask(c, q, { headers: { h: 1 }, max_attempts: 4, retry_strategy: { kind: 'none' } }, 'alpha', { p: 'a' });
    const b = await spawnTask(c, q, {}, 'beta', null);
    const d = await spawnTask(c, q, {}, 'gamma', [1, 2]);
    await spawnTask(c, q, {}, 'later');
    // Claim order (available_at, run_id) differs from spawn order; the last run is not yet due.
    const r = table('r', q);
    await c.query(`update ${r} set available_at = $2 where run_id = $1`, [a.run_id, at(T0, -1)]);
    await c.query(`update ${r} set available_at = $2 where run_id = $1`, [b.run_id, at(T0, -3)]);
    await c.query(`update ${r} set available_at = $2 where run_id = $1`, [d.run_id, at(T0, -2)]);
    await c.query(`update ${r} set available_at = $2 where run_id not in ($1, $3, $4)`, [a.run_id, at(T0, 5), b.run_id, d.run_id]);

    await c.query('begin');
    const plain = await claimTasks(c, q, 'worker-x', 45, 10);
    await c.query('rollback');
    expect(plain.map((p) => p.run_id)).toEqual([b.run_id, d.run_id, a.run_id]);

    const kit = await kitClaim(c, q, 'worker-x', 45, 10);
    expect(kit.map(({ checkpoints, ...rest }) => rest)).toEqual(plain);
    expect(kit.map((k) => k.checkpoints)).toEqual([{}, {}, {}]);
    expect(Object.keys(kit[0]!)).toEqual([
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
      'checkpoints',
    ]);
    expect(kit[2]).toMatchObject({ task_name: 'alpha', params: { p: 'a' }, headers: { h: 1 }, max_attempts: 4, attempt: 1 });
    const claimed = await runRow(c, q, a.run_id);
    expect(claimed).toMatchObject({ state: 'running', claimed_by: 'worker-x' });
    expect(claimed.claim_expires_at?.toISOString()).toBe(at(T0, 45));
    expect((await taskRow(c, q, a.task_id)).state).toBe('running');
  });

  it('returns the checkpoints visible to the run’s attempt: earlier attempts’, ownerless, JSON null; not later attempts’ or uncommitted', async () => {
    const q = await newQueue('kct-cps');
    await setNow(c, T0);
    // Task A: attempt 1 writes, fails; attempt 2 will be claimed.
    const a1 = await spawnAndClaim(c, q, { max_attempts: 3 });
    await setCheckpoint(q, a1.taskId, 'first', { v: 1 }, a1.runId);
    await setCheckpoint(q, a1.taskId, 'json-null', null, a1.runId);
    await setCheckpoint(q, a1.taskId, 'ownerless', 'x', a1.runId);
    await setCheckpoint(q, a1.taskId, 'uncommitted', 'p', a1.runId);
    await c.query(`update ${table('c', q)} set owner_run_id = gen_random_uuid() where checkpoint_name = 'ownerless'`);
    await c.query(`update ${table('c', q)} set status = 'pending' where checkpoint_name = 'uncommitted'`);
    await failRun(q, a1.runId);
    // A's attempt 2 is pending and would be claimed first; push it back while B retries.
    const a2run = (await c.query<{ run_id: string }>(`select run_id from ${table('r', q)} where task_id = $1 and attempt = 2`, [a1.taskId]))
      .rows[0]!.run_id;
    await c.query(`update ${table('r', q)} set available_at = $2 where run_id = $1`, [a2run, at(T0, 100)]);
    // Task B: attempt 3 running; it writes a checkpoint on A's key (a later attempt than A's next).
    const b1 = await spawnAndClaim(c, q, { max_attempts: 5 });
    await failRun(q, b1.runId);
    await failRun(q, (await claimOne(c, q)).run_id);
    const b3 = await claimOne(c, q);
    expect(b3).toMatchObject({ task_id: b1.taskId, attempt: 3 });
    await setCheckpoint(q, a1.taskId, 'later', 'hidden', b3.run_id);
    await c.query('select absurd.complete_run($1, $2, $3)', [q, b3.run_id, '3']);

    await setNow(c, at(T0, 100));
    const [claimed, ...more] = await kitClaim(c, q, 'worker-2', 30, 5);
    expect(more).toEqual([]);
    expect(claimed).toMatchObject({ run_id: a2run, task_id: a1.taskId, attempt: 2 });
    expect(claimed!.checkpoints).toEqual({ first: { v: 1 }, 'json-null': null, ownerless: 'x' });
    expect(Object.keys(claimed!.checkpoints).sort()).toEqual(['first', 'json-null', 'ownerless']);
    // The same set get_task_checkpoint_states returns.
    const { rows } = await c.query<{ o: unknown }>(
      'select jsonb_object_agg(checkpoint_name, state) as o from absurd.get_task_checkpoint_states($1, $2, $3)',
      [q, a1.taskId, a2run],
    );
    expect(rows[0]!.o).toEqual(claimed!.checkpoints);
  });
});

describe('kit_complete_runs', () => {
  it('completes running runs and reports the others in input order without touching them', async () => {
    const q = await newQueue('kcr-mixed');
    await setNow(c, T0);
    const r1 = await spawnAndClaim(c, q);
    const r2 = await spawnAndClaim(c, q);
    await insertWait(q, r2.taskId, r2.runId, 'w', 'ev');
    const cancelled = await spawnAndClaim(c, q);
    await c.query('select absurd.cancel_task($1, $2)', [q, cancelled.taskId]);
    const failed = await spawnAndClaim(c, q, { max_attempts: 1 });
    await failRun(q, failed.runId);
    const sleeping = await spawnAndClaim(c, q);
    await c.query('select absurd.schedule_run($1, $2, $3)', [q, sleeping.runId, at(T0, 500)]);
    const completed = await spawnAndClaim(c, q);
    await c.query('select absurd.complete_run($1, $2, $3)', [q, completed.runId, '"first"']);
    const pending = await spawnTask(c, q);
    const untouchedIds = [cancelled, failed, sleeping, completed].map((x) => x.runId).concat(pending.run_id);
    const untouchedTasks = [cancelled, failed, sleeping, completed].map((x) => x.taskId).concat(pending.task_id);
    const readOthers = async () => ({
      runs: (await c.query(`select * from ${table('r', q)} where run_id = any($1) order by run_id`, [untouchedIds])).rows,
      tasks: (await c.query(`select * from ${table('t', q)} where task_id = any($1) order by task_id`, [untouchedTasks])).rows,
    });
    const before = await readOthers();

    await setNow(c, at(T0, 9));
    const out = await kitComplete(
      c,
      q,
      [cancelled.runId, r2.runId, missingRun, failed.runId, pending.run_id, r1.runId, sleeping.runId, completed.runId],
      ['"c"', 'null', '"m"', '"f"', '"p"', '{"ok":[1,2]}', '"s"', '"again"'],
    );
    expect(out).toEqual([
      { run_id: cancelled.runId, outcome: 'cancelled' },
      { run_id: r2.runId, outcome: 'completed' },
      { run_id: missingRun, outcome: 'not_found' },
      { run_id: failed.runId, outcome: 'failed' },
      { run_id: pending.run_id, outcome: 'pending' },
      { run_id: r1.runId, outcome: 'completed' },
      { run_id: sleeping.runId, outcome: 'sleeping' },
      { run_id: completed.runId, outcome: 'completed' },
    ]);

    const run1 = await runRow(c, q, r1.runId);
    expect(run1).toMatchObject({ state: 'completed', result: { ok: [1, 2] }, claimed_by: 'worker-1' });
    expect(run1.completed_at?.toISOString()).toBe(at(T0, 9));
    expect(run1.claim_expires_at?.toISOString()).toBe(at(T0, 60));
    expect(await taskRow(c, q, r1.taskId)).toMatchObject({ state: 'completed', completed_payload: { ok: [1, 2] }, last_attempt_run: r1.runId });
    const run2 = await runRow(c, q, r2.runId);
    expect(run2).toMatchObject({ state: 'completed', result: null, claimed_by: 'worker-1' });
    const { rows } = await c.query<{ is_json_null: boolean }>(
      `select result = 'null'::jsonb as is_json_null from ${table('r', q)} where run_id = $1`,
      [r2.runId],
    );
    expect(rows[0]!.is_json_null).toBe(true);
    expect(await taskRow(c, q, r2.taskId)).toMatchObject({ state: 'completed', completed_payload: null, last_attempt_run: r2.runId });
    expect(await waitRows(c, q)).toEqual([]);
    expect(await readOthers()).toEqual(before);
  });

  it('returns no rows for an empty batch', async () => {
    const q = await newQueue('kcr-empty');
    expect(await kitComplete(c, q, [], [])).toEqual([]);
  });

  describe('against a concurrent cancel_task (two sessions, explicit transactions)', () => {
    it('the batch first: cancel waits, then finds the task completed and does nothing', async () => {
      const q = await newQueue('kcr-race1');
      await setNow(c, T0);
      const one = await spawnAndClaim(c, q);
      const two = await spawnAndClaim(c, q);
      const a = await connectOutsideSchema(db);
      const b = await connectOutsideSchema(db);
      try {
        await a.query('begin');
        const out = await kitComplete(a, q, [two.runId, one.runId], ['2', '1']);
        expect(out.map((o) => o.outcome)).toEqual(['completed', 'completed']);
        await b.query('begin');
        const cancel = b.query('select absurd.cancel_task($1, $2)', [q, one.taskId]);
        await waitUntilBlocked(c, pidOf(b));
        await a.query('commit');
        await cancel;
        await b.query('commit');
      } finally {
        await a.query('rollback').catch(() => undefined);
        await b.query('rollback').catch(() => undefined);
      }
      expect(await taskRow(c, q, one.taskId)).toMatchObject({ state: 'completed', completed_payload: 1, cancelled_at: null });
      expect((await runRow(c, q, one.runId)).state).toBe('completed');
      expect(await taskRow(c, q, two.taskId)).toMatchObject({ state: 'completed', completed_payload: 2 });
    });

    it('the cancel first: the batch waits, then reports the run cancelled and completes the rest', async () => {
      const q = await newQueue('kcr-race2');
      await setNow(c, T0);
      const one = await spawnAndClaim(c, q);
      const two = await spawnAndClaim(c, q);
      const a = await connectOutsideSchema(db);
      const b = await connectOutsideSchema(db);
      let out: { run_id: string; outcome: string }[] = [];
      try {
        await b.query('begin');
        await b.query('select absurd.cancel_task($1, $2)', [q, two.taskId]);
        await a.query('begin');
        const batch = kitComplete(a, q, [one.runId, two.runId], ['"one"', '"two"']);
        await waitUntilBlocked(c, pidOf(a));
        await b.query('commit');
        out = await batch;
        await a.query('commit');
      } finally {
        await a.query('rollback').catch(() => undefined);
        await b.query('rollback').catch(() => undefined);
      }
      expect(out).toEqual([
        { run_id: one.runId, outcome: 'completed' },
        { run_id: two.runId, outcome: 'cancelled' },
      ]);
      expect(await taskRow(c, q, one.taskId)).toMatchObject({ state: 'completed', completed_payload: 'one' });
      expect(await taskRow(c, q, two.taskId)).toMatchObject({ state: 'cancelled', completed_payload: null, last_attempt_run: two.runId });
      expect(await runRow(c, q, two.runId)).toMatchObject({ state: 'cancelled', result: null, completed_at: null, claimed_by: null });
    });
  });
});

describe('kit_set_checkpoints', () => {
  it('writes each checkpoint, keeps SQL NULL and JSON null apart, and extends each owner run’s lease once', async () => {
    const q = await newQueue('ksc-ok');
    await setNow(c, T0);
    const one = await spawnAndClaim(c, q, {}, 60);
    const two = await spawnAndClaim(c, q, {}, 60);
    const noLease = await spawnAndClaim(c, q, {}, 0);
    await setNow(c, at(T0, 20));
    const out = await kitSetCheckpoints(q, [
      { taskId: one.taskId, step: 'a', state: '{"x":1}', ownerRun: one.runId, extendBy: 30 },
      { taskId: one.taskId, step: 'b', state: null, ownerRun: one.runId, extendBy: 90 },
      { taskId: two.taskId, step: 'a', state: 'null', ownerRun: two.runId, extendBy: 0 },
      { taskId: noLease.taskId, step: "it's \"odd\"", state: '"s"', ownerRun: noLease.runId, extendBy: 30 },
    ]);
    expect(out).toEqual([
      [1, 'ok'],
      [2, 'ok'],
      [3, 'ok'],
      [4, 'ok'],
    ]);
    const base = { status: 'committed', updated_at: new Date(at(T0, 20)) };
    expect(await checkpointRows(c, q, one.taskId)).toEqual([
      { ...base, checkpoint_name: 'a', state: { x: 1 }, state_is_sql_null: false, state_type: 'object', owner_run_id: one.runId },
      { ...base, checkpoint_name: 'b', state: null, state_is_sql_null: true, state_type: null, owner_run_id: one.runId },
    ]);
    expect(await checkpointRows(c, q, two.taskId)).toEqual([
      { ...base, checkpoint_name: 'a', state: null, state_is_sql_null: false, state_type: 'null', owner_run_id: two.runId },
    ]);
    expect(await checkpointRows(c, q, noLease.taskId)).toEqual([
      { ...base, checkpoint_name: "it's \"odd\"", state: 's', state_is_sql_null: false, state_type: 'string', owner_run_id: noLease.runId },
    ]);
    expect((await runRow(c, q, one.runId)).claim_expires_at?.toISOString()).toBe(at(T0, 110));
    expect((await runRow(c, q, two.runId)).claim_expires_at?.toISOString()).toBe(at(T0, 60));
    expect((await runRow(c, q, noLease.runId)).claim_expires_at).toBeNull();
  });

  it('overwrites a checkpoint of the same or an earlier attempt', async () => {
    const q = await newQueue('ksc-newer');
    await setNow(c, T0);
    const first = await spawnAndClaim(c, q, { max_attempts: 3 });
    expect(await kitSetCheckpoints(q, [{ taskId: first.taskId, step: 's', state: '1', ownerRun: first.runId, extendBy: null }])).toEqual([
      [1, 'ok'],
    ]);
    await setNow(c, at(T0, 1));
    expect(await kitSetCheckpoints(q, [{ taskId: first.taskId, step: 's', state: '2', ownerRun: first.runId, extendBy: null }])).toEqual([
      [1, 'ok'],
    ]);
    expect(await checkpointRows(c, q, first.taskId)).toMatchObject([{ state: 2, owner_run_id: first.runId }]);
    await failRun(q, first.runId);
    const second = await claimOne(c, q);
    await setNow(c, at(T0, 2));
    expect(await kitSetCheckpoints(q, [{ taskId: first.taskId, step: 's', state: '3', ownerRun: second.run_id, extendBy: 10 }])).toEqual([
      [1, 'ok'],
    ]);
    const rows = await checkpointRows(c, q, first.taskId);
    expect(rows).toMatchObject([{ state: 3, owner_run_id: second.run_id }]);
    expect(rows[0]!.updated_at.toISOString()).toBe(at(T0, 2));
    expect((await runRow(c, q, second.run_id)).claim_expires_at?.toISOString()).toBe(at(T0, 12));
  });

  it('reports ok but does not let an older attempt overwrite a newer attempt’s checkpoint', async () => {
    const q = await newQueue('ksc-older');
    await setNow(c, T0);
    const a = await spawnAndClaim(c, q, { max_attempts: 3 });
    const b = await spawnAndClaim(c, q, { max_attempts: 3 });
    await failRun(q, b.runId);
    const b2 = await claimOne(c, q);
    expect(b2).toMatchObject({ task_id: b.taskId, attempt: 2 });
    await setNow(c, at(T0, 5));
    await kitSetCheckpoints(q, [{ taskId: b.taskId, step: 'step', state: '"from attempt 2"', ownerRun: b2.run_id, extendBy: null }]);
    await setNow(c, at(T0, 6));
    const out = await kitSetCheckpoints(q, [
      { taskId: b.taskId, step: 'step', state: '"from attempt 1"', ownerRun: a.runId, extendBy: 100 },
      { taskId: a.taskId, step: 'own', state: '"mine"', ownerRun: a.runId, extendBy: null },
    ]);
    expect(out).toEqual([
      [1, 'ok'],
      [2, 'ok'],
    ]);
    const rows = await checkpointRows(c, q, b.taskId);
    expect(rows).toMatchObject([{ checkpoint_name: 'step', state: 'from attempt 2', owner_run_id: b2.run_id }]);
    expect(rows[0]!.updated_at.toISOString()).toBe(at(T0, 5));
    expect(await checkpointRows(c, q, a.taskId)).toMatchObject([{ checkpoint_name: 'own', state: 'mine' }]);
    // As set_task_checkpoint_state, the lease is still extended.
    expect((await runRow(c, q, a.runId)).claim_expires_at?.toISOString()).toBe(at(T0, 106));
  });

  it('reports cancelled, failed and not_found per write without raising, leaving those writes unwritten', async () => {
    const q = await newQueue('ksc-refused');
    await setNow(c, T0);
    const ok = await spawnAndClaim(c, q);
    const cancelled = await spawnAndClaim(c, q);
    await c.query('select absurd.cancel_task($1, $2)', [q, cancelled.taskId]);
    const failed = await spawnAndClaim(c, q, { max_attempts: 3 });
    await failRun(q, failed.runId);
    const failedLease = (await runRow(c, q, failed.runId)).claim_expires_at;
    const orphanTask = await spawnTask(c, q);
    const before = await tables(q);

    await setNow(c, at(T0, 10));
    const out = await kitSetCheckpoints(q, [
      { taskId: cancelled.taskId, step: 'x', state: '1', ownerRun: cancelled.runId, extendBy: 30 },
      { taskId: ok.taskId, step: 'x', state: '2', ownerRun: ok.runId, extendBy: 30 },
      { taskId: failed.taskId, step: 'x', state: '3', ownerRun: failed.runId, extendBy: 30 },
      { taskId: orphanTask.task_id, step: 'x', state: '4', ownerRun: missingRun, extendBy: 30 },
    ]);
    expect(out).toEqual([
      [1, 'cancelled'],
      [2, 'ok'],
      [3, 'failed'],
      [4, 'not_found'],
    ]);
    expect(await checkpointRows(c, q, ok.taskId)).toMatchObject([{ checkpoint_name: 'x', state: 2, owner_run_id: ok.runId }]);
    expect(await checkpointRows(c, q, cancelled.taskId)).toEqual([]);
    expect(await checkpointRows(c, q, failed.taskId)).toEqual([]);
    expect(await checkpointRows(c, q, orphanTask.task_id)).toEqual([]);
    expect((await runRow(c, q, ok.runId)).claim_expires_at?.toISOString()).toBe(at(T0, 40));
    expect((await runRow(c, q, cancelled.runId)).claim_expires_at).toBeNull();
    expect((await runRow(c, q, failed.runId)).claim_expires_at).toEqual(failedLease);
    // Apart from the one accepted write and its lease, nothing changed.
    const after = await tables(q);
    expect(after.t).toEqual(before.t);
    expect(after.w).toEqual(before.w);
    expect((after.r as { run_id: string }[]).filter((r) => r.run_id !== ok.runId)).toEqual(
      (before.r as { run_id: string }[]).filter((r) => r.run_id !== ok.runId),
    );
  });
});
