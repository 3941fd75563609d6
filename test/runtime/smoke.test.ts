import { afterAll, expect, it } from 'vitest';
import pg from 'pg';
import { Absurd } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';

const db = useTestDatabase();
const apps: Absurd[] = [];
afterAll(async () => {
  for (const app of apps) await app.close();
});

it('runs a spawned task with steps, an event and a child to completion', async () => {
  const pool = new pg.Pool({ connectionString: db.url, max: 5 });
  const app = new Absurd({ db: pool, queueName: 'smoke' });
  apps.push(app);
  await app.createQueue();
  app.registerTask({ name: 'child' }, async (params: { n: number }) => ({ doubled: params.n * 2 }));
  app.registerTask({ name: 'parent' }, async (params: { n: number }, ctx) => {
    const a = await ctx.step('one', async () => params.n + 1);
    const ev = await ctx.awaitEvent('go');
    const child = await ctx.spawn('child', { n: a });
    const res = await ctx.awaitTaskResult(child);
    return { a, ev, res };
  });
  const worker = await app.startWorker({ concurrency: 2, pollInterval: 5 });
  const { taskID } = await app.spawn('parent', { n: 1 });
  await new Promise((r) => setTimeout(r, 300));
  await app.emitEvent('go', { ok: true });
  const result = await app.awaitTaskResult(taskID, { timeout: 10 });
  expect(result).toEqual({ state: 'completed', result: { a: 2, ev: { ok: true }, res: { state: 'completed', result: { doubled: 4 } } } });
  await worker.close();
  await pool.end();
  apps.pop();
});
