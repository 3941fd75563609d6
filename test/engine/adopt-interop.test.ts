/**
 * Absurd's own SDK (`absurd-sdk`) on a database set up by Absurd, before and after adoption: its
 * client and worker work the same on Absurd's schema and on the adopted one, work it left half
 * done before the adoption is finished by absurd-kit after it, and after the adoption the two
 * SDKs run each other's tasks. (The full interop suite runs on an adopted database with
 * `ABSURD_TEST_SCHEMA=adopted npx vitest run test/runtime/interop-absurd-sdk.test.ts`.)
 */
import { Absurd as SdkAbsurd } from 'absurd-sdk';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Absurd } from '../../packages/absurd-kit/src/index.js';
import { migrate } from '../../packages/absurd-kit/src/migrate.js';
import { useAbsurdDatabases } from '../support/absurd-schema.js';

const absurd = useAbsurdDatabases();
let url: string;
let pool: pg.Pool;
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  url = await absurd.create();
  pool = new pg.Pool({ connectionString: url, max: 8 });
  pool.on('error', () => {});
});

afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => {});
  await pool.end();
});

const silent = { log: () => {}, info: () => {}, warn: () => {}, error: () => {} };
let counter = 0;
function queue(label: string): string {
  counter += 1;
  return `${label}_${process.pid}_${counter}`;
}

async function sdkOn(queueName: string, mode: 'unpartitioned' | 'partitioned' = 'unpartitioned'): Promise<SdkAbsurd> {
  const sdk = new SdkAbsurd({ db: pool, queueName, log: silent });
  await sdk.createQueue(queueName, { storageMode: mode });
  return sdk;
}

async function startSdkWorker(sdk: SdkAbsurd, errors: unknown[] = []): Promise<{ close(): Promise<void> }> {
  const worker = await sdk.startWorker({ pollInterval: 0.05, concurrency: 2, onError: (e) => errors.push(e) });
  closers.push(() => worker.close());
  return worker;
}

async function taskState(queueName: string, taskID: string): Promise<string | undefined> {
  const { rows } = await pool.query<{ state: string }>(`select state from absurd.${pg.escapeIdentifier(`t_${queueName}`)} where task_id = $1`, [
    taskID,
  ]);
  return rows[0]?.state;
}

