/**
 * Events: await_event (spec §2.21), emit_event (§2.22), event semantics (§3.5) and checklist
 * items 8–10. Concurrency between the two lives in races.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import {
  awaitEvent,
  checkpointRows,
  claim,
  claimOne,
  eventRow,
  expectPgError,
  insertWait,
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
  waitRows,
} from './helpers.js';

const db = useTestDatabase();
const c = useSession(db, { outsideSchema: true, now: null });

const T0 = '2024-07-01T12:00:00.000Z';
const EPOCH = '1970-01-01T00:00:00.000Z';

/** Emits `payload` as JSON text; `undefined` uses the 2-argument form, `null` sends SQL NULL. */
async function emitEvent(q: string, event: string | null, payload?: unknown): Promise<void> {
  if (payload === undefined) {
    await c.query('select absurd.emit_event($1, $2)', [q, event]);
  } else {
    await c.query('select absurd.emit_event($1, $2, $3)', [q, event, payload === null ? null : JSON.stringify(payload)]);
  }
}

/** A claimed task that has suspended on `event` at T0 + 1 s (timeout in seconds, or none). */
async function suspendedWaiter(q: string, event: string, step: string, timeout?: number | null) {
  await setNow(c, T0);
  const waiter = await spawnAndClaim(c, q);
  await setNow(c, plus(T0, 1));
  expect(await awaitEvent(c, q, waiter.task_id, waiter.run_id, step, event, timeout)).toEqual({
    should_suspend: true,
    payload: null,
    payload_is_sql_null: true,
  });
  return waiter;
}

