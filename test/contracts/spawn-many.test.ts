/**
 * `Absurd#spawnMany`: many tasks in one statement (one round trip, one commit), every item's params
 * checked against the contract before anything is written (the error names the item and the
 * field), options shared and per item, idempotency keys per item, results in order, and one
 * wake-up for an idle worker.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Absurd, ValidationError, defineTask } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import { countRows, onAbsurdSchema, queueName, taskRow, useClients, waitForTaskState, workOnce } from './helpers.js';
import { recordingConnection } from '../runtime/helpers.js';

const db = useTestDatabase();
const clients = useClients(db);

function receiptContract(queue: string) {
  return defineTask({
    name: 'send-receipt',
    queue,
    params: z.object({ orderId: z.string(), amount: z.number().int().positive() }),
    result: z.object({ sent: z.boolean() }),
    defaults: { maxAttempts: 3 },
  });
}

describe('spawnMany', () => {
  it('spawns every item in one statement and returns typed handles in order', async () => {
    const queue = queueName('many');
    const app = await clients.app(queue, { db: db.pool });
    const contract = receiptContract(queue);
    const { con, texts } = recordingConnection(db.pool);
    const bound = app.bindToConnection(con);
    const handles = await bound.spawnMany(contract, [
      { params: { orderId: 'o-1', amount: 1 } },
      { params: { orderId: 'o-2', amount: 2 }, options: { maxAttempts: 7 } },
      { params: { orderId: 'o-3', amount: 3 } },
    ]);
    expect(texts()).toHaveLength(1);
    expect(texts()[0]).toMatch(onAbsurdSchema ? /absurd\.spawn_task\(/ : /absurd\.kit_spawn_tasks\(/);
    expect(handles.map((h) => [h.queue, h.created, h.attempt])).toEqual([
      [queue, true, 1],
      [queue, true, 1],
      [queue, true, 1],
    ]);
    expect(handles[0]!.contract).toBe(contract);
    const rows = await Promise.all(handles.map((h) => taskRow(db.pool, queue, h.taskID)));
    expect(rows.map((r) => [r.task_name, r.params, r.max_attempts])).toEqual([
      ['send-receipt', { orderId: 'o-1', amount: 1 }, 3],
      ['send-receipt', { orderId: 'o-2', amount: 2 }, 7],
      ['send-receipt', { orderId: 'o-3', amount: 3 }, 3],
    ]);
  });

  it('checks every item before writing anything, naming the item and the field', async () => {
    const queue = queueName('refuse');
    const app = await clients.app(queue, { db: db.pool });
    const contract = receiptContract(queue);
    const error = await app
      .spawnMany(contract, [
        { params: { orderId: 'o-1', amount: 1 } },
        { params: { orderId: 'o-2', amount: 2 } },
        { params: { orderId: 'o-3', amount: '3' as unknown as number } },
      ])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).item).toBe(2);
    expect((error as ValidationError).message).toBe('send-receipt: items[2].params.amount: expected number, received "3"');
    expect(await countRows(db.pool, queue, 't')).toBe(0);
  });

  it('writes nothing when the engine refuses one item, and names it', async () => {
    const queue = queueName('engine-refuses');
    const app = await clients.app(queue, { db: db.pool });
    const error = await app
      .spawnMany('job', [{ params: 1 }, { params: 2, options: { maxAttempts: 0 } }], { queue })
      .catch((e: unknown) => e as Error);
    expect((error as Error).message).toMatch(onAbsurdSchema ? /max_attempts must be >= 1/ : /tasks\[1\]: max_attempts must be >= 1/);
    expect(await countRows(db.pool, queue, 't')).toBe(0);
  });

  it('honours idempotency keys per item: an existing task, or an earlier item, is returned', async () => {
    const queue = queueName('keys');
    const app = await clients.app(queue, { db: db.pool });
    app.registerTask({ name: 'job' }, async () => null);
    const first = await app.spawn('job', { n: 0 }, { idempotencyKey: 'k-0' });
    const results = await app.spawnMany('job', [
      { params: { n: 1 }, options: { idempotencyKey: 'k-1' } },
      { params: { n: 2 }, options: { idempotencyKey: 'k-0' } },
      { params: { n: 3 }, options: { idempotencyKey: 'k-1' } },
    ]);
    expect(results.map((r) => r.created)).toEqual([true, false, false]);
    expect(results[1]).toEqual({ ...first, created: false });
    expect(results[2]!.taskID).toBe(results[0]!.taskID);
    expect(await countRows(db.pool, queue, 't')).toBe(2);
  });

  it('applies shared options, item options over them, registration defaults and beforeSpawn to each item', async () => {
    const queue = queueName('options');
    const seen: unknown[] = [];
    const app = await clients.app(queue, {
      db: db.pool,
      hooks: {
        beforeSpawn: (_name, params, options) => {
          seen.push(params);
          return { ...options, headers: { traced: true } };
        },
      },
    });
    app.registerTask({ name: 'job', defaultMaxAttempts: 4 }, async () => null);
    const results = await app.spawnMany('job', [{ params: 'a' }, { params: 'b', options: { maxAttempts: 9 } }], {
      retryStrategy: { kind: 'fixed', baseSeconds: 3 },
    });
    const rows = await Promise.all(results.map((r) => taskRow(db.pool, queue, r.taskID)));
    expect(rows.map((r) => [r.params, r.max_attempts, r.retry_strategy, r.headers])).toEqual([
      ['a', 4, { kind: 'fixed', base_seconds: 3 }, { traced: true }],
      ['b', 9, { kind: 'fixed', base_seconds: 3 }, { traced: true }],
    ]);
    expect(seen).toEqual(['a', 'b']);
  });

  it('refuses an item whose queue differs, before any query', async () => {
    const { con, queries } = recordingConnection();
    const app = new Absurd({ db: con, queueName: 'main' });
    await expect(app.spawnMany('job', [{ params: 1 }, { params: 2, options: { queue: 'other' } }], { queue: 'main' })).rejects.toThrow(
      'items[1]: queue "other" differs',
    );
    expect(queries).toHaveLength(0);
  });

  it('sends nothing for no items', async () => {
    const { con, queries } = recordingConnection();
    const app = new Absurd({ db: con, queueName: 'main' });
    expect(await app.spawnMany('job', [], { queue: 'main' })).toEqual([]);
    expect(queries).toHaveLength(0);
  });

  it('commits and rolls back with the caller’s transaction', async () => {
    const queue = queueName('tx');
    const app = await clients.app(queue, { db: db.pool });
    const client = await db.pool.connect();
    try {
      await client.query('begin');
      await app.bindToConnection(client).spawnMany('job', [{ params: 1 }, { params: 2 }], { queue });
      await client.query('rollback');
    } finally {
      client.release();
    }
    expect(await countRows(db.pool, queue, 't')).toBe(0);
  });

  it('spawned tasks run: a worker picks them up', async () => {
    const queue = queueName('run');
    const app = await clients.app(queue, { db: db.pool });
    const contract = receiptContract(queue);
    app.registerTask(contract, async () => ({ sent: true }));
    const handles = await app.spawnMany(contract, [{ params: { orderId: 'a', amount: 1 } }, { params: { orderId: 'b', amount: 2 } }]);
    await workOnce(app, 2);
    for (const handle of handles) await waitForTaskState(db.pool, queue, handle.taskID, 'completed');
    expect((await app.fetchTaskResult(handles[1]!))?.result).toEqual({ sent: true });
  });
});
