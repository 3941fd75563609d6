/**
 * absurd-kit's runtime on a schema installed by Absurd (test/fixtures/absurd-main.sql: none of
 * absurd-kit's additions, no NOTIFY): the client and its workers run on Absurd's standard
 * functions, say once at INFO what they go without, and everything else works as on absurd-kit's
 * schema — contracts and validation, the generated client, steps replayed after a retry, sleeps,
 * event waits, child tasks, cancellation, and absurd-sdk on the same queues. Part of the default
 * run; `ABSURD_TEST_SCHEMA=absurd` runs the whole runtime suite this way.
 */
import { Absurd as SdkAbsurd } from 'absurd-sdk';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createClient } from '../../generated/client.js';
import {
  Absurd,
  CancelledTask,
  TimeoutError,
  ValidationError,
  defineTask,
  type TaskContext,
  engineMigrations,
  migrate,
} from '../../packages/absurd-kit/src/index.js';
import { registerDemoHandlers } from '../../scripts/demo/handlers.js';
import { useEmptyDatabases } from '../engine/empty-databases.js';
import { useAbsurdDatabases } from '../support/absurd-schema.js';
import type { TestDatabase } from '../support/db.js';
import { useTestDatabase } from '../support/db.js';
import {
  appAtFakeTime,
  checkpoints,
  gate,
  onAbsurdSchema,
  queueName,
  rawSpawn,
  recordingConnection,
  recordingLog,
  runRows,
  taskRow,
  useClients,
  useFakeClock,
  waitForTaskState,
  workOnce,
} from './helpers.js';

const absurd = useAbsurdDatabases();
let url: string | undefined;
beforeAll(async () => {
  url = await absurd.create();
});
/** The database with Absurd's schema, as the clients' fixtures take it (they only read its URL). */
const database = {
  get url() {
    if (!url) throw new Error('the database is made in beforeAll');
    return url;
  },
} as TestDatabase;
const clients = useClients(database);
const clock = useFakeClock();
let reader: pg.Pool;
beforeAll(() => {
  reader = clients.pool();
});

const sdkClients: SdkAbsurd[] = [];
afterAll(async () => {
  for (const sdk of sdkClients) await sdk.close().catch(() => undefined);
});

/** The line a client on this schema logs once. */
const NOTE =
  'schema "absurd" was installed by Absurd (contract level main): running on its standard functions, without ' +
  "absurd-kit's batched writes, wake-ups, checkpoints with claims, failures without retry and one suspension for waits started together — run `absurd migrate --adopt` to add them";

const T0 = Date.parse('2031-02-03T04:05:06.000Z');

/** A client on a queue of its own, logging to a recording log (the INFO line included). */
async function app(label: string, db?: pg.Pool) {
  const log = recordingLog();
  const client = new Absurd({ db: db ?? clients.pool(), queueName: queueName(label), log });
  await client.createQueue();
  closing.push(client);
  return Object.assign(client, { recorded: log });
}
const closing: Absurd[] = [];
afterAll(async () => {
  for (const client of closing) await client.close({ timeout: 1 }).catch(() => undefined);
});

