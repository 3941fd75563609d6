/**
 * absurd-kit's additive engine functions (migration 000006, and kit_fail_run of 000002):
 * kit_seconds_until_next_run, kit_fail_task, kit_claim_task, kit_complete_runs and
 * kit_set_checkpoints, each against the behaviour its header comment promises.
 */
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import {
  awaitEvent,
  checkpointRows,
  claim,
  claimOne,
  expectPgError,
  failRun,
  insertWait,
  newQueue,
  pidOf,
  plus,
  runRow,
  setCheckpoint,
  setNow,
  spawn,
  spawnAndClaim,
  table,
  taskRow,
  useSession,
  utcClient,
  waitRows,
  waitUntilBlocked,
  type ClaimedRun,
  type Queryable,
} from './helpers.js';

const db = useTestDatabase();
const c = useSession(db, { outsideSchema: true, now: null });

const T0 = '2024-05-01T10:00:00.000Z';
const failure = JSON.stringify({ name: 'Error', message: 'boom', stack: null });

async function secondsUntilNext(q: string): Promise<number | null> {
  const { rows } = await c.query<{ s: number | null }>('select absurd.kit_seconds_until_next_run($1) as s', [q]);
  return rows[0]!.s;
}

async function kitFailTask(client: Queryable, q: string, runId: string, reason = failure): Promise<void> {
  await client.query('select absurd.kit_fail_task($1, $2, $3)', [q, runId, reason]);
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

type KitClaimed = ClaimedRun & { checkpoints: Record<string, unknown>; queue_lag: number | null };

async function kitClaim(client: Queryable, q: string, worker = 'worker-1', timeout = 60, qty = 1): Promise<KitClaimed[]> {
  const { rows } = await client.query<KitClaimed>('select * from absurd.kit_claim_task($1, $2, $3, $4)', [q, worker, timeout, qty]);
  return rows;
}

async function kitComplete(client: Queryable, q: string, runIds: string[], results: (string | null)[]) {
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
    const q = await newQueue(c, 'next-none');
    expect(await secondsUntilNext(q)).toBeNull();
    await setNow(c, T0);
    const done = await spawnAndClaim(c, q);
    await c.query('select absurd.complete_run($1, $2, $3)', [q, done.run_id, '1']);
    const cancelled = await spawn(c, q);
    await c.query('select absurd.cancel_task($1, $2)', [q, cancelled.task_id]);
    const failed = await spawnAndClaim(c, q, { max_attempts: 1 });
    await failRun(c, q, failed.run_id);
    // Claimed without a lease (timeout 0): it never expires.
    await spawn(c, q);
    await claimOne(c, q, 'worker-1', 0);
    expect(await secondsUntilNext(q)).toBeNull();
  });

  it('ignores runs waiting for an event without timeout (available at infinity)', async () => {
    const q = await newQueue(c, 'next-infinity');
    await setNow(c, T0);
    const { task_id: taskId, run_id: runId } = await spawnAndClaim(c, q, {}, 0);
    await awaitEvent(c, q, taskId, runId, 'wait', 'never', null);
    expect((await runRow(c, q, runId)).available_at_infinite).toBe(true);
    expect(await secondsUntilNext(q)).toBeNull();
    // A timed wait counts.
    const other = await spawnAndClaim(c, q, {}, 0);
    await awaitEvent(c, q, other.task_id, other.run_id, 'wait', 'later', 45);
    await setNow(c, plus(T0, 5));
    expect(await secondsUntilNext(q)).toBe(40);
  });

  it('counts a due pending run as 0 or less', async () => {
    const q = await newQueue(c, 'next-pending');
    await setNow(c, T0);
    await spawn(c, q);
    expect(await secondsUntilNext(q)).toBe(0);
    await setNow(c, plus(T0, 7.25));
    expect(await secondsUntilNext(q)).toBe(-7.25);
  });

  it('takes the earliest of sleeping runs and lease expiries, with fractions of a second', async () => {
    const q = await newQueue(c, 'next-min');
    await setNow(c, T0);
    const leased = await spawnAndClaim(c, q, {}, 60); // lease ends at T0+60
    expect(leased.run_id).toBeTruthy();
    const sleeper = await spawnAndClaim(c, q, {}, 0);
    await c.query('select absurd.schedule_run($1, $2, $3)', [q, sleeper.run_id, plus(T0, 90.5)]);
    await setNow(c, plus(T0, 10));
    expect(await secondsUntilNext(q)).toBe(50);
    await c.query(`update ${table('r', q)} set available_at = $2 where run_id = $1`, [sleeper.run_id, plus(T0, 30.5)]);
    expect(await secondsUntilNext(q)).toBe(20.5);
    // An expired lease is due (negative).
    await c.query(`update ${table('r', q)} set available_at = $2 where run_id = $1`, [sleeper.run_id, plus(T0, 200)]);
    await setNow(c, plus(T0, 61));
    expect(await secondsUntilNext(q)).toBe(-1);
  });
});

