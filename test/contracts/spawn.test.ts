/**
 * The spawn boundary: params are checked against the task's schema before anything is written,
 * whether the spawn comes from a client or a task, and whether the caller names the task by its
 * contract or by the name of a task registered with one.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ValidationError, defineTask } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import {
  awkwardQueueNames,
  checkpoints,
  countRows,
  expectFailedWithoutRetry,
  queueName,
  runRows,
  taskRow,
  useClients,
  validationErrorOf,
  workOnce,
} from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);

function orderContract(queue: string) {
  return defineTask({
    name: 'order-fulfillment',
    queue,
    params: z.object({ orderId: z.string(), amount: z.number().int().positive(), items: z.array(z.string()).min(1) }),
    result: z.object({ ok: z.boolean() }),
  });
}

const good = { orderId: 'o-1', amount: 12, items: ['sku-1'] };
const bad = { orderId: 'o-1', amount: '12', items: ['sku-1'] } as unknown as typeof good;

describe('client spawn', () => {
  it.each([
    ['a plain queue', () => queueName('spawn')],
    ['a queue with quotes', () => awkwardQueueNames()[3]!],
    ['a 57-byte UTF-8 queue', () => awkwardQueueNames()[6]!],
  ])('by contract refuses bad params with a ValidationError and writes nothing (%s)', async (_label, makeQueue) => {
    const queue = makeQueue();
    const app = await clients.app(queue);
    const order = orderContract(queue);
    const seen: string[] = [];
    const hooked = await clients.app(queue, {
      hooks: {
        beforeSpawn: (name, _params, options) => {
          seen.push(name);
          return options;
        },
      },
    });

    const error = await validationErrorOf(hooked.spawn(order, bad));
    expect(error).toMatchObject({
      code: 'VALIDATION',
      subject: 'order-fulfillment',
      boundary: 'params',
      detail: undefined,
      received: '"12"',
      retryable: true,
    });
    expect(error.issues).toHaveLength(1);
    expect(error.issues[0]?.path).toBe('amount');
    expect(error.message).toMatch(/^order-fulfillment: params\.amount: .+, received "12"$/);
    // Refused before the hooks and before the engine: no task, no run, not even the hook saw it.
    expect(seen).toEqual([]);
    expect(await countRows(db.pool, queue, 't')).toBe(0);
    expect(await countRows(db.pool, queue, 'r')).toBe(0);

    const handle = await app.spawn(order, good);
    expect(await countRows(db.pool, queue, 't')).toBe(1);
    expect((await taskRow(db.pool, queue, handle.taskID))?.params).toEqual(good);
  });

  it('refuses params of the wrong shape altogether (no object, missing fields, several issues)', async () => {
    const queue = queueName('spawn-shape');
    const app = await clients.app(queue);
    const order = orderContract(queue);

    const notObject = await validationErrorOf(app.spawn(order, 5 as unknown as typeof good));
    expect(notObject.issues[0]?.path).toBe('');
    expect(notObject.received).toBe('5');
    expect(notObject.message).toMatch(/^order-fulfillment: params: .+, received 5$/);

    const several = await validationErrorOf(app.spawn(order, { orderId: 1, items: [] } as unknown as typeof good));
    expect(several.issues.map((issue) => issue.path).sort()).toEqual(['amount', 'items', 'orderId']);
    expect(several.message).toContain('(and 2 more issue(s))');
    expect(await countRows(db.pool, queue, 't')).toBe(0);
  });

  it('by the name of a task registered with a contract validates too, also from a client bound to a connection', async () => {
    const queue = queueName('spawn-by-name');
    const app = await clients.app(queue);
    const order = orderContract(queue);
    app.registerTask(order, async () => ({ ok: true }));

    const byName = await validationErrorOf(app.spawn('order-fulfillment', bad));
    expect(byName).toMatchObject({ subject: 'order-fulfillment', boundary: 'params', retryable: true });
    expect(byName.issues[0]?.path).toBe('amount');

    const connection = await db.pool.connect();
    try {
      await connection.query('begin');
      const bound = app.bindToConnection(connection);
      const fromBound = await validationErrorOf(bound.spawn('order-fulfillment', bad));
      expect(fromBound.issues[0]?.path).toBe('amount');
      await connection.query('commit');
    } finally {
      connection.release();
    }
    expect(await countRows(db.pool, queue, 't')).toBe(0);

    await app.spawn('order-fulfillment', good);
    expect(await countRows(db.pool, queue, 't')).toBe(1);
  });

  it('by a name this client does not know cannot be checked: the worker that knows the contract refuses it instead', async () => {
    const queue = queueName('spawn-unknown');
    const worker = await clients.app(queue);
    worker.registerTask(orderContract(queue), async () => ({ ok: true }));
    const producer = await clients.app(queue);

    // The producer has neither the contract nor a registration: it writes what it was given.
    const { taskID } = await producer.spawn('order-fulfillment', bad, { queue, maxAttempts: 5 });
    expect((await taskRow(db.pool, queue, taskID))?.params).toEqual(bad);
    await workOnce(worker);
    expect(await expectFailedWithoutRetry(db.pool, queue, taskID)).toMatchObject({
      boundary: 'params',
      issues: [{ path: 'amount' }],
    });
  });
});

describe('ctx.spawn', () => {
  function family(queue: string) {
    const child = orderContract(queue);
    const parent = defineTask({
      name: 'parent',
      queue,
      params: z.object({ how: z.enum(['contract', 'name', 'uncaught']) }),
      result: z.object({ caught: z.string().nullable() }),
    });
    return { child, parent };
  }

  it.each(['contract', 'name'] as const)(
    'by %s refuses bad params inside the task: no child, no spawn checkpoint, the handler may catch it',
    async (how) => {
      const queue = queueName(`ctx-spawn-${how}`);
      const app = await clients.app(queue);
      const { child, parent } = family(queue);
      app.registerTask(child, async () => ({ ok: true }));
      const caught: unknown[] = [];
      app.registerTask(parent, async (params, ctx) => {
        try {
          if (params.how === 'contract') await ctx.spawn(child, bad);
          else await ctx.spawn('order-fulfillment', bad);
        } catch (error) {
          caught.push(error);
        }
        return { caught: caught[0] instanceof ValidationError ? caught[0].message : null };
      });

      const handle = await app.spawn(parent, { how });
      await workOnce(app);

      expect(caught).toHaveLength(1);
      const error = caught[0] as ValidationError;
      expect(error).toBeInstanceOf(ValidationError);
      expect(error).toMatchObject({ subject: 'order-fulfillment', boundary: 'params', received: '"12"', retryable: true });
      expect(await countRows(db.pool, queue, 't')).toBe(1);
      expect(await checkpoints(db.pool, queue, handle.taskID)).toEqual({});
      expect(await app.fetchTaskResult(handle)).toEqual({ state: 'completed', result: { caught: error.message } });
    },
  );

  it('an uncaught refusal fails the run with the normal retry rules (the next attempt may send good params)', async () => {
    const queue = queueName('ctx-spawn-retry');
    const app = await clients.app(queue);
    const { child, parent } = family(queue);
    app.registerTask(child, async () => ({ ok: true }));
    app.registerTask(parent, async (_params, ctx) => {
      await ctx.spawn(child, ctx.attempt === 1 ? bad : good);
      return { caught: null };
    });

    const handle = await app.spawn(parent, { how: 'uncaught' }, { maxAttempts: 3 });
    await workOnce(app);
    const runs = await runRows(db.pool, queue, handle.taskID);
    expect(runs.map((run) => run.state)).toEqual(['failed', 'pending']);
    expect(runs[0]?.failure_reason).toMatchObject({
      name: 'ValidationError',
      subject: 'order-fulfillment',
      boundary: 'params',
      retryable: true,
    });
    expect(await countRows(db.pool, queue, 't')).toBe(1);

    await workOnce(app);
    expect((await taskRow(db.pool, queue, handle.taskID))?.state).toBe('completed');
    expect(await countRows(db.pool, queue, 't')).toBe(2);
  });
});
