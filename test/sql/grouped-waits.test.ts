/**
 * Migration 000011: kit_await_events (a group of waits, one suspension) and what emit_event does
 * for a run waiting in a group of mode 'all'. Single waits (await_event) are events.test.ts's.
 */
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import {
  checkpointRows,
  claim,
  expectPgError,
  newQueue,
  pidOf,
  plus,
  runRow,
  setNow,
  spawnAndClaim,
  taskRow,
  useSession,
  utcClient,
  waitRows,
  waitUntilBlocked,
  type Queryable,
} from './helpers.js';

const db = useTestDatabase();
const c = useSession(db, { outsideSchema: true, now: null });

const T0 = '2024-07-01T12:00:00.000Z';

interface GroupRow {
  step_name: string;
  payload: unknown;
  resolved: boolean;
  outcome: string;
}

async function awaitGroup(
  client: Queryable,
  q: string,
  waiter: { task_id: string; run_id: string },
  waits: { step: string; event: string }[],
  options: { timeout?: number | null; wake?: string } = {},
): Promise<GroupRow[]> {
  const { rows } = await client.query<GroupRow>('select * from absurd.kit_await_events($1, $2, $3, $4, $5, $6)', [
    q,
    waiter.task_id,
    waiter.run_id,
    JSON.stringify(waits),
    options.timeout ?? null,
    options.wake ?? 'all',
  ]);
  return rows;
}

async function emit(client: Queryable, q: string, event: string, payload: unknown): Promise<void> {
  await client.query('select absurd.emit_event($1, $2, $3)', [q, event, JSON.stringify(payload)]);
}

const THREE = [
  { step: 's-a', event: 'ev-a' },
  { step: 's-b', event: 'ev-b' },
  { step: 's-c', event: 'ev-c' },
];

async function checkpointsOf(q: string, taskId: string): Promise<Record<string, unknown>> {
  return Object.fromEntries((await checkpointRows(c, q, taskId)).map((row) => [row.checkpoint_name, row.state]));
}

