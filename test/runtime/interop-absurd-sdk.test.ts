import { Absurd as SdkAbsurd } from 'absurd-sdk';
import { afterAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import {
  checkpoints,
  onAbsurdSchema,
  queueName,
  recordingLog,
  runRows,
  useClients,
  utf8QueueName57,
  WAKE_UP_POLL,
  waitFor,
  waitForTaskState,
} from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);

const sdkClients: SdkAbsurd[] = [];
afterAll(async () => {
  for (const sdk of sdkClients) await sdk.close().catch(() => undefined);
});

/** An `absurd-sdk` client on its own pool (not owned: the pool is ended with the others). */
function sdkClient(queue: string): SdkAbsurd {
  const sdk = new SdkAbsurd({ db: clients.pool(), queueName: queue, log: recordingLog() });
  sdkClients.push(sdk);
  return sdk;
}

describe(`with the absurd-sdk package on ${onAbsurdSchema ? "Absurd's" : 'our'} schema`, () => {
  it('our worker runs a task spawned by its client: steps, an event it emits, a result it reads', async () => {
    const queue = queueName('sdk-to-kit');
    const app = await clients.app(queue);
    const sdk = sdkClient(queue);
    let charged = 0;
    app.registerTask({ name: 'order' }, async (params: { amount: number }, ctx) => {
      const payment = await ctx.step('charge', async () => {
        charged += 1;
        return { id: `pay-${params.amount}` };
      });
      const shipped = await ctx.awaitEvent(`shipped:${payment.id}`);
      const note = await ctx.step('note', async () => `shipped with ${JSON.stringify(shipped)}`);
      return { payment, shipped, note, headers: ctx.headers };
    });
    // absurd-sdk sends no wake-up notifications: a short poll interval picks its work up.
    const worker = await app.startWorker({ pollInterval: 0.1 });
    const { taskID } = await sdk.spawn('order', { amount: 12 }, { queue, headers: { from: 'sdk' } });
    await waitForTaskState(db.pool, queue, taskID, 'sleeping');
    await sdk.emitEvent('shipped:pay-12', { tracking: 'T-1' });
    const snapshot = await sdk.awaitTaskResult(taskID, { timeout: 10 });
    await worker.close();
    expect(snapshot).toEqual({
      state: 'completed',
      result: {
        payment: { id: 'pay-12' },
        shipped: { tracking: 'T-1' },
        note: 'shipped with {"tracking":"T-1"}',
        headers: { from: 'sdk' },
      },
    });
    expect(charged).toBe(1);
    expect(await runRows(db.pool, queue, taskID)).toHaveLength(1);
  });

  it('its worker runs a task spawned by our client: steps, an event we emit, a result we read', async () => {
    const queue = utf8QueueName57();
    const app = await clients.app(queue);
    const sdk = sdkClient(queue);
    let steps = 0;
    sdk.registerTask({ name: 'greet' }, async (params: { name: string }, ctx) => {
      const greeting = await ctx.step('compose', async () => {
        steps += 1;
        return `hello ${params.name}`;
      });
      const reply = await ctx.awaitEvent('reply', { timeout: 60 });
      await ctx.emitEvent('greeted', { greeting });
      return { greeting, reply };
    });
    const worker = await sdk.startWorker({ pollInterval: 0.1 });
    const { taskID } = await app.spawn('greet', { name: 'ada' }, { queue });
    await waitForTaskState(db.pool, queue, taskID, 'sleeping');
    await app.emitEvent('reply', 'hi back');
    const snapshot = await app.awaitTaskResult(taskID, { timeout: 10 });
    await worker.close();
    expect(snapshot).toEqual({ state: 'completed', result: { greeting: 'hello ada', reply: 'hi back' } });
    expect(steps).toBe(1);
    const { rows } = await db.pool.query(`select payload from absurd."e_${queue}" where event_name = 'greeted'`);
    expect(rows[0]?.payload).toEqual({ greeting: 'hello ada' });
  });

  it('its worker honours the sleep checkpoint written by ours', async () => {
    const queue = queueName('kit-sleeps');
    const app = await clients.app(queue);
    const sdk = sdkClient(queue);
    const ran: string[] = [];
    app.registerTask({ name: 'nap' }, async (_params, ctx) => {
      await ctx.step('before', async () => ran.push('before (kit)'));
      await ctx.sleepFor('nap', 1.5);
      return ctx.step('after', async () => 'after (kit)');
    });
    // The same task in absurd-sdk asks for an hour: only the stored wake time lets it finish now.
    sdk.registerTask({ name: 'nap', queue }, async (_params, ctx) => {
      await ctx.step('before', async () => ran.push('before (sdk)'));
      await ctx.sleepFor('nap', 3600);
      return ctx.step('after', async () => 'after (sdk)');
    });
    const worker = await app.startWorker({ pollInterval: 0.1 });
    const { taskID } = await app.spawn('nap', {});
    await waitForTaskState(db.pool, queue, taskID, 'sleeping');
    await worker.close();
    const stored = (await checkpoints(db.pool, queue, taskID)).nap;
    expect(typeof stored).toBe('string');

    const sdkWorker = await sdk.startWorker({ pollInterval: 0.1 });
    const snapshot = await app.awaitTaskResult(taskID, { timeout: 10 });
    await sdkWorker.close();
    expect(snapshot).toEqual({ state: 'completed', result: 'after (sdk)' });
    expect(ran).toEqual(['before (kit)']);
    expect((await checkpoints(db.pool, queue, taskID)).nap).toBe(stored);
    expect(await runRows(db.pool, queue, taskID)).toHaveLength(1);
  });

  it('our worker honours the sleep checkpoint written by its worker', async () => {
    const queue = queueName('sdk-sleeps');
    const app = await clients.app(queue);
    const sdk = sdkClient(queue);
    const ran: string[] = [];
    sdk.registerTask({ name: 'nap' }, async (_params, ctx) => {
      await ctx.step('before', async () => ran.push('before (sdk)'));
      await ctx.sleepFor('nap', 1.5);
      return ctx.step('after', async () => 'after (sdk)');
    });
    app.registerTask({ name: 'nap' }, async (_params, ctx) => {
      await ctx.step('before', async () => ran.push('before (kit)'));
      await ctx.sleepFor('nap', 3600);
      return ctx.step('after', async () => 'after (kit)');
    });
    const sdkWorker = await sdk.startWorker({ pollInterval: 0.1 });
    const { taskID } = await sdk.spawn('nap', {});
    await waitForTaskState(db.pool, queue, taskID, 'sleeping');
    await sdkWorker.close();

    const worker = await app.startWorker({ pollInterval: WAKE_UP_POLL });
    const snapshot = await app.awaitTaskResult(taskID, { timeout: 10 });
    await worker.close();
    expect(snapshot).toEqual({ state: 'completed', result: 'after (kit)' });
    expect(ran).toEqual(['before (sdk)']);
    expect(await runRows(db.pool, queue, taskID)).toHaveLength(1);
  });

  it('our worker retries a task whose first attempt failed on its worker, reusing its step checkpoints', async () => {
    const queue = queueName('sdk-retry');
    const app = await clients.app(queue);
    const sdk = sdkClient(queue);
    const ran: string[] = [];
    sdk.registerTask({ name: 'flaky' }, async (_params, ctx) => {
      await ctx.step('reserve', async () => {
        ran.push('reserve (sdk)');
        return { seat: '12A' };
      });
      throw new Error('sdk worker gave up');
    });
    app.registerTask({ name: 'flaky' }, async (_params, ctx) => {
      const seat = await ctx.step('reserve', async () => {
        ran.push('reserve (kit)');
        return { seat: 'never' };
      });
      return { seat, attempt: ctx.attempt };
    });
    const sdkWorker = await sdk.startWorker({ pollInterval: 0.1 });
    const { taskID } = await sdk.spawn('flaky', {}, { retryStrategy: { kind: 'fixed', baseSeconds: 2 } });
    await waitForTaskState(db.pool, queue, taskID, 'sleeping');
    await sdkWorker.close();
    const [failed] = await runRows(db.pool, queue, taskID);
    expect(failed?.failure_reason).toMatchObject({ name: 'Error', message: 'sdk worker gave up' });

    const worker = await app.startWorker({ pollInterval: WAKE_UP_POLL });
    const snapshot = await app.awaitTaskResult(taskID, { timeout: 10 });
    await worker.close();
    expect(snapshot).toEqual({ state: 'completed', result: { seat: { seat: '12A' }, attempt: 2 } });
    expect(ran).toEqual(['reserve (sdk)']);
  });

  it('our parent awaits a child that its worker runs on another queue (found by the re-check)', async () => {
    const parents = queueName('kit-parents');
    const children = queueName('sdk-children');
    const app = await clients.app(parents);
    await app.createQueue(children);
    const sdk = sdkClient(children);
    sdk.registerTask({ name: 'square' }, async (params: { n: number }) => params.n * params.n);
    app.registerTask({ name: 'parent' }, async (params: { n: number }, ctx) => {
      const child = await ctx.spawn('square', params, { queue: children });
      return ctx.awaitTaskResult(child, { queue: children, checkInterval: 1 });
    });
    const worker = await app.startWorker({ pollInterval: WAKE_UP_POLL });
    const sdkWorker = await sdk.startWorker({ pollInterval: 0.1 });
    const { taskID } = await app.spawn('parent', { n: 7 });
    const snapshot = await app.awaitTaskResult(taskID, { timeout: 10 });
    await worker.close();
    await sdkWorker.close();
    expect(snapshot).toEqual({ state: 'completed', result: { state: 'completed', result: 49 } });
  });

  it('its parent awaits a child that our worker runs on another queue, and reads its snapshot', async () => {
    const parents = queueName('sdk-parents');
    const children = queueName('kit-children');
    const app = await clients.app(children);
    await app.createQueue(parents);
    const sdk = sdkClient(parents);
    app.registerTask({ name: 'fail-child' }, async () => {
      throw new Error('child failure');
    });
    sdk.registerTask({ name: 'parent' }, async (_params, ctx) => {
      const child = await ctx.step('spawn', async () => (await sdk.spawn('fail-child', {}, { queue: children, maxAttempts: 1 })).taskID);
      return ctx.awaitTaskResult(child, { queue: children, timeout: 10 });
    });
    const worker = await app.startWorker({ pollInterval: 0.1 });
    const sdkWorker = await sdk.startWorker({ pollInterval: 0.1 });
    const { taskID } = await sdk.spawn('parent', {});
    const snapshot = await sdk.awaitTaskResult(taskID, { timeout: 15 });
    await worker.close();
    await sdkWorker.close();
    expect(snapshot).toMatchObject({ state: 'completed', result: { state: 'failed', failure: { message: 'child failure' } } });
  });

  describe('the awaitTaskResult checkpoint is shared', () => {
    /** Removes the child task, so that only a stored snapshot can answer for it. */
    async function forgetTask(queue: string, taskId: string) {
      await db.pool.query(`delete from absurd."t_${queue}" where task_id = $1`, [taskId]);
    }

    it('our retry replays the snapshot its worker checkpointed', async () => {
      const parents = queueName('sdk-await-parents');
      const children = queueName('sdk-await-children');
      const app = await clients.app(parents);
      await app.createQueue(children);
      const childApp = await clients.app(children);
      childApp.registerTask({ name: 'child' }, async () => ({ answer: 42 }));
      const sdk = sdkClient(parents);
      sdk.registerTask({ name: 'parent' }, async (_params, ctx) => {
        const child = await ctx.step('spawn', async () => (await sdk.spawn('child', {}, { queue: children })).taskID);
        await ctx.awaitTaskResult(child, { queue: children, timeout: 10 });
        throw new Error('fail after the await');
      });
      app.registerTask({ name: 'parent' }, async (_params, ctx) => {
        const child = await ctx.step('spawn', async (): Promise<string> => {
          throw new Error('the spawn step must come from the checkpoint');
        });
        return ctx.awaitTaskResult(child, { queue: children });
      });
      const childWorker = await childApp.startWorker({ pollInterval: 0.1 });
      const sdkWorker = await sdk.startWorker({ pollInterval: 0.1 });
      const { taskID } = await sdk.spawn('parent', {}, { retryStrategy: { kind: 'fixed', baseSeconds: 2 } });
      await waitForTaskState(db.pool, parents, taskID, 'sleeping');
      await sdkWorker.close();
      await childWorker.close();
      const childID = (await checkpoints(db.pool, parents, taskID)).spawn as string;
      await forgetTask(children, childID);

      const worker = await app.startWorker({ pollInterval: 0.1 });
      const snapshot = await app.awaitTaskResult(taskID, { timeout: 10 });
      await worker.close();
      expect(snapshot).toEqual({ state: 'completed', result: { state: 'completed', result: { answer: 42 } } });
    });

    it('its retry replays the snapshot our worker checkpointed', async () => {
      const parents = queueName('kit-await-parents');
      const children = queueName('kit-await-children');
      const app = await clients.app(parents);
      const childApp = await clients.app(children);
      childApp.registerTask({ name: 'child' }, async () => {
        throw new Error('child failed');
      });
      app.registerTask({ name: 'parent' }, async (_params, ctx) => {
        const child = await ctx.step('spawn', async () => (await app.spawn('child', {}, { queue: children, maxAttempts: 1 })).taskID);
        await ctx.awaitTaskResult(child, { queue: children, checkInterval: 1 });
        throw new Error('fail after the await');
      });
      const sdk = sdkClient(parents);
      sdk.registerTask({ name: 'parent' }, async (_params, ctx) => {
        const child = await ctx.step('spawn', async (): Promise<string> => {
          throw new Error('the spawn step must come from the checkpoint');
        });
        return ctx.awaitTaskResult(child, { queue: children, timeout: 5 });
      });
      const worker = await app.startWorker({ pollInterval: 0.1 });
      const childWorker = await childApp.startWorker({ pollInterval: 0.1 });
      const { taskID } = await app.spawn('parent', {}, { retryStrategy: { kind: 'fixed', baseSeconds: 2 } });
      await waitForTaskState(db.pool, parents, taskID, 'sleeping');
      await waitFor(async () => (await runRows(db.pool, parents, taskID)).length === 2);
      await worker.close();
      await childWorker.close();
      const childID = (await checkpoints(db.pool, parents, taskID)).spawn as string;
      await forgetTask(children, childID);

      const sdkWorker = await sdk.startWorker({ pollInterval: 0.1 });
      const snapshot = await sdk.awaitTaskResult(taskID, { timeout: 10 });
      await sdkWorker.close();
      expect(snapshot).toMatchObject({ state: 'completed', result: { state: 'failed', failure: { message: 'child failed' } } });
    });
  });
});