describe('await_event', () => {
  it('rejects a missing or blank event name and a negative timeout', async () => {
    const q = await newQueue(c, 'ae-args');
    const { task_id: taskId, run_id: runId } = await spawnAndClaim(c, q);
    for (const event of ['', '   ', null]) {
      await expectPgError(awaitEvent(c, q, taskId, runId, 'step', event), 'P0001', 'event_name must be provided');
    }
    await expectPgError(awaitEvent(c, q, taskId, runId, 'step', 'ev', -1), 'P0001', 'timeout must be non-negative');
    expect((await runRow(c, q, runId)).state).toBe('running');
    expect(await waitRows(c, q)).toEqual([]);
    expect(await eventRow(c, q, 'ev')).toBeUndefined();
  });

  it('returns a stored checkpoint at once, without checking for cancellation', async () => {
    const q = await newQueue(c, 'ae-shortcut');
    const { task_id: taskId, run_id: runId } = await spawnAndClaim(c, q);
    await setCheckpoint(c, q, taskId, 'wait-step', { x: 1 }, runId);
    await c.query('select absurd.cancel_task($1, $2)', [q, taskId]);
    expect(await awaitEvent(c, q, taskId, runId, 'wait-step', 'ev', 30)).toEqual({
      should_suspend: false,
      payload: { x: 1 },
      payload_is_sql_null: false,
    });
    // Returned before the sentinel insert and the run lock: nothing else happened.
    expect(await eventRow(c, q, 'ev')).toBeUndefined();
    expect(await waitRows(c, q)).toEqual([]);
    expect((await runRow(c, q, runId)).state).toBe('cancelled');
  });

  it('short-circuits on a checkpoint of any status', async () => {
    const q = await newQueue(c, 'ae-shortcut-pending');
    const { task_id: taskId, run_id: runId } = await spawnAndClaim(c, q);
    await setCheckpoint(c, q, taskId, 'wait-step', 'stored', runId);
    await c.query(`update ${table('c', q)} set status = 'pending' where task_id = $1`, [taskId]);
    expect(await awaitEvent(c, q, taskId, runId, 'wait-step', 'ev')).toMatchObject({ should_suspend: false, payload: 'stored' });
    expect((await runRow(c, q, runId)).state).toBe('running');
  });

  it('creates a not-yet-emitted sentinel row dated at the epoch', async () => {
    const q = await newQueue(c, 'ae-sentinel');
    await suspendedWaiter(q, 'ev', 'wait-step', 60);
    const row = await eventRow(c, q, 'ev');
    expect(row).toMatchObject({ event_name: 'ev', payload: null, payload_is_sql_null: true });
    expect(row!.emitted_at.toISOString()).toBe(EPOCH);
  });

  it('raises AB001 when the task has been cancelled', async () => {
    const q = await newQueue(c, 'ae-cancel');
    const { task_id: taskId, run_id: runId } = await spawnAndClaim(c, q);
    await c.query('select absurd.cancel_task($1, $2)', [q, taskId]);
    await expectPgError(awaitEvent(c, q, taskId, runId, 'wait-step', 'ev', 30), 'AB001');
    expect(await waitRows(c, q)).toEqual([]);
  });

  it('raises AB001 even when the event has already been emitted', async () => {
    const q = await newQueue(c, 'ae-cancel-emitted');
    const { task_id: taskId, run_id: runId } = await spawnAndClaim(c, q);
    await emitEvent(q, 'ev', { a: 1 });
    await c.query('select absurd.cancel_task($1, $2)', [q, taskId]);
    await expectPgError(awaitEvent(c, q, taskId, runId, 'wait-step', 'ev'), 'AB001');
    expect(await checkpointRows(c, q, taskId)).toEqual([]);
  });

  it('requires the run to exist and to be running', async () => {
    const q = await newQueue(c, 'ae-running');
    await setNow(c, T0);
    const pending = await spawn(c, q);
    await expectPgError(awaitEvent(c, q, pending.task_id, pending.run_id, 's', 'ev'), 'P0001', 'must be running to await events');

    const missing = '01890a5d-ac96-774b-bcce-b302099a8057';
    await expectPgError(awaitEvent(c, q, pending.task_id, missing, 's', 'ev'), 'P0001', 'not found while awaiting event');

    const sleeping = await claimOne(c, q);
    await c.query('select absurd.schedule_run($1, $2, $3)', [q, sleeping.run_id, plus(T0, 600)]);
    await expectPgError(awaitEvent(c, q, sleeping.task_id, sleeping.run_id, 's', 'ev'), 'P0001', 'must be running to await events');

    const done = await spawnAndClaim(c, q);
    await c.query(`select absurd.complete_run($1, $2, '1')`, [q, done.run_id]);
    await expectPgError(awaitEvent(c, q, done.task_id, done.run_id, 's', 'ev'), 'P0001', 'must be running to await events');
    expect(await waitRows(c, q)).toEqual([]);
  });

  it('returns an already emitted payload at once and records it as the step’s checkpoint', async () => {
    const q = await newQueue(c, 'ae-emitted');
    await setNow(c, T0);
    await emitEvent(q, 'ev', { a: 1 });
    await setNow(c, plus(T0, 5));
    const { task_id: taskId, run_id: runId } = await spawnAndClaim(c, q);
    await setNow(c, plus(T0, 6));
    expect(await awaitEvent(c, q, taskId, runId, 'wait-step', 'ev', 30)).toEqual({
      should_suspend: false,
      payload: { a: 1 },
      payload_is_sql_null: false,
    });
    const [checkpoint, ...others] = await checkpointRows(c, q, taskId);
    expect(others).toEqual([]);
    expect(checkpoint).toMatchObject({ checkpoint_name: 'wait-step', state: { a: 1 }, status: 'committed', owner_run_id: runId });
    expect(checkpoint!.updated_at.toISOString()).toBe(plus(T0, 6));
    expect(await waitRows(c, q)).toEqual([]);
    expect(await runRow(c, q, runId)).toMatchObject({ state: 'running', claimed_by: 'worker-1', wake_event: null });
    expect((await taskRow(c, q, taskId)).state).toBe('running');
  });

  it('suspends: one wait row, the run sleeping until the timeout', async () => {
    const q = await newQueue(c, 'ae-suspend');
    const { task_id: taskId, run_id: runId } = await suspendedWaiter(q, 'ev', 'wait-step', 60);
    const waits = await waitRows(c, q);
    expect(waits).toHaveLength(1);
    expect(waits[0]).toMatchObject({ task_id: taskId, run_id: runId, step_name: 'wait-step', event_name: 'ev' });
    expect(waits[0]!.timeout_at?.toISOString()).toBe(plus(T0, 61));
    expect(waits[0]!.created_at.toISOString()).toBe(plus(T0, 1));
    expect(await runRow(c, q, runId)).toMatchObject({
      state: 'sleeping',
      claimed_by: null,
      claim_expires_at: null,
      available_at_text: plus(T0, 61),
      wake_event: 'ev',
      event_payload_is_sql_null: true,
    });
    expect((await taskRow(c, q, taskId)).state).toBe('sleeping');
    expect(await checkpointRows(c, q, taskId)).toEqual([]);
  });

  it('suspends without a timeout until infinity', async () => {
    const q = await newQueue(c, 'ae-forever');
    const omitted = await suspendedWaiter(q, 'ev', 'wait-step');
    const explicitNull = await suspendedWaiter(q, 'ev', 'wait-step', null);
    for (const { run_id: runId } of [omitted, explicitNull]) {
      expect(await runRow(c, q, runId)).toMatchObject({ state: 'sleeping', available_at_infinite: true, wake_event: 'ev' });
    }
    const waits = await waitRows(c, q);
    expect(waits).toHaveLength(2);
    expect(waits.map((w) => w.timeout_at)).toEqual([null, null]);
    await setNow(c, '2999-01-01T00:00:00.000Z');
    expect(await claim(c, q, 'worker-2', 30, 10)).toEqual([]);
  });

  it('with timeout 0 suspends until now, so the run is claimable at once', async () => {
    const q = await newQueue(c, 'ae-zero');
    const { run_id: runId } = await suspendedWaiter(q, 'ev', 'wait-step', 0);
    expect(await runRow(c, q, runId)).toMatchObject({ state: 'sleeping', available_at_text: plus(T0, 1) });
    const claimed = await claimOne(c, q);
    expect(claimed).toMatchObject({ run_id: runId, wake_event: 'ev', event_payload: null });
  });
});

