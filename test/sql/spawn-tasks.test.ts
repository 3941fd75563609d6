/**
 * Migration 000013, part 2: kit_spawn_tasks, many spawns in one statement — results in order, the
 * rows spawn_task would write, idempotency keys per element (existing tasks and earlier elements),
 * every element checked before anything is written, partitioned queues, and one notification.
 */
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import {
  countRows,
  createQueue,
  expectPgError,
  newQueue,
  queueName,
  runRow,
  spawn,
  table,
  taskRow,
  useSession,
  type SpawnResult,
} from './helpers.js';

const db = useTestDatabase();
const c = useSession(db, { outsideSchema: true, now: '2024-05-01T10:00:00.000Z' });

async function spawnTasks(queue: string, tasks: unknown): Promise<SpawnResult[]> {
  const { rows } = await c.query<SpawnResult>('select * from absurd.kit_spawn_tasks($1, $2)', [queue, JSON.stringify(tasks)]);
  return rows;
}

describe('kit_spawn_tasks', () => {
  it('creates each task with its first run, as spawn_task does, and returns them in order', async () => {
    const q = await newQueue(c, 'bulk');
    const results = await spawnTasks(q, [
      { task_name: 'a', params: { i: 0 } },
      { task_name: 'b', params: [1, 2], options: { max_attempts: 3, headers: { h: 1 }, retry_strategy: { kind: 'fixed', base_seconds: 5 } } },
      { task_name: 'c' },
    ]);
    expect(results.map((r) => [r.attempt, r.created])).toEqual([
      [1, true],
      [1, true],
      [1, true],
    ]);
    const tasks = await Promise.all(results.map((r) => taskRow(c, q, r.task_id)));
    expect(tasks.map((t) => [t.task_name, t.params, t.max_attempts, t.state, t.attempts, t.last_attempt_run])).toEqual([
      ['a', { i: 0 }, null, 'pending', 1, results[0]!.run_id],
      ['b', [1, 2], 3, 'pending', 1, results[1]!.run_id],
      ['c', null, null, 'pending', 1, results[2]!.run_id],
    ]);
    expect(tasks[1]!.headers).toEqual({ h: 1 });
    expect(tasks[1]!.retry_strategy).toEqual({ kind: 'fixed', base_seconds: 5 });
    const run = await runRow(c, q, results[2]!.run_id);
    expect([run.task_id, run.attempt, run.state, run.available_at.toISOString()]).toEqual([
      results[2]!.task_id,
      1,
      'pending',
      '2024-05-01T10:00:00.000Z',
    ]);
  });

  it('returns the existing task for a key already used, by an earlier task or an earlier element', async () => {
    const q = await newQueue(c, 'keys');
    const existing = await spawn(c, q, 'job', {}, { idempotency_key: 'old' });
    const results = await spawnTasks(q, [
      { task_name: 'job', options: { idempotency_key: 'new' } },
      { task_name: 'job', options: { idempotency_key: 'old' } },
      { task_name: 'job', options: { idempotency_key: 'new' } },
      { task_name: 'job' },
    ]);
    expect(results[1]).toEqual({ ...existing, created: false });
    expect(results[2]).toEqual({ ...results[0], created: false });
    expect(results.map((r) => r.created)).toEqual([true, false, false, true]);
    expect(await countRows(c, q, 't')).toBe(3);
    expect(await countRows(c, q, 'r')).toBe(3);
  });

  it('checks every element before writing anything, and names the one refused', async () => {
    const q = await newQueue(c, 'refuse');
    const refused: [unknown, string][] = [
      [{ task_name: ' ' }, 'tasks[1]: task_name must be provided'],
      [{ task_name: 'x', options: { max_attempts: 0 } }, 'tasks[1]: max_attempts must be >= 1'],
      [{ task_name: 'x', options: { cancellation: { max_delay: 'soon' } } }, 'tasks[1]: cancellation.max_delay must be a whole number of seconds'],
      [{ task_name: 'x', options: { retry_strategy: { kind: 'fixed', factor: 'x' } } }, 'tasks[1]: retry_strategy.factor must be a number'],
      ['x', 'tasks[1]: must be an object'],
    ];
    for (const [element, message] of refused) {
      await expectPgError(spawnTasks(q, [{ task_name: 'fine' }, element]), 'P0001', message);
    }
    await expectPgError(spawnTasks(q, { task_name: 'x' }), 'P0001', 'tasks must be a JSON array');
    expect(await countRows(c, q, 't')).toBe(0);
  });

  it('spawns nothing for an empty array', async () => {
    const q = await newQueue(c, 'empty');
    expect(await spawnTasks(q, [])).toEqual([]);
  });

  it('fails like spawn_task on a queue that does not exist', async () => {
    await expectPgError(spawnTasks(queueName('missing'), [{ task_name: 'x' }]), '42P01');
  });

  it('spawns on a partitioned queue, keys included', async () => {
    const q = queueName('part');
    await c.query(`select absurd.create_queue($1, 'partitioned')`, [q]);
    const results = await spawnTasks(q, [
      { task_name: 'a', options: { idempotency_key: 'k' } },
      { task_name: 'b', options: { idempotency_key: 'k' } },
      { task_name: 'c', params: 7 },
    ]);
    expect(results.map((r) => r.created)).toEqual([true, false, true]);
    expect(results[1]!.task_id).toBe(results[0]!.task_id);
    const { rows } = await c.query(`select task_name, params from ${table('t', q)} order by task_name`);
    expect(rows).toEqual([
      { task_name: 'a', params: null },
      { task_name: 'c', params: 7 },
    ]);
  });

  it('notifies once, and only when a worker of the queue is idle and listening', async () => {
    const q = await createQueue(c, queueName('wake'));
    const notifies = async (): Promise<boolean> => {
      // kit_wake_idle_workers reports what kit_spawn_tasks would do at its end.
      const { rows } = await c.query<{ woke: boolean }>('select absurd.kit_wake_idle_workers($1) as woke', [q]);
      return rows[0]!.woke;
    };
    expect(await notifies()).toBe(false);
    await c.query('select * from absurd.kit_claim_task($1, $2, 30, 1, $3, 60)', [q, 'w', 'L']);
    expect(await notifies()).toBe(true);
  });
});