async function waitForState(queueName: string, taskID: string, state: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await taskState(queueName, taskID)) !== state) {
    if (Date.now() > deadline) throw new Error(`task ${taskID} never reached ${state}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** What absurd-sdk does on its own, checked once on Absurd's schema and once on the adopted one. */
function sdkAlone(): void {
  it('runs a task with steps, an event it waits for and a result', async () => {
    const q = queue('sdk_steps');
    const sdk = await sdkOn(q);
    let charged = 0;
    sdk.registerTask({ name: 'order' }, async (params: { amount: number }, ctx) => {
      const payment = await ctx.step('charge', async () => {
        charged += 1;
        return { id: `pay-${params.amount}` };
      });
      const shipped = await ctx.awaitEvent(`shipped:${payment.id}`, { timeout: 60 });
      return { payment, shipped };
    });
    const errors: unknown[] = [];
    const worker = await startSdkWorker(sdk, errors);
    const { taskID } = await sdk.spawn('order', { amount: 12 });
    await waitForState(q, taskID, 'sleeping');
    await sdk.emitEvent('shipped:pay-12', { tracking: 'T-1' });
    expect(await sdk.awaitTaskResult(taskID, { timeout: 10 })).toEqual({
      state: 'completed',
      result: { payment: { id: 'pay-12' }, shipped: { tracking: 'T-1' } },
    });
    await worker.close();
    expect(charged).toBe(1);
    expect(errors).toEqual([]);
  });

  it('sleeps and resumes the same run', async () => {
    const q = queue('sdk_sleep');
    const sdk = await sdkOn(q);
    sdk.registerTask({ name: 'nap' }, async (_params, ctx) => {
      await ctx.sleepFor('nap', 1);
      return ctx.step('after', async () => 'rested');
    });
    const worker = await startSdkWorker(sdk);
    const { taskID } = await sdk.spawn('nap', {});
    expect(await sdk.awaitTaskResult(taskID, { timeout: 10 })).toEqual({ state: 'completed', result: 'rested' });
    await worker.close();
    const { rows } = await pool.query(`select count(*)::int as n from absurd.${pg.escapeIdentifier(`r_${q}`)} where task_id = $1`, [taskID]);
    expect(rows).toEqual([{ n: 1 }]);
  });

  it('retries a failed attempt, reusing its checkpoints', async () => {
    const q = queue('sdk_retry');
    const sdk = await sdkOn(q, 'partitioned');
    const ran: string[] = [];
    sdk.registerTask({ name: 'flaky' }, async (_params, ctx) => {
      const seat = await ctx.step('reserve', async () => {
        ran.push('reserve');
        return '12A';
      });
      if (ran.length === 1 && !ran.includes('failed')) {
        ran.push('failed');
        throw new Error('first attempt fails');
      }
      return seat;
    });
    const worker = await startSdkWorker(sdk);
    const { taskID } = await sdk.spawn('flaky', {}, { retryStrategy: { kind: 'fixed', baseSeconds: 1 }, idempotencyKey: `flaky-${q}` });
    const again = await sdk.spawn('flaky', {}, { idempotencyKey: `flaky-${q}` });
    expect(again.taskID).toBe(taskID);
    expect(await sdk.awaitTaskResult(taskID, { timeout: 10 })).toEqual({ state: 'completed', result: '12A' });
    await worker.close();
    expect(ran).toEqual(['reserve', 'failed']);
  });

  it('lets a parent await a child on another queue, and cancels a waiting task', async () => {
    const parents = queue('sdk_parents');
    const children = queue('sdk_children');
    const sdk = await sdkOn(parents);
    const childSdk = await sdkOn(children);
    childSdk.registerTask({ name: 'square' }, async (params: { n: number }) => params.n * params.n);
    sdk.registerTask({ name: 'parent' }, async (params: { n: number }, ctx) => {
      const child = await ctx.step('spawn', async () => (await childSdk.spawn('square', params)).taskID);
      return ctx.awaitTaskResult(child, { queue: children, timeout: 10 });
    });
    sdk.registerTask({ name: 'waits' }, async (_params, ctx) => ctx.awaitEvent('never'));
    const worker = await startSdkWorker(sdk);
    const childWorker = await startSdkWorker(childSdk);
    const { taskID } = await sdk.spawn('parent', { n: 7 });
    expect(await sdk.awaitTaskResult(taskID, { timeout: 10 })).toEqual({ state: 'completed', result: { state: 'completed', result: 49 } });
    const waiting = await sdk.spawn('waits', {});
    await waitForState(parents, waiting.taskID, 'sleeping');
    await sdk.cancelTask(waiting.taskID);
    expect(await sdk.fetchTaskResult(waiting.taskID)).toEqual({ state: 'cancelled' });
    await worker.close();
    await childWorker.close();
  });
}

/** A task absurd-sdk leaves waiting for an event on Absurd's schema, for absurd-kit to finish once adopted. */
const leftWaiting = { queue: '', taskID: '' };

describe("absurd-sdk on Absurd's schema, before adoption", () => {
  sdkAlone();

  it('leaves a task waiting for an event', async () => {
    leftWaiting.queue = queue('left_waiting');
    const sdk = await sdkOn(leftWaiting.queue, 'partitioned');
    sdk.registerTask({ name: 'greet' }, async (params: { name: string }, ctx) => {
      const greeting = await ctx.step('compose', async () => `hello ${params.name}`);
      const reply = await ctx.awaitEvent('reply');
      return { greeting, reply };
    });
    const worker = await startSdkWorker(sdk);
    leftWaiting.taskID = (await sdk.spawn('greet', { name: 'ada' })).taskID;
    await waitForState(leftWaiting.queue, leftWaiting.taskID, 'sleeping');
    await worker.close();
  });
});

describe('absurd-sdk and absurd-kit after adoption', () => {
  beforeAll(async () => {
    const { adoption } = await migrate(url, { adopt: true });
    expect(adoption?.queues.length).toBeGreaterThan(0);
  });

  sdkAlone();

  it('absurd-kit finishes the task absurd-sdk left waiting before the adoption', async () => {
    const app = new Absurd({ db: pool, queueName: leftWaiting.queue, log: silent });
    let composed = 0;
    app.registerTask({ name: 'greet' }, async (params: { name: string }, ctx) => {
      const greeting = await ctx.step('compose', async () => {
        composed += 1;
        return `kit says hello ${params.name}`;
      });
      const reply = await ctx.awaitEvent('reply');
      return { greeting, reply };
    });
    const worker = await app.startWorker({ pollInterval: 0.1 });
    closers.push(() => worker.close());
    await app.emitEvent('reply', 'hi back');
    expect(await app.awaitTaskResult(leftWaiting.taskID, { timeout: 10 })).toEqual({
      state: 'completed',
      result: { greeting: 'hello ada', reply: 'hi back' },
    });
    await worker.close();
    expect(composed).toBe(0);
  });

  it('absurd-kit’s worker runs a task absurd-sdk spawns, and absurd-sdk’s worker one absurd-kit spawns', async () => {
    const q = queue('both_ways');
    const sdk = await sdkOn(q);
    const app = new Absurd({ db: pool, queueName: q, log: silent });
    app.registerTask({ name: 'by-kit' }, async (params: { n: number }, ctx) => ctx.step('double', async () => params.n * 2));
    sdk.registerTask({ name: 'by-sdk' }, async (params: { n: number }, ctx) => ctx.step('triple', async () => params.n * 3));
    const kitWorker = await app.startWorker({ pollInterval: 0.05 });
    closers.push(() => kitWorker.close());
    const fromSdk = await sdk.spawn('by-kit', { n: 5 }, { queue: q });
    expect(await sdk.awaitTaskResult(fromSdk.taskID, { timeout: 10 })).toEqual({ state: 'completed', result: 10 });
    await kitWorker.close();
    const sdkWorker = await startSdkWorker(sdk);
    const fromKit = await app.spawn('by-sdk', { n: 5 }, { queue: q });
    expect(await app.awaitTaskResult(fromKit.taskID, { timeout: 10 })).toEqual({ state: 'completed', result: 15 });
    await sdkWorker.close();
  });
});
