import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';

const db = useTestDatabase();
let counter = 0;

/** A fresh queue (awkward names included: every identifier is quoted). */
async function newQueue(label: string): Promise<string> {
  const name = `${label} "${++counter}"`;
  await db.pool.query('select absurd.create_queue($1)', [name]);
  return name;
}

const ident = (name: string) => `"${name.replace(/"/g, '""')}"`;

async function spawnChild(queue: string, parent: unknown, options: Record<string, unknown> = {}): Promise<string> {
  const { rows } = await db.pool.query<{ task_id: string }>(
    'select task_id from absurd.spawn_task($1, $2, $3::text::jsonb, $4::text::jsonb)',
    [queue, 'child', '{}', JSON.stringify({ ...options, ...(parent === undefined ? {} : { headers: { 'absurd.parent': parent } }) })],
  );
  return rows[0]!.task_id;
}

async function events(queue: string): Promise<{ event_name: string; payload: unknown }[]> {
  const { rows } = await db.pool.query(`select event_name, payload from absurd.${ident(`e_${queue}`)} order by event_name`);
  return rows;
}

async function taskState(queue: string, taskId: string): Promise<string> {
  const { rows } = await db.pool.query(`select state from absurd.${ident(`t_${queue}`)} where task_id = $1`, [taskId]);
  return rows[0]?.state;
}

describe('cancel_task announces the end of a child task to its parent', () => {
  it('emits $taskResult:<task> with {"state": "cancelled"} on the parent queue and wakes the waiting parent run', async () => {
    const parentQueue = await newQueue('parents');
    const childQueue = await newQueue('children');
    // A parent run waiting for the child's result event.
    const { rows: spawned } = await db.pool.query<{ task_id: string; run_id: string }>(
      `select task_id, run_id from absurd.spawn_task($1, 'parent', '{}'::jsonb, '{}'::jsonb)`,
      [parentQueue],
    );
    const parent = spawned[0]!;
    await db.pool.query(`select * from absurd.claim_task($1, 'w', 60, 1)`, [parentQueue]);
    const childId = await spawnChild(childQueue, { queue: parentQueue, taskId: parent.task_id });
    const { rows: waited } = await db.pool.query<{ should_suspend: boolean }>(
      'select should_suspend from absurd.await_event($1, $2, $3, $4, $5, null)',
      [parentQueue, parent.task_id, parent.run_id, 'wait-child', `$taskResult:${childId}`],
    );
    expect(waited[0]?.should_suspend).toBe(true);

    await db.pool.query('select absurd.cancel_task($1, $2)', [childQueue, childId]);

    expect(await taskState(childQueue, childId)).toBe('cancelled');
    expect(await events(parentQueue)).toEqual([{ event_name: `$taskResult:${childId}`, payload: { state: 'cancelled' } }]);
    const { rows: runs } = await db.pool.query(`select state from absurd.${ident(`r_${parentQueue}`)} where run_id = $1`, [parent.run_id]);
    expect(runs[0]?.state).toBe('pending');
  });

  it('announces a cancellation by claim_task\'s policy sweep too', async () => {
    const parentQueue = await newQueue('policy parents');
    const childQueue = await newQueue('policy children');
    const parentId = randomUUID();
    const childId = await spawnChild(childQueue, { queue: parentQueue, taskId: parentId }, { cancellation: { max_delay: 1 } });
    const c = await db.connect();
    await c.query(`select set_config('absurd.fake_now', (clock_timestamp() + interval '10 seconds')::text, false)`);
    const { rows } = await c.query('select * from absurd.claim_task($1, $2, 60, 1)', [childQueue, 'sweeper']);
    expect(rows).toEqual([]);
    expect(await taskState(childQueue, childId)).toBe('cancelled');
    expect(await events(parentQueue)).toEqual([{ event_name: `$taskResult:${childId}`, payload: { state: 'cancelled' } }]);
  });

  it('emits nothing for a task without a parent, or for one that had already ended', async () => {
    const queue = await newQueue('plain');
    const loner = await spawnChild(queue, undefined);
    await db.pool.query('select absurd.cancel_task($1, $2)', [queue, loner]);
    expect(await taskState(queue, loner)).toBe('cancelled');
    expect(await events(queue)).toEqual([]);

    const parentQueue = await newQueue('ended parents');
    const childId = await spawnChild(queue, { queue: parentQueue, taskId: randomUUID() });
    await db.pool.query('select absurd.cancel_task($1, $2)', [queue, childId]);
    await db.pool.query(`delete from absurd.${ident(`e_${parentQueue}`)}`);
    // Cancelling again is a no-op: no second announcement.
    await db.pool.query('select absurd.cancel_task($1, $2)', [queue, childId]);
    expect(await events(parentQueue)).toEqual([]);
  });

  it('cancels all the same when the parent queue is gone or the header is malformed', async () => {
    const queue = await newQueue('orphans');
    for (const parent of [{ queue: 'no such queue', taskId: randomUUID() }, { queue: '', taskId: 1 }, { queue: 42 }, 'nonsense']) {
      const childId = await spawnChild(queue, parent);
      await db.pool.query('select absurd.cancel_task($1, $2)', [queue, childId]);
      expect(await taskState(queue, childId)).toBe('cancelled');
    }
    expect(await events(queue)).toEqual([]);
  });

  it('kit_cancel_task still cancels and announces (once)', async () => {
    const parentQueue = await newQueue('kit parents');
    const childQueue = await newQueue('kit children');
    const childId = await spawnChild(childQueue, { queue: parentQueue, taskId: randomUUID() });
    await db.pool.query('select absurd.kit_cancel_task($1, $2)', [childQueue, childId]);
    expect(await taskState(childQueue, childId)).toBe('cancelled');
    expect(await events(parentQueue)).toEqual([{ event_name: `$taskResult:${childId}`, payload: { state: 'cancelled' } }]);
  });
});
