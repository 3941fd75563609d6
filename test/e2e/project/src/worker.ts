/**
 * A worker as a user deploys it: installs or upgrades the engine schema, creates the queue, binds
 * handlers to the contracts and runs until SIGTERM. Prints `worker ready` once it claims work.
 */
import { Absurd, closeOnSignals, migrate } from 'absurd-kit';
import { orderApproved, placeOrder, priceOrder } from '../workflows/contracts.js';

const url = process.env.ABSURD_DATABASE_URL;
if (!url) throw new Error('set ABSURD_DATABASE_URL');

const { applied } = await migrate(url);
const app = new Absurd({ db: url, queueName: placeOrder.queue });
await app.createQueue();

app.registerTask(priceOrder, async (params, ctx) => {
  const { totalCents } = await ctx.step('multiply', () => ({ totalCents: params.quantity * params.unitCents }));
  return { totalCents };
});

app.registerTask(placeOrder, async (params, ctx) => {
  const child = await ctx.spawn(priceOrder, { quantity: params.quantity, unitCents: params.unitCents });
  const priced = await ctx.awaitTaskResult(child, { timeout: 60 });
  if (priced.state !== 'completed') throw new Error(`price-order ended ${priced.state}`);
  const approval = await ctx.awaitEvent(orderApproved, params.orderId, { timeout: 60 });
  return {
    orderId: params.orderId,
    totalCents: priced.result.totalCents,
    approvedBy: approval.approvedBy,
    runtime: process.version,
  };
});

const worker = await app.startWorker({ concurrency: 2, pollInterval: 0.1 });
closeOnSignals([worker, app], { timeout: 10 });
console.log(`worker ready (${applied.length} migration(s) applied)`);
