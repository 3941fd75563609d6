// The example of docs/testing.md, as it stands there (test/testing/docs-example.test.ts keeps them
// equal; only the relative imports differ by one folder).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestEnvironment, type TestEnvironment } from '@absurd-kit/cli/testing';
import { createClient, type Client, type FulfillOrderResult } from '../../generated/client.js';
import { sendReceipt } from '../../workflows/index.js';
import { registerDemoHandlers } from '../../scripts/demo/handlers.js';

let t: TestEnvironment;
let client: Client;

beforeAll(async () => {
  // A fresh database for this file, its clock standing at 09:00 until the test moves it.
  t = await createTestEnvironment({ now: '2030-03-01T09:00:00Z' });
  const orders = await t.client('orders');
  const receipts = await t.client('receipts');
  registerDemoHandlers(orders, receipts, 'order-1'); // the receipt of order-1 fails once
  client = createClient(orders);
});

afterAll(() => t.close());

describe('order fulfillment', () => {
  it('pays, waits a day for the shipment, retries the receipt, and completes', async () => {
    const order = await client.fulfillOrder.spawn({
      orderId: 'order-1',
      amount: 1999,
      items: ['sku-kettle'],
      email: 'ada@example.com',
    });

    // Pays, reserves, then waits for the warehouse.
    let ran = await t.runUntilIdle();
    expect(ran).toMatchObject([{ taskName: 'order-fulfillment', outcome: 'suspended', waitingFor: 'shipment.packed:order-1' }]);
    const waiting = await t.inspect(order);
    expect(waiting.steps['process-payment']?.paymentId).toMatch(/^pay_/);
    expect(waiting.events).toMatchObject([{ eventName: 'shipment.packed:order-1', state: 'waiting' }]);

    // A day later the warehouse packs it; the order hands it over to the carrier (a 1 s sleep).
    await t.advance('1 day');
    await client.shipmentPacked.emit('order-1', { trackingNumber: 'TRK-1' });
    ran = await t.runUntilIdle();
    expect(ran).toMatchObject([{ outcome: 'suspended', wakeAt: new Date('2030-03-02T09:00:01Z') }]);

    // Then it spawns the receipt and waits for it; the receipt's first attempt fails.
    await t.advance('1 second');
    ran = await t.runUntilIdle();
    expect(ran.map((r) => [r.taskName, r.attempt, r.outcome])).toEqual([
      ['order-fulfillment', 1, 'suspended'],
      ['send-receipt', 1, 'failed'],
    ]);
    expect(ran[1]?.failure?.message).toBe('mail server unavailable (simulated outage)');

    // Its retry comes after the backoff (fixed, 1 s); its end wakes the order, which completes.
    await t.advance('1 second');
    ran = await t.runUntilIdle();
    expect(ran.map((r) => [r.taskName, r.attempt, r.outcome])).toEqual([
      ['send-receipt', 2, 'completed'],
      ['order-fulfillment', 1, 'completed'],
    ]);

    const done = await t.inspect(order);
    const result: FulfillOrderResult | undefined = done.result; // typed by the contract
    expect(result).toEqual({
      orderId: 'order-1',
      paymentId: done.steps['process-payment']?.paymentId,
      trackingNumber: 'TRK-1',
      receiptId: expect.stringMatching(/^rcpt_/),
    });
    expect(done.events).toMatchObject([{ state: 'received', payload: { trackingNumber: 'TRK-1' } }]);

    const [child] = done.children;
    const receipt = await t.inspect(child!, sendReceipt);
    expect(receipt.attempts).toBe(2);
    expect(receipt.runs.map((r) => r.state)).toEqual(['failed', 'completed']);
    expect(receipt.result?.receiptId).toBe(result?.receiptId);
  });

  it('fails the order once its five attempts have each waited three days in vain', async () => {
    const order = await client.fulfillOrder.spawn({ orderId: 'order-2', amount: 500, items: ['sku-mug'], email: 'bob@example.com' });

    // Skips from one due time to the next (timeouts, backoffs) for up to 30 days.
    const ran = await t.runUntilIdle({ skipTime: '30 days' });
    expect(ran.map((r) => `${r.attempt}: ${r.outcome}`)).toEqual([
      ...['1: suspended', '1: failed', '2: suspended', '2: failed', '3: suspended', '3: failed'],
      ...['4: suspended', '4: failed', '5: suspended', '5: failed'],
    ]);

    const failed = await t.inspect(order);
    expect(failed.state).toBe('failed');
    expect(failed.attempts).toBe(5);
    expect(failed.failure?.message).toBe('Timed out waiting for event "shipment.packed:order-2"');
    expect(failed.steps['process-payment']?.paymentId).toMatch(/^pay_/); // paid once, replayed after
    expect(failed.children).toEqual([]);
  });
});
