/**
 * Races between sessions, made deterministic: a session holds its locks in an open transaction,
 * the competing statement is started and the test waits until the server reports it blocked on
 * a lock (or proves the blocking with statement_timeout, SQLSTATE 57014) before releasing.
 *
 * Covers spec §2.21 step 4 (no lost wake-up between await_event and emit_event), §2.23 and §3.6
 * (lock order: runs before task), Phase C of §2.12 (SKIP LOCKED claims) and §2.22 step 2 (first
 * emission wins).
 */
import type pg from 'pg';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import {
  checkpointRows,
  claim,
  claimOne,
  eventRow,
  expectPgError,
  newQueue,
  pidOf,
  plus,
  runRow,
  setNow,
  spawn,
  spawnAndClaim,
  table,
  taskRow,
  utcClient,
  waitRows,
  waitUntilBlocked,
  type ClaimedRun,
} from './helpers.js';

const db = useTestDatabase();

const T0 = '2024-08-05T09:00:00.000Z';
const failure = JSON.stringify({ name: 'Error', message: 'boom', stack: null });

/** Setup and inspection. */
let s: pg.Client;
/** Two competing sessions and a third one that holds a lock in their way. */
let a: pg.Client;
let b: pg.Client;
let gate: pg.Client;
/** Extra sessions for the many-emitters and many-workers races. */
const crowd: pg.Client[] = [];
const CROWD = 6;

beforeAll(async () => {
  s = await utcClient(db, { outsideSchema: true });
  a = await utcClient(db, { outsideSchema: true });
  b = await utcClient(db, { outsideSchema: true });
  gate = await utcClient(db, { outsideSchema: true });
  for (let i = 0; i < CROWD; i++) crowd.push(await utcClient(db, { outsideSchema: true }));
});

beforeEach(async () => {
  for (const client of [s, a, b, gate, ...crowd]) {
    await client.query('set absurd.fake_now = default');
    // A guard: a lock-order bug must fail the test, not hang it.
    await client.query(`set statement_timeout = '20s'`);
  }
});

afterEach(async () => {
  // Leave no transaction open behind a failed assertion.
  for (const client of [a, b, gate, ...crowd]) await client.query('rollback').catch(() => undefined);
});

type Settled = { ok: true; rows: pg.QueryResultRow[] } | { ok: false; error: pg.DatabaseError };

/** Starts a statement without awaiting it; the outcome is captured, never left unhandled. */
function start(client: pg.Client, text: string, values: unknown[]): Promise<Settled> {
  return client.query(text, values).then(
    (result): Settled => ({ ok: true, rows: result.rows }),
    (error: pg.DatabaseError): Settled => ({ ok: false, error }),
  );
}

function expectOk(outcome: Settled): pg.QueryResultRow[] {
  if (!outcome.ok) throw new Error(`expected success, got ${outcome.error.code}: ${outcome.error.message}`);
  return outcome.rows;
}

function awaitEventSql(): string {
  return 'select should_suspend, payload from absurd.await_event($1, $2, $3, $4, $5)';
}