describe('kit_await_events', () => {
  it("suspends once for every wait of the group; in mode 'all' the run sleeps until the last event", async () => {
    const q = await newQueue(c, 'group-all');
    await setNow(c, T0);
    const waiter = await spawnAndClaim(c, q);
    const rows = await awaitGroup(c, q, waiter, THREE, { timeout: 60 });
    expect(rows).toEqual(THREE.map((w) => ({ step_name: w.step, payload: null, resolved: false, outcome: 'suspended' })));
    expect(await runRow(c, q, waiter.run_id)).toMatchObject({ state: 'sleeping', wake_event: '$awaitEvents:all', available_at_text: plus(T0, 60) });
    expect((await waitRows(c, q)).map((w) => [w.step_name, w.event_name]).sort()).toEqual([
      ['s-a', 'ev-a'],
      ['s-b', 'ev-b'],
      ['s-c', 'ev-c'],
    ]);

    await emit(c, q, 'ev-b', { b: 1 });
    await emit(c, q, 'ev-a', { a: 1 });
    // Answered waits are checkpointed and gone; the run sleeps on.
    expect((await runRow(c, q, waiter.run_id)).state).toBe('sleeping');
    expect((await taskRow(c, q, waiter.task_id)).state).toBe('sleeping');
    expect(await checkpointsOf(q, waiter.task_id)).toEqual({ 's-a': { a: 1 }, 's-b': { b: 1 } });
    expect((await waitRows(c, q)).map((w) => w.event_name)).toEqual(['ev-c']);

    await emit(c, q, 'ev-c', { c: 1 });
    expect(await runRow(c, q, waiter.run_id)).toMatchObject({ state: 'pending', wake_event: null, event_payload: { c: 1 } });
    expect((await taskRow(c, q, waiter.task_id)).state).toBe('pending');
    expect(await waitRows(c, q)).toEqual([]);

    // The replay finds every answer.
    await setNow(c, plus(T0, 5));
    const [claimed] = await claim(c, q);
    expect(claimed?.run_id).toBe(waiter.run_id);
    expect(await awaitGroup(c, q, waiter, THREE, { timeout: 60 })).toEqual([
      { step_name: 's-a', payload: { a: 1 }, resolved: true, outcome: 'ready' },
      { step_name: 's-b', payload: { b: 1 }, resolved: true, outcome: 'ready' },
      { step_name: 's-c', payload: { c: 1 }, resolved: true, outcome: 'ready' },
    ]);
    expect((await runRow(c, q, waiter.run_id)).event_payload).toBeNull();
    expect(await checkpointsOf(q, waiter.task_id)).toEqual({ 's-a': { a: 1 }, 's-b': { b: 1 }, 's-c': { c: 1 } });
  });

  it('answers at once what was emitted before, checkpoints it, and waits only for the rest', async () => {
    const q = await newQueue(c, 'group-partial');
    const waiter = await spawnAndClaim(c, q);
    await emit(c, q, 'ev-a', 'early');
    const rows = await awaitGroup(c, q, waiter, THREE);
    expect(rows.map((r) => [r.step_name, r.payload, r.outcome])).toEqual([
      ['s-a', 'early', 'suspended'],
      ['s-b', null, 'suspended'],
      ['s-c', null, 'suspended'],
    ]);
    expect(await checkpointsOf(q, waiter.task_id)).toEqual({ 's-a': 'early' });
    expect((await waitRows(c, q)).map((w) => w.event_name).sort()).toEqual(['ev-b', 'ev-c']);
    expect((await runRow(c, q, waiter.run_id)).available_at_text).toBeNull(); // no timeout: infinity
  });

  it('returns ready without suspending when every wait is answered (checkpoints first, then events)', async () => {
    const q = await newQueue(c, 'group-ready');
    const waiter = await spawnAndClaim(c, q);
    await c.query(
      `select absurd.set_task_checkpoint_state($1, $2, 's-a', '"from checkpoint"'::jsonb, $3)`,
      [q, waiter.task_id, waiter.run_id],
    );
    await emit(c, q, 'ev-a', 'from event');
    await emit(c, q, 'ev-b', null);
    const rows = await awaitGroup(c, q, waiter, THREE.slice(0, 2));
    expect(rows).toEqual([
      { step_name: 's-a', payload: 'from checkpoint', resolved: true, outcome: 'ready' },
      { step_name: 's-b', payload: null, resolved: true, outcome: 'ready' },
    ]);
    expect((await runRow(c, q, waiter.run_id)).state).toBe('running');
    expect(await waitRows(c, q)).toEqual([]);
  });

  it("in mode 'any' the first emission wakes the run; the replay is ready with what was answered", async () => {
    const q = await newQueue(c, 'group-any');
    const waiter = await spawnAndClaim(c, q);
    expect((await awaitGroup(c, q, waiter, THREE, { wake: 'any' }))[0]?.outcome).toBe('suspended');
    expect((await runRow(c, q, waiter.run_id)).wake_event).toBe('$awaitEvents:any');
    await emit(c, q, 'ev-c', 3);
    expect((await runRow(c, q, waiter.run_id)).state).toBe('pending');
    await claim(c, q);
    expect((await awaitGroup(c, q, waiter, THREE, { wake: 'any' })).map((r) => [r.step_name, r.resolved, r.outcome])).toEqual([
      ['s-a', false, 'ready'],
      ['s-b', false, 'ready'],
      ['s-c', true, 'ready'],
    ]);
    // Suspending again replaces the waits the run had left behind.
    expect((await awaitGroup(c, q, waiter, [{ step: 's-d', event: 'ev-d' }], { wake: 'any' }))[0]?.outcome).toBe('suspended');
    expect((await waitRows(c, q)).map((w) => w.step_name)).toEqual(['s-d']);
  });

  it("reports the group's timeout once after the wake, then waits again", async () => {
    const q = await newQueue(c, 'group-timeout');
    await setNow(c, T0);
    const waiter = await spawnAndClaim(c, q);
    await awaitGroup(c, q, waiter, THREE, { timeout: 30 });
    await emit(c, q, 'ev-a', 1);
    await setNow(c, plus(T0, 31));
    expect((await claim(c, q)).map((run) => run.run_id)).toEqual([waiter.run_id]);
    expect(await waitRows(c, q)).toEqual([]); // the claim removed the expired waits
    expect((await awaitGroup(c, q, waiter, THREE, { timeout: 30 })).map((r) => [r.step_name, r.resolved, r.outcome])).toEqual([
      ['s-a', true, 'timed_out'],
      ['s-b', false, 'timed_out'],
      ['s-c', false, 'timed_out'],
    ]);
    expect(await runRow(c, q, waiter.run_id)).toMatchObject({ state: 'running', wake_event: null });
    expect((await awaitGroup(c, q, waiter, THREE.slice(1), { timeout: 30 }))[0]?.outcome).toBe('suspended');
  });

  it('refuses bad arguments, a cancelled task (AB001) and a run that is not running', async () => {
    const q = await newQueue(c, 'group-errors');
    const waiter = await spawnAndClaim(c, q);
    await expectPgError(awaitGroup(c, q, waiter, THREE, { wake: 'some' }), 'P0001', "wake must be 'all' or 'any' (got some)");
    await expectPgError(awaitGroup(c, q, waiter, []), 'P0001', 'waits must be a non-empty JSON array of {"step", "event"}');
    await expectPgError(awaitGroup(c, q, waiter, [{ step: 's', event: ' ' }]), 'P0001', 'event_name must be provided');
    await expectPgError(awaitGroup(c, q, waiter, [{ step: '', event: 'e' }]), 'P0001', 'every wait needs a step name');
    await expectPgError(
      awaitGroup(c, q, waiter, [
        { step: 's', event: 'e1' },
        { step: 's', event: 'e2' },
      ]),
      'P0001',
      'the step names of a group of waits must be unique',
    );
    await expectPgError(awaitGroup(c, q, waiter, THREE, { timeout: -1 }), 'P0001', 'timeout must be non-negative');
    await awaitGroup(c, q, waiter, THREE);
    await expectPgError(awaitGroup(c, q, waiter, THREE), 'P0001', `Run "${waiter.run_id}" must be running to await events`);
    await c.query('select absurd.cancel_task($1, $2)', [q, waiter.task_id]);
    await expectPgError(awaitGroup(c, q, waiter, THREE), 'AB001');
  });
});

