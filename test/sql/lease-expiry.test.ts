import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import {
  claim,
  claimOne,
  completeRun,
  createQueue,
  expectPgError,
  failRun,
  one,
  plus,
  queueName,
  runRow,
  runRows,
  setNow,
  spawn,
  table,
  taskRow,
  useSession,
  utcClient,
} from './helpers.js';

const db = useTestDatabase();
const T0 = new Date('2024-05-01T10:00:00.000Z');
const c = useSession(db, { now: T0 });

async function failedRunCount(q: string): Promise<number> {
  const { rows } = await c.query<{ n: number }>(`select count(*)::int as n from ${table('r', q)} where state = 'failed'`);
  return one(rows).n;
}

describe('lease expiry in claim_task', () => {
  it('fails an expired run with a $ClaimTimeout reason; another worker gets the retry in the same call', async () => {
    const q = await createQueue(c, queueName('expire'));
    const { task_id, run_id } = await spawn(c, q);
    await claimOne(c, q, 'worker-a', 30);
    await setNow(c, plus(T0, 29.999));
    expect(await claim(c, q, 'worker-b')).toEqual([]);
    expect((await runRow(c, q, run_id)).state).toBe('running');

    const at = await setNow(c, plus(T0, 30));
    const claimed = await claimOne(c, q, 'worker-b', 30);
    expect(claimed).toMatchObject({ task_id, attempt: 2 });
    expect(claimed.run_id).not.toBe(run_id);

    const expired = await runRow(c, q, run_id);
    expect(expired).toMatchObject({
      state: 'failed',
      failed_at: at,
      claimed_by: 'worker-a',
      claim_expires_at: plus(T0, 30),
    });
    const reason = expired.failure_reason as Record<string, unknown>;
    expect(reason).toEqual({
      name: '$ClaimTimeout',
      message: 'worker did not finish task within claim interval',
      workerId: 'worker-a',
      claimExpiredAt: expect.any(String),
      attempt: 1,
    });
    expect(new Date(reason.claimExpiredAt as string)).toEqual(plus(T0, 30));
    expect(await runRow(c, q, claimed.run_id)).toMatchObject({ state: 'running', claimed_by: 'worker-b', attempt: 2 });
    expect(await taskRow(c, q, task_id)).toMatchObject({ state: 'running', attempts: 2, last_attempt_run: claimed.run_id });
  });

  it('the zombie worker then gets AB002 from complete_run and fail_run', async () => {
    const q = await createQueue(c, queueName('zombie'));
    const { run_id } = await spawn(c, q);
    await claimOne(c, q, 'worker-a', 10);
    await setNow(c, plus(T0, 11));
    await claimOne(c, q, 'worker-b');
    await expectPgError(completeRun(c, q, run_id, 'late'), 'AB002', `Run "${run_id}" has already failed in queue "${q}"`);
    await expectPgError(failRun(c, q, run_id), 'AB002');
  });

  it('fails at most qty expired runs per call, earliest expiry first', async () => {
    const q = await createQueue(c, queueName('qty'));
    const spawned = [];
    for (let i = 0; i < 3; i++) spawned.push(await spawn(c, q, `job-${i}`, {}, { max_attempts: 1 }));
    const order = [];
    for (const timeout of [30, 10, 20]) order.push((await claimOne(c, q, 'worker-a', timeout)).run_id);
    await setNow(c, plus(T0, 100));
    expect(await claim(c, q, 'worker-b', 60, 1)).toEqual([]);
    expect(await failedRunCount(q)).toBe(1);
    expect((await runRow(c, q, order[1]!)).state).toBe('failed');
    expect(await claim(c, q, 'worker-b', 60, 2)).toEqual([]);
    expect(await failedRunCount(q)).toBe(3);
    for (const s of spawned) expect((await taskRow(c, q, s.task_id)).state).toBe('failed');
  });

  it('applies the retry strategy and max_attempts to expired runs', async () => {
    const q = await createQueue(c, queueName('strategy'));
    const { task_id } = await spawn(c, q, 'job', {}, { max_attempts: 2, retry_strategy: { kind: 'fixed', base_seconds: 50 } });
    await claimOne(c, q, 'worker-a', 10);
    await setNow(c, plus(T0, 10));
    expect(await claim(c, q, 'worker-b')).toEqual([]);
    const [, retry] = await runRows(c, q, task_id);
    expect(retry).toMatchObject({ attempt: 2, state: 'sleeping', available_at: plus(T0, 60) });
    await setNow(c, plus(T0, 60));
    await claimOne(c, q, 'worker-b', 10);
    await setNow(c, plus(T0, 70));
    expect(await claim(c, q, 'worker-c')).toEqual([]);
    expect(await taskRow(c, q, task_id)).toMatchObject({ state: 'failed', attempts: 2, last_attempt_run: retry!.run_id });
    const { rows } = await c.query('select state, failure_reason from absurd.get_task_result($1, $2)', [q, task_id]);
    expect(one(rows)).toMatchObject({ state: 'failed', failure_reason: { name: '$ClaimTimeout', workerId: 'worker-b', attempt: 2 } });
  });

  it('never expires a lease taken with claim_timeout 0', async () => {
    const q = await createQueue(c, queueName('forever'));
    const { run_id } = await spawn(c, q);
    await claimOne(c, q, 'worker-a', 0);
    await setNow(c, plus(T0, 10 * 365 * 86400));
    expect(await claim(c, q, 'worker-b', 60, 100)).toEqual([]);
    expect(await runRow(c, q, run_id)).toMatchObject({ state: 'running', claimed_by: 'worker-a', claim_expires_at: null });
  });

  it('skips an expired run that another transaction holds locked', async () => {
    const q = await createQueue(c, queueName('locked'));
    const { run_id } = await spawn(c, q);
    await claimOne(c, q, 'worker-a', 10);
    const holder = await utcClient(db);
    const sweeper = await utcClient(db);
    await setNow(sweeper, plus(T0, 20));
    await sweeper.query(`set statement_timeout = '5s'`);
    await holder.query('begin');
    try {
      await holder.query(`select 1 from ${table('r', q)} where run_id = $1 for update`, [run_id]);
      expect(await claim(sweeper, q, 'worker-b')).toEqual([]);
    } finally {
      await holder.query('rollback');
    }
    expect((await runRow(c, q, run_id)).state).toBe('running');
    expect((await claimOne(sweeper, q, 'worker-b')).attempt).toBe(2);
    expect((await runRow(c, q, run_id)).state).toBe('failed');
  });

  it('only sweeps runs that are still running', async () => {
    const q = await createQueue(c, queueName('done'));
    const { task_id, run_id } = await spawn(c, q);
    await claimOne(c, q, 'worker-a', 10);
    await completeRun(c, q, run_id, 'ok');
    await setNow(c, plus(T0, 100));
    expect(await claim(c, q, 'worker-b')).toEqual([]);
    expect(await taskRow(c, q, task_id)).toMatchObject({ state: 'completed' });
    expect((await runRow(c, q, run_id)).failure_reason).toBeNull();
  });
});
