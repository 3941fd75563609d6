import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import {
  cancelTask,
  claimOne,
  completeRun,
  createQueue,
  expectPgError,
  failRun,
  one,
  plus,
  queueName,
  runRows,
  setNow,
  snapshot,
  spawn,
  table,
  taskRow,
  taskRows,
  useSession,
  type SpawnResult,
} from './helpers.js';

const db = useTestDatabase();
const T0 = new Date('2024-05-01T10:00:00.000Z');
const c = useSession(db, { now: T0 });

async function retryTask(q: string, taskId: string, options?: unknown): Promise<SpawnResult> {
  const { rows } =
    options === undefined
      ? await c.query<SpawnResult>('select * from absurd.retry_task($1, $2)', [q, taskId])
      : await c.query<SpawnResult>('select * from absurd.retry_task($1, $2, $3::jsonb)', [q, taskId, JSON.stringify(options)]);
  return one(rows);
}

/** A task that failed for good after `maxAttempts` attempts. */
async function failedTask(label: string, options: Record<string, unknown> = {}) {
  const q = await createQueue(c, queueName(label));
  const spawned = await spawn(c, q, 'flaky', { n: 1 }, { max_attempts: 1, ...options });
  const maxAttempts = (options.max_attempts as number | null | undefined) ?? 1;
  for (let i = 0; i < (maxAttempts ?? 1); i++) {
    const claimed = await claimOne(c, q);
    await failRun(c, q, claimed.run_id, { message: `attempt ${claimed.attempt}` });
  }
  expect((await taskRow(c, q, spawned.task_id)).state).toBe('failed');
  return { q, ...spawned };
}

describe('retry_task in place', () => {
  it('adds one more attempt by default and returns the new run with created=false', async () => {
    const { q, task_id, run_id } = await failedTask('default');
    const at = await setNow(c, plus(T0, 50));
    const result = await retryTask(q, task_id);
    expect(result).toEqual({ task_id, run_id: expect.any(String), attempt: 2, created: false });
    expect(result.run_id).not.toBe(run_id);
    expect(await taskRow(c, q, task_id)).toMatchObject({
      state: 'pending',
      attempts: 2,
      max_attempts: 2,
      last_attempt_run: result.run_id,
      cancelled_at: null,
    });
    const all = await runRows(c, q, task_id);
    expect(all.map((r) => [r.attempt, r.state])).toEqual([
      [1, 'failed'],
      [2, 'pending'],
    ]);
    expect(all[1]).toMatchObject({ available_at: at, claimed_by: null, failure_reason: null });
    const claimed = await claimOne(c, q);
    expect(claimed).toMatchObject({ run_id: result.run_id, attempt: 2, max_attempts: 2 });
    await completeRun(c, q, claimed.run_id, 'ok');
    expect((await taskRow(c, q, task_id)).state).toBe('completed');
  });

  it('defaults from max_attempts after several attempts', async () => {
    const { q, task_id } = await failedTask('three', { max_attempts: 3 });
    const result = await retryTask(q, task_id, {});
    expect(result.attempt).toBe(4);
    expect(await taskRow(c, q, task_id)).toMatchObject({ attempts: 4, max_attempts: 4 });
  });

  it('uses attempts + 1 when the task has no max_attempts', async () => {
    const { q, task_id } = await failedTask('unlimited');
    await c.query(`update ${table('t', q)} set max_attempts = null where task_id = $1`, [task_id]);
    const result = await retryTask(q, task_id);
    expect(result.attempt).toBe(2);
    expect((await taskRow(c, q, task_id)).max_attempts).toBe(2);
  });

  it('accepts an explicit max_attempts', async () => {
    const { q, task_id } = await failedTask('explicit');
    const result = await retryTask(q, task_id, { max_attempts: 5 });
    expect(result.attempt).toBe(2);
    expect((await taskRow(c, q, task_id)).max_attempts).toBe(5);
    expect(result.created).toBe(false);
  });

  it('rejects max_attempts that does not exceed the current attempts', async () => {
    const { q, task_id } = await failedTask('small', { max_attempts: 2 });
    const before = await snapshot(c, q);
    await expectPgError(retryTask(q, task_id, { max_attempts: 2 }), 'P0001', 'max_attempts (2) must be greater than current attempts (2)');
    await expectPgError(retryTask(q, task_id, { max_attempts: 1 }), 'P0001', 'must be greater than current attempts');
    await expectPgError(retryTask(q, task_id, { max_attempts: 0 }), 'P0001', 'max_attempts must be >= 1');
    await expectPgError(retryTask(q, task_id, { max_attempts: 0, spawn_new: true }), 'P0001', 'max_attempts must be >= 1');
    expect(await snapshot(c, q)).toEqual(before);
  });

  it('rejects missing tasks and tasks that are not failed', async () => {
    const q = await createQueue(c, queueName('states'));
    const ghost = '018f2d6c-0000-7000-8000-000000000000';
    const cancelled = await spawn(c, q, 'cancelled');
    await cancelTask(c, q, cancelled.task_id);
    const running = await spawn(c, q, 'running');
    await claimOne(c, q);
    const done = await spawn(c, q, 'done');
    await completeRun(c, q, (await claimOne(c, q)).run_id);
    const pending = await spawn(c, q, 'pending');
    expect((await taskRow(c, q, running.task_id)).state).toBe('running');
    expect((await taskRow(c, q, done.task_id)).state).toBe('completed');
    const before = await snapshot(c, q);
    await expectPgError(retryTask(q, ghost), 'P0001', `Task "${ghost}" not found in queue "${q}"`);
    for (const t of [pending, cancelled, running, done]) {
      await expectPgError(retryTask(q, t.task_id), 'P0001', `Task "${t.task_id}" is not currently failed in queue "${q}"`);
      await expectPgError(retryTask(q, t.task_id, { spawn_new: true }), 'P0001', 'is not currently failed');
    }
    expect(await snapshot(c, q)).toEqual(before);
  });
});

