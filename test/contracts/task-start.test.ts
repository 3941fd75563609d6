/**
 * The task-start boundary: a worker parses the stored params again before the handler runs,
 * because the producer may not have checked them (psql, another language, an older deploy). Bad
 * stored params cannot get better on a retry, so the task fails at once, whatever its attempts.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineTask } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import { awkwardQueueNames, expectFailedWithoutRetry, queueName, rawSpawn, runRows, taskRow, useClients, withoutRetry, workOnce } from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);

function orderContract(queue: string) {
  return defineTask({
    name: 'order-fulfillment',
    queue,
    params: z.object({
      orderId: z.string(),
      amount: z.number().int().positive(),
      lines: z.array(z.object({ sku: z.string(), qty: z.number().int() })).min(1),
    }),
    result: z.object({ ok: z.boolean() }),
    defaults: { maxAttempts: 5, retryStrategy: { kind: 'none' } },
  });
}

describe('stored params refused at task start', () => {
  it.each([
    ['a plain queue', () => queueName('start')],
    ["a queue with an apostrophe", () => awkwardQueueNames()[0]!],
    ['a queue with double quotes', () => awkwardQueueNames()[3]!],
    ['a 57-byte UTF-8 queue', () => awkwardQueueNames()[6]!],
  ])('fail the task after one attempt, without calling the handler (%s)', async (_label, makeQueue) => {
    const queue = makeQueue();
    const app = await clients.app(queue);
    let calls = 0;
    app.registerTask(orderContract(queue), async () => {
      calls += 1;
      return { ok: true };
    });

    const { task_id } = await rawSpawn(
      db.pool,
      queue,
      'order-fulfillment',
      { orderId: 'o-1', amount: '12', lines: [{ sku: 'a', qty: 1 }] },
      { max_attempts: 5 },
    );
    expect((await taskRow(db.pool, queue, task_id))?.max_attempts).toBe(5);

    expect(await workOnce(app)).toHaveLength(1);
    expect(calls).toBe(0);
    const reason = await expectFailedWithoutRetry(db.pool, queue, task_id);
    expect(reason).toMatchObject({
      name: 'ValidationError',
      code: 'VALIDATION',
      subject: 'order-fulfillment',
      boundary: 'params',
      detail: null,
      issues: [{ path: 'amount', message: expect.any(String) }],
      received: '"12"',
      retryable: false,
    });
    expect(reason.message).toMatch(/^order-fulfillment: params\.amount: .+, received "12"$/);
    expect(reason.stack).toEqual(expect.stringContaining('ValidationError'));
    // Nothing left to claim: no second attempt although four remain.
    expect(await workOnce(app)).toHaveLength(0);
    expect(await app.fetchTaskResult(task_id)).toEqual(withoutRetry.snapshot(reason));
  });

  it('name the nested path and the value found there', async () => {
    const queue = queueName('start-nested');
    const app = await clients.app(queue);
    app.registerTask(orderContract(queue), async () => ({ ok: true }));
    const { task_id } = await rawSpawn(db.pool, queue, 'order-fulfillment', {
      orderId: 'o-1',
      amount: 3,
      lines: [{ sku: 'a', qty: 1 }, { sku: 'b', qty: 'many' }],
    });
    await workOnce(app);
    const [run] = await runRows(db.pool, queue, task_id);
    expect(run?.failure_reason).toMatchObject({
      issues: [{ path: 'lines[1].qty' }],
      received: '"many"',
      retryable: false,
    });
    expect((run?.failure_reason as { message: string }).message).toMatch(
      /^order-fulfillment: params\.lines\[1\]\.qty: .+, received "many"$/,
    );
  });

  it('include SQL NULL params (stored as JSON null) and params from an older shape', async () => {
    const queue = queueName('start-null');
    const app = await clients.app(queue);
    app.registerTask(orderContract(queue), async () => ({ ok: true }));
    const { rows } = await db.pool.query<{ task_id: string }>(
      `select task_id from absurd.spawn_task($1, 'order-fulfillment', null, '{"max_attempts": 3}')`,
      [queue],
    );
    const nullParams = rows[0]!.task_id;
    const older = await rawSpawn(db.pool, queue, 'order-fulfillment', { orderId: 'o-2', total: 12 }, { max_attempts: 3 });

    await workOnce(app, 10);
    expect((await runRows(db.pool, queue, nullParams))[0]?.failure_reason).toMatchObject({
      boundary: 'params',
      issues: [{ path: '' }],
      received: 'null',
    });
    expect((await runRows(db.pool, queue, older.task_id))[0]?.failure_reason).toMatchObject({
      boundary: 'params',
      issues: [{ path: 'amount' }, { path: 'lines' }],
      received: 'undefined',
    });
    for (const id of [nullParams, older.task_id]) await expectFailedWithoutRetry(db.pool, queue, id);
  });

  it('good params written by a raw producer run normally', async () => {
    const queue = queueName('start-good');
    const app = await clients.app(queue);
    const seen: unknown[] = [];
    app.registerTask(orderContract(queue), async (params) => {
      seen.push(params);
      return { ok: true };
    });
    const params = { orderId: 'o-3', amount: 1, lines: [{ sku: 'a', qty: 2 }] };
    const { task_id } = await rawSpawn(db.pool, queue, 'order-fulfillment', params);
    await workOnce(app);
    expect(seen).toEqual([params]);
    expect((await taskRow(db.pool, queue, task_id))?.state).toBe('completed');
  });

  it('a task registered without a contract is not checked (the untyped API stays as it was)', async () => {
    const queue = queueName('start-untyped');
    const app = await clients.app(queue);
    const seen: unknown[] = [];
    app.registerTask({ name: 'order-fulfillment' }, async (params) => {
      seen.push(params);
      return { ok: true };
    });
    const { task_id } = await rawSpawn(db.pool, queue, 'order-fulfillment', { amount: '12' });
    await workOnce(app);
    expect(seen).toEqual([{ amount: '12' }]);
    expect((await taskRow(db.pool, queue, task_id))?.state).toBe('completed');
  });
});

describe('the worker log of params refused at task start', () => {
  it('is one error line naming the task, the run, the boundary, the field and the outcome; no stack', async () => {
    const queue = queueName('start-log');
    const app = await clients.app(queue);
    const signup = defineTask({
      name: 'signup',
      queue,
      params: z.object({ email: z.string(), profile: z.object({ age: z.number() }) }),
      result: z.null(),
    });
    app.registerTask(signup, async () => null);
    const missing = await rawSpawn(db.pool, queue, 'signup', { profile: { age: 3 } }, { max_attempts: 5 });
    const nested = await rawSpawn(db.pool, queue, 'signup', { email: 'a@b.c', profile: { age: 'old' } }, { max_attempts: 5 });
    await workOnce(app, 10);

    expect(app.recorded.lines).toEqual([
      {
        level: 'error',
        args: [`task "signup" run ${missing.run_id}: params invalid at params.email: expected string, received undefined ${withoutRetry.logSuffix}`],
      },
      {
        level: 'error',
        args: [`task "signup" run ${nested.run_id}: params invalid at params.profile.age: expected number, received "old" ${withoutRetry.logSuffix}`],
      },
    ]);
    // The details stay in the stored failure.
    const [run] = await runRows(db.pool, queue, missing.task_id);
    expect(run?.failure_reason).toMatchObject({
      message: 'signup: params.email: expected string, received undefined',
      issues: [{ path: 'email', message: 'Invalid input: expected string, received undefined' }],
      stack: expect.stringContaining('ValidationError'),
    });
  });
});
