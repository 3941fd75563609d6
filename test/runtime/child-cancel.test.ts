import { expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { uniqueQueue, useRuntime } from './helpers.js';

const db = useTestDatabase();
const rt = useRuntime(db);

it('cancelling a child that no worker runs wakes its waiting parent at once', async () => {
  const pool = rt.newPool(8);
  const parents = rt.newApp({ db: pool, queueName: uniqueQueue('parent') });
  const childQueue = uniqueQueue('child');
  await parents.createQueue();
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
  const pool = rt.newPool(4);
  const app = rt.newApp({ db: pool, queueName: uniqueQueue('orphan') });
  await app.createQueue();
  const { taskID } = await app.spawn('orphan', null, {
    queue: app.queueName,
    headers: { 'absurd.parent': { queue: 'no-such-queue', taskId: '01900000-0000-7000-8000-000000000000' } },
  });
  await app.cancelTask(taskID);
  expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'cancelled' });
});