describe('kit_fail_task', () => {
  it('fails the run and the task with attempts left and a retry strategy, and deletes only its waits', async () => {
    const q = await newQueue(c, 'kft-running');
    await setNow(c, T0);
    const { task_id: taskId, run_id: runId } = await spawnAndClaim(c, q, {
      max_attempts: 5,
      retry_strategy: { kind: 'fixed', base_seconds: 1 },
    });
    const other = await spawnAndClaim(c, q);
    await insertWait(c, q, taskId, runId, 'mine', 'ev', null);
    await insertWait(c, q, other.task_id, other.run_id, 'theirs', 'ev', null);
    await setNow(c, plus(T0, 3));
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
    expect(r.failed_at?.toISOString()).toBe(plus(T0, 3));
    expect(r.claim_expires_at?.toISOString()).toBe(plus(T0, 60));
    expect(await taskRow(c, q, taskId)).toMatchObject({ state: 'failed', attempts: 1, last_attempt_run: runId, cancelled_at: null });
    const { rows } = await c.query(`select run_id from ${table('r', q)} where task_id = $1`, [taskId]);
    expect(rows).toEqual([{ run_id: runId }]);
    expect((await waitRows(c, q)).map((w) => [w.run_id, w.step_name])).toEqual([[other.run_id, 'theirs']]);
    expect((await runRow(c, q, other.run_id)).state).toBe('running');
  });

  it('fails a sleeping run with unlimited attempts for good, deleting its wait', async () => {
    const q = await newQueue(c, 'kft-sleeping');
    await setNow(c, T0);
    const { task_id: taskId, run_id: runId } = await spawnAndClaim(c, q, { max_attempts: null });
    await awaitEvent(c, q, taskId, runId, 'wait', 'ev', 30);
    expect(await waitRows(c, q)).toHaveLength(1);
    await kitFailTask(c, q, runId);
    expect(await runRow(c, q, runId)).toMatchObject({ state: 'failed', wake_event: null, failure_reason: JSON.parse(failure) });
    expect(await taskRow(c, q, taskId)).toMatchObject({ state: 'failed', attempts: 1, last_attempt_run: runId });
    expect(await waitRows(c, q)).toEqual([]);
    expect(await c.query(`select 1 from ${table('r', q)}`).then((r) => r.rowCount)).toBe(1);
  });

  it('raises fail_run’s errors and changes nothing', async () => {
    const q = await newQueue(c, 'kft-errors');
    await setNow(c, T0);
    const cancelled = await spawnAndClaim(c, q);
    await c.query('select absurd.cancel_task($1, $2)', [q, cancelled.task_id]);
    const completed = await spawnAndClaim(c, q);
    await c.query('select absurd.complete_run($1, $2, $3)', [q, completed.run_id, '1']);
    const failed = await spawnAndClaim(c, q, { max_attempts: 3 });
    await failRun(c, q, failed.run_id);
    const pendingRun = (await c.query<{ run_id: string }>(`select run_id from ${table('r', q)} where state = 'pending'`)).rows;
    expect(pendingRun).toHaveLength(1);
    const before = await tables(q);

    await expectPgError(kitFailTask(c, q, cancelled.run_id), 'AB001', 'Task has been cancelled');
    await expectPgError(kitFailTask(c, q, failed.run_id), 'AB002', `Run "${failed.run_id}" has already failed in queue "${q}"`);
    await expectPgError(kitFailTask(c, q, missingRun), 'P0001', `Run "${missingRun}" cannot be failed in queue "${q}"`);
    await expectPgError(kitFailTask(c, q, pendingRun[0]!.run_id), 'P0001', 'cannot be failed');
    await expectPgError(kitFailTask(c, q, completed.run_id), 'P0001', 'cannot be failed');
    expect(await tables(q)).toEqual(before);
  });
});

