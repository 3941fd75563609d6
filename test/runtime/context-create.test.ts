import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineTask, TaskContext, ValidationError } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import { checkpoints, queueName, taskRow, useClients } from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);

describe("TaskContext.create in absurd-sdk's form", () => {
  it('builds a working context from { con, queueName, task, claimTimeout, … } outside a worker', async () => {
    const pool = clients.pool({ max: 5, idleTimeoutMillis: 0 });
    const app = await clients.app(queueName('create'), { db: pool });
    const { taskID } = await app.spawn('by-hand', { n: 1 }, { queue: app.queueName });
    const [task] = await app.claimTasks({ claimTimeout: 60 });
    if (!task) throw new Error('nothing claimed');
    delete task.checkpoints; // as absurd-sdk's claim rows come: the context loads checkpoints itself
    await pool.query(`select absurd.set_task_checkpoint_state($1, $2, 'earlier', '"stored"', $3)`, [
      app.queueName,
      taskID,
      task.run_id,
    ]);
    const leases: number[] = [];
    const ctx = await TaskContext.create({
      log: console,
      taskID,
      con: pool,
      queueName: app.queueName,
      task,
      claimTimeout: 60,
      onLeaseExtended: (seconds) => leases.push(seconds),
    });
    expect(ctx.taskID).toBe(taskID);
    expect(await ctx.step('earlier', () => 'recomputed')).toBe('stored');
    expect(await ctx.step('now', () => ({ ok: true }))).toEqual({ ok: true });
    expect(leases).toEqual([60]);
    expect(await checkpoints(pool, app.queueName, taskID)).toMatchObject({ earlier: 'stored', now: { ok: true } });
  });

  it('spawns children on their own queue and checks contract params', async () => {
    const pool = clients.pool({ max: 5, idleTimeoutMillis: 0 });
    const app = await clients.app(queueName('parent'), { db: pool });
    const childQueue = queueName('child');
    await app.createQueue(childQueue);
    const child = defineTask({ name: 'child', queue: childQueue, params: z.object({ n: z.number() }), result: z.null() });
    await app.spawn('by-hand', null, { queue: app.queueName });
    const [task] = await app.claimTasks();
    if (!task) throw new Error('nothing claimed');
    const ctx = await TaskContext.create({ con: pool, queueName: app.queueName, task, claimTimeout: 60 });
    await expect(ctx.spawn(child, { n: 'one' as unknown as number })).rejects.toBeInstanceOf(ValidationError);
    const handle = await ctx.spawn(child, { n: 1 });
    expect(handle.queue).toBe(childQueue);
    expect(await taskRow(pool, childQueue, handle.taskID)).toMatchObject({
      task_name: 'child',
      params: { n: 1 },
      headers: { 'absurd.parent': { queue: app.queueName, taskId: task.task_id } },
    });
    // Durable: the same calls on a replay return the same child (the refused spawn numbered too).
    const replay = await TaskContext.create({ con: pool, queueName: app.queueName, task: { ...task, checkpoints: undefined }, claimTimeout: 60 });
    await expect(replay.spawn(child, { n: 'one' as unknown as number })).rejects.toBeInstanceOf(ValidationError);
    expect((await replay.spawn(child, { n: 1 })).taskID).toBe(handle.taskID);
  });
});
