import { describe, expect, it } from 'vitest';
import type { RetryStrategy } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import {
  appAtFakeTime,
  checkpoints,
  gate,
  queueName,
  runRows,
  taskRow,
  type TestApp,
  useClients,
  useFakeClock,
  workOnce,
} from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);
const clock = useFakeClock();

const MISSING = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';
const T0 = '2031-03-04T05:06:07.000Z';

/** A client on a single-connection pool whose clock stands at T0. */
function fakeTimeApp(queue = queueName('ft')) {
  return appAtFakeTime(clients, clock, queue, T0, { record: false });
}

function failingApp(app: TestApp, name = 'fails') {
  let calls = 0;
  app.registerTask({ name }, async () => {
    calls += 1;
    throw new Error(`call ${calls}`);
  });
  return () => calls;
}

const seconds = (later: Date, earlier: string) => (later.getTime() - Date.parse(earlier)) / 1000;

describe('retryTask', () => {
  it('retries a failed task in place: same task, a new run with the next attempt', async () => {
    const app = await clients.app(queueName('Awkward', 'quoted'), { db: db.pool });
    let succeed = false;
    app.registerTask({ name: 'flaky' }, async (_p, ctx) => {
      await ctx.step('kept', () => 'from attempt 1');
      if (!succeed) throw new Error('not yet');
      return ctx.attempt;
    });
    const { taskID } = await app.spawn('flaky', { x: 1 }, { maxAttempts: 1 });
    await workOnce(app);
    expect((await app.fetchTaskResult(taskID))?.state).toBe('failed');

    const retried = await app.retryTask(taskID);
    expect(retried).toEqual({ taskID, runID: expect.any(String), attempt: 2, created: false });
    const task = await taskRow(db.pool, app.queueName, taskID);
    expect(task).toMatchObject({ state: 'pending', attempts: 2, max_attempts: 2, last_attempt_run: retried.runID });
    succeed = true;
    await workOnce(app);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: 2 });
    expect((await runRows(db.pool, app.queueName, taskID)).map((r) => r.state)).toEqual(['failed', 'completed']);
  });

  it('takes a new maxAttempts, which must exceed the attempts so far', async () => {
    const app = await clients.app(queueName('retrymax'), { db: db.pool });
    failingApp(app);
    const { taskID } = await app.spawn('fails', null, { maxAttempts: 2, retryStrategy: { kind: 'none' } });
    await workOnce(app);
    await workOnce(app);
    expect((await app.fetchTaskResult(taskID))?.state).toBe('failed');
    await expect(app.retryTask(taskID, { maxAttempts: 2 })).rejects.toThrow('must be greater than current attempts');
    const retried = await app.retryTask(taskID, { maxAttempts: 10 });
    expect(retried.attempt).toBe(3);
    expect((await taskRow(db.pool, app.queueName, taskID)).max_attempts).toBe(10);
  });

  it('refuses a task that is not failed, with the engine message', async () => {
    const app = await clients.app(queueName('notfailed'), { db: db.pool });
    const { taskID } = await app.spawn('t', null, { queue: app.queueName });
    await expect(app.retryTask(taskID)).rejects.toThrow(`Task "${taskID}" is not currently failed in queue "${app.queueName}"`);
    await expect(app.retryTask(MISSING)).rejects.toThrow(`Task "${MISSING}" not found in queue "${app.queueName}"`);
  });

  it('with spawnNewTask copies the task (not its idempotency key or checkpoints); the old one stays failed', async () => {
    const app = await clients.app(queueName('spawnnew'), { db: db.pool });
    app.registerTask({ name: 'copy' }, async (_p, ctx) => {
      await ctx.step('s', () => 1);
      throw new Error('always');
    });
    const retryStrategy: RetryStrategy = { kind: 'fixed', baseSeconds: 9 };
    const original = await app.spawn('copy', { p: 1 }, {
      maxAttempts: 1,
      retryStrategy,
      headers: { h: 'v' },
      cancellation: { maxDuration: 999 },
      idempotencyKey: 'idem',
    });
    await workOnce(app);
    const copy = await app.retryTask(original.taskID, { spawnNewTask: true });
    expect(copy).toEqual({ taskID: expect.any(String), runID: expect.any(String), attempt: 1, created: true });
    expect(copy.taskID).not.toBe(original.taskID);
    expect(await taskRow(db.pool, app.queueName, copy.taskID)).toMatchObject({
      task_name: 'copy',
      params: { p: 1 },
      headers: { h: 'v' },
      retry_strategy: { kind: 'fixed', base_seconds: 9 },
      max_attempts: 1,
      cancellation: { max_duration: 999 },
      idempotency_key: null,
      state: 'pending',
    });
    expect(await checkpoints(db.pool, app.queueName, copy.taskID)).toEqual({});
    expect((await app.fetchTaskResult(original.taskID))?.state).toBe('failed');

    const withMax = await app.retryTask(original.taskID, { spawnNewTask: true, maxAttempts: 4, queue: app.queueName });
    expect((await taskRow(db.pool, app.queueName, withMax.taskID)).max_attempts).toBe(4);
  });

  it('makes the new run claimable at once', async () => {
    const app = await clients.app(queueName('claimable'), { db: db.pool });
    const secondRun = gate();
    let calls = 0;
    app.registerTask({ name: 'g' }, async () => {
      calls += 1;
      if (calls === 1) throw new Error('first');
      secondRun.open();
      return 'second';
    });
    const { taskID } = await app.spawn('g', null, { maxAttempts: 1 });
    await workOnce(app);
    await app.retryTask(taskID);
    const claimed = await workOnce(app);
    expect(claimed.map((t) => t.attempt)).toEqual([2]);
    await secondRun.promise;
  });
});