describe("absurd-kit's runtime on a schema installed by Absurd", () => {
  it('says once at INFO what it runs without and how to get it, sends only the contract functions and does not LISTEN', async () => {
    const handler = async (params: { n: number }, ctx: TaskContext) => {
      const doubled = await ctx.step('double', async () => params.n * 2);
      return ctx.step('plus-one', async () => doubled + 1);
    };

    // Claims, executions and writes, as sent.
    const recorder = recordingConnection(clients.pool());
    const recordedLog = recordingLog();
    const recorded = new Absurd({ db: recorder.con, queueName: queueName('sent'), log: recordedLog });
    closing.push(recorded);
    await recorded.createQueue();
    recorded.registerTask({ name: 'twice' }, handler);
    const first = await recorded.spawn('twice', { n: 1 });
    await workOnce(recorded);
    await workOnce(recorded);
    expect(await recorded.fetchTaskResult(first.taskID)).toEqual({ state: 'completed', result: 3 });
    const sent = recorder.texts().join('\n');
    expect(sent).not.toMatch(/absurd\.kit_\w+\(/);
    for (const fn of ['claim_task(', 'get_task_checkpoint_states(', 'set_task_checkpoint_state(', 'complete_run(']) {
      expect(sent).toContain(`absurd.${fn}`);
    }
    expect(recorder.texts().filter((text) => text.includes('to_regclass'))).toHaveLength(1);
    expect(recordedLog.messages('info')).toEqual([NOTE]);

    // A worker on a real pool: no LISTEN connection; started twice, it still says it once.
    const client = await app('note');
    client.registerTask({ name: 'twice' }, handler);
    const worker = await client.startWorker({ pollInterval: 0.05 });
    const second = await client.spawn('twice', { n: 2 });
    expect(await client.awaitTaskResult(second.taskID, { timeout: 10 })).toEqual({ state: 'completed', result: 5 });
    const { rows } = await reader.query(`select 1 from pg_stat_activity where datname = current_database() and query ilike 'listen %'`);
    expect(rows).toEqual([]);
    await worker.close();
    await (await client.startWorker({ pollInterval: 0.05 })).close();
    expect(client.recorded.lines).toEqual([{ level: 'info', args: [NOTE] }]);
  });

  it('runs the contracts of workflows/ through the generated client: validation, steps, an event, a sleep, a child task and its retry', async () => {
    const quiet = recordingLog();
    const orders = new Absurd({ db: clients.pool(), queueName: 'orders', log: quiet });
    const receipts = new Absurd({ db: clients.pool(), queueName: 'receipts', log: quiet });
    closing.push(orders, receipts);
    await orders.createQueue('orders');
    await receipts.createQueue('receipts');
    registerDemoHandlers(orders, receipts, 'order-flaky');
    await orders.startWorker({ concurrency: 2, pollInterval: 0.05 });
    await receipts.startWorker({ concurrency: 2, pollInterval: 0.05 });

    const client = createClient(orders);
    await expect(client.fulfillOrder.spawn({ orderId: 'x', amount: -1, items: ['book'], email: 'r@example.com' })).rejects.toBeInstanceOf(
      ValidationError,
    );
    const handle = await client.fulfillOrder.spawn({ orderId: 'order-flaky', amount: 4200, items: ['book'], email: 'r@example.com' });
    await waitForTaskState(reader, 'orders', handle.taskID, 'sleeping');
    await expect(client.shipmentPacked.emit('order-flaky', { trackingNumber: '' }, 'orders')).rejects.toBeInstanceOf(ValidationError);
    await client.shipmentPacked.emit('order-flaky', { trackingNumber: 'TRACK-9' }, 'orders');
    const snapshot = await client.fulfillOrder.awaitResult(handle, { timeout: 30 });
    expect(snapshot).toEqual({
      state: 'completed',
      result: { orderId: 'order-flaky', paymentId: expect.stringMatching(/^pay_/), trackingNumber: 'TRACK-9', receiptId: expect.stringMatching(/^rcpt_/) },
    });
    const { rows } = await reader.query<{ task_id: string }>(`select task_id from absurd."t_receipts" where params->>'orderId' = 'order-flaky'`);
    expect(rows).toHaveLength(1);
    expect((await runRows(reader, 'receipts', rows[0]!.task_id)).map((run) => run.state)).toEqual(['failed', 'completed']);
    expect(await taskRow(reader, 'receipts', rows[0]!.task_id)).toMatchObject({
      headers: { 'absurd.parent': { queue: 'orders', taskId: handle.taskID } },
    });
    expect(quiet.messages('error')).toEqual([]);
    expect(quiet.messages('info')).toEqual([NOTE, NOTE]);
  }, 60_000);

  it('replays the steps of a failed attempt from their checkpoints on the retry', async () => {
    const client = await app('replay');
    const ran: string[] = [];
    client.registerTask({ name: 'crashes-once' }, async (_params, ctx) => {
      const reserved = await ctx.step('reserve', async () => (ran.push(`reserve ${ctx.attempt}`), { seat: '12A' }));
      if (ctx.attempt === 1) throw new Error('crash after the step');
      const paid = await ctx.step('pay', async () => (ran.push(`pay ${ctx.attempt}`), 'paid'));
      return { reserved, paid };
    });
    const { taskID } = await client.spawn('crashes-once', null, { retryStrategy: { kind: 'none' } });
    await workOnce(client);
    await workOnce(client);
    expect(ran).toEqual(['reserve 1', 'pay 2']);
    expect(await client.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: { reserved: { seat: '12A' }, paid: 'paid' } });
    expect((await runRows(reader, client.queueName, taskID)).map((run) => run.state)).toEqual(['failed', 'completed']);
    expect(client.recorded.messages('warn')).toEqual([expect.stringMatching(/^task "crashes-once" run .*: Error: crash after the step — attempt 1 of 5 failed$/)]);
  });

  it('sleeps on the database clock and resumes the same run when it is due', async () => {
    const { app: client, pool } = await appAtFakeTime(clients, clock, queueName('sleep'), T0, { moveDateNow: true, record: false });
    client.registerTask({ name: 'naps' }, async (_params, ctx) => {
      await ctx.sleepFor('nap', 60);
      return 'rested';
    });
    const { taskID, runID } = await client.spawn('naps', null);
    await workOnce(client);
    expect(await runRows(pool, client.queueName, taskID)).toMatchObject([{ run_id: runID, state: 'sleeping' }]);
    await clock.advance(pool, 59);
    expect(await workOnce(client)).toEqual([]);
    await clock.advance(pool, 1);
    expect(await workOnce(client)).toMatchObject([{ run_id: runID }]);
    expect(await client.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: 'rested' });
  });

  it('awaits an event without a timeout, and one with a timeout that passes', async () => {
    const { app: client, pool } = await appAtFakeTime(clients, clock, queueName('events'), T0, { moveDateNow: true, record: false });
    client.registerTask({ name: 'waits' }, async (params: { timeout?: number }, ctx) => {
      try {
        return await ctx.awaitEvent('go', params.timeout === undefined ? {} : { timeout: params.timeout });
      } catch (error) {
        if (error instanceof TimeoutError) return 'timed out';
        throw error;
      }
    });
    const patient = await client.spawn('waits', {});
    const hasty = await client.spawn('waits', { timeout: 10 });
    await workOnce(client, 120, 2);
    expect((await taskRow(pool, client.queueName, patient.taskID)).state).toBe('sleeping');
    await clock.advance(pool, 10);
    await workOnce(client);
    expect(await client.fetchTaskResult(hasty.taskID)).toEqual({ state: 'completed', result: 'timed out' });
    await client.emitEvent('go', { n: 1 });
    await workOnce(client);
    expect(await client.fetchTaskResult(patient.taskID)).toEqual({ state: 'completed', result: { n: 1 } });
  });

  it('cancels: a running task stops at its next checkpoint (ctx.signal says why), and the worker tells its waiting parent', async () => {
    const parent = await app('cancel-parents');
    const child = await app('cancel-children');
    const entered = gate();
    const hold = gate();
    let signal: AbortSignal | undefined;
    let continued = false;
    child.registerTask({ name: 'long' }, async (_params, ctx) => {
      signal = ctx.signal;
      await ctx.step('first', async () => {
        entered.open();
        await hold.promise;
        return 1;
      });
      continued = true;
      return 'finished';
    });
    parent.registerTask({ name: 'parent' }, async (_params, ctx) =>
      ctx.awaitTaskResult(await ctx.spawn('long', null, { queue: child.queueName }), { checkInterval: 3600 }),
    );
    const parentWorker = await parent.startWorker({ pollInterval: 0.05 });
    const childWorker = await child.startWorker({ pollInterval: 0.05 });
    const { taskID } = await parent.spawn('parent', null);
    await entered.promise;
    await waitForTaskState(reader, parent.queueName, taskID, 'sleeping');
    const { rows } = await reader.query<{ task_id: string }>(`select task_id from absurd."t_${child.queueName}" where task_name = 'long'`);
    const childID = rows[0]!.task_id;
    await child.cancelTask(childID);
    hold.open();
    // No re-check within the test (an hour): the worker that ran the child announced its end.
    expect(await parent.awaitTaskResult(taskID, { timeout: 10 })).toEqual({ state: 'completed', result: { state: 'cancelled' } });
    await parentWorker.close();
    await childWorker.close();
    expect(continued).toBe(false);
    expect(signal?.reason).toBeInstanceOf(CancelledTask);
    expect(await checkpoints(reader, child.queueName, childID)).toEqual({});
    expect((await runRows(reader, child.queueName, childID)).map((run) => run.state)).toEqual(['cancelled']);

    // A task that never started is cancelled where it stands.
    const idle = await child.spawn('long', null);
    await child.cancelTask(idle.taskID);
    expect(await child.fetchTaskResult(idle.taskID)).toEqual({ state: 'cancelled' });
    expect([...parent.recorded.lines, ...child.recorded.lines].filter((line) => line.level !== 'info')).toEqual([]);
  });

  it('a failure without retry fails the run and cancels its task; with no attempt left the task fails', async () => {
    const client = await app('without-retry');
    const order = defineTask({
      name: 'order',
      queue: client.queueName,
      params: z.object({ amount: z.number() }),
      result: z.null(),
    });
    client.registerTask(order, async () => null);
    const withAttempts = await rawSpawn(reader, client.queueName, 'order', { amount: 'twelve' }, { max_attempts: 5 });
    const lastAttempt = await rawSpawn(reader, client.queueName, 'order', { amount: 'eleven' }, { max_attempts: 1 });
    await workOnce(client, 120, 2);

    expect((await taskRow(reader, client.queueName, withAttempts.task_id)).state).toBe('cancelled');
    const runs = await runRows(reader, client.queueName, withAttempts.task_id);
    expect(runs.map((run) => [run.attempt, run.state, run.started_at])).toEqual([
      [1, 'failed', expect.any(Date)],
      [2, 'cancelled', null],
    ]);
    expect(runs[0]?.failure_reason).toMatchObject({ name: 'ValidationError', boundary: 'params', issues: [{ path: 'amount' }], retryable: false });
    expect(await client.fetchTaskResult(lastAttempt.task_id)).toMatchObject({ state: 'failed', failure: { boundary: 'params' } });
    expect(await workOnce(client)).toEqual([]);
    expect(client.recorded.messages('error')).toEqual([
      `task "order" run ${withAttempts.run_id}: params invalid at params.amount: expected number, received "twelve" — failed without retry; its task is cancelled`,
      `task "order" run ${lastAttempt.run_id}: params invalid at params.amount: expected number, received "eleven" — failed without retry`,
    ]);
  });

  describe('beside absurd-sdk on the same queue', () => {
    function sdk(queue: string): SdkAbsurd {
      const created = new SdkAbsurd({ db: clients.pool(), queueName: queue, log: recordingLog() });
      sdkClients.push(created);
      return created;
    }

    it("its worker runs a task our client spawned by contract, and our typed client reads the result", async () => {
      const client = await app('kit-to-sdk');
      const greet = defineTask({
        name: 'greet',
        queue: client.queueName,
        params: z.object({ name: z.string() }),
        result: z.object({ greeting: z.string(), at: z.iso.datetime().transform((text) => new Date(text)) }),
      });
      const other = sdk(client.queueName);
      other.registerTask({ name: 'greet' }, async (params: { name: string }, ctx) => {
        const greeting = await ctx.step('compose', async () => `hello ${params.name}`);
        const reply = await ctx.awaitEvent('reply', { timeout: 60 });
        return { greeting: `${greeting}, ${String(reply)}`, at: '2030-01-01T00:00:00Z' };
      });
      const worker = await other.startWorker({ pollInterval: 0.05 });
      await expect(client.spawn(greet, { name: 7 as unknown as string })).rejects.toBeInstanceOf(ValidationError);
      const handle = await client.spawn(greet, { name: 'ada' });
      await waitForTaskState(reader, client.queueName, handle.taskID, 'sleeping');
      await client.emitEvent('reply', 'hi back');
      const snapshot = await client.awaitTaskResult(handle, { timeout: 10 });
      await worker.close();
      expect(snapshot).toEqual({ state: 'completed', result: { greeting: 'hello ada, hi back', at: new Date('2030-01-01T00:00:00Z') } });
    });

    it('our worker runs a task its client spawned, and its client reads the result', async () => {
      const client = await app('sdk-to-kit');
      const other = sdk(client.queueName);
      client.registerTask({ name: 'order' }, async (params: { amount: number }, ctx) => {
        const payment = await ctx.step('charge', async () => ({ id: `pay-${params.amount}` }));
        const shipped = await ctx.awaitEvent(`shipped:${payment.id}`);
        return { payment, shipped, headers: ctx.headers };
      });
      const worker = await client.startWorker({ pollInterval: 0.05 });
      const { taskID } = await other.spawn('order', { amount: 12 }, { queue: client.queueName, headers: { from: 'sdk' } });
      await waitForTaskState(reader, client.queueName, taskID, 'sleeping');
      await other.emitEvent('shipped:pay-12', { tracking: 'T-1' });
      const snapshot = await other.awaitTaskResult(taskID, { timeout: 10 });
      await worker.close();
      expect(snapshot).toEqual({
        state: 'completed',
        result: { payment: { id: 'pay-12' }, shipped: { tracking: 'T-1' }, headers: { from: 'sdk' } },
      });
      expect(await runRows(reader, client.queueName, taskID)).toHaveLength(1);
    });
  });
});

