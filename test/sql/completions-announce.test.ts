/**
 * Migration 000014: kit_complete_runs announces a child's completion to its waiting parent in the
 * same transaction (kit_announce_end), so the worker sends no second statement.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { awaitEvent, claimOne, newQueue, runRow, spawn, table, taskRow } from './helpers.js';

const db = useTestDatabase();

async function completeRuns(queue: string, runIds: string[], results: unknown[]): Promise<{ run_id: string; outcome: string }[]> {
  const { rows } = await db.pool.query('select * from absurd.kit_complete_runs($1, $2::uuid[], $3::jsonb[])', [
    queue,
    runIds,
    results.map((result) => JSON.stringify(result)),
  ]);
  return rows;
}

async function events(queue: string): Promise<{ event_name: string; payload: unknown }[]> {
  const { rows } = await db.pool.query(`select event_name, payload from ${table('e', queue)} where payload is not null order by event_name`);
  return rows;
}

describe('kit_complete_runs announces completions to the parent', () => {
  it("emits $taskResult:<child> with the snapshot on the parent's queue, which wakes the waiting parent", async () => {
    const parents = await newQueue(db.pool, 'announce parents');
    const children = await newQueue(db.pool, "announce 'children'");
    const parent = await spawn(db.pool, parents, 'parent');
    await claimOne(db.pool, parents);
    const child = await spawn(db.pool, children, 'child', {}, { headers: { 'absurd.parent': { queue: parents, taskId: parent.task_id } } });
    const loner = await spawn(db.pool, children, 'child');
    expect((await awaitEvent(db.pool, parents, parent.task_id, parent.run_id, 'wait', `$taskResult:${child.task_id}`)).should_suspend).toBe(true);
    await claimOne(db.pool, children);
    await claimOne(db.pool, children);

    expect(await completeRuns(children, [child.run_id, loner.run_id, randomUUID()], [{ n: 1 }, null, null])).toEqual([
      { run_id: child.run_id, outcome: 'completed' },
      { run_id: loner.run_id, outcome: 'completed' },
      { run_id: expect.any(String), outcome: 'not_found' },
    ]);

    expect(await events(parents)).toEqual([{ event_name: `$taskResult:${child.task_id}`, payload: { state: 'completed', result: { n: 1 } } }]);
    expect(await events(children)).toEqual([]);
    expect((await runRow(db.pool, parents, parent.run_id)).state).toBe('pending');
    expect((await taskRow(db.pool, children, child.task_id)).state).toBe('completed');
  });

  it('completes whatever becomes of the announcement: a parent queue that is gone, a malformed header', async () => {
    const children = await newQueue(db.pool, 'announce orphans');
    const gone = await spawn(db.pool, children, 'child', {}, { headers: { 'absurd.parent': { queue: 'no such queue', taskId: randomUUID() } } });
    const malformed = await spawn(db.pool, children, 'child', {}, { headers: { 'absurd.parent': 'not an object' } });
    await claimOne(db.pool, children);
    await claimOne(db.pool, children);
    expect((await completeRuns(children, [gone.run_id, malformed.run_id], [1, 2])).map((row) => row.outcome)).toEqual(['completed', 'completed']);
    expect((await taskRow(db.pool, children, gone.task_id)).state).toBe('completed');
  });
});
