/**
 * Flow control through the runtime: the spawn option `priority` (client, spawnMany, ctx.spawn),
 * `Absurd#setLimit / removeLimit / listLimits`, and the limits a task contract declares, which a
 * worker sets when it starts (engine migration 000016).
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineTask, InvalidLimitError } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import { onAbsurdSchema, queueName, table, useClients } from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);

async function priorities(queue: string): Promise<Record<string, number>> {
  const { rows } = await db.pool.query<{ task_name: string; priority: number }>(
    `select t.task_name, r.priority from ${table('r', queue)} r join ${table('t', queue)} t using (task_id)`,
  );
  return Object.fromEntries(rows.map((row) => [row.task_name, row.priority]));
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(onAbsurdSchema)('flow control', () => {
  it('sends priority from spawn, spawnMany and ctx.spawn', async () => {
    const queue = queueName('prio-runtime');
    const app = await clients.app(queue);
    app.registerTask({ name: 'parent' }, async (_params, ctx) => {
      await ctx.spawn('child', {}, { priority: -2 });
      return null;
    });
    app.registerTask({ name: 'child' }, async () => null);
    app.registerTask({ name: 'bulk' }, async () => null);
    await app.spawn('parent', {}, { priority: 3 });
    await app.spawnMany('bulk', [{ params: {}, options: { priority: 7 } }]);
    // The claim takes the bulk task (7) before the parent (3).
    const claimed = await app.claimTasks({ batchSize: 1, claimTimeout: 60, workerId: 'w' });
    expect(claimed.map((task) => task.task_name)).toEqual(['bulk']);
    await app.executeTask(claimed[0]!, 60);
    await app.workBatch('w', 60, 1);
    expect(await priorities(queue)).toEqual({ parent: 3, bulk: 7, child: -2 });
  });

  it('sets, lists and removes limits; refuses invalid ones before sending anything', async () => {
    const queue = queueName('limits-api', 'quoted');
    const app = await clients.app(queue);
    expect(await app.setLimit('per-customer', { taskName: 'charge', key: 'customer.id', maxRunning: 2 })).toBe(true);
    expect(await app.setLimit('per-customer', { taskName: 'charge', key: ['customer', 'id'], maxRunning: 2 })).toBe(false);
    expect(await app.setLimit('api', { rate: { limit: 5, periodSeconds: 1.5 } })).toBe(true);
    expect(await app.listLimits()).toEqual([
      { queueName: queue, name: 'api', taskName: null, key: null, maxRunning: null, rate: { limit: 5, periodSeconds: 1.5 }, running: 0, parked: 0 },
      {
        queueName: queue,
        name: 'per-customer',
        taskName: 'charge',
        key: ['customer', 'id'],
        maxRunning: 2,
        rate: null,
        running: 0,
        parked: 0,
      },
    ]);
    expect(await app.removeLimit('api')).toBe(true);
    expect(await app.removeLimit('api')).toBe(false);
    for (const bad of [{ maxRunning: 0 }, {}, { key: 'a..b', maxRunning: 1 }, { rate: { limit: 1, periodSeconds: 0 } }]) {
      await expect(app.setLimit('x', bad)).rejects.toBeInstanceOf(InvalidLimitError);
    }
    expect((await app.listLimits()).map((limit) => limit.name)).toEqual(['per-customer']);
  });

  it('a worker sets the limits its contracts declare, and its runs respect them', async () => {
    const queue = queueName('contract-limits');
    const charge = defineTask({
      name: 'charge',
      queue,
      params: z.object({ customerId: z.string(), cents: z.number() }),
      result: z.null(),
      concurrency: { limit: 1, key: 'customerId' },
      rateLimit: { limit: 1000, periodSeconds: 60 },
    });
    const app = await clients.app(queue);
    const running = new Map<string, number>();
    const peak = new Map<string, number>();
    app.registerTask(charge, async ({ customerId }) => {
      running.set(customerId, (running.get(customerId) ?? 0) + 1);
      peak.set(customerId, Math.max(peak.get(customerId) ?? 0, running.get(customerId) ?? 0));
      await pause(5);
      running.set(customerId, (running.get(customerId) ?? 0) - 1);
      return null;
    });
    const worker = await app.startWorker({ concurrency: 6, pollInterval: 0.02 });
    const handles = [];
    for (let i = 0; i < 12; i += 1) handles.push(await app.spawn(charge, { customerId: `c${i % 3}`, cents: i }));
    const results = await Promise.all(handles.map((handle) => app.awaitTaskResult(handle, { timeout: 30 })));
    await worker.close();
    expect(results.map((r) => (r as { state: string }).state)).toEqual(Array(12).fill('completed'));
    expect(Object.fromEntries(peak)).toEqual({ c0: 1, c1: 1, c2: 1 });
    expect((await app.listLimits()).map((limit) => [limit.name, limit.key, limit.maxRunning, limit.rate])).toEqual([
      ['charge:concurrency', ['customerId'], 1, null],
      ['charge:rate', null, null, { limit: 1000, periodSeconds: 60 }],
    ]);
  });

  it('a worker removes the contract limits its contracts no longer declare, and no other limit', async () => {
    const queue = queueName('retired-limits');
    const params = z.object({ customerId: z.string() });
    const before = defineTask({ name: 'charge', queue, params, result: z.null(), concurrency: { limit: 1, key: 'customerId' }, rateLimit: { limit: 5, periodSeconds: 1 } });
    const first = await clients.app(queue);
    first.registerTask(before, async () => null);
    await (await first.startWorker({ pollInterval: 0.05 })).close();
    // Set by hand: a queue-wide limit, and a limit of a task this worker does not run.
    await first.setLimit('queue-wide', { maxRunning: 50 });
    await first.setLimit('refund:concurrency', { taskName: 'refund', maxRunning: 2 });

    // The next deploy's contract keeps the rate limit and drops the concurrency limit.
    const after = defineTask({ name: 'charge', queue, params, result: z.null(), rateLimit: { limit: 5, periodSeconds: 1 } });
    const next = await clients.app(queue);
    next.registerTask(after, async () => null);
    await (await next.startWorker({ pollInterval: 0.05 })).close();
    expect((await next.listLimits()).map((limit) => limit.name)).toEqual(['charge:rate', 'queue-wide', 'refund:concurrency']);
    expect(next.recorded.messages('info')).toContain(
      `removed limit "charge:concurrency" of queue "${queue}": the contract of task "charge" no longer declares it`,
    );
  });
});

describe('defineTask limits', () => {
  const params = z.object({ customerId: z.string() });
  it('keeps a declared key as a list of names', () => {
    const task = defineTask({ name: 't', params, result: z.null(), concurrency: { limit: 2, key: 'customerId' } });
    expect(task.concurrency).toEqual({ limit: 2, key: ['customerId'] });
    expect(Object.isFrozen(task.concurrency)).toBe(true);
  });

  it.each([
    { concurrency: { limit: 0 } },
    { concurrency: { limit: 1.5 } },
    { rateLimit: { limit: 1, periodSeconds: 0 } },
    { concurrency: { limit: 1, key: [] as string[] } },
  ])('refuses %j with InvalidLimitError', (limits) => {
    expect(() => defineTask({ name: 't', params, result: z.null(), ...limits })).toThrow(InvalidLimitError);
  });
});
