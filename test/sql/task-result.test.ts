import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import {
  cancelTask,
  claimOne,
  completeRun,
  createQueue,
  expectPgError,
  failRun,
  plus,
  queueName,
  scheduleRun,
  spawn,
  useSession,
} from './helpers.js';

const db = useTestDatabase();
const T0 = new Date('2024-05-01T10:00:00.000Z');
const c = useSession(db, { now: T0 });

interface TaskResult {
  task_id: string;
  state: string;
  result: unknown;
  failure_reason: unknown;
}

async function result(q: string, taskId: string): Promise<TaskResult[]> {
  return (await c.query<TaskResult>('select * from absurd.get_task_result($1, $2)', [q, taskId])).rows;
}

describe('get_task_result', () => {
  it('returns the four documented columns', async () => {
    const q = await createQueue(c, queueName('cols'));
    const { task_id } = await spawn(c, q);
    const { fields } = await c.query('select * from absurd.get_task_result($1, $2)', [q, task_id]);
    expect(fields.map((f) => f.name)).toEqual(['task_id', 'state', 'result', 'failure_reason']);
  });

  it('returns no row for an unknown task', async () => {
    const q = await createQueue(c, queueName('unknown'));
    expect(await result(q, '018f2d6c-0000-7000-8000-000000000000')).toEqual([]);
  });

  it('validates the queue name', async () => {
    await expectPgError(result('q'.repeat(58), '018f2d6c-0000-7000-8000-000000000000'), 'P0001', 'is too long (max 57 bytes).');
    await expectPgError(result('', '018f2d6c-0000-7000-8000-000000000000'), 'P0001', 'Queue name must be provided');
  });

  it('reports pending, running and sleeping tasks without result or failure', async () => {
    const q = await createQueue(c, queueName('active'));
    const { task_id, run_id } = await spawn(c, q);
    expect(await result(q, task_id)).toEqual([{ task_id, state: 'pending', result: null, failure_reason: null }]);
    await claimOne(c, q);
    expect(await result(q, task_id)).toEqual([{ task_id, state: 'running', result: null, failure_reason: null }]);
    await scheduleRun(c, q, run_id, plus(T0, 100));
    expect(await result(q, task_id)).toEqual([{ task_id, state: 'sleeping', result: null, failure_reason: null }]);
  });

  it('returns the completed payload', async () => {
    const q = await createQueue(c, queueName('completed'));
    const { task_id, run_id } = await spawn(c, q);
    await claimOne(c, q);
    await completeRun(c, q, run_id, { total: 3, items: ['a'] });
    expect(await result(q, task_id)).toEqual([{ task_id, state: 'completed', result: { total: 3, items: ['a'] }, failure_reason: null }]);
  });

  it('returns a JSON null result as jsonb null', async () => {
    const q = await createQueue(c, queueName('nullresult'));
    const { task_id, run_id } = await spawn(c, q);
    await claimOne(c, q);
    await completeRun(c, q, run_id, null);
    const { rows } = await c.query('select state, jsonb_typeof(result) as type from absurd.get_task_result($1, $2)', [q, task_id]);
    expect(rows).toEqual([{ state: 'completed', type: 'null' }]);
  });

  it("returns the last attempt's failure_reason for a failed task", async () => {
    const q = await createQueue(c, queueName('failed'));
    const { task_id } = await spawn(c, q, 'job', {}, { max_attempts: 2 });
    await failRun(c, q, (await claimOne(c, q)).run_id, { name: 'Error', message: 'first' });
    expect(await result(q, task_id)).toEqual([{ task_id, state: 'pending', result: null, failure_reason: null }]);
    await failRun(c, q, (await claimOne(c, q)).run_id, { name: 'Error', message: 'second' });
    expect(await result(q, task_id)).toEqual([
      { task_id, state: 'failed', result: null, failure_reason: { name: 'Error', message: 'second' } },
    ]);
  });

  it('returns neither result nor failure for a cancelled task, even one with failed runs', async () => {
    const q = await createQueue(c, queueName('cancelled'));
    const a = await spawn(c, q);
    await cancelTask(c, q, a.task_id);
    expect(await result(q, a.task_id)).toEqual([{ task_id: a.task_id, state: 'cancelled', result: null, failure_reason: null }]);

    const b = await spawn(c, q, 'job', {}, { retry_strategy: { kind: 'fixed', base_seconds: 100 }, cancellation: { max_duration: 50 } });
    await failRun(c, q, (await claimOne(c, q)).run_id, { message: 'boom' });
    expect(await result(q, b.task_id)).toEqual([{ task_id: b.task_id, state: 'cancelled', result: null, failure_reason: null }]);
  });
});