describe('kit_claim_task', () => {
  it('returns nothing when nothing is claimable', async () => {
    const q = await newQueue(c, 'kct-empty');
    expect(await kitClaim(c, q, 'w', 30, 5)).toEqual([]);
  });

  it('returns claim_task’s rows in claim_task’s order, with {} for runs without checkpoints', async () => {
    const q = await newQueue(c, 'kct-order');
    await setNow(c, T0);
    const a = await spawn(c, q, 'alpha', { p: 'a' }, { headers: { h: 1 }, max_attempts: 4, retry_strategy: { kind: 'none' } });
    const b = await spawn(c, q, 'beta', null);
    const d = await spawn(c, q, 'gamma', [1, 2]);
    await spawn(c, q, 'later');
    // Claim order (available_at, run_id) differs from spawn order; the last run is not yet due.
    const r = table('r', q);
    await c.query(`update ${r} set available_at = $2 where run_id = $1`, [a.run_id, plus(T0, -1)]);
    await c.query(`update ${r} set available_at = $2 where run_id = $1`, [b.run_id, plus(T0, -3)]);
    await c.query(`update ${r} set available_at = $2 where run_id = $1`, [d.run_id, plus(T0, -2)]);
    await c.query(`update ${r} set available_at = $2 where run_id not in ($1, $3, $4)`, [a.run_id, plus(T0, 5), b.run_id, d.run_id]);

    await c.query('begin');
    const plain = await claim(c, q, 'worker-x', 45, 10);
    await c.query('rollback');
    expect(plain.map((p) => p.run_id)).toEqual([b.run_id, d.run_id, a.run_id]);

    const kit = await kitClaim(c, q, 'worker-x', 45, 10);
    expect(kit.map(({ checkpoints, queue_lag, ...rest }) => rest)).toEqual(plain);
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
      'queue_lag',
    ]);
    // Seconds each run waited since it became due, though the claim set available_at to now.
    expect(kit.map((k) => k.queue_lag)).toEqual([3, 2, 1]);
    expect((await runRow(c, q, b.run_id)).available_at?.toISOString()).toBe(T0);
    expect(kit[2]).toMatchObject({ task_name: 'alpha', params: { p: 'a' }, headers: { h: 1 }, max_attempts: 4, attempt: 1 });
    const claimed = await runRow(c, q, a.run_id);
    expect(claimed).toMatchObject({ state: 'running', claimed_by: 'worker-x' });
    expect(claimed.claim_expires_at?.toISOString()).toBe(plus(T0, 45));
    expect((await taskRow(c, q, a.task_id)).state).toBe('running');
  });

  it('gives the queue lag of a sleeping run woken by its time, a retry, and NULL for a retry claim_task made of an expired lease', async () => {
    const q = await newQueue(c, 'kct-lag');
    await setNow(c, T0);
    const sleeper = await spawnAndClaim(c, q);
    await c.query('select absurd.schedule_run($1, $2, $3)', [q, sleeper.run_id, plus(T0, 10)]);
    const expiring = await spawnAndClaim(c, q, { max_attempts: 3, retry_strategy: { kind: 'none' } });
    await setNow(c, plus(T0, 12.5));
    // Due at T0+10 (the sleeper); expiring's lease (60 s) has not run out yet.
    expect((await kitClaim(c, q, 'w', 600, 5)).map((k) => [k.run_id, k.queue_lag])).toEqual([[sleeper.run_id, 2.5]]);
    // Past expiring's lease the claim fails it and claims its retry, made in the same call.
    await setNow(c, plus(T0, 100));
    const [retry, ...none] = await kitClaim(c, q, 'w', 60, 5);
    expect(none).toEqual([]);
    expect(retry).toMatchObject({ task_id: expiring.task_id, attempt: 2, queue_lag: null });
  });

  it('returns the checkpoints visible to the run’s attempt: earlier attempts’, ownerless, JSON null; not later attempts’ or uncommitted', async () => {
    const q = await newQueue(c, 'kct-cps');
    await setNow(c, T0);
    // Task A: attempt 1 writes, fails; attempt 2 will be claimed.
    const a1 = await spawnAndClaim(c, q, { max_attempts: 3 });
    await setCheckpoint(c, q, a1.task_id, 'first', { v: 1 }, a1.run_id);
    await setCheckpoint(c, q, a1.task_id, 'json-null', null, a1.run_id);
    await setCheckpoint(c, q, a1.task_id, 'ownerless', 'x', a1.run_id);
    await setCheckpoint(c, q, a1.task_id, 'uncommitted', 'p', a1.run_id);
    await c.query(`update ${table('c', q)} set owner_run_id = gen_random_uuid() where checkpoint_name = 'ownerless'`);
    await c.query(`update ${table('c', q)} set status = 'pending' where checkpoint_name = 'uncommitted'`);
    await failRun(c, q, a1.run_id);
    // A's attempt 2 is pending and would be claimed first; push it back while B retries.
    const a2run = (await c.query<{ run_id: string }>(`select run_id from ${table('r', q)} where task_id = $1 and attempt = 2`, [a1.task_id]))
      .rows[0]!.run_id;
    await c.query(`update ${table('r', q)} set available_at = $2 where run_id = $1`, [a2run, plus(T0, 100)]);
    // Task B: attempt 3 running; it writes a checkpoint on A's key (a later attempt than A's next).
    const b1 = await spawnAndClaim(c, q, { max_attempts: 5 });
    await failRun(c, q, b1.run_id);
    await failRun(c, q, (await claimOne(c, q)).run_id);
    const b3 = await claimOne(c, q);
    expect(b3).toMatchObject({ task_id: b1.task_id, attempt: 3 });
    await setCheckpoint(c, q, a1.task_id, 'later', 'hidden', b3.run_id);
    await c.query('select absurd.complete_run($1, $2, $3)', [q, b3.run_id, '3']);

    await setNow(c, plus(T0, 100));
    const [claimed, ...more] = await kitClaim(c, q, 'worker-2', 30, 5);
    expect(more).toEqual([]);
    expect(claimed).toMatchObject({ run_id: a2run, task_id: a1.task_id, attempt: 2 });
    expect(claimed!.checkpoints).toEqual({ first: { v: 1 }, 'json-null': null, ownerless: 'x' });
    expect(Object.keys(claimed!.checkpoints).sort()).toEqual(['first', 'json-null', 'ownerless']);
    // The same set get_task_checkpoint_states returns.
    const { rows } = await c.query<{ o: unknown }>(
      'select jsonb_object_agg(checkpoint_name, state) as o from absurd.get_task_checkpoint_states($1, $2, $3)',
      [q, a1.task_id, a2run],
    );
    expect(rows[0]!.o).toEqual(claimed!.checkpoints);
  });
});

