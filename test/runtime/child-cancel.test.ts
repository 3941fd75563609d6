import { expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { onAbsurdSchema, queueName, useClients } from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);

it.skipIf(onAbsurdSchema)("cancelling a child that no worker runs wakes its waiting parent at once [absurd-kit's schema only: its cancel_task announces]", async () => {
  const pool = clients.pool({ max: 8, idleTimeoutMillis: 0 });
  const parents = await clients.app(queueName('parent'), { db: pool });
  const childQueue = queueName('child');
  await parents.createQueue(childQueue);
  let childID: string | undefined;
  parents.registerTask({ name: 'parent' }, async (_params, ctx) => {
    const child = await ctx.spawn('idle-child', null, { queue: childQueue });
    childID = child.taskID;
    // No worker serves childQueue, and the re-check interval is an hour: only an announcement wakes us.
    return ctx.awaitTaskResult({ taskID: child.taskID, queue: childQueue }, { checkInterval: 3600 });
  });
  const worker = await parents.startWorker({ pollInterval: 3600 });
  const { taskID } = await parents.spawn('parent', null);
  for (let i = 0; i < 200 && !childID; i++) await new Promise((r) => setTimeout(r, 25));
  expect(childID).toBeDefined();
  await expect.poll(async () => (await parents.fetchTaskResult(taskID))?.state).toBe('sleeping');

  await parents.cancelTask(childID!, childQueue);
  const snapshot = await parents.awaitTaskResult(taskID, { timeout: 10 });
  expect(snapshot).toEqual({ state: 'completed', result: { state: 'cancelled' } });
  await worker.close();
}, 30_000);

it('cancelling a child whose parent queue is gone still cancels it', async () => {
  const pool = clients.pool({ max: 4, idleTimeoutMillis: 0 });
  const app = await clients.app(queueName('orphan'), { db: pool });
  const { taskID } = await app.spawn('orphan', null, {
    queue: app.queueName,
    headers: { 'absurd.parent': { queue: 'no-such-queue', taskId: '01900000-0000-7000-8000-000000000000' } },
  });
  await app.cancelTask(taskID);
  expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'cancelled' });
});

it.skipIf(onAbsurdSchema)("a child cancelled by its queue's cancellation policy (claim_task's sweep) wakes its waiting parent at once [absurd-kit's schema only: its cancel_task announces]", async () => {
  const pool = clients.pool({ max: 8, idleTimeoutMillis: 0 });
  const parents = await clients.app(queueName('policy-parent'), { db: pool });
  const childQueue = queueName('policy-child');
  await parents.createQueue(childQueue);
  let childID: string | undefined;
  parents.registerTask({ name: 'parent' }, async (_params, ctx) => {
    const child = await ctx.spawn('idle-child', null, { queue: childQueue, cancellation: { maxDelay: 1 } });
    childID = child.taskID;
    return ctx.awaitTaskResult({ taskID: child.taskID, queue: childQueue }, { checkInterval: 3600 });
  });
  const worker = await parents.startWorker({ pollInterval: 3600 });
  const { taskID } = await parents.spawn('parent', null);
  await expect.poll(async () => (await parents.fetchTaskResult(taskID))?.state).toBe('sleeping');
  expect(childID).toBeDefined();

  // Real time, not absurd.fake_now: the event wakes the parent at the sweeping session's clock, and
  // a clock ahead of the parent's worker would make the woken run wait for it.
  await new Promise((r) => setTimeout(r, 1100));
  // A claim on the child's queue after its max_delay: the policy sweep cancels the never-started child.
  const { rows } = await pool.query('select * from absurd.claim_task($1, $2, 60, 1)', [childQueue, 'sweeper']);
  expect(rows).toEqual([]);
  expect(await parents.fetchTaskResult(childID!, { queue: childQueue })).toEqual({ state: 'cancelled' });
  const snapshot = await parents.awaitTaskResult(taskID, { timeout: 10 });
  expect(snapshot).toEqual({ state: 'completed', result: { state: 'cancelled' } });
  await worker.close();
}, 30_000);