describe('emit_event', () => {
  it('rejects a missing or blank event name', async () => {
    const q = await newQueue(c, 'ee-args');
    for (const event of ['', '   ', null]) {
      await expectPgError(emitEvent(q, event, { a: 1 }), 'P0001', 'event_name must be provided');
    }
  });

  it('wakes a sleeping waiter: run and task pending, payload delivered and checkpointed, wait removed', async () => {
    const q = await newQueue(c, 'ee-wake');
    const { task_id: taskId, run_id: runId } = await suspendedWaiter(q, 'ev', 'wait-step', 300);
    await setNow(c, plus(T0, 10));
    await emitEvent(q, 'ev', { ok: 1 });

    expect(await runRow(c, q, runId)).toMatchObject({
      state: 'pending',
      available_at_text: plus(T0, 10),
      wake_event: null,
      event_payload: { ok: 1 },
      claimed_by: null,
      claim_expires_at: null,
    });
    expect((await taskRow(c, q, taskId)).state).toBe('pending');
    const [checkpoint, ...others] = await checkpointRows(c, q, taskId);
    expect(others).toEqual([]);
    expect(checkpoint).toMatchObject({ checkpoint_name: 'wait-step', state: { ok: 1 }, status: 'committed', owner_run_id: runId });
    expect(checkpoint!.updated_at.toISOString()).toBe(plus(T0, 10));
    expect(await waitRows(c, q)).toEqual([]);
    const event = await eventRow(c, q, 'ev');
    expect(event).toMatchObject({ payload: { ok: 1 } });
    expect(event!.emitted_at.toISOString()).toBe(plus(T0, 10));

    // The same run resumes with the payload, and the step replays from its checkpoint.
    await setNow(c, plus(T0, 11));
    const resumed = await claimOne(c, q);
    expect(resumed).toMatchObject({ run_id: runId, attempt: 1, wake_event: null, event_payload: { ok: 1 } });
    expect(await awaitEvent(c, q, taskId, runId, 'wait-step', 'ev', 300)).toMatchObject({ should_suspend: false, payload: { ok: 1 } });
    expect(await waitRows(c, q)).toEqual([]);
  });

  it('wakes every waiter of that event and no other', async () => {
    const q = await newQueue(c, 'ee-many');
    await setNow(c, T0);
    for (let i = 0; i < 3; i++) await spawn(c, q);
    const claimed = await claim(c, q, 'worker-1', 60, 3);
    expect(claimed).toHaveLength(3);
    const [a, b, other] = claimed as [(typeof claimed)[0], (typeof claimed)[0], (typeof claimed)[0]];
    await awaitEvent(c, q, a.task_id, a.run_id, 'step-a', 'ev');
    await awaitEvent(c, q, b.task_id, b.run_id, 'step-b', 'ev', 100);
    await awaitEvent(c, q, other.task_id, other.run_id, 'step-o', 'other-ev');
    await emitEvent(q, 'ev', 'hello');
    expect((await runRow(c, q, a.run_id)).state).toBe('pending');
    expect((await runRow(c, q, b.run_id)).state).toBe('pending');
    expect((await checkpointRows(c, q, a.task_id)).map((r) => [r.checkpoint_name, r.state])).toEqual([['step-a', 'hello']]);
    expect((await checkpointRows(c, q, b.task_id)).map((r) => [r.checkpoint_name, r.state])).toEqual([['step-b', 'hello']]);
    expect(await runRow(c, q, other.run_id)).toMatchObject({ state: 'sleeping', wake_event: 'other-ev' });
    expect((await waitRows(c, q)).map((w) => w.event_name)).toEqual(['other-ev']);
  });

  it('keeps the first payload and emission time; later emissions are no-ops', async () => {
    const q = await newQueue(c, 'ee-first');
    await setNow(c, T0);
    await emitEvent(q, 'ev', { n: 1 });
    await setNow(c, plus(T0, 5));
    await emitEvent(q, 'ev', { n: 2 });
    await emitEvent(q, 'ev', null);
    const event = await eventRow(c, q, 'ev');
    expect(event).toMatchObject({ payload: { n: 1 } });
    expect(event!.emitted_at.toISOString()).toBe(T0);
    const { task_id: taskId, run_id: runId } = await spawnAndClaim(c, q);
    expect(await awaitEvent(c, q, taskId, runId, 'wait-step', 'ev')).toMatchObject({ should_suspend: false, payload: { n: 1 } });
  });

  it('wakes nobody on a repeated emission', async () => {
    const q = await newQueue(c, 'ee-repeat');
    await setNow(c, T0);
    await emitEvent(q, 'ev', { n: 1 });
    // A run left waiting for an event that is already emitted cannot arise through the
    // functions; build it by hand to see that the second emission has no side effects.
    const { task_id: taskId, run_id: runId } = await spawnAndClaim(c, q);
    await insertWait(c, q, taskId, runId, 'wait-step', 'ev', null);
    await c.query(
      `update ${table('r', q)} set state = 'sleeping', wake_event = 'ev', available_at = 'infinity',
              claimed_by = null, claim_expires_at = null where run_id = $1`,
      [runId],
    );
    await c.query(`update ${table('t', q)} set state = 'sleeping' where task_id = $1`, [taskId]);
    await setNow(c, plus(T0, 5));
    await emitEvent(q, 'ev', { n: 2 });
    expect(await runRow(c, q, runId)).toMatchObject({ state: 'sleeping', wake_event: 'ev', event_payload_is_sql_null: true });
    expect((await taskRow(c, q, taskId)).state).toBe('sleeping');
    expect(await waitRows(c, q)).toHaveLength(1);
    expect(await checkpointRows(c, q, taskId)).toEqual([]);
  });

  it('stores a NULL payload as JSON null, which still counts as emitted', async () => {
    const q = await newQueue(c, 'ee-null');
    const { task_id: taskId, run_id: runId } = await suspendedWaiter(q, 'ev', 'wait-step');
    await setNow(c, plus(T0, 2));
    await emitEvent(q, 'ev'); // two-argument form: p_payload defaults to NULL
    await emitEvent(q, 'ev-sql-null', null);
    for (const name of ['ev', 'ev-sql-null']) {
      const event = await eventRow(c, q, name);
      expect(event).toMatchObject({ payload: null, payload_is_sql_null: false });
      expect(event!.emitted_at.toISOString()).toBe(plus(T0, 2));
    }
    expect(await runRow(c, q, runId)).toMatchObject({ state: 'pending', event_payload: null, event_payload_is_sql_null: false });
    const [checkpoint] = await checkpointRows(c, q, taskId);
    expect(checkpoint).toMatchObject({ checkpoint_name: 'wait-step', state_type: 'null', state_is_sql_null: false });

    // A later waiter gets the JSON null at once instead of suspending.
    expect((await claimOne(c, q)).run_id).toBe(runId);
    const late = await spawnAndClaim(c, q);
    expect(await awaitEvent(c, q, late.task_id, late.run_id, 'wait-step', 'ev-sql-null')).toEqual({
      should_suspend: false,
      payload: null,
      payload_is_sql_null: false,
    });
  });

  it('scopes events to their queue', async () => {
    const q1 = await newQueue(c, 'ee-scope-a');
    const q2 = await newQueue(c, 'ee-scope-b');
    const { task_id: taskId, run_id: runId } = await suspendedWaiter(q2, 'ev', 'wait-step');
    await emitEvent(q1, 'ev', { from: 'q1' });
    expect((await runRow(c, q2, runId)).state).toBe('sleeping');
    expect(await eventRow(c, q2, 'ev')).toMatchObject({ payload_is_sql_null: true });
    expect(await waitRows(c, q2)).toHaveLength(1);

    // A task in q1 sees q1's payload; q2's waiter gets q2's payload.
    const other = await spawnAndClaim(c, q1);
    expect(await awaitEvent(c, q1, other.task_id, other.run_id, 'wait-step', 'ev')).toMatchObject({ payload: { from: 'q1' } });
    await emitEvent(q2, 'ev', { from: 'q2' });
    expect(await runRow(c, q2, runId)).toMatchObject({ state: 'pending', event_payload: { from: 'q2' } });
    expect((await checkpointRows(c, q2, taskId))[0]?.state).toEqual({ from: 'q2' });
  });

  it('hands the delivered payload to the first await on resume and clears it from the run', async () => {
    const q = await newQueue(c, 'ee-consume');
    const { task_id: taskId, run_id: runId } = await suspendedWaiter(q, 'ev', 'first-step');
    await emitEvent(q, 'ev', { v: 1 });
    await claimOne(c, q);
    // Another step name for the same event: no checkpoint, the run's delivered payload is used.
    expect(await awaitEvent(c, q, taskId, runId, 'second-step', 'ev')).toMatchObject({ should_suspend: false, payload: { v: 1 } });
    expect(await runRow(c, q, runId)).toMatchObject({ state: 'running', event_payload_is_sql_null: true });
    expect((await checkpointRows(c, q, taskId)).map((r) => [r.checkpoint_name, r.state, r.owner_run_id])).toEqual([
      ['first-step', { v: 1 }, runId],
      ['second-step', { v: 1 }, runId],
    ]);
  });
});

