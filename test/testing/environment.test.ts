/**
 * `@absurd-kit/cli/testing`'s environment: the test clock, running due work in-process (one run
 * or until idle, skipping time), and what sleeps, timeouts, backoffs, leases and cancellation
 * policies do when the clock moves.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineTask, TimeoutError, isAbsurdError } from 'absurd-kit';
import { createTestEnvironment, type TestEnvironment } from '@absurd-kit/cli/testing';

const T0 = '2031-01-01T00:00:00.000Z';
const at = (iso: string) => new Date(iso);
let t: TestEnvironment;

beforeAll(async () => {
  t = await createTestEnvironment({ now: T0 });
});

afterAll(() => t.close());

describe('the clock', () => {
  it('stands still until moved: advance by durations, setTime anywhere', async () => {
    const probe = await createTestEnvironment({ now: '2031-06-01T12:00:00Z' });
    try {
      expect(probe.now()).toEqual(at('2031-06-01T12:00:00Z'));
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(probe.now()).toEqual(at('2031-06-01T12:00:00Z'));
      expect(await probe.advance('2 hours')).toEqual(at('2031-06-01T14:00:00Z'));
      expect(await probe.advance(90)).toEqual(at('2031-06-01T14:01:30Z'));
      expect(await probe.advance('1 day 6 hours 500 ms')).toEqual(at('2031-06-02T20:01:30.500Z'));
      expect(await probe.setTime('2031-05-01T00:00:00Z')).toEqual(at('2031-05-01T00:00:00Z'));
      // The engine's clock on the environment's connection says the same.
      const { rows } = await probe.connection.query<{ now: Date }>('select absurd.current_time() as now');
      expect(rows[0]?.now).toEqual(at('2031-05-01T00:00:00Z'));
      await expect(probe.advance('a while')).rejects.toThrow(/is not a length of time/);
      await expect(probe.advance(-1)).rejects.toThrow(/is not a length of time/);
    } finally {
      await probe.close();
    }
  });

  it('is the process clock of handlers while they run, and only then', async () => {
    const app = await t.client('clock');
    const seen: { now: number; date: string; fromArgs: string; isDate: boolean }[] = [];
    app.registerTask({ name: 'look' }, async () => {
      const date = new Date();
      seen.push({ now: Date.now(), date: date.toISOString(), fromArgs: new Date(0).toISOString(), isDate: date instanceof Date });
    });
    await app.spawn('look', null);
    expect(await t.runUntilIdle()).toMatchObject([{ taskName: 'look', outcome: 'completed' }]);
    expect(seen).toEqual([{ now: t.now().getTime(), date: t.now().toISOString(), fromArgs: '1970-01-01T00:00:00.000Z', isDate: true }]);
    expect(Math.abs(Date.now() - t.now().getTime())).toBeGreaterThan(86_400_000);
    expect(new Date().getFullYear()).not.toBe(2031);
  });
});

describe('running due work', () => {
  it('runNext runs one run at a time and returns null when nothing is due', async () => {
    const app = await t.client('steps');
    const order: string[] = [];
    app.registerTask({ name: 'note' }, async (params: { n: number }) => {
      order.push(`n${params.n}`);
      return params.n * 2;
    });
    const first = await app.spawn('note', { n: 1 });
    // Runs due at the same instant go in run id order, random within one millisecond: a
    // millisecond apart, they go in spawn order.
    await t.advance('1 ms');
    await app.spawn('note', { n: 2 });
    const report = await t.runNext();
    expect(report).toEqual({
      queue: 'steps',
      taskName: 'note',
      taskID: first.taskID,
      runID: first.runID,
      attempt: 1,
      outcome: 'completed',
      taskState: 'completed',
      result: 2,
      failure: null,
      wakeAt: null,
      waitingFor: null,
    });
    expect(order).toEqual(['n1']);
    expect(await t.runNext()).toMatchObject({ result: 4 });
    expect(await t.runNext()).toBeNull();
  });

  it('a 30-day sleep runs on only once the clock has passed it', async () => {
    const app = await t.client('sleepy');
    app.registerTask({ name: 'month' }, async (_p, ctx) => {
      await ctx.sleepFor('a month', 30 * 86_400);
      return 'rested';
    });
    const { taskID } = await app.spawn('month', null);
    const start = t.now().getTime();
    const [slept] = await t.runUntilIdle();
    expect(slept).toMatchObject({ outcome: 'suspended', taskState: 'sleeping', wakeAt: new Date(start + 30 * 86_400_000), waitingFor: null });
    await t.advance('29 days 23 hours');
    expect(await t.runUntilIdle()).toEqual([]);
    await t.advance('1 hour');
    expect(await t.runUntilIdle()).toMatchObject([{ taskID, outcome: 'completed', result: 'rested' }]);
  });

  it('an event that does not come in time times the wait out once the clock passes its timeout', async () => {
    const app = await t.client('waits');
    app.registerTask({ name: 'patient' }, async (_p, ctx) => {
      try {
        return await ctx.awaitEvent('approval', { timeout: 3600 });
      } catch (error) {
        if (error instanceof TimeoutError) return 'gave up';
        throw error;
      }
    });
    await app.spawn('patient', null);
    expect(await t.runUntilIdle()).toMatchObject([{ outcome: 'suspended', waitingFor: 'approval', wakeAt: new Date(t.now().getTime() + 3_600_000) }]);
    await t.advance('59 minutes');
    expect(await t.runUntilIdle()).toEqual([]);
    await t.advance('1 minute');
    expect(await t.runUntilIdle()).toMatchObject([{ outcome: 'completed', result: 'gave up' }]);
  });

  it('a failed run retries after its backoff, exponentially, until its attempts are spent', async () => {
    const app = await t.client('flaky');
    app.registerTask({ name: 'never' }, async () => {
      throw new Error('still down');
    });
    const { taskID } = await app.spawn('never', null, { maxAttempts: 3, retryStrategy: { kind: 'exponential', baseSeconds: 10 } });
    expect(await t.runUntilIdle()).toMatchObject([{ attempt: 1, outcome: 'failed', taskState: 'sleeping', failure: { name: 'Error', message: 'still down' } }]);
    await t.advance(9);
    expect(await t.runUntilIdle()).toEqual([]);
    await t.advance(1);
    expect(await t.runUntilIdle()).toMatchObject([{ attempt: 2, outcome: 'failed', taskState: 'sleeping' }]);
    await t.advance(19);
    expect(await t.runUntilIdle()).toEqual([]);
    await t.advance(1);
    expect(await t.runUntilIdle()).toMatchObject([{ attempt: 3, outcome: 'failed', taskState: 'failed' }]);
    const task = await t.inspect({ taskID, queue: 'flaky' });
    expect(task).toMatchObject({ state: 'failed', attempts: 3, failure: { message: 'still down' } });
    expect(task.runs.map((r) => r.failedAt?.getTime())).toEqual(
      [0, 10, 30].map((s) => task.runs[0]!.failedAt!.getTime() + s * 1000),
    );
  });

  it('a run left claimed by a dead worker is retried once its lease has passed', async () => {
    const app = await t.client('leases');
    app.registerTask({ name: 'survivor' }, async (_p, ctx) => `attempt ${ctx.attempt}`);
    const { taskID } = await app.spawn('survivor', null, { retryStrategy: { kind: 'none' } });
    const abandoned = await t.abandonNextRun();
    expect(abandoned).toMatchObject({ taskID, attempt: 1, leaseExpiresAt: new Date(t.now().getTime() + 120_000) });
    expect(await t.runUntilIdle()).toEqual([]);
    await t.advance('2 minutes');
    expect(await t.runUntilIdle()).toMatchObject([{ taskID, attempt: 2, outcome: 'completed', result: 'attempt 2' }]);
    const [lost] = (await t.inspect(taskID)).runs;
    expect(lost).toMatchObject({ attempt: 1, state: 'failed', failure: { name: '$ClaimTimeout' } });
  });

  it('a cancellation policy cancels a task whose time is up at the next claim', async () => {
    const app = await t.client('deadlines');
    app.registerTask({ name: 'slowpoke' }, async (_p, ctx) => {
      await ctx.sleepFor('nap', 7200);
      return 'too late';
    });
    const { taskID } = await app.spawn('slowpoke', null, { cancellation: { maxDuration: 3600 } });
    await t.runUntilIdle();
    await t.advance('2 hours');
    expect(await t.runUntilIdle()).toEqual([]);
    expect(await t.inspect(taskID)).toMatchObject({ state: 'cancelled', cancelledAt: t.now() });
  });

  it('a task without a handler on its queue is deferred, as a worker defers it', async () => {
    const app = await t.client('deploys');
    const { taskID } = await app.spawn('not-yet-deployed', null, { queue: 'deploys' });
    const [deferred] = await t.runUntilIdle();
    expect(deferred).toMatchObject({ taskID, outcome: 'deferred', taskState: 'sleeping', waitingFor: null });
    const delay = (deferred!.wakeAt!.getTime() - t.now().getTime()) / 1000;
    expect(delay).toBeGreaterThanOrEqual(15);
    expect(delay).toBeLessThanOrEqual(30);
    expect(t.logs.some((line) => line.level === 'warn' && line.message.includes('not-yet-deployed'))).toBe(true);
    await app.cancelTask(taskID);
  });

  it('skipTime moves the clock from one due time to the next, up to its limit', async () => {
    const app = await t.client('skips');
    app.registerTask({ name: 'weekly' }, async (_p, ctx) => {
      for (let week = 1; week <= 4; week++) await ctx.sleepFor('week', 7 * 86_400);
      return 'a month of weeks';
    });
    const { taskID } = await app.spawn('weekly', null);
    const start = t.now().getTime();
    const ran = await t.runUntilIdle({ skipTime: '15 days' });
    expect(ran.map((r) => r.outcome)).toEqual(['suspended', 'suspended', 'suspended']);
    expect(t.now()).toEqual(new Date(start + 14 * 86_400_000));
    expect(await t.runUntilIdle({ skipTime: true })).toMatchObject([{ outcome: 'suspended' }, { taskID, outcome: 'completed' }]);
    expect(t.now()).toEqual(new Date(start + 28 * 86_400_000));
  });

  it('a 30-day sleep, then 5 retries with exponential backoff (bench/testing-time-skip.ts times it)', async () => {
    const app = await t.client('renewals');
    app.registerTask({ name: 'renew' }, async (_p, ctx) => {
      await ctx.sleepFor('grace period', 30 * 86_400);
      return ctx.step('charge', () => {
        if (ctx.attempt <= 5) throw new Error(`card declined (attempt ${ctx.attempt})`);
        return { chargedOnAttempt: ctx.attempt };
      });
    });
    const start = t.now().getTime();
    const handle = await app.spawn('renew', null, { maxAttempts: 6, retryStrategy: { kind: 'exponential', baseSeconds: 60, factor: 2 } });
    const ran = await t.runUntilIdle({ skipTime: '60 days' });
    expect(ran.map((r) => `${r.attempt} ${r.outcome}`)).toEqual(['1 suspended', '1 failed', '2 failed', '3 failed', '4 failed', '5 failed', '6 completed']);
    // 30 days, then backoffs of 1, 2, 4, 8 and 16 minutes.
    expect(t.now().getTime() - start).toBe(30 * 86_400_000 + (60 + 120 + 240 + 480 + 960) * 1000);
    expect(await t.inspect(handle)).toMatchObject({ state: 'completed', attempts: 6, result: { chargedOnAttempt: 6 } });
  });

  it('stops a task retried without end after maxRuns', async () => {
    const app = await t.client('loops');
    app.registerTask({ name: 'hopeless' }, async () => {
      throw new Error('again');
    });
    const { taskID } = await app.spawn('hopeless', null, { maxAttempts: 100, retryStrategy: { kind: 'none' } });
    const error = await t.runUntilIdle({ maxRuns: 5 }).catch((e: unknown) => e);
    expect(isAbsurdError(error, 'TEST_RUN_LIMIT')).toBe(true);
    expect((error as Error).message).toMatch(/^still due after 5 runs \(last: hopeless .* attempt 5, failed\)/);
    await app.cancelTask(taskID);
  });
});

describe('clients', () => {
  it('one client per queue, on the environment connection; options only on the first call', async () => {
    const app = await t.client('clients');
    expect(await t.client('clients')).toBe(app);
    await expect(t.client('clients', { defaultMaxAttempts: 2 })).rejects.toThrow(/exists already/);
    expect(await app.listQueues()).toContain('clients');
  });

  it('spawns by contract through the client, validating params first', async () => {
    const greet = defineTask({ name: 'greet', queue: 'contracts', params: z.object({ name: z.string() }), result: z.string() });
    const app = await t.client('contracts');
    app.registerTask(greet, async ({ name }) => `hello ${name}`);
    // @ts-expect-error name must be a string
    await expect(app.spawn(greet, { name: 1 })).rejects.toThrow(/name/);
    const handle = await app.spawn(greet, { name: 'Ada' });
    await t.runUntilIdle();
    expect((await t.inspect(handle)).result).toBe('hello Ada');
  });
});
