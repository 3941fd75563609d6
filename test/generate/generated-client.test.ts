import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from '../../packages/cli/src/generate/pipeline.js';
import { createClient, type FulfillOrderParams, type FulfillOrderResult } from '../../generated/client.js';
import { registerDemoHandlers } from '../../scripts/demo/handlers.js';
import { Absurd, ValidationError } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import { repoRoot } from './generate-helpers.js';

// End to end: the client generated for workflows/ (checked in as generated/client.ts) spawns on a
// real worker and reads typed, validated results.
const db = useTestDatabase();
let orders: Absurd;
let receipts: Absurd;

beforeAll(async () => {
  const quiet = { log() {}, info() {}, warn() {}, error() {} } as unknown as Console;
  orders = new Absurd({ db: db.pool, queueName: 'orders', log: quiet });
  receipts = new Absurd({ db: db.pool, queueName: 'receipts', log: quiet });
  await orders.createQueue('orders');
  await receipts.createQueue('receipts');
  registerDemoHandlers(orders, receipts, 'flaky-order');
  await orders.startWorker({ concurrency: 2, pollInterval: 0.05 });
  await receipts.startWorker({ concurrency: 2, pollInterval: 0.05 });
});

afterAll(async () => {
  await orders?.close({ timeout: 5 });
  await receipts?.close({ timeout: 5 });
});

describe('generated client for workflows/', () => {
  it('is what absurd generate produces now', async () => {
    const { files } = await generate({ root: repoRoot, skipQueries: true });
    for (const file of files) expect(file.contents, file.path).toBe(readFileSync(path.join(repoRoot, file.path), 'utf8'));
  });

  it('spawns a task, emits its event and awaits the typed result', async () => {
    const client = createClient(orders);
    const params: FulfillOrderParams = { orderId: 'order-e2e-1', amount: 4200, items: ['book'], email: 'reader@example.com' };
    const handle = await client.fulfillOrder.spawn(params);
    expect(handle).toMatchObject({ queue: 'orders', created: true });
    await client.shipmentPacked.emit('order-e2e-1', { trackingNumber: 'TRACK-1' }, 'orders');
    const snapshot = await client.fulfillOrder.awaitResult(handle, { timeout: 30 });
    expect(snapshot.state).toBe('completed');
    const result: FulfillOrderResult | undefined = snapshot.result;
    expect(result).toMatchObject({ orderId: 'order-e2e-1', trackingNumber: 'TRACK-1' });
    expect(result?.receiptId).toMatch(/^rcpt_/);
    // By id (a string) as well as by handle.
    const fetched = await client.fulfillOrder.fetchResult(handle.taskID);
    expect(fetched).toEqual(snapshot);
  }, 60_000);

  it('reads a task spawned on another queue by id and handle, with the queue of the contract', async () => {
    const client = createClient(orders);
    const handle = await client.sendReceipt.spawn({ orderId: 'order-e2e-2', email: 'r@example.com', amount: 1 });
    expect(handle.queue).toBe('receipts');
    const done = await client.sendReceipt.awaitResult(handle.taskID, { timeout: 30 });
    expect(done).toEqual({ state: 'completed', result: { receiptId: expect.stringMatching(/^rcpt_/) } });
    expect(await client.sendReceipt.fetchResult({ taskID: handle.taskID })).toEqual(done);
    expect(await client.sendReceipt.fetchResult('00000000-0000-0000-0000-000000000000')).toBeNull();
  }, 60_000);

  it('spawns many tasks in one call, typed, and refuses a bad item by index before writing any', async () => {
    const client = createClient(orders);
    const handles = await client.sendReceipt.spawnMany([
      { params: { orderId: 'order-many-1', email: 'a@example.com', amount: 1 } },
      { params: { orderId: 'order-many-2', email: 'b@example.com', amount: 2 }, options: { idempotencyKey: 'many-2' } },
    ]);
    expect(handles.map((h) => [h.queue, h.created])).toEqual([
      ['receipts', true],
      ['receipts', true],
    ]);
    const done = await client.sendReceipt.awaitResult(handles[1]!, { timeout: 30 });
    expect(done.state).toBe('completed');
    await expect(
      client.sendReceipt.spawnMany([
        { params: { orderId: 'order-many-3', email: 'c@example.com', amount: 1 } },
        // @ts-expect-error amount must be a number
        { params: { orderId: 'order-many-4', email: 'd@example.com', amount: '2' } },
      ]),
    ).rejects.toThrow(/items\[1\]\.params\.amount/);
    const { rows } = await db.pool.query(`select count(*)::int as n from absurd."t_receipts" where params->>'orderId' = 'order-many-3'`);
    expect(rows[0].n).toBe(0);
  }, 60_000);

  it('validates params and payloads before writing anything', async () => {
    const client = createClient(orders);
    // @ts-expect-error amount must be a number
    await expect(client.sendReceipt.spawn({ orderId: 'x', email: 'r@example.com', amount: '12' })).rejects.toBeInstanceOf(ValidationError);
    await expect(client.sendReceipt.spawn({ orderId: 'x', email: 'not an email', amount: 1 })).rejects.toThrow(/email/);
    await expect(client.shipmentPacked.emit('x', { trackingNumber: '' }, 'orders')).rejects.toBeInstanceOf(ValidationError);
    const { rows } = await db.pool.query(`select count(*)::int as n from absurd."t_receipts" where params->>'orderId' = 'x'`);
    expect(rows[0].n).toBe(0);
  });
});
