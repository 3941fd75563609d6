import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { awaitEvent, cancelTask, claim, claimOne, newQueue, runRow, setNow, spawn, table, taskRow, utcClient } from './helpers.js';

const db = useTestDatabase();

/** A task spawned on `queue` as a child of `parent` (the `absurd.parent` header; none when undefined). */
async function spawnChild(queue: string, parent: unknown, options: Record<string, unknown> = {}): Promise<string> {
  const headers = parent === undefined ? {} : { headers: { 'absurd.parent': parent } };
  return (await spawn(db.pool, queue, 'child', {}, { ...options, ...headers })).task_id;
}

async function events(queue: string): Promise<{ event_name: string; payload: unknown }[]> {
  const { rows } = await db.pool.query(`select event_name, payload from ${table('e', queue)} order by event_name`);
  return rows;
}

const announcement = (taskId: string) => ({ event_name: `$taskResult:${taskId}`, payload: { state: 'cancelled' } });

describe('cancel_task announces the end of a child task to its parent', () => {
  it('emits $taskResult:<task> with {"state": "cancelled"} on the parent queue and wakes the waiting parent run', async () => {
    const parentQueue = await newQueue(db.pool, 'parents');
    const childQueue = await newQueue(db.pool, 'children');
    const parent = await spawn(db.pool, parentQueue, 'parent');
    await claimOne(db.pool, parentQueue);
    const childId = await spawnChild(childQueue, { queue: parentQueue, taskId: parent.task_id });
    const waited = await awaitEvent(db.pool, parentQueue, parent.task_id, parent.run_id, 'wait-child', `$taskResult:${childId}`);
    expect(waited.should_suspend).toBe(true);

    await cancelTask(db.pool, childQueue, childId);

    expect((await taskRow(db.pool, childQueue, childId)).state).toBe('cancelled');
    expect(await events(parentQueue)).toEqual([announcement(childId)]);
    expect((await runRow(db.pool, parentQueue, parent.run_id)).state).toBe('pending');
  });

  it("announces a cancellation by claim_task's policy sweep too", async () => {
    const parentQueue = await newQueue(db.pool, 'policy parents');
    const childQueue = await newQueue(db.pool, 'policy children');
    const childId = await spawnChild(childQueue, { queue: parentQueue, taskId: randomUUID() }, { cancellation: { max_delay: 1 } });
    const sweeper = await utcClient(db);
    await setNow(sweeper, new Date(Date.now() + 10_000));
    expect(await claim(sweeper, childQueue, 'sweeper')).toEqual([]);
    expect((await taskRow(db.pool, childQueue, childId)).state).toBe('cancelled');
    expect(await events(parentQueue)).toEqual([announcement(childId)]);
  });

  it('emits nothing for a task without a parent, or for one that had already ended', async () => {
    const queue = await newQueue(db.pool, 'plain');
    const loner = await spawnChild(queue, undefined);
    await cancelTask(db.pool, queue, loner);
    expect((await taskRow(db.pool, queue, loner)).state).toBe('cancelled');
    expect(await events(queue)).toEqual([]);

    const parentQueue = await newQueue(db.pool, 'ended parents');
    const childId = await spawnChild(queue, { queue: parentQueue, taskId: randomUUID() });
    await cancelTask(db.pool, queue, childId);
    await db.pool.query(`delete from ${table('e', parentQueue)}`);
    // Cancelling again is a no-op: no second announcement.
    await cancelTask(db.pool, queue, childId);
    expect(await events(parentQueue)).toEqual([]);
  });

  it('cancels all the same when the parent queue is gone or the header is malformed', async () => {
    const queue = await newQueue(db.pool, 'orphans');
    for (const parent of [{ queue: 'no such queue', taskId: randomUUID() }, { queue: '', taskId: 1 }, { queue: 42 }, 'nonsense']) {
      const childId = await spawnChild(queue, parent);
      await cancelTask(db.pool, queue, childId);
      expect((await taskRow(db.pool, queue, childId)).state).toBe('cancelled');
    }
    expect(await events(queue)).toEqual([]);
  });

  it('kit_cancel_task still cancels and announces (once)', async () => {
    const parentQueue = await newQueue(db.pool, 'kit parents');
    const childQueue = await newQueue(db.pool, 'kit children');
    const childId = await spawnChild(childQueue, { queue: parentQueue, taskId: randomUUID() });
    await db.pool.query('select absurd.kit_cancel_task($1, $2)', [childQueue, childId]);
    expect((await taskRow(db.pool, childQueue, childId)).state).toBe('cancelled');
    expect(await events(parentQueue)).toEqual([announcement(childId)]);
  });
});