describe("emit_event for a group of mode 'all'", () => {
  let a: pg.Client;
  let b: pg.Client;
  beforeAll(async () => {
    a = await utcClient(db, { outsideSchema: true });
    b = await utcClient(db, { outsideSchema: true });
    for (const client of [a, b]) await client.query(`set statement_timeout = '20s'`);
  });
  afterEach(async () => {
    for (const client of [a, b]) await client.query('rollback').catch(() => undefined);
  });
  afterAll(async () => {
    await a.end();
    await b.end();
  });

  it('of two concurrent emissions answering the last two waits, the later one wakes the run', async () => {
    const q = await newQueue(c, 'group-race');
    const waiter = await spawnAndClaim(c, q);
    await awaitGroup(c, q, waiter, THREE.slice(0, 2));
    await a.query('begin');
    await emit(a, q, 'ev-a', 'A');
    await b.query('begin');
    const second = emit(b, q, 'ev-b', 'B');
    await waitUntilBlocked(c, pidOf(b));
    await a.query('commit');
    await second;
    await b.query('commit');
    expect(await runRow(c, q, waiter.run_id)).toMatchObject({ state: 'pending', event_payload: 'B' });
    expect(await checkpointsOf(q, waiter.task_id)).toEqual({ 's-a': 'A', 's-b': 'B' });
    expect(await waitRows(c, q)).toEqual([]);
  });

  it('wakes a run waiting with await_event as before, beside a grouped waiter of the same event', async () => {
    const q = await newQueue(c, 'group-mixed');
    const grouped = await spawnAndClaim(c, q);
    const single = await spawnAndClaim(c, q);
    await awaitGroup(c, q, grouped, THREE.slice(0, 2));
    await c.query('select * from absurd.await_event($1, $2, $3, $4, $5)', [q, single.task_id, single.run_id, 'one', 'ev-a']);
    await emit(c, q, 'ev-a', 'x');
    expect((await runRow(c, q, single.run_id)).state).toBe('pending');
    expect((await runRow(c, q, grouped.run_id)).state).toBe('sleeping');
    expect(await checkpointsOf(q, single.task_id)).toEqual({ one: 'x' });
    expect(await checkpointsOf(q, grouped.task_id)).toEqual({ 's-a': 'x' });
  });
});
