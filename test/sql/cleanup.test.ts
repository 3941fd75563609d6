import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import {
  cancelTask,
  claimOne,
  completeRun,
  countRows,
  createQueue,
  expectPgError,
  failRun,
  insertWait,
  one,
  plus,
  queueName,
  setNow,
  snapshot,
  spawn,
  table,
  taskRows,
  useSession,
} from './helpers.js';

const db = useTestDatabase();
const T0 = new Date('2024-05-01T10:00:00.000Z');
const c = useSession(db, { now: T0 });

async function cleanupTasks(q: string, ttl: number | null, limit?: number): Promise<number> {
  const { rows } =
    limit === undefined
      ? await c.query<{ n: number }>('select absurd.cleanup_tasks($1, $2) as n', [q, ttl])
      : await c.query<{ n: number }>('select absurd.cleanup_tasks($1, $2, $3) as n', [q, ttl, limit]);
  return one(rows).n;
}

async function cleanupEvents(q: string, ttl: number | null, limit?: number): Promise<number> {
  const { rows } =
    limit === undefined
      ? await c.query<{ n: number }>('select absurd.cleanup_events($1, $2) as n', [q, ttl])
      : await c.query<{ n: number }>('select absurd.cleanup_events($1, $2, $3) as n', [q, ttl, limit]);
  return one(rows).n;
}

/** Spawns and completes a task at `at` (claimed and completed at the same instant). */
async function completedAt(q: string, at: Date, name = 'job') {
  await setNow(c, at);
  const spawned = await spawn(c, q, name);
  const claimed = await claimOne(c, q);
  expect(claimed.task_id).toBe(spawned.task_id);
  await completeRun(c, q, claimed.run_id, 'ok');
  return spawned;
}

async function emitAt(q: string, at: Date, name: string): Promise<void> {
  await setNow(c, at);
  await c.query('select absurd.emit_event($1, $2, $3)', [q, name, '{"v": 1}']);
}

async function eventNames(q: string): Promise<string[]> {
  const { rows } = await c.query<{ event_name: string }>(`select event_name from ${table('e', q)} order by event_name`);
  return rows.map((r) => r.event_name);
}