describe('await_event against emit_event (no lost wake-up)', () => {
  it('blocks emit_event while an await_event that created the sentinel is uncommitted; the emission then wakes the waiter', async () => {
    const q = await newQueue(s, 'race-await-first');
    const { task_id: taskId, run_id: runId } = await spawnAndClaim(s, q);

    await a.query('begin');
    const { rows } = await a.query(awaitEventSql(), [q, taskId, runId, 'wait-step', 'ev']);
    expect(rows).toEqual([{ should_suspend: true, payload: null }]);

    await b.query(`set statement_timeout = '300ms'`);
    await expectPgError(b.query(`select absurd.emit_event($1, 'ev', '{"n":1}')`, [q]), '57014');
    await b.query(`set statement_timeout = '20s'`);

    await a.query('commit');
    await b.query(`select absurd.emit_event($1, 'ev', '{"n":1}')`, [q]);
    expect(await runRow(s, q, runId)).toMatchObject({ state: 'pending', event_payload: { n: 1 }, wake_event: null });
    expect((await taskRow(s, q, taskId)).state).toBe('pending');
    expect((await checkpointRows(s, q, taskId)).map((r) => [r.checkpoint_name, r.state])).toEqual([['wait-step', { n: 1 }]]);
    expect(await waitRows(s, q)).toEqual([]);
  });

  it('blocks emit_event on the FOR SHARE lock of an existing sentinel row', async () => {
    const q = await newQueue(s, 'race-share-lock');
    // An earlier waiter has committed the sentinel row.
    const earlier = await spawnAndClaim(s, q);
    await s.query(awaitEventSql(), [q, earlier.task_id, earlier.run_id, 'wait-step', 'ev']);
    expect(await eventRow(s, q, 'ev')).toMatchObject({ payload_is_sql_null: true });

    const { task_id: taskId, run_id: runId } = await spawnAndClaim(s, q);
    await a.query('begin');
    expect((await a.query(awaitEventSql(), [q, taskId, runId, 'wait-step', 'ev'])).rows).toEqual([
      { should_suspend: true, payload: null },
    ]);

    await b.query(`set statement_timeout = '300ms'`);
    await expectPgError(b.query(`select absurd.emit_event($1, 'ev', '"x"')`, [q]), '57014');
    await b.query(`set statement_timeout = '20s'`);

    await a.query('commit');
    await b.query(`select absurd.emit_event($1, 'ev', '"x"')`, [q]);
    for (const run of [earlier.run_id, runId]) {
      expect(await runRow(s, q, run)).toMatchObject({ state: 'pending', event_payload: 'x' });
    }
    expect(await waitRows(s, q)).toEqual([]);
  });

  it('an emission that starts while await_event is uncommitted waits, then wakes the waiter', async () => {
    const q = await newQueue(s, 'race-concurrent');
    const { task_id: taskId, run_id: runId } = await spawnAndClaim(s, q);

    await a.query('begin');
    await a.query(awaitEventSql(), [q, taskId, runId, 'wait-step', 'ev']);
    const emission = start(b, `select absurd.emit_event($1, 'ev', '{"n":2}')`, [q]);
    await waitUntilBlocked(s, pidOf(b));
    await a.query('commit');
    expectOk(await emission);

    expect(await runRow(s, q, runId)).toMatchObject({ state: 'pending', event_payload: { n: 2 } });
    expect((await checkpointRows(s, q, taskId)).map((r) => r.state)).toEqual([{ n: 2 }]);
    expect(await waitRows(s, q)).toEqual([]);
  });

  it('an await_event that starts while an emission is uncommitted waits, then returns the payload', async () => {
    const q = await newQueue(s, 'race-emit-first');
    const { task_id: taskId, run_id: runId } = await spawnAndClaim(s, q);

    await b.query('begin');
    await b.query(`select absurd.emit_event($1, 'ev', '{"n":3}')`, [q]);

    await a.query(`set statement_timeout = '300ms'`);
    await expectPgError(a.query(awaitEventSql(), [q, taskId, runId, 'wait-step', 'ev']), '57014');
    await a.query(`set statement_timeout = '20s'`);

    const waiting = start(a, awaitEventSql(), [q, taskId, runId, 'wait-step', 'ev']);
    await waitUntilBlocked(s, pidOf(a));
    await b.query('commit');
    expect(expectOk(await waiting)).toEqual([{ should_suspend: false, payload: { n: 3 } }]);
    expect(await runRow(s, q, runId)).toMatchObject({ state: 'running' });
    expect((await checkpointRows(s, q, taskId)).map((r) => r.state)).toEqual([{ n: 3 }]);
    expect(await waitRows(s, q)).toEqual([]);
  });
});

type Finisher = 'complete' | 'fail';

/** complete_run or fail_run of the run (max_attempts 1, so a failure is final). */
function finishSql(kind: Finisher): string {
  return kind === 'complete'
    ? `select absurd.complete_run($1, $2, '{"done":true}')`
    : `select absurd.fail_run($1, $2, '${failure}', null)`;
}

async function expectFinished(q: string, taskId: string, runId: string, kind: Finisher): Promise<void> {
  const state = kind === 'complete' ? 'completed' : 'failed';
  const task = await taskRow(s, q, taskId);
  expect(task.state).toBe(state);
  expect(task.cancelled_at).toBeNull();
  expect((await runRow(s, q, runId)).state).toBe(state);
}

async function expectCancelled(q: string, taskId: string, runId: string): Promise<void> {
  expect((await taskRow(s, q, taskId)).state).toBe('cancelled');
  expect(await runRow(s, q, runId)).toMatchObject({ state: 'cancelled', claimed_by: null, claim_expires_at: null });
}