describe('retry_task with spawn_new', () => {
  it('spawns a fresh task with the same name, params and options, leaving the old one failed', async () => {
    const options = {
      headers: { trace: 't-1' },
      retry_strategy: { kind: 'fixed', base_seconds: 3 },
      cancellation: { max_duration: 600 },
      idempotency_key: 'once',
    };
    const q = await createQueue(c, queueName('new'));
    const { task_id } = await spawn(c, q, 'flaky', { n: 1 }, { ...options, max_attempts: 1 });
    const claimed = await claimOne(c, q);
    await c.query('select absurd.set_task_checkpoint_state($1, $2, $3, $4, $5)', [q, task_id, 'step-1', '{"done": true}', claimed.run_id]);
    await failRun(c, q, claimed.run_id);
    const checkpoints = await c.query(`select count(*)::int as n from ${table('c', q)} where task_id = $1`, [task_id]);
    expect(one(checkpoints.rows)).toEqual({ n: 1 });
    const before = await taskRow(c, q, task_id);
    const at = await setNow(c, plus(T0, 30));
    const result = await retryTask(q, task_id, { spawn_new: true });
    expect(result).toMatchObject({ attempt: 1, created: true });
    expect(result.task_id).not.toBe(task_id);
    expect(await taskRow(c, q, result.task_id)).toMatchObject({
      task_name: 'flaky',
      params: { n: 1 },
      headers: options.headers,
      retry_strategy: options.retry_strategy,
      cancellation: options.cancellation,
      max_attempts: 1,
      idempotency_key: null,
      state: 'pending',
      attempts: 1,
      last_attempt_run: result.run_id,
      enqueue_at: at,
    });
    expect(await taskRow(c, q, task_id)).toEqual(before);
    const { rows } = await c.query(`select count(*)::int as n from ${table('c', q)} where task_id = $1`, [result.task_id]);
    expect(one(rows)).toEqual({ n: 0 });
    expect(await taskRows(c, q)).toHaveLength(2);
  });

  it('uses the requested max_attempts, else the old one (NULL stays unlimited)', async () => {
    const a = await failedTask('req', { max_attempts: 2 });
    const ra = await retryTask(a.q, a.task_id, { spawn_new: true, max_attempts: 7 });
    expect((await taskRow(c, a.q, ra.task_id)).max_attempts).toBe(7);

    const b = await failedTask('nomax');
    await c.query(`update ${table('t', b.q)} set max_attempts = null where task_id = $1`, [b.task_id]);
    const rb = await retryTask(b.q, b.task_id, { spawn_new: true });
    expect((await taskRow(c, b.q, rb.task_id)).max_attempts).toBeNull();
  });

  it('drops null-valued fields from the copied options', async () => {
    const { q, task_id } = await failedTask('strip', { headers: { keep: 'x', gone: null } });
    const result = await retryTask(q, task_id, { spawn_new: true });
    expect((await taskRow(c, q, result.task_id)).headers).toEqual({ keep: 'x' });
  });

  it('with spawn_new false behaves in place', async () => {
    const { q, task_id } = await failedTask('false');
    const result = await retryTask(q, task_id, { spawn_new: false });
    expect(result).toMatchObject({ task_id, attempt: 2, created: false });
  });
});
