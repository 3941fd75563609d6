import { z } from 'zod';
import { defineEvent, defineTask } from 'absurd-kit';

/** The warehouse packed an order's shipment: emitted as `shipment.packed:<orderId>`. */
export const shipmentPacked = defineEvent({
  name: 'shipment.packed',
  payload: z.object({ trackingNumber: z.string().min(1) }),
});

/** Sends the receipt of a paid order (a child task of the fulfillment). */
export const sendReceipt = defineTask({
  name: 'send-receipt',
  queue: 'receipts',
  params: z.object({ orderId: z.string(), email: z.email(), amount: z.number().int().positive() }),
  result: z.object({ receiptId: z.string() }),
  defaults: { maxAttempts: 3, retryStrategy: { kind: 'fixed', baseSeconds: 1 } },
});

/** Takes an order from payment to a shipped parcel with a receipt. */
export const fulfillOrder = defineTask({
  name: 'order-fulfillment',
  queue: 'orders',
  params: z.object({
    orderId: z.string().min(1),
    amount: z.number().int().positive(),
    items: z.array(z.string()).min(1),
    email: z.email(),
  }),
  result: z.object({
    orderId: z.string(),
    paymentId: z.string(),
    trackingNumber: z.string(),
    receiptId: z.string(),
  }),
  steps: {
    'process-payment': z.object({ paymentId: z.string() }),
    'reserve-inventory': z.object({ reservationId: z.string(), items: z.array(z.string()) }),
  },
  defaults: { maxAttempts: 5, retryStrategy: { kind: 'exponential', baseSeconds: 2 } },
});