describe('cancelTask', () => {
  it('cancels a pending task and is idempotent (cancelled_at is kept)', async () => {
    const app = await clients.app(queueName('Awkward', 'quoted'), { db: db.pool });
    const { taskID } = await app.spawn('c', null, { queue: app.queueName });
    await app.cancelTask(taskID);
    const first = await taskRow(db.pool, app.queueName, taskID);
    expect(first.state).toBe('cancelled');
    expect(first.cancelled_at).toBeInstanceOf(Date);
    await new Promise((resolve) => setTimeout(resolve, 5));
    await app.cancelTask(taskID, app.queueName);
    expect((await taskRow(db.pool, app.queueName, taskID)).cancelled_at).toEqual(first.cancelled_at);
    expect((await runRows(db.pool, app.queueName, taskID))[0]?.state).toBe('cancelled');
    expect(await workOnce(app)).toEqual([]);
  });

  it('is a no-op on completed and failed tasks', async () => {
    const app = await clients.app(queueName('noop'), { db: db.pool });
    app.registerTask({ name: 'ok' }, async () => 'fine');
    failingApp(app);
    const done = await app.spawn('ok', null);
    const failed = await app.spawn('fails', null, { maxAttempts: 1 });
    await workOnce(app, 120, 2);
    await app.cancelTask(done.taskID);
    await app.cancelTask(failed.taskID);
    expect(await taskRow(db.pool, app.queueName, done.taskID)).toMatchObject({ state: 'completed', cancelled_at: null });
    expect(await taskRow(db.pool, app.queueName, failed.taskID)).toMatchObject({ state: 'failed', cancelled_at: null });
  });

  it('reports a missing task with the engine message', async () => {
    const app = await clients.app(queueName('missing'), { db: db.pool });
    await expect(app.cancelTask(MISSING)).rejects.toThrow(`Task "${MISSING}" not found in queue "${app.queueName}"`);
    const other = queueName('other');
    await app.createQueue(other);
    const { taskID } = await app.spawn('t', null, { queue: other });
    await expect(app.cancelTask(taskID)).rejects.toThrow('not found in queue');
    await app.cancelTask(taskID, other);
    expect((await app.fetchTaskResult(taskID, { queue: other }))?.state).toBe('cancelled');
  });
});

