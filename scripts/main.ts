/**
 * The main job (`npm start`): the whole model on one machine. Starts the embedded PostgreSQL kept
 * under `.absurd/` (or uses ABSURD_DATABASE_URL), installs or migrates the engine, runs workers for
 * the example contracts in `workflows/`, spawns a few orders through the generated client
 * (`generated/client.ts`, from `absurd generate`), emits their `shipment.packed` events,
 * prints each typed result and a one-line summary, and exits 0 (1 if anything went wrong).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Absurd, migrate, redactDatabaseUrl, type TaskHandle } from 'absurd-kit';
import { configuredDatabaseUrl } from '../packages/cli/src/database/urls.js';
import { startEmbeddedDatabase, type EmbeddedDatabase } from '../packages/cli/src/database/embedded-database.js';
import { createClient } from '../generated/client.js';
import type { fulfillOrder } from '../workflows/index.js';
import { registerDemoHandlers } from './demo/handlers.js';

const tty = process.stdout.isTTY === true;
const progress = (line: string) => {
  if (tty) process.stdout.write(`· ${line}\n`);
};

async function main(): Promise<number> {
  const started = Date.now();
  let embedded: EmbeddedDatabase | undefined;
  let url = configuredDatabaseUrl();
  if (url) {
    progress(`using ${redactDatabaseUrl(url)}`);
  } else {
    progress('starting the embedded PostgreSQL in .absurd/');
    embedded = await startEmbeddedDatabase();
    url = embedded.url;
  }
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  // A connection that drops while idle (e.g. the server stopping right after pool.end()) must not crash.
  pool.on('error', (error) => progress(`idle connection closed: ${error.message}`));
  const apps: Absurd[] = [];
  try {
    const { applied } = await migrate(pool);
    progress(applied.length > 0 ? `installed ${applied.length} engine migration(s)` : 'engine schema is current');

    const log = { ...console, log: () => {}, info: () => {}, warn: () => {}, error: () => {} };
    const orders = new Absurd({ db: pool, queueName: 'orders', log });
    const receipts = new Absurd({ db: pool, queueName: 'receipts', log });
    apps.push(orders, receipts);
    await orders.createQueue();
    await receipts.createQueue();

    const run = randomBytes(3).toString('hex');
    const orderIds = ['A', 'B', 'C'].map((letter) => `${run}-${letter}`);
    registerDemoHandlers(orders, receipts, orderIds[0]!);
    await orders.startWorker({ concurrency: 4, claimTimeout: 60 });
    await receipts.startWorker({ concurrency: 2, claimTimeout: 60 });
    progress('workers started on queues "orders" and "receipts"');

    const client = createClient(orders);
    const handles: TaskHandle<typeof fulfillOrder>[] = [];
    for (const [i, orderId] of orderIds.entries()) {
      const handle = await client.fulfillOrder.spawn({
        orderId,
        amount: 1999 + i * 500,
        items: ['sku-kettle', 'sku-mug'].slice(0, 1 + (i % 2)),
        email: `customer${i + 1}@example.com`,
      });
      handles.push(handle);
      progress(`spawned order ${orderId} (task ${handle.taskID})`);
    }
    // The warehouse packs the orders a moment later; the tasks are waiting for these events.
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const orderId of orderIds) {
      await client.shipmentPacked.emit(orderId, { trackingNumber: `TRK-${orderId.toUpperCase()}` });
      progress(`emitted shipment.packed:${orderId}`);
    }

    let failed = 0;
    for (const handle of handles) {
      const snapshot = await client.fulfillOrder.awaitResult(handle, { timeout: 60 });
      if (snapshot.state === 'completed') {
        const r = snapshot.result;
        console.log(`order ${r.orderId}: paid ${r.paymentId}, shipped ${r.trackingNumber}, receipt ${r.receiptId}`);
      } else {
        failed += 1;
        console.log(`order task ${handle.taskID}: ${snapshot.state} ${JSON.stringify(snapshot.failure ?? null)}`);
      }
    }
    const retried = await pool.query<{ n: number }>(
      `select count(*)::int as n from absurd."r_receipts" r join absurd."t_receipts" t on t.task_id = r.task_id
        where r.attempt > 1 and t.params->>'orderId' = any($1)`,
      [orderIds],
    );
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    console.log(
      `${handles.length - failed} of ${handles.length} orders fulfilled in ${seconds}s ` +
        `(${retried.rows[0]?.n ?? 0} receipt retried after a simulated outage)`,
    );
    return failed === 0 ? 0 : 1;
  } finally {
    for (const app of apps) await app.close({ timeout: 5 });
    await pool.end();
    await embedded?.stop();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  },
);
