import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { LOG_TABLE_DDL, registerCrashTask } from './fixtures/tasks.js';
import { checkpoints, gate, queueName, runRows, startFixture, useClients, waitFor, waitForTaskState } from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);

async function logEntries(taskId: string): Promise<{ entry: string; node_pid: number }[]> {
  const { rows } = await db.pool.query<{ entry: string; node_pid: number }>(
    'select entry, node_pid from fixture_log where task_id = $1 order by at',
    [taskId],
  );
  return rows;
}

/** Starts a worker process, spawns `crashy` tasks, waits until the first blocks in step two, kills -9. */
async function crashWorkerMidTask(queue: string, claimTimeout: number) {
  await db.pool.query(LOG_TABLE_DDL);
  const producer = await clients.app(queue);
  const first = await producer.spawn('crashy', { label: 'first' }, { queue });
  const fixture = await startFixture('worker-process', {
    ABSURD_TEST_URL: db.url,
    ABSURD_TEST_QUEUE: queue,
    ABSURD_TEST_MODE: 'crash',
    ABSURD_TEST_CLAIM_TIMEOUT: String(claimTimeout),
  });
  clients.track(fixture.child);
  await waitFor(() => fixture.output().includes(`blocked ${first.taskID}`), { timeoutMs: 15_000, what: 'step two to block' });
  // More work queued behind the one in flight (the worker has one slot).
  const others = [];
  for (const label of ['second', 'third']) others.push((await producer.spawn('crashy', { label }, { queue })).taskID);
  fixture.child.kill('SIGKILL');
  expect(await fixture.exited).toEqual({ code: null, signal: 'SIGKILL' });
  return { firstID: first.taskID, others, crashedPid: fixture.child.pid!, producer };
}

async function expectRecovered(queue: string, crash: Awaited<ReturnType<typeof crashWorkerMidTask>>) {
  const { firstID, others, crashedPid } = crash;
  const result = await crash.producer.fetchTaskResult(firstID);
  // Step one's result comes from the dead process's checkpoint: it did not run again.
  expect(result).toEqual({
    state: 'completed',
    result: { one: { label: 'first', pid: crashedPid }, two: { pid: process.pid }, attempt: 2 },
  });
  expect(await logEntries(firstID)).toEqual([
    { entry: 'one', node_pid: crashedPid },
    { entry: 'two-start', node_pid: crashedPid },
    { entry: 'two-start', node_pid: process.pid },
  ]);
  const runs = await runRows(db.pool, queue, firstID);
  expect(runs.map((r) => [r.attempt, r.state])).toEqual([
    [1, 'failed'],
    [2, 'completed'],
  ]);
  expect(runs[0]?.failure_reason).toMatchObject({
    name: '$ClaimTimeout',
    message: 'worker did not finish task within claim interval',
    workerId: `fixture-${crashedPid}`,
    attempt: 1,
  });
  expect(runs[0]?.failure_reason).toHaveProperty('claimExpiredAt');
  // Nothing queued behind it was lost, and each ran its first step once.
  for (const id of others) {
    expect((await crash.producer.fetchTaskResult(id))?.state).toBe('completed');
    expect((await logEntries(id)).map((e) => e.entry)).toEqual(['one', 'two-start']);
    expect(await runRows(db.pool, queue, id)).toHaveLength(1);
  }
}

describe('a worker process killed in the middle of a task', () => {
  it('is taken over once its short lease expires; checkpointed steps do not run again', async () => {
    const queue = queueName('crash-lease');
    const crash = await crashWorkerMidTask(queue, 2);
    const app = await clients.app(queue);
    registerCrashTask(app, { blockInStepTwo: false });
    const worker = await app.startWorker({ workerId: 'survivor', claimTimeout: 5, pollInterval: 0.1 });
    await waitForTaskState(db.pool, queue, crash.firstID, 'completed', 15_000);
    for (const id of crash.others) await waitForTaskState(db.pool, queue, id, 'completed');
    await worker.close();
    await expectRecovered(queue, crash);
    expect((await runRows(db.pool, queue, crash.firstID))[1]?.claimed_by).toBe('survivor');
  });

  it('is taken over by a worker whose clock is past the lease (fake time, default 120 s lease)', async () => {
    const queue = queueName('crash-fake-time');
    const crash = await crashWorkerMidTask(queue, 120);
    // One connection, so that the fake clock holds for every query of this client.
    const pool = clients.pool({ max: 1, idleTimeoutMillis: 0 });
    await pool.query(`select set_config('absurd.fake_now', $1, false)`, [new Date(Date.now() + 10 * 60_000).toISOString()]);
    const app = await clients.app(queue, { db: pool });
    registerCrashTask(app, { blockInStepTwo: false });
    const worker = await app.startWorker({ workerId: 'survivor', pollInterval: 0.1 });
    await waitForTaskState(db.pool, queue, crash.firstID, 'completed', 15_000);
    for (const id of crash.others) await waitForTaskState(db.pool, queue, id, 'completed');
    await worker.close();
    await expectRecovered(queue, crash);
  });
});

describe('a worker that outlives its lease in process', () => {
  it('stops quietly at its next checkpoint once another worker has taken the task over', async () => {
    const queue = queueName('zombie');
    const hold = gate();
    const entered = gate();
    const slow = await clients.app(queue);
    let slowErrors = 0;
    slow.registerTask({ name: 'job' }, async (_params, ctx) => {
      const one = await ctx.step('one', async () => `one by attempt ${ctx.attempt}`);
      const two = await ctx.step('two', async () => {
        entered.open();
        await hold.promise;
        return 'two by the slow worker';
      });
      return { one, two, by: 'slow' };
    });
    const slowWorker = await slow.startWorker({
      claimTimeout: 1,
      pollInterval: 0.05,
      fatalOnLeaseTimeout: false,
      onError: () => {
        slowErrors += 1;
      },
    });
    const { taskID } = await slow.spawn('job', {});
    await entered.promise;

    const fast = await clients.app(queue);
    fast.registerTask({ name: 'job' }, async (_params, ctx) => {
      const one = await ctx.step('one', async () => `one by attempt ${ctx.attempt}`);
      const two = await ctx.step('two', async () => 'two by the fast worker');
      return { one, two, by: 'fast' };
    });
    const fastWorker = await fast.startWorker({ pollInterval: 0.1 });
    await waitForTaskState(db.pool, queue, taskID, 'completed', 10_000);

    hold.open(); // the zombie's step two now tries to checkpoint
    await waitFor(() => slowWorker.inFlight === 0);
    await slowWorker.close();
    await fastWorker.close();

    expect(slowErrors).toBe(0);
    expect(await fast.fetchTaskResult(taskID)).toEqual({
      state: 'completed',
      result: { one: 'one by attempt 1', two: 'two by the fast worker', by: 'fast' },
    });
    expect(await checkpoints(db.pool, queue, taskID)).toEqual({ one: 'one by attempt 1', two: 'two by the fast worker' });
    const runs = await runRows(db.pool, queue, taskID);
    expect(runs.map((r) => r.state)).toEqual(['failed', 'completed']);
    expect(runs[0]?.failure_reason).toMatchObject({ name: '$ClaimTimeout' });
  });
});