describe('cleanup_tasks', () => {
  it('deletes completed tasks whose completion is strictly older than the TTL', async () => {
    const q = await createQueue(c, queueName('completed'));
    const { task_id } = await completedAt(q, plus(T0, 10));
    await setNow(c, plus(T0, 100));
    expect(await cleanupTasks(q, 90)).toBe(0);
    expect(await taskRows(c, q)).toHaveLength(1);
    expect(await cleanupTasks(q, 89)).toBe(1);
    expect(await taskRows(c, q)).toEqual([]);
    expect(await countRows(c, q, 'r')).toBe(0);
    expect((await taskRows(c, q)).find((t) => t.task_id === task_id)).toBeUndefined();
  });

  it("uses the last attempt's failed_at for failed tasks and cancelled_at for cancelled ones", async () => {
    const q = await createQueue(c, queueName('terminal'));
    const failed = await spawn(c, q, 'failed', {}, { max_attempts: 2 });
    await failRun(c, q, (await claimOne(c, q)).run_id);
    await setNow(c, plus(T0, 50));
    await failRun(c, q, (await claimOne(c, q)).run_id);
    await setNow(c, plus(T0, 20));
    const cancelled = await spawn(c, q, 'cancelled');
    await cancelTask(c, q, cancelled.task_id);
    await setNow(c, plus(T0, 100));
    expect(await cleanupTasks(q, 80)).toBe(0);
    expect(await cleanupTasks(q, 79)).toBe(1);
    expect((await taskRows(c, q)).map((t) => t.task_id)).toEqual([failed.task_id]);
    expect(await cleanupTasks(q, 49)).toBe(1);
    expect(await taskRows(c, q)).toEqual([]);
    expect(await countRows(c, q, 'r')).toBe(0);
  });

  it('judges a completed task by its final run, not by older failed runs', async () => {
    const q = await createQueue(c, queueName('finalrun'));
    const { task_id } = await spawn(c, q);
    await failRun(c, q, (await claimOne(c, q)).run_id);
    await setNow(c, plus(T0, 1000));
    await completeRun(c, q, (await claimOne(c, q)).run_id, 'ok');
    await setNow(c, plus(T0, 1050));
    expect(await cleanupTasks(q, 100)).toBe(0);
    expect((await taskRows(c, q)).map((t) => t.task_id)).toEqual([task_id]);
  });

  it('never deletes pending, running or sleeping tasks', async () => {
    const q = await createQueue(c, queueName('active'));
    await spawn(c, q, 'pending');
    await spawn(c, q, 'running');
    await spawn(c, q, 'sleeping');
    const { run_id } = await claimOne(c, q);
    const second = await claimOne(c, q);
    await c.query('select absurd.schedule_run($1, $2, $3)', [q, second.run_id, plus(T0, 1)]);
    expect(run_id).not.toBe(second.run_id);
    await setNow(c, plus(T0, 10 * 365 * 86400));
    const before = await snapshot(c, q);
    expect(await cleanupTasks(q, 0)).toBe(0);
    expect(await snapshot(c, q)).toEqual(before);
  });

  it('deletes the waits, checkpoints and runs of deleted tasks, but no events', async () => {
    const q = await createQueue(c, queueName('deps'));
    const old = await spawn(c, q, 'old');
    const oldRun = await claimOne(c, q);
    await c.query('select absurd.set_task_checkpoint_state($1, $2, $3, $4, $5)', [q, old.task_id, 'step', '1', oldRun.run_id]);
    await completeRun(c, q, oldRun.run_id, 'ok');
    await insertWait(c, q, old.task_id, oldRun.run_id, 'leftover', 'ev', null);
    const keep = await spawn(c, q, 'keep');
    const keepRun = await claimOne(c, q);
    await c.query('select absurd.set_task_checkpoint_state($1, $2, $3, $4, $5)', [q, keep.task_id, 'step', '2', keepRun.run_id]);
    await insertWait(c, q, keep.task_id, keepRun.run_id, 'kept', 'ev', null);
    await emitAt(q, T0, 'old-event');
    await setNow(c, plus(T0, 100));
    expect(await cleanupTasks(q, 10)).toBe(1);
    expect((await taskRows(c, q)).map((t) => t.task_id)).toEqual([keep.task_id]);
    const { rows } = await c.query(
      `select (select count(*)::int from ${table('r', q)} where task_id = $1) as runs,
              (select count(*)::int from ${table('c', q)} where task_id = $1) as checkpoints,
              (select count(*)::int from ${table('w', q)} where task_id = $1) as waits,
              (select count(*)::int from ${table('r', q)}) as all_runs,
              (select count(*)::int from ${table('c', q)}) as all_checkpoints,
              (select count(*)::int from ${table('w', q)}) as all_waits`,
      [old.task_id],
    );
    expect(one(rows)).toEqual({ runs: 0, checkpoints: 0, waits: 0, all_runs: 1, all_checkpoints: 1, all_waits: 1 });
    expect(await eventNames(q)).toEqual(['old-event']);
  });

  it('deletes at most the limit, oldest first, and defaults the limit to 1000', async () => {
    const q = await createQueue(c, queueName('limit'));
    const done = [];
    for (let i = 0; i < 5; i++) done.push(await completedAt(q, plus(T0, 5 - i), `job-${i}`));
    await setNow(c, plus(T0, 100));
    expect(await cleanupTasks(q, 0, 2)).toBe(2);
    expect((await taskRows(c, q)).map((t) => t.task_name).sort()).toEqual(['job-0', 'job-1', 'job-2']);
    expect(await cleanupTasks(q, 0)).toBe(3);
    expect(await taskRows(c, q)).toEqual([]);
  });

  it('rejects a NULL or negative TTL, changing nothing', async () => {
    const q = await createQueue(c, queueName('ttl'));
    await completedAt(q, T0);
    await setNow(c, plus(T0, 100));
    const before = await snapshot(c, q);
    for (const ttl of [null, -1]) {
      await expectPgError(cleanupTasks(q, ttl), 'P0001', 'TTL must be a non-negative number of seconds');
      await expectPgError(cleanupEvents(q, ttl), 'P0001', 'TTL must be a non-negative number of seconds');
    }
    expect(await snapshot(c, q)).toEqual(before);
  });
});

