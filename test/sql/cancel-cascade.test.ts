/**
 * Migration 000012: cancel_task cancels, after the task, the children its checkpoints name with
 * "cancelWithParent": true and that have not ended — recursively, and by every path that cancels.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { cancelTask, claim, claimOne, completeRun, newQueue, setCheckpoint, setNow, spawn, taskRow, utcClient } from './helpers.js';

const db = useTestDatabase();

/** A running task of `queue` that has spawned (checkpointed) the given children. */
async function parentOf(queue: string, children: { queue: string; taskID: string; cancelWithParent?: unknown }[]) {
  const parent = await spawn(db.pool, queue, 'parent');
  await claimOne(db.pool, queue);
  for (const [i, child] of children.entries()) {
    await setCheckpoint(db.pool, queue, parent.task_id, `child-${i}`, { runID: randomUUID(), attempt: 1, created: true, ...child }, parent.run_id);
  }
  return parent;
}

async function states(queue: string, ids: string[]): Promise<string[]> {
  return Promise.all(ids.map(async (id) => (await taskRow(db.pool, queue, id)).state));
}

describe('cancel_task with children to cancel', () => {
  it('cancels the flagged children that have not ended, and only those', async () => {
    const parents = await newQueue(db.pool, 'cascade parents');
    const kids = await newQueue(db.pool, "cascade 'kids'");
    const running = (await spawn(db.pool, kids, 'child')).task_id;
    expect((await claimOne(db.pool, kids)).task_id).toBe(running);
    const done = (await spawn(db.pool, kids, 'child')).task_id;
    await completeRun(db.pool, kids, (await claimOne(db.pool, kids)).run_id, 'ok');
    const pending = (await spawn(db.pool, kids, 'child')).task_id;
    const unflagged = (await spawn(db.pool, kids, 'child')).task_id;
    const parent = await parentOf(parents, [
      { queue: kids, taskID: pending, cancelWithParent: true },
      { queue: kids, taskID: running, cancelWithParent: true },
      { queue: kids, taskID: done, cancelWithParent: true },
      { queue: kids, taskID: unflagged },
      { queue: kids, taskID: randomUUID(), cancelWithParent: 'true' }, // not the JSON true: ignored
    ]);

    await cancelTask(db.pool, parents, parent.task_id);

    expect((await taskRow(db.pool, parents, parent.task_id)).state).toBe('cancelled');
    expect(await states(kids, [pending, running, done, unflagged])).toEqual(['cancelled', 'cancelled', 'completed', 'pending']);
  });

  it('cancels the tasks a list checkpoint names (ctx.spawnMany), in their queue', async () => {
    const parents = await newQueue(db.pool, 'cascade list parents');
    const kids = await newQueue(db.pool, 'cascade list kids');
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await spawn(db.pool, kids, 'child')).task_id);
    const spared = (await spawn(db.pool, kids, 'child')).task_id;
    const parent = await spawn(db.pool, parents, 'parent');
    await claimOne(db.pool, parents);
    const tasks = (list: string[]) => list.map((taskID) => ({ taskID, runID: randomUUID(), attempt: 1, created: true }));
    await setCheckpoint(db.pool, parents, parent.task_id, 'batch', { queue: kids, tasks: tasks(ids), cancelWithParent: true }, parent.run_id);
    await setCheckpoint(db.pool, parents, parent.task_id, 'other', { queue: kids, tasks: tasks([spared]) }, parent.run_id);

    await cancelTask(db.pool, parents, parent.task_id);

    expect(await states(kids, [...ids, spared])).toEqual(['cancelled', 'cancelled', 'cancelled', 'pending']);
  });

  it('cascades through grandchildren, and passes over children it cannot cancel', async () => {
    const q = await newQueue(db.pool, 'cascade tree');
    const grandchild = (await spawn(db.pool, q, 'grandchild')).task_id;
    const child = await parentOf(q, [{ queue: q, taskID: grandchild, cancelWithParent: true }]);
    const root = await parentOf(q, [
      { queue: 'no such queue', taskID: randomUUID(), cancelWithParent: true },
      { queue: q, taskID: 'not-a-uuid', cancelWithParent: true },
      { queue: q, taskID: randomUUID(), cancelWithParent: true },
      { queue: q, taskID: child.task_id, cancelWithParent: true },
    ]);

    await cancelTask(db.pool, q, root.task_id);

    expect(await states(q, [root.task_id, child.task_id, grandchild])).toEqual(['cancelled', 'cancelled', 'cancelled']);
  });

  it("cascades from claim_task's cancellation-policy sweep too", async () => {
    const q = await newQueue(db.pool, 'cascade policy');
    const kid = (await spawn(db.pool, q, 'child')).task_id;
    const parent = await spawn(db.pool, q, 'parent', {}, { cancellation: { max_delay: 1 } });
    await setCheckpoint(db.pool, q, parent.task_id, 'kid', { queue: q, taskID: kid, cancelWithParent: true }, parent.run_id);
    const sweeper = await utcClient(db);
    try {
      await setNow(sweeper, new Date(Date.now() + 10_000));
      await claim(sweeper, q, 'sweeper');
      expect(await states(q, [parent.task_id, kid])).toEqual(['cancelled', 'cancelled']);
    } finally {
      await sweeper.end();
    }
  });
});
