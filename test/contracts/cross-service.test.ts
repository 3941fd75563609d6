/**
 * Two services share one contracts module. Process A (a child process) imports only the contracts
 * and the client: it spawns, emits and awaits typed results. Process B (this test process) imports
 * the handlers and runs the worker. Payloads are validated on both sides: A refuses bad params
 * before writing anything, and B refuses bad params that a raw SQL producer wrote.
 */
import { spawn as spawnProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Absurd, Worker } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import { expectFailedWithoutRetry, rawSpawn, table, taskRow, useClients, waitForTaskState, withoutRetry } from './helpers.js';
import { SHOP_QUEUE, placeOrder } from './fixtures/shop-contracts.js';
import { registerShopHandlers, seenByHandlers } from './fixtures/shop-handlers.js';

const db = useTestDatabase();
const clients = useClients(db);
const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');

/** Runs `fixtures/<name>.ts` in its own Node process (through tsx) to its end; returns its exit and output. */
function runFixture(name: string, env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawnProcess(process.execPath, ['--import', 'tsx', path.join(fixtures, `${name}.ts`)], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    clients.track(child);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

let worker: Worker;
let app: Absurd;
beforeAll(async () => {
  app = await clients.app(SHOP_QUEUE);
  registerShopHandlers(app);
  worker = await app.startWorker({ concurrency: 2, pollInterval: 0.05 });
});
afterAll(async () => {
  await worker?.close({ timeout: 5 });
});

async function tasksOf(orderId: string) {
  const { rows } = await db.pool.query<{ task_id: string }>(
    `select task_id from ${table('t', SHOP_QUEUE)} where params->>'orderId' = $1`,
    [orderId],
  );
  return rows;
}

describe('a producer process that imports only the contracts', () => {
  it('refuses bad params and a bad event before writing, and gets a typed, parsed result from the worker process', async () => {
    const run = await runFixture('shop-producer', { ABSURD_TEST_URL: db.url });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const lines = run.stdout
      .trim()
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(run.stdout.trim().endsWith('done')).toBe(true);
    const byStep = Object.fromEntries(lines.map((line) => [line.step, line]));

    // Side A: refused before writing.
    expect(byStep['bad-spawn']).toMatchObject({
      refused: {
        name: 'ValidationError',
        subject: 'place-order',
        boundary: 'params',
        issues: [{ path: 'amount' }],
        received: '"12"',
        retryable: true,
      },
    });
    expect(await tasksOf('from-a-bad')).toEqual([]);
    expect(byStep['bad-emit']).toMatchObject({
      refused: { subject: 'order.packed:from-a-good', boundary: 'event', issues: [{ path: 'parcels' }], received: '0' },
    });

    // The good order went through B's handlers (which got parsed params) and back to A, parsed again.
    expect(byStep.spawned).toMatchObject({ queue: SHOP_QUEUE });
    expect(byStep.result).toEqual({
      step: 'result',
      state: 'completed',
      orderId: 'from-a-good',
      parcels: 2,
      shippedAtIsDate: true,
      shippedAt: '2024-05-01T11:00:00.000Z',
    });
    expect(seenByHandlers).toContainEqual({ orderId: 'from-a-good', placedAtIsDate: true });
    const [good] = await tasksOf('from-a-good');
    const row = await taskRow(db.pool, SHOP_QUEUE, good!.task_id);
    // Stored in the input form on both legs: params as A sent them, the result as B returned it.
    expect(row?.params).toEqual({ orderId: 'from-a-good', amount: 3, placedAt: '2024-05-01T10:00:00Z' });
    expect(row?.completed_payload).toEqual({ orderId: 'from-a-good', parcels: 2, shippedAt: '2024-05-01T11:00:00.000Z' });
    // The event A emitted is the good one only.
    const { rows: events } = await db.pool.query(`select payload from ${table('e', SHOP_QUEUE)} where event_name = $1`, [
      'order.packed:from-a-good',
    ]);
    expect(events).toEqual([{ payload: { parcels: 2 } }]);
  }, 60_000);
});

describe('the worker process', () => {
  it('refuses bad params written by a raw SQL producer: failed after one attempt, the handler never ran', async () => {
    const before = seenByHandlers.length;
    const { task_id } = await rawSpawn(
      db.pool,
      SHOP_QUEUE,
      placeOrder.name,
      { orderId: 'from-sql', amount: 3, placedAt: 'tomorrow' },
      { max_attempts: 5 },
    );
    // No notification was sent: the worker finds it by polling.
    await waitForTaskState(db.pool, SHOP_QUEUE, task_id, withoutRetry.taskState);
    expect(seenByHandlers.length).toBe(before);
    expect(await expectFailedWithoutRetry(db.pool, SHOP_QUEUE, task_id)).toMatchObject({
      name: 'ValidationError',
      subject: 'place-order',
      boundary: 'params',
      issues: [{ path: 'placedAt' }],
      received: '"tomorrow"',
      retryable: false,
    });
  });
});