describe.each<Finisher>(['complete', 'fail'])('cancel_task against %s_run on the same run', (kind) => {
  it(`${kind} first: cancel waits, then is a no-op`, async () => {
    const q = await newQueue(s, `race-${kind}-first`);
    const { task_id: taskId, run_id: runId } = await spawnAndClaim(s, q, { max_attempts: 1 });

    await a.query('begin');
    await a.query(finishSql(kind), [q, runId]);
    await b.query('begin');
    const cancel = start(b, 'select absurd.cancel_task($1, $2)', [q, taskId]);
    await waitUntilBlocked(s, pidOf(b));
    await a.query('commit');
    expectOk(await cancel);
    await b.query('commit');

    await expectFinished(q, taskId, runId, kind);
  });

  it(`cancel first: ${kind}_run waits, then raises AB001`, async () => {
    const q = await newQueue(s, `race-cancel-${kind}`);
    const { task_id: taskId, run_id: runId } = await spawnAndClaim(s, q, { max_attempts: 1 });

    await b.query('begin');
    await b.query('select absurd.cancel_task($1, $2)', [q, taskId]);
    await a.query('begin');
    const finish = start(a, finishSql(kind), [q, runId]);
    await waitUntilBlocked(s, pidOf(a));
    await b.query('commit');
    const outcome = await finish;
    expect(outcome.ok ? 'succeeded' : outcome.error.code).toBe('AB001');
    await a.query('rollback');

    await expectCancelled(q, taskId, runId);
  });

  // A third session holds the task row, so both contenders get as far as they can before the
  // task lock. Each takes the run row first, so they queue on the run; an engine that took the
  // task row before the run in either function would deadlock here (40P01).
  it(`cancel queued first behind a task lock: no deadlock, cancel wins, ${kind}_run raises AB001`, async () => {
    const q = await newQueue(s, `race-gated-cancel-${kind}`);
    const { task_id: taskId, run_id: runId } = await spawnAndClaim(s, q, { max_attempts: 1 });

    await gate.query('begin');
    await gate.query(`select 1 from ${table('t', q)} where task_id = $1 for update`, [taskId]);
    await b.query('begin');
    const cancel = start(b, 'select absurd.cancel_task($1, $2)', [q, taskId]);
    await waitUntilBlocked(s, pidOf(b));
    await a.query('begin');
    const finish = start(a, finishSql(kind), [q, runId]);
    await waitUntilBlocked(s, pidOf(a));

    await gate.query('commit');
    expectOk(await cancel);
    await b.query('commit');
    const outcome = await finish;
    expect(outcome.ok ? 'succeeded' : outcome.error.code).toBe('AB001');
    await a.query('rollback');

    await expectCancelled(q, taskId, runId);
  });

  it(`${kind}_run queued first behind a task lock: no deadlock, ${kind} wins, cancel is a no-op`, async () => {
    const q = await newQueue(s, `race-gated-${kind}`);
    const { task_id: taskId, run_id: runId } = await spawnAndClaim(s, q, { max_attempts: 1 });

    await gate.query('begin');
    await gate.query(`select 1 from ${table('t', q)} where task_id = $1 for update`, [taskId]);
    await a.query('begin');
    const finish = start(a, finishSql(kind), [q, runId]);
    await waitUntilBlocked(s, pidOf(a));
    await b.query('begin');
    const cancel = start(b, 'select absurd.cancel_task($1, $2)', [q, taskId]);
    await waitUntilBlocked(s, pidOf(b));

    await gate.query('commit');
    expectOk(await finish);
    await a.query('commit');
    expectOk(await cancel);
    await b.query('commit');

    await expectFinished(q, taskId, runId, kind);
  });
});