describe('retry delays and attempt limits (engine semantics through the client)', () => {
  it('retries at once without a strategy or with kind none', async () => {
    for (const strategy of [undefined, { kind: 'none' } as RetryStrategy]) {
      const { app, pool } = await fakeTimeApp();
      failingApp(app);
      const { taskID } = await app.spawn('fails', null, strategy ? { retryStrategy: strategy } : {});
      await workOnce(app);
      const [failed, next] = await runRows(pool, app.queueName, taskID);
      expect(failed).toMatchObject({ state: 'failed', attempt: 1 });
      expect(next).toMatchObject({ state: 'pending', attempt: 2 });
      expect(next?.available_at.toISOString()).toBe(T0);
      expect(await taskRow(pool, app.queueName, taskID)).toMatchObject({ state: 'pending', attempts: 2 });
    }
  });

  it('fixed waits base_seconds (default 60)', async () => {
    for (const [strategy, expected] of [
      [{ kind: 'fixed' }, 60],
      [{ kind: 'fixed', baseSeconds: 5 }, 5],
    ] as const) {
      const { app, pool } = await fakeTimeApp();
      failingApp(app);
      const { taskID } = await app.spawn('fails', null, { retryStrategy: strategy });
      await workOnce(app);
      const next = (await runRows(pool, app.queueName, taskID))[1]!;
      expect(next.state).toBe('sleeping');
      expect(seconds(next.available_at, T0)).toBe(expected);
      expect((await taskRow(pool, app.queueName, taskID)).state).toBe('sleeping');
    }
  });

  it('exponential waits base × factor^(attempt-1), capped by max_seconds', async () => {
    const observe = async (strategy: RetryStrategy, failures: number) => {
      const { app, pool } = await fakeTimeApp();
      failingApp(app);
      const { taskID } = await app.spawn('fails', null, { retryStrategy: strategy, maxAttempts: 10 });
      const delays: number[] = [];
      let now = T0;
      for (let i = 0; i < failures; i++) {
        expect(await workOnce(app)).toHaveLength(1);
        const next = (await runRows(pool, app.queueName, taskID)).at(-1)!;
        delays.push(seconds(next.available_at, now));
        now = next.available_at.toISOString();
        await clock.set(pool, now, { dbOnly: true });
      }
      return delays;
    };
    expect(await observe({ kind: 'exponential' }, 3)).toEqual([30, 60, 120]);
    expect(await observe({ kind: 'exponential', baseSeconds: 40, factor: 3, maxSeconds: 90 }, 3)).toEqual([40, 90, 90]);
  });

  it('ends failed when attempts are used up; NULL max_attempts retries without limit', async () => {
    const { app, pool } = await fakeTimeApp();
    failingApp(app);
    const limited = await app.spawn('fails', null, { maxAttempts: 3 });
    for (let i = 0; i < 3; i++) await workOnce(app);
    expect(await workOnce(app)).toEqual([]);
    expect(await taskRow(pool, app.queueName, limited.taskID)).toMatchObject({ state: 'failed', attempts: 3 });
    expect((await app.fetchTaskResult(limited.taskID))?.failure).toMatchObject({ message: 'call 3' });

    const unlimitedApp = await clients.app(queueName('unlimited'), {
      db: pool,
      hooks: { beforeSpawn: (_n, _p, { maxAttempts: _m, ...rest }) => rest },
    });
    failingApp(unlimitedApp);
    const unlimited = await unlimitedApp.spawn('fails', null);
    for (let i = 0; i < 7; i++) expect(await workOnce(unlimitedApp)).toHaveLength(1);
    expect(await taskRow(pool, unlimitedApp.queueName, unlimited.taskID)).toMatchObject({
      state: 'pending',
      attempts: 8,
      max_attempts: null,
    });
  });
});

describe('cancellation policies (engine semantics through the client)', () => {
  it('maxDelay cancels a task not started in time, at the next claim', async () => {
    const { app, pool } = await fakeTimeApp();
    app.registerTask({ name: 'late' }, async () => 'ran');
    const { taskID } = await app.spawn('late', null, { cancellation: { maxDelay: 60 } });
    await clock.set(pool, Date.parse(T0) + 61_000, { dbOnly: true });
    expect(await app.claimTasks()).toEqual([]);
    expect((await app.fetchTaskResult(taskID))?.state).toBe('cancelled');
  });

  it('maxDelay does not touch a task that started in time', async () => {
    const { app, pool } = await fakeTimeApp();
    app.registerTask({ name: 'napper' }, async (_p, ctx) => {
      await ctx.awaitEvent('wake', { timeout: 100 });
      return 'ok';
    });
    const { taskID } = await app.spawn('napper', null, { cancellation: { maxDelay: 10 } });
    await workOnce(app);
    await clock.set(pool, Date.parse(T0) + 50_000, { dbOnly: true });
    await app.claimTasks();
    expect((await app.fetchTaskResult(taskID))?.state).toBe('sleeping');
  });

  it('maxDuration cancels a task running too long since its first start', async () => {
    const { app, pool } = await fakeTimeApp();
    app.registerTask({ name: 'long' }, async (_p, ctx) => {
      await ctx.awaitEvent('never');
    });
    const { taskID } = await app.spawn('long', null, { cancellation: { maxDuration: 30 } });
    await workOnce(app);
    await clock.set(pool, Date.parse(T0) + 29_000, { dbOnly: true });
    await app.claimTasks();
    expect((await app.fetchTaskResult(taskID))?.state).toBe('sleeping');
    await clock.set(pool, Date.parse(T0) + 30_000, { dbOnly: true });
    await app.claimTasks();
    expect((await app.fetchTaskResult(taskID))?.state).toBe('cancelled');
  });

  it('a retry that would start past maxDuration cancels instead', async () => {
    const { app, pool } = await fakeTimeApp();
    failingApp(app);
    const { taskID } = await app.spawn('fails', null, {
      retryStrategy: { kind: 'fixed', baseSeconds: 30 },
      cancellation: { maxDuration: 20 },
    });
    await workOnce(app);
    expect((await app.fetchTaskResult(taskID))?.state).toBe('cancelled');
    expect((await runRows(pool, app.queueName, taskID)).map((r) => r.state)).toEqual(['failed']);
  });
});