describe('kit_complete_runs', () => {
  it('completes running runs and reports the others in input order without touching them', async () => {
    const q = await newQueue(c, 'kcr-mixed');
    await setNow(c, T0);
    const r1 = await spawnAndClaim(c, q);
    const r2 = await spawnAndClaim(c, q);
    await insertWait(c, q, r2.task_id, r2.run_id, 'w', 'ev', null);
    const cancelled = await spawnAndClaim(c, q);
    await c.query('select absurd.cancel_task($1, $2)', [q, cancelled.task_id]);
    const failed = await spawnAndClaim(c, q, { max_attempts: 1 });
    await failRun(c, q, failed.run_id);
    const sleeping = await spawnAndClaim(c, q);
    await c.query('select absurd.schedule_run($1, $2, $3)', [q, sleeping.run_id, plus(T0, 500)]);
    const completed = await spawnAndClaim(c, q);
    await c.query('select absurd.complete_run($1, $2, $3)', [q, completed.run_id, '"first"']);
    const pending = await spawn(c, q);
    const untouchedIds = [cancelled, failed, sleeping, completed].map((x) => x.run_id).concat(pending.run_id);
    const untouchedTasks = [cancelled, failed, sleeping, completed].map((x) => x.task_id).concat(pending.task_id);
    const readOthers = async () => ({
      runs: (await c.query(`select * from ${table('r', q)} where run_id = any($1) order by run_id`, [untouchedIds])).rows,
      tasks: (await c.query(`select * from ${table('t', q)} where task_id = any($1) order by task_id`, [untouchedTasks])).rows,
    });
    const before = await readOthers();

    await setNow(c, plus(T0, 9));
    const out = await kitComplete(
      c,
      q,
      [cancelled.run_id, r2.run_id, missingRun, failed.run_id, pending.run_id, r1.run_id, sleeping.run_id, completed.run_id],
      ['"c"', 'null', '"m"', '"f"', '"p"', '{"ok":[1,2]}', '"s"', '"again"'],
    );
    expect(out).toEqual([
      { run_id: cancelled.run_id, outcome: 'cancelled' },
      { run_id: r2.run_id, outcome: 'completed' },
      { run_id: missingRun, outcome: 'not_found' },
      { run_id: failed.run_id, outcome: 'failed' },
      { run_id: pending.run_id, outcome: 'pending' },
      { run_id: r1.run_id, outcome: 'completed' },
      { run_id: sleeping.run_id, outcome: 'sleeping' },
      { run_id: completed.run_id, outcome: 'completed' },
    ]);

    const run1 = await runRow(c, q, r1.run_id);
    expect(run1).toMatchObject({ state: 'completed', result: { ok: [1, 2] }, claimed_by: 'worker-1' });
    expect(run1.completed_at?.toISOString()).toBe(plus(T0, 9));
    expect(run1.claim_expires_at?.toISOString()).toBe(plus(T0, 60));
    expect(await taskRow(c, q, r1.task_id)).toMatchObject({ state: 'completed', completed_payload: { ok: [1, 2] }, last_attempt_run: r1.run_id });
    const run2 = await runRow(c, q, r2.run_id);
    expect(run2).toMatchObject({ state: 'completed', result: null, claimed_by: 'worker-1' });
    const { rows } = await c.query<{ is_json_null: boolean }>(
      `select result = 'null'::jsonb as is_json_null from ${table('r', q)} where run_id = $1`,
      [r2.run_id],
    );
    expect(rows[0]!.is_json_null).toBe(true);
    expect(await taskRow(c, q, r2.task_id)).toMatchObject({ state: 'completed', completed_payload: null, last_attempt_run: r2.run_id });
    expect(await waitRows(c, q)).toEqual([]);
    expect(await readOthers()).toEqual(before);
  });

  it('returns no rows for an empty batch', async () => {
    const q = await newQueue(c, 'kcr-empty');
    expect(await kitComplete(c, q, [], [])).toEqual([]);
  });

  describe('against a concurrent cancel_task (two sessions, explicit transactions)', () => {
    it('the batch first: cancel waits, then finds the task completed and does nothing', async () => {
      const q = await newQueue(c, 'kcr-race1');
      await setNow(c, T0);
      const one = await spawnAndClaim(c, q);
      const two = await spawnAndClaim(c, q);
      const a = await utcClient(db, { outsideSchema: true });
      const b = await utcClient(db, { outsideSchema: true });
      try {
        await a.query('begin');
        const out = await kitComplete(a, q, [two.run_id, one.run_id], ['2', '1']);
        expect(out.map((o) => o.outcome)).toEqual(['completed', 'completed']);
        await b.query('begin');
        const cancel = b.query('select absurd.cancel_task($1, $2)', [q, one.task_id]);
        await waitUntilBlocked(c, pidOf(b));
        await a.query('commit');
        await cancel;
        await b.query('commit');
      } finally {
        await a.query('rollback').catch(() => undefined);
        await b.query('rollback').catch(() => undefined);
      }
      expect(await taskRow(c, q, one.task_id)).toMatchObject({ state: 'completed', completed_payload: 1, cancelled_at: null });
      expect((await runRow(c, q, one.run_id)).state).toBe('completed');
      expect(await taskRow(c, q, two.task_id)).toMatchObject({ state: 'completed', completed_payload: 2 });
    });

    it('the cancel first: the batch waits, then reports the run cancelled and completes the rest', async () => {
      const q = await newQueue(c, 'kcr-race2');
      await setNow(c, T0);
      const one = await spawnAndClaim(c, q);
      const two = await spawnAndClaim(c, q);
      const a = await utcClient(db, { outsideSchema: true });
      const b = await utcClient(db, { outsideSchema: true });
      let out: { run_id: string; outcome: string }[] = [];
      try {
        await b.query('begin');
        await b.query('select absurd.cancel_task($1, $2)', [q, two.task_id]);
        await a.query('begin');
        const batch = kitComplete(a, q, [one.run_id, two.run_id], ['"one"', '"two"']);
        await waitUntilBlocked(c, pidOf(a));
        await b.query('commit');
        out = await batch;
        await a.query('commit');
      } finally {
        await a.query('rollback').catch(() => undefined);
        await b.query('rollback').catch(() => undefined);
      }
      expect(out).toEqual([
        { run_id: one.run_id, outcome: 'completed' },
        { run_id: two.run_id, outcome: 'cancelled' },
      ]);
      expect(await taskRow(c, q, one.task_id)).toMatchObject({ state: 'completed', completed_payload: 'one' });
      expect(await taskRow(c, q, two.task_id)).toMatchObject({ state: 'cancelled', completed_payload: null, last_attempt_run: two.run_id });
      expect(await runRow(c, q, two.run_id)).toMatchObject({ state: 'cancelled', result: null, completed_at: null, claimed_by: null });
    });
  });
});