describe('concurrent claims', () => {
  it('skips a run another worker is claiming instead of waiting for it or taking it too', async () => {
    const q = await newQueue(s, 'race-claim-two');
    const first = await spawn(s, q);
    const second = await spawn(s, q);

    await a.query('begin');
    const mine = await claimOne(a, q, 'worker-a', 60);
    expect(mine.run_id).toBe(first.run_id);

    await b.query(`set statement_timeout = '2s'`);
    const theirs = await claimOne(b, q, 'worker-b', 60);
    expect(theirs.run_id).toBe(second.run_id);
    await a.query('commit');

    expect(await claim(b, q, 'worker-b', 60, 5)).toEqual([]);
    expect(await runRow(s, q, first.run_id)).toMatchObject({ state: 'running', claimed_by: 'worker-a' });
    expect(await runRow(s, q, second.run_id)).toMatchObject({ state: 'running', claimed_by: 'worker-b' });
  });

  it('never hands the same run to two of many workers claiming at once', async () => {
    const q = await newQueue(s, 'race-claim-many');
    const total = 30;
    const spawned = new Set<string>();
    for (let i = 0; i < total; i++) spawned.add((await spawn(s, q)).run_id);

    const claimsPerWorker = await Promise.all(
      crowd.map(async (client, i) => {
        const got: ClaimedRun[] = [];
        for (;;) {
          const rows = await claim(client, q, `worker-${i}`, 60, 2);
          if (rows.length === 0) return got;
          got.push(...rows);
        }
      }),
    );
    const all = claimsPerWorker.flat().map((r) => r.run_id);
    expect(all).toHaveLength(total);
    expect(new Set(all)).toEqual(spawned);

    const { rows } = await s.query<{ run_id: string; claimed_by: string; state: string }>(
      `select run_id, claimed_by, state from ${table('r', q)}`,
    );
    const owner = new Map(rows.map((r) => [r.run_id, r.claimed_by]));
    claimsPerWorker.forEach((claims, i) => {
      for (const claim of claims) expect(owner.get(claim.run_id)).toBe(`worker-${i}`);
    });
    expect(rows.every((r) => r.state === 'running')).toBe(true);
  });
});

describe('concurrent emitters of one event', () => {
  it('lets exactly one payload win and wakes the waiter once, with that payload', async () => {
    const q = await newQueue(s, 'race-emitters');
    await setNow(s, T0);
    const { task_id: taskId, run_id: runId } = await spawnAndClaim(s, q);
    await s.query(awaitEventSql(), [q, taskId, runId, 'wait-step', 'ev']);

    // Hold the event row so that every emitter queues on it, then let them all go.
    await gate.query('begin');
    await gate.query(`select 1 from ${table('e', q)} where event_name = 'ev' for update`);
    const emissions: Promise<Settled>[] = [];
    for (const [i, client] of crowd.entries()) {
      await setNow(client, plus(T0, 10 + i));
      emissions.push(start(client, 'select absurd.emit_event($1, $2, $3)', [q, 'ev', JSON.stringify({ n: i })]));
      await waitUntilBlocked(s, pidOf(client));
    }
    await gate.query('rollback');
    for (const outcome of await Promise.all(emissions)) expectOk(outcome);

    const event = await eventRow(s, q, 'ev');
    const winner = (event?.payload as { n: number } | undefined)?.n;
    expect(winner).toBeTypeOf('number');
    const wonAt = plus(T0, 10 + winner!);
    expect(event!.emitted_at.toISOString()).toBe(wonAt);

    // Woken once: everything the wake-up wrote carries the winner's payload and time.
    expect(await runRow(s, q, runId)).toMatchObject({ state: 'pending', event_payload: { n: winner }, available_at_text: wonAt });
    const checkpoints = await checkpointRows(s, q, taskId);
    expect(checkpoints).toHaveLength(1);
    expect(checkpoints[0]).toMatchObject({ checkpoint_name: 'wait-step', state: { n: winner }, owner_run_id: runId });
    expect(checkpoints[0]!.updated_at.toISOString()).toBe(wonAt);
    expect(await waitRows(s, q)).toEqual([]);
    await setNow(s, plus(T0, 60));
    expect((await claimOne(s, q)).event_payload).toEqual({ n: winner });
  });

  it('agrees on one payload when emitters and waiters all start at once', async () => {
    const q = await newQueue(s, 'race-emitters-free');
    const waiters = [await spawnAndClaim(s, q), await spawnAndClaim(s, q)];
    const [first, second] = waiters as [(typeof waiters)[0], (typeof waiters)[0]];
    const outcomes = await Promise.all([
      start(a, awaitEventSql(), [q, first.task_id, first.run_id, 'wait-step', 'ev']),
      start(b, awaitEventSql(), [q, second.task_id, second.run_id, 'wait-step', 'ev']),
      ...crowd.map((client, i) => start(client, 'select absurd.emit_event($1, $2, $3)', [q, 'ev', JSON.stringify({ n: i })])),
    ]);
    outcomes.forEach(expectOk);
    const winner = (await eventRow(s, q, 'ev'))?.payload;
    expect(winner).toMatchObject({ n: expect.any(Number) });
    // Each waiter either got the payload at once or was woken with it: the step's checkpoint
    // holds the winning payload either way, and nobody is left waiting.
    for (const w of waiters) {
      expect((await checkpointRows(s, q, w.task_id)).map((r) => r.state)).toEqual([winner]);
    }
    expect(await waitRows(s, q)).toEqual([]);
  });
});