describe('event timeouts', () => {
  it('makes the run claimable at the timeout; the claim drops the expired wait and reports the event', async () => {
    const q = await newQueue(c, 'et-claim');
    const { task_id: taskId, run_id: runId } = await suspendedWaiter(q, 'ev', 'wait-step', 30);
    await setNow(c, plus(T0, 30));
    expect(await claim(c, q, 'worker-2', 60)).toEqual([]);
    await setNow(c, plus(T0, 31));
    const claimed = await claimOne(c, q, 'worker-2', 60);
    expect(claimed).toMatchObject({ run_id: runId, task_id: taskId, attempt: 1, wake_event: 'ev', event_payload: null });
    expect(await waitRows(c, q)).toEqual([]);

    // Awaiting again (what SQL alone sees after a timeout): (false, NULL), no new wait, still running.
    await setNow(c, plus(T0, 32));
    expect(await awaitEvent(c, q, taskId, runId, 'wait-step', 'ev', 30)).toEqual({
      should_suspend: false,
      payload: null,
      payload_is_sql_null: true,
    });
    expect(await waitRows(c, q)).toEqual([]);
    const run = await runRow(c, q, runId);
    expect(run).toMatchObject({ state: 'running', claimed_by: 'worker-2', wake_event: null });
    expect(run.claim_expires_at?.toISOString()).toBe(plus(T0, 91));
    expect((await taskRow(c, q, taskId)).state).toBe('running');
    expect(await checkpointRows(c, q, taskId)).toEqual([]);

    // The timeout is reported once: a further await suspends again.
    expect(await awaitEvent(c, q, taskId, runId, 'wait-step', 'ev', 30)).toMatchObject({ should_suspend: true });
  });

  it('an emission at or after the timeout does not wake the run', async () => {
    const q = await newQueue(c, 'et-late');
    const { task_id: taskId, run_id: runId } = await suspendedWaiter(q, 'ev', 'wait-step', 30);
    await setNow(c, plus(T0, 31)); // exactly timeout_at: the wait has expired
    await emitEvent(q, 'ev', { late: true });
    expect(await runRow(c, q, runId)).toMatchObject({
      state: 'sleeping',
      available_at_text: plus(T0, 31),
      wake_event: 'ev',
      event_payload_is_sql_null: true,
    });
    expect((await taskRow(c, q, taskId)).state).toBe('sleeping');
    expect(await waitRows(c, q)).toEqual([]);
    expect(await checkpointRows(c, q, taskId)).toEqual([]);

    await setNow(c, plus(T0, 40));
    const claimed = await claimOne(c, q);
    expect(claimed).toMatchObject({ run_id: runId, wake_event: 'ev', event_payload: null });
    // §2.21: the already-emitted check (step 10) precedes the timeout detection (step 12), so a
    // repeat await through SQL alone now sees the late payload.
    expect(await awaitEvent(c, q, taskId, runId, 'wait-step', 'ev', 30)).toMatchObject({ should_suspend: false, payload: { late: true } });
  });

  it('an emission just before the timeout still wakes the run', async () => {
    const q = await newQueue(c, 'et-early');
    const { run_id: runId } = await suspendedWaiter(q, 'ev', 'wait-step', 30);
    await setNow(c, plus(T0, 30.999));
    await emitEvent(q, 'ev', 1);
    expect(await runRow(c, q, runId)).toMatchObject({ state: 'pending', event_payload: 1 });
  });
});