describe('cleanup_events', () => {
  it('deletes events emitted strictly before the cutoff, including not-yet-emitted sentinels', async () => {
    const q = await createQueue(c, queueName('events'));
    await emitAt(q, T0, 'a');
    await emitAt(q, plus(T0, 10), 'b');
    await emitAt(q, plus(T0, 20), 'c');
    await c.query(`insert into ${table('e', q)} (event_name, payload, emitted_at) values ('sentinel', null, 'epoch')`);
    await setNow(c, plus(T0, 100));
    expect(await cleanupEvents(q, 90)).toBe(2);
    expect(await eventNames(q)).toEqual(['b', 'c']);
    expect(await cleanupEvents(q, 80)).toBe(1);
    expect(await eventNames(q)).toEqual(['c']);
  });

  it('deletes at most the limit, oldest first', async () => {
    const q = await createQueue(c, queueName('evlimit'));
    await emitAt(q, plus(T0, 30), 'newest');
    await emitAt(q, plus(T0, 20), 'middle');
    await emitAt(q, plus(T0, 10), 'oldest');
    await setNow(c, plus(T0, 100));
    expect(await cleanupEvents(q, 0, 2)).toBe(2);
    expect(await eventNames(q)).toEqual(['newest']);
  });
});

describe('cleanup_all_queues', () => {
  async function prepare(q: string, ttl: string, limit = 1000): Promise<void> {
    await createQueue(c, q);
    await c.query('select absurd.set_queue_policy($1, $2)', [q, JSON.stringify({ cleanup_ttl: ttl, cleanup_limit: limit })]);
    await completedAt(q, T0, 'old');
    await emitAt(q, T0, 'old-event');
    await completedAt(q, plus(T0, 7000), 'fresh');
    await emitAt(q, plus(T0, 7000), 'fresh-event');
  }

  it('cleans every queue by its own policy and reports one row per queue in name order', async () => {
    const base = queueName('all');
    const q1 = `${base}_q1`;
    const q2 = `${base}_q2`;
    await prepare(q2, '1 hour');
    await prepare(q1, '1 hour');
    await setNow(c, plus(T0, 7200));
    const { rows, fields } = await c.query<{ queue_name: string; tasks_deleted: number; events_deleted: number }>(
      'select * from absurd.cleanup_all_queues()',
    );
    expect(fields.map((f) => f.name)).toEqual(['queue_name', 'tasks_deleted', 'events_deleted']);
    expect(rows.filter((r) => r.queue_name.startsWith(base)).map((r) => [r.queue_name, r.tasks_deleted, r.events_deleted])).toEqual([
      [q1, 1, 1],
      [q2, 1, 1],
    ]);
    const names = rows.map((r) => r.queue_name);
    expect(names).toEqual([...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    for (const q of [q1, q2]) {
      expect((await taskRows(c, q)).map((t) => t.task_name)).toEqual(['fresh']);
      expect(await eventNames(q)).toEqual(['fresh-event']);
    }
  });

  it('cleans only the given queue when one is named', async () => {
    const base = queueName('one');
    const q1 = `${base}_q1`;
    const q2 = `${base}_q2`;
    await prepare(q1, '1 hour');
    await prepare(q2, '1 hour');
    await setNow(c, plus(T0, 7200));
    const { rows } = await c.query('select * from absurd.cleanup_all_queues($1)', [q1]);
    expect(rows).toEqual([{ queue_name: q1, tasks_deleted: 1, events_deleted: 1 }]);
    expect(await taskRows(c, q2)).toHaveLength(2);
  });

  it('honours cleanup_limit and floors a fractional TTL', async () => {
    const q = queueName('policy');
    await prepare(q, '90.9 seconds', 1);
    await completedAt(q, plus(T0, 10.5), 'old-2');
    // At T0+101 a TTL of 90.9 s floored to 90 s puts the cutoff at T0+11, after the second old task (T0+10.5).
    await setNow(c, plus(T0, 101));
    const { rows } = await c.query('select * from absurd.cleanup_all_queues($1)', [q]);
    expect(rows).toEqual([{ queue_name: q, tasks_deleted: 1, events_deleted: 1 }]);
    const again = await c.query('select * from absurd.cleanup_all_queues($1)', [q]);
    expect(again.rows).toEqual([{ queue_name: q, tasks_deleted: 1, events_deleted: 0 }]);
  });

  it('rejects a missing queue and an invalid name', async () => {
    const q = queueName('nosuch');
    await expectPgError(c.query('select * from absurd.cleanup_all_queues($1)', [q]), 'P0001', `Queue "${q}" does not exist`);
    await expectPgError(c.query('select * from absurd.cleanup_all_queues($1)', ['q'.repeat(58)]), 'P0001', 'is too long (max 57 bytes).');
  });
});
