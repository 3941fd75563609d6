import { createHash } from 'node:crypto';
import type { Absurd } from 'absurd-kit';
import { fulfillOrder, sendReceipt, shipmentPacked } from '../../workflows/index.js';

/** Deterministic ids for the demo's fake payment and inventory systems. */
const fakeId = (prefix: string, value: string) => `${prefix}_${createHash('sha256').update(value).digest('hex').slice(0, 10)}`;

/**
 * The demo's handlers: an order is paid and reserved (two checkpointed steps), waits up to three
 * days for the warehouse's `shipment.packed` event, sleeps a moment, then spawns a receipt child
 * task and waits for it. The receipt of `flakyOrderId` fails on its first attempt, to show a retry.
 */
export function registerDemoHandlers(orders: Absurd, receipts: Absurd, flakyOrderId: string): void {
  orders.registerTask(fulfillOrder, async (params, ctx) => {
    const payment = await ctx.step('process-payment', async () => ({ paymentId: fakeId('pay', params.orderId) }));
    await ctx.step('reserve-inventory', async () => ({
      reservationId: fakeId('res', params.orderId),
      items: params.items,
    }));
    // The warehouse has three days to pack the order; after that the wait throws a TimeoutError.
    const shipment = await ctx.awaitEvent(shipmentPacked, params.orderId, { timeout: 3 * 24 * 3600 });
    await ctx.sleepFor('hand-over-to-carrier', 1);
    const receipt = await ctx.spawn(sendReceipt, { orderId: params.orderId, email: params.email, amount: params.amount });
    const sent = await ctx.awaitTaskResult(receipt, { timeout: 120 });
    if (sent.state !== 'completed') throw new Error(`receipt for order ${params.orderId} ended ${sent.state}`);
    return {
      orderId: params.orderId,
      paymentId: payment.paymentId,
      trackingNumber: shipment.trackingNumber,
      receiptId: sent.result.receiptId,
    };
  });

  receipts.registerTask(sendReceipt, async (params, ctx) => {
    if (params.orderId === flakyOrderId && ctx.attempt === 1) {
      throw new Error('mail server unavailable (simulated outage)');
    }
    return { receiptId: fakeId('rcpt', params.orderId) };
  });
}
