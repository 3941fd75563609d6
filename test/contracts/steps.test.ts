/**
 * The step boundaries. First run: the step's value is checked before its checkpoint is written; a
 * refused value throws like any step error (normal retries: the code may do better next time).
 * Replay: the stored checkpoint is parsed with today's step schema; a value it refuses cannot change
 * on a retry, so the task fails at once, naming the step and the path in the stored value.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ValidationError, defineTask, type StepSchemas } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import {
  awkwardQueueNames,
  checkpoints,
  expectFailedWithoutRetry,
  queueName,
  rawEmit,
  runRows,
  taskRow,
  useClients,
  validationErrorOf,
  workOnce,
} from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);

const paymentV1 = z.object({ paymentId: z.string(), amount: z.number() });
const paymentV2 = z.object({ paymentId: z.uuid(), amount: z.number() });

function checkout<S extends StepSchemas>(queue: string, steps: S) {
  return defineTask({
    name: 'checkout',
    queue,
    params: z.object({ orderId: z.string() }),
    result: z.object({ paymentId: z.string() }),
    steps,
    defaults: { maxAttempts: 5 },
  });
}

describe('step result on the first run', () => {
  it('is checked before the checkpoint is written: the step throws, nothing is stored, and the task retries', async () => {
    const queue = queueName('step-first');
    const app = await clients.app(queue);
    const thrown: unknown[] = [];
    app.registerTask(checkout(queue, { 'process-payment': paymentV1 }), async (params, ctx) => {
      try {
        const payment = await ctx.step('process-payment', async () =>
          ctx.attempt === 1
            ? ({ paymentId: 42, amount: 3 } as unknown as { paymentId: string; amount: number })
            : { paymentId: `p-${params.orderId}`, amount: 3 },
        );
        return { paymentId: payment.paymentId };
      } catch (error) {
        thrown.push(error);
        throw error;
      }
    });

    const handle = await app.spawn(checkout(queue, { 'process-payment': paymentV1 }), { orderId: 'o-1' });
    await workOnce(app);
    expect(thrown).toHaveLength(1);
    const error = thrown[0] as ValidationError;
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({
      subject: 'checkout',
      boundary: 'step',
      detail: 'process-payment',
      received: '42',
      retryable: true,
    });
    expect(error.message).toMatch(/^checkout: step "process-payment"\.paymentId: .+, received 42$/);
    expect(await checkpoints(db.pool, queue, handle.taskID)).toEqual({});
    let runs = await runRows(db.pool, queue, handle.taskID);
    expect(runs.map((run) => run.state)).toEqual(['failed', 'pending']);
    expect(runs[0]?.failure_reason).toMatchObject({ boundary: 'step', detail: 'process-payment', retryable: true });

    // Attempt 2 happens, produces a valid value, and completes.
    await workOnce(app);
    runs = await runRows(db.pool, queue, handle.taskID);
    expect(runs.map((run) => run.state)).toEqual(['failed', 'completed']);
    expect(await checkpoints(db.pool, queue, handle.taskID)).toEqual({
      'process-payment': { paymentId: 'p-o-1', amount: 3 },
    });
    expect(await app.fetchTaskResult(handle)).toEqual({ state: 'completed', result: { paymentId: 'p-o-1' } });
  });

  it('beginStep/completeStep check the value the same way; a step the contract does not declare is not checked', async () => {
    const queue = queueName('step-complete');
    const app = await clients.app(queue);
    const thrown: unknown[] = [];
    const contract = checkout(queue, { 'process-payment': paymentV1 });
    app.registerTask(contract, async (_params, ctx) => {
      const free = await ctx.step('free-form', async () => ({ anything: ['goes', 1] }));
      const handle = await ctx.beginStep('process-payment');
      if (handle.done) throw new Error('nothing was stored yet');
      try {
        await ctx.completeStep(handle, { paymentId: 'p-1' } as unknown as { paymentId: string; amount: number });
      } catch (error) {
        thrown.push(error);
      }
      const stored = await ctx.completeStep(handle, { paymentId: 'p-1', amount: 9 });
      return { paymentId: `${stored.paymentId}/${free.anything.length}` };
    });

    const handle = await app.spawn(contract, { orderId: 'o-1' });
    await workOnce(app);
    expect(thrown).toHaveLength(1);
    expect(thrown[0]).toMatchObject({ boundary: 'step', detail: 'process-payment', received: 'undefined', retryable: true });
    expect((thrown[0] as ValidationError).issues[0]?.path).toBe('amount');
    expect(await checkpoints(db.pool, queue, handle.taskID)).toEqual({
      'free-form': { anything: ['goes', 1] },
      'process-payment': { paymentId: 'p-1', amount: 9 },
    });
    expect(await app.fetchTaskResult(handle)).toEqual({ state: 'completed', result: { paymentId: 'p-1/2' } });
  });

  it('repeated steps are checked under their numbered checkpoint names', async () => {
    const queue = queueName('step-repeat');
    const app = await clients.app(queue);
    const contract = checkout(queue, { charge: z.number().int() });
    let error: unknown;
    app.registerTask(contract, async (_params, ctx) => {
      await ctx.step('charge', () => 1);
      error = await validationErrorOf(ctx.step('charge', () => 1.5));
      return { paymentId: 'p' };
    });
    await app.spawn(contract, { orderId: 'o' });
    await workOnce(app);
    expect(error).toMatchObject({ boundary: 'step', detail: 'charge#2', received: '1.5', retryable: true });
  });
});

describe('step result on replay, read with a changed step schema', () => {
  // The first deploy (schema V1) stores a checkpoint and then either suspends or fails; the next
  // deploy registers the same task with a step schema that no longer accepts the stored value.
  it.each([
    ['suspends', () => queueName('step-replay-suspend')],
    ['fails', () => queueName('step-replay-fail')],
    ['suspends (awkward queue)', () => awkwardQueueNames()[1]!],
  ])('fails the task without retry, naming the step and the stored path (first run %s)', async (how, makeQueue) => {
    const queue = makeQueue();
    const app = await clients.app(queue);
    const v1 = checkout(queue, { 'process-payment': paymentV1 });
    app.registerTask(v1, async (_params, ctx) => {
      const payment = await ctx.step('process-payment', () => ({ paymentId: 'p-legacy-1', amount: 7 }));
      if (how.startsWith('suspends')) await ctx.awaitEvent('resume');
      else throw new Error('crash after the checkpoint');
      return { paymentId: payment.paymentId };
    });
    const handle = await app.spawn(v1, { orderId: 'o-1' });
    await workOnce(app);
    expect(await checkpoints(db.pool, queue, handle.taskID)).toMatchObject({
      'process-payment': { paymentId: 'p-legacy-1', amount: 7 },
    });
    expect((await taskRow(db.pool, queue, handle.taskID))?.state).toBe(how.startsWith('suspends') ? 'sleeping' : 'pending');

    // The new deploy.
    let handlerReachedStep = false;
    let stepFunctionRan = false;
    app.registerTask(checkout(queue, { 'process-payment': paymentV2 }), async (_params, ctx) => {
      handlerReachedStep = true;
      const payment = await ctx.step('process-payment', () => {
        stepFunctionRan = true;
        return { paymentId: '9b2e8f3c-0a51-4a8e-9d43-2f8a1c6b7e10', amount: 7 };
      });
      return { paymentId: payment.paymentId };
    });
    if (how.startsWith('suspends')) await rawEmit(db.pool, queue, 'resume', null);
    await workOnce(app);

    expect(handlerReachedStep).toBe(true);
    expect(stepFunctionRan).toBe(false);
    const reason = await expectFailedWithoutRetry(db.pool, queue, handle.taskID, how.startsWith('suspends') ? [] : ['failed']);
    expect(reason).toMatchObject({
      name: 'ValidationError',
      subject: 'checkout',
      boundary: 'step',
      detail: 'process-payment',
      issues: [{ path: 'paymentId' }],
      received: '"p-legacy-1"',
      retryable: false,
    });
    expect(reason.message).toMatch(/^checkout: step "process-payment"\.paymentId: .+, received "p-legacy-1"$/);
    // Three attempts were left; none is used.
    expect(await workOnce(app)).toHaveLength(0);
    // The stored value is left as it was, for whoever repairs it.
    expect(await checkpoints(db.pool, queue, handle.taskID)).toMatchObject({
      'process-payment': { paymentId: 'p-legacy-1', amount: 7 },
    });
  });

  it('beginStep on replay fails the same way', async () => {
    const queue = queueName('step-replay-begin');
    const app = await clients.app(queue);
    const v1 = checkout(queue, { total: z.number() });
    app.registerTask(v1, async (_params, ctx) => {
      await ctx.step('total', () => 12);
      throw new Error('crash');
    });
    const handle = await app.spawn(v1, { orderId: 'o' });
    await workOnce(app);

    app.registerTask(checkout(queue, { total: z.string() }), async (_params, ctx) => {
      const step = await ctx.beginStep('total');
      return { paymentId: step.done ? step.state : 'none' };
    });
    await workOnce(app);
    expect(await expectFailedWithoutRetry(db.pool, queue, handle.taskID, ['failed'])).toMatchObject({
      boundary: 'step',
      detail: 'total',
      issues: [{ path: '' }],
      received: '12',
      retryable: false,
    });
  });

  it('a stored value that today\'s schema still accepts replays normally', async () => {
    const queue = queueName('step-replay-ok');
    const app = await clients.app(queue);
    const v1 = checkout(queue, { 'process-payment': paymentV1 });
    app.registerTask(v1, async (_params, ctx) => {
      await ctx.step('process-payment', () => ({ paymentId: 'p-1', amount: 7 }));
      throw new Error('crash');
    });
    const handle = await app.spawn(v1, { orderId: 'o' });
    await workOnce(app);
    // The new schema is wider: an optional field was added.
    const widened = z.object({ paymentId: z.string(), amount: z.number(), currency: z.string().default('EUR') });
    app.registerTask(checkout(queue, { 'process-payment': widened }), async (_params, ctx) => {
      const payment = await ctx.step('process-payment', () => ({ paymentId: 'never', amount: 0 }));
      return { paymentId: `${payment.paymentId}:${payment.currency}` };
    });
    await workOnce(app);
    expect(await app.fetchTaskResult(handle.taskID, { queue })).toEqual({
      state: 'completed',
      result: { paymentId: 'p-1:EUR' },
    });
  });
});
