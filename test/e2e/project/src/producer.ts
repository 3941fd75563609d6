/**
 * A producer as a user writes one: spawns the parent task, emits the event it waits for, awaits
 * its typed result and prints it as one JSON line.
 */
import { Absurd } from 'absurd-kit';
import { orderApproved, placeOrder } from '../workflows/contracts.js';

const orderId = process.argv[2];
if (!orderId) throw new Error('usage: producer <order-id>');

const app = new Absurd({ queueName: placeOrder.queue });
try {
  // @ts-expect-error quantity must be a number: the contract types the params
  void (() => app.spawn(placeOrder, { orderId, quantity: '3', unitCents: 250 }));

  const handle = await app.spawn(placeOrder, { orderId, quantity: 3, unitCents: 250 });
  await app.emitEvent(orderApproved, orderId, { approvedBy: 'e2e' });
  const snapshot = await app.awaitTaskResult(handle, { timeout: 60 });
  if (snapshot.state !== 'completed') throw new Error(`place-order ended ${snapshot.state}: ${JSON.stringify(snapshot.failure)}`);
  // Typed by the contract: a misspelt field would not compile.
  const { totalCents, approvedBy, runtime } = snapshot.result;
  console.log(JSON.stringify({ orderId: snapshot.result.orderId, totalCents, approvedBy, runtime }));
} finally {
  await app.close();
}
