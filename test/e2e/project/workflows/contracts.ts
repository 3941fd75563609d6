/**
 * The contracts of the installed-package test: a parent task that spawns a child, awaits its
 * result, then awaits an event; names and schemas only, as a user's contract file holds them.
 */
import { z } from 'zod';
import { defineEvent, defineTask } from 'absurd-kit';

export const orderApproved = defineEvent({
  name: 'order.approved',
  payload: z.object({ approvedBy: z.string().min(1) }),
});

export const priceOrder = defineTask({
  name: 'price-order',
  queue: 'e2e-orders',
  params: z.object({ quantity: z.number().int().positive(), unitCents: z.number().int().nonnegative() }),
  result: z.object({ totalCents: z.number().int() }),
  steps: { multiply: z.object({ totalCents: z.number().int() }) },
});

export const placeOrder = defineTask({
  name: 'place-order',
  queue: 'e2e-orders',
  params: z.object({ orderId: z.string().min(1), quantity: z.number().int().positive(), unitCents: z.number().int() }),
  result: z.object({ orderId: z.string(), totalCents: z.number().int(), approvedBy: z.string(), runtime: z.string() }),
});