describe('on a schema an older absurd-kit installed (no worker functions yet)', () => {
  const empty = useEmptyDatabases();

  it('uses what the engine has, and names `absurd migrate` in its one line', async () => {
    const olderUrl = await empty.create();
    // Migration 000006 added absurd-kit's worker functions.
    await migrate(olderUrl, { migrations: engineMigrations.slice(0, 5) });
    const pool = new pg.Pool({ connectionString: olderUrl, max: 2 });
    const log = recordingLog();
    const client = new Absurd({ db: pool, queueName: 'older', log });
    try {
      await client.createQueue();
      client.registerTask({ name: 'job' }, async (_params, ctx) => ctx.step('only', async () => 'done'));
      const { taskID } = await client.spawn('job', null);
      await workOnce(client);
      expect(await client.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: 'done' });
      expect(log.messages('info')).toEqual([
        "schema \"absurd\" lacks some of absurd-kit's functions: running on Absurd's standard functions in their place, without " +
          'batched writes, wake-ups when a sleeping run is due, checkpoints with claims, failures without retry and one suspension for waits started together — run `absurd migrate` to add them',
      ]);
    } finally {
      await client.close();
      await pool.end();
    }
  });
});

describe.skipIf(onAbsurdSchema)("on absurd-kit's schema [absurd-kit's schema only: its kit_ functions]", () => {
  const db = useTestDatabase();
  const kitClients = useClients(db);

  it('logs nothing about the engine and sends one detection, then only the kit_ functions per claim and write', async () => {
    const recorder = recordingConnection(kitClients.pool());
    const client = await kitClients.app(queueName('fast-path'), { db: recorder.con });
    client.registerTask({ name: 'steps' }, async (_params, ctx) => {
      await ctx.step('one', async () => 1);
      return ctx.step('two', async () => 2);
    });
    await client.spawn('steps', null);
    await client.spawn('steps', null);
    const called = () => recorder.texts().map((text) => /absurd\.(\w+)\(|to_regclass/.exec(text)?.[0]);
    // The first spawn reads the engine's features; spawns then go to spawn_task, which notifies
    // only idle workers itself (migration 000016): no notification of the client's own.
    expect(called()).toEqual(['absurd.create_queue(', 'to_regclass', 'absurd.spawn_task(', 'absurd.spawn_task(']);
    expect(recorder.texts().filter((text) => text.includes('pg_notify'))).toEqual([]);
    recorder.queries.length = 0;
    await workOnce(client);
    await workOnce(client);
    const perRun = ['absurd.kit_claim_task(', 'absurd.kit_set_checkpoints(', 'absurd.kit_set_checkpoints(', 'absurd.kit_complete_runs('];
    expect(called()).toEqual([...perRun, ...perRun]);
    expect(client.recorded.lines).toEqual([]);
    expect(client.recorded.engineNotes).toEqual([]);
  });
});