describe('kit_set_checkpoints', () => {
  it('waits for a concurrent failure of its owner run (the lease sweep), then reports it failed and writes nothing', async () => {
    const q = await newQueue(c, 'ksc-race');
    await setNow(c, T0);
    const run = await spawnAndClaim(c, q, { max_attempts: 2 }, 60);
    const a = await utcClient(db, { outsideSchema: true });
    const b = await utcClient(db, { outsideSchema: true });
    let out: [number, string][] = [];
    try {
      // Session A fails the run (as claim_task's sweep does when the lease expired) and keeps its
      // transaction open; the checkpoint write of session B must wait for it and then see the end.
      await a.query('begin');
      await failRun(a, q, run.run_id);
      await b.query('begin');
      const write = b
        .query<{ ord: string; outcome: string }>('select ord, outcome from absurd.kit_set_checkpoints($1, $2, $3, $4, $5, $6)', [
          q,
          [run.task_id],
          ['step-1'],
          ['{"charged": true}'],
          [run.run_id],
          [30],
        ])
        .then(({ rows }) => rows.map((r): [number, string] => [Number(r.ord), r.outcome]));
      await waitUntilBlocked(c, pidOf(b));
      await a.query('commit');
      out = await write;
      await b.query('commit');
    } finally {
      await a.query('rollback').catch(() => undefined);
      await b.query('rollback').catch(() => undefined);
    }
    expect(out).toEqual([[1, 'failed']]);
    expect(await checkpointRows(c, q, run.task_id)).toEqual([]);
  });

  it('writes each checkpoint, keeps SQL NULL and JSON null apart, and extends each owner run’s lease once', async () => {
    const q = await newQueue(c, 'ksc-ok');
    await setNow(c, T0);
    const one = await spawnAndClaim(c, q, {}, 60);
    const two = await spawnAndClaim(c, q, {}, 60);
    const noLease = await spawnAndClaim(c, q, {}, 0);
    await setNow(c, plus(T0, 20));
    const out = await kitSetCheckpoints(q, [
      { taskId: one.task_id, step: 'a', state: '{"x":1}', ownerRun: one.run_id, extendBy: 30 },
      { taskId: one.task_id, step: 'b', state: null, ownerRun: one.run_id, extendBy: 90 },
      { taskId: two.task_id, step: 'a', state: 'null', ownerRun: two.run_id, extendBy: 0 },
      { taskId: noLease.task_id, step: "it's \"odd\"", state: '"s"', ownerRun: noLease.run_id, extendBy: 30 },
    ]);
    expect(out).toEqual([
      [1, 'ok'],
      [2, 'ok'],
      [3, 'ok'],
      [4, 'ok'],
    ]);
    const base = { status: 'committed', updated_at: new Date(plus(T0, 20)) };
    expect(await checkpointRows(c, q, one.task_id)).toEqual([
      { ...base, checkpoint_name: 'a', state: { x: 1 }, state_is_sql_null: false, state_type: 'object', owner_run_id: one.run_id },
      { ...base, checkpoint_name: 'b', state: null, state_is_sql_null: true, state_type: null, owner_run_id: one.run_id },
    ]);
    expect(await checkpointRows(c, q, two.task_id)).toEqual([
      { ...base, checkpoint_name: 'a', state: null, state_is_sql_null: false, state_type: 'null', owner_run_id: two.run_id },
    ]);
    expect(await checkpointRows(c, q, noLease.task_id)).toEqual([
      { ...base, checkpoint_name: "it's \"odd\"", state: 's', state_is_sql_null: false, state_type: 'string', owner_run_id: noLease.run_id },
    ]);
    expect((await runRow(c, q, one.run_id)).claim_expires_at?.toISOString()).toBe(plus(T0, 110));
    expect((await runRow(c, q, two.run_id)).claim_expires_at?.toISOString()).toBe(plus(T0, 60));
    expect((await runRow(c, q, noLease.run_id)).claim_expires_at).toBeNull();
  });

  it('overwrites a checkpoint of the same or an earlier attempt', async () => {
    const q = await newQueue(c, 'ksc-newer');
    await setNow(c, T0);
    const first = await spawnAndClaim(c, q, { max_attempts: 3 });
    expect(await kitSetCheckpoints(q, [{ taskId: first.task_id, step: 's', state: '1', ownerRun: first.run_id, extendBy: null }])).toEqual([
      [1, 'ok'],
    ]);
    await setNow(c, plus(T0, 1));
    expect(await kitSetCheckpoints(q, [{ taskId: first.task_id, step: 's', state: '2', ownerRun: first.run_id, extendBy: null }])).toEqual([
      [1, 'ok'],
    ]);
    expect(await checkpointRows(c, q, first.task_id)).toMatchObject([{ state: 2, owner_run_id: first.run_id }]);
    await failRun(c, q, first.run_id);
    const second = await claimOne(c, q);
    await setNow(c, plus(T0, 2));
    expect(await kitSetCheckpoints(q, [{ taskId: first.task_id, step: 's', state: '3', ownerRun: second.run_id, extendBy: 10 }])).toEqual([
      [1, 'ok'],
    ]);
    const rows = await checkpointRows(c, q, first.task_id);
    expect(rows).toMatchObject([{ state: 3, owner_run_id: second.run_id }]);
    expect(rows[0]!.updated_at.toISOString()).toBe(plus(T0, 2));
    expect((await runRow(c, q, second.run_id)).claim_expires_at?.toISOString()).toBe(plus(T0, 12));
  });

  it('reports ok but does not let an older attempt overwrite a newer attempt’s checkpoint', async () => {
    const q = await newQueue(c, 'ksc-older');
    await setNow(c, T0);
    const a = await spawnAndClaim(c, q, { max_attempts: 3 });
    const b = await spawnAndClaim(c, q, { max_attempts: 3 });
    await failRun(c, q, b.run_id);
    const b2 = await claimOne(c, q);
    expect(b2).toMatchObject({ task_id: b.task_id, attempt: 2 });
    await setNow(c, plus(T0, 5));
    await kitSetCheckpoints(q, [{ taskId: b.task_id, step: 'step', state: '"from attempt 2"', ownerRun: b2.run_id, extendBy: null }]);
    await setNow(c, plus(T0, 6));
    const out = await kitSetCheckpoints(q, [
      { taskId: b.task_id, step: 'step', state: '"from attempt 1"', ownerRun: a.run_id, extendBy: 100 },
      { taskId: a.task_id, step: 'own', state: '"mine"', ownerRun: a.run_id, extendBy: null },
    ]);
    expect(out).toEqual([
      [1, 'ok'],
      [2, 'ok'],
    ]);
    const rows = await checkpointRows(c, q, b.task_id);
    expect(rows).toMatchObject([{ checkpoint_name: 'step', state: 'from attempt 2', owner_run_id: b2.run_id }]);
    expect(rows[0]!.updated_at.toISOString()).toBe(plus(T0, 5));
    expect(await checkpointRows(c, q, a.task_id)).toMatchObject([{ checkpoint_name: 'own', state: 'mine' }]);
    // As set_task_checkpoint_state, the lease is still extended.
    expect((await runRow(c, q, a.run_id)).claim_expires_at?.toISOString()).toBe(plus(T0, 106));
  });

  it('reports cancelled, failed and not_found per write without raising, leaving those writes unwritten', async () => {
    const q = await newQueue(c, 'ksc-refused');
    await setNow(c, T0);
    const ok = await spawnAndClaim(c, q);
    const cancelled = await spawnAndClaim(c, q);
    await c.query('select absurd.cancel_task($1, $2)', [q, cancelled.task_id]);
    const failed = await spawnAndClaim(c, q, { max_attempts: 3 });
    await failRun(c, q, failed.run_id);
    const failedLease = (await runRow(c, q, failed.run_id)).claim_expires_at;
    const orphanTask = await spawn(c, q);
    const before = await tables(q);

    await setNow(c, plus(T0, 10));
    const out = await kitSetCheckpoints(q, [
      { taskId: cancelled.task_id, step: 'x', state: '1', ownerRun: cancelled.run_id, extendBy: 30 },
      { taskId: ok.task_id, step: 'x', state: '2', ownerRun: ok.run_id, extendBy: 30 },
      { taskId: failed.task_id, step: 'x', state: '3', ownerRun: failed.run_id, extendBy: 30 },
      { taskId: orphanTask.task_id, step: 'x', state: '4', ownerRun: missingRun, extendBy: 30 },
    ]);
    expect(out).toEqual([
      [1, 'cancelled'],
      [2, 'ok'],
      [3, 'failed'],
      [4, 'not_found'],
    ]);
    expect(await checkpointRows(c, q, ok.task_id)).toMatchObject([{ checkpoint_name: 'x', state: 2, owner_run_id: ok.run_id }]);
    expect(await checkpointRows(c, q, cancelled.task_id)).toEqual([]);
    expect(await checkpointRows(c, q, failed.task_id)).toEqual([]);
    expect(await checkpointRows(c, q, orphanTask.task_id)).toEqual([]);
    expect((await runRow(c, q, ok.run_id)).claim_expires_at?.toISOString()).toBe(plus(T0, 40));
    expect((await runRow(c, q, cancelled.run_id)).claim_expires_at).toBeNull();
    expect((await runRow(c, q, failed.run_id)).claim_expires_at).toEqual(failedLease);
    // Apart from the one accepted write and its lease, nothing changed.
    const after = await tables(q);
    expect(after.t).toEqual(before.t);
    expect(after.w).toEqual(before.w);
    expect((after.r as { run_id: string }[]).filter((r) => r.run_id !== ok.run_id)).toEqual(
      (before.r as { run_id: string }[]).filter((r) => r.run_id !== ok.run_id),
    );
  });
});
