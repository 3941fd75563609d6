import pg from 'pg';
import { afterAll, expect, it } from 'vitest';
import { z } from 'zod';
import { Absurd, ValidationError, defineEvent, defineTask } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';

const db = useTestDatabase();
const pools: pg.Pool[] = [];
afterAll(async () => {
  for (const pool of pools) await pool.end();
});

const packed = defineEvent({ name: 'shipment.packed', payload: z.object({ trackingNumber: z.string() }) });
const receipt = defineTask({
  name: 'receipt',
  queue: 'contracts-smoke',
  params: z.object({ orderId: z.string() }),
  result: z.object({ sent: z.boolean() }),
});
const order = defineTask({
  name: 'order',
  queue: 'contracts-smoke',
  params: z.object({ orderId: z.string(), amount: z.number().int().positive(), at: z.iso.datetime().transform((s) => new Date(s)) }),
  result: z.object({ trackingNumber: z.string(), receiptSent: z.boolean() }),
  steps: { pay: z.object({ paymentId: z.string() }) },
});

it('spawns, validates, runs and returns typed results through contracts', async () => {
  const pool = new pg.Pool({ connectionString: db.url, max: 5 });
  pools.push(pool);
  const app = new Absurd({ db: pool, queueName: 'contracts-smoke' });
  await app.createQueue();
  app.registerTask(receipt, async () => ({ sent: true }));
  app.registerTask(order, async (params, ctx) => {
    expect(params.at).toBeInstanceOf(Date);
    const payment = await ctx.step('pay', async () => ({ paymentId: `p-${params.orderId}` }));
    const shipment = await ctx.awaitEvent(packed, params.orderId);
    const child = await ctx.spawn(receipt, { orderId: params.orderId });
    const sent = await ctx.awaitTaskResult(child);
    expect(payment.paymentId).toBe('p-o1');
    return { trackingNumber: shipment.trackingNumber, receiptSent: sent.state === 'completed' && sent.result.sent };
  });
  await expect(app.spawn(order, { orderId: 'o1', amount: '12' as unknown as number, at: '2024-01-01T00:00:00Z' })).rejects.toThrow(
    ValidationError,
  );
  const worker = await app.startWorker({ concurrency: 2 });
  const handle = await app.spawn(order, { orderId: 'o1', amount: 12, at: '2024-01-01T00:00:00Z' });
  await expect(app.emitEvent(packed, 'o1', { trackingNumber: 5 as unknown as string })).rejects.toThrow(
    'shipment.packed:o1: event.trackingNumber',
  );
  await app.emitEvent(packed, 'o1', { trackingNumber: 'T-1' });
  const snapshot = await app.awaitTaskResult(handle, { timeout: 10 });
  expect(snapshot).toEqual({ state: 'completed', result: { trackingNumber: 'T-1', receiptSent: true } });
  await worker.close();
  await app.close();
});
