import { describe, expect, it, vi } from 'vitest';
import { Absurd, TimeoutError, type Queryable } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import { delay, queueName, recordingConnection, useClients, workOnce } from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);

const MISSING = '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b';

function appWithQueue(queue = queueName('res')) {
  return clients.app(queue, { db: db.pool });
}

describe('fetchTaskResult', () => {
  it('is null for an unknown task', async () => {
    const app = await appWithQueue();
    expect(await app.fetchTaskResult(MISSING)).toBeNull();
  });

  it('gives the state of a pending, running and sleeping task without outcome fields', async () => {
    const app = await appWithQueue(queueName('Awkward', 'quoted'));
    let observed: unknown;
    app.registerTask({ name: 'look' }, async (_p, ctx) => {
      observed = await app.fetchTaskResult(ctx.taskID);
      await ctx.awaitEvent('never');
    });
    const { taskID } = await app.spawn('look', null);
    const pending = await app.fetchTaskResult(taskID);
    expect(pending).toStrictEqual({ state: 'pending' });
    expect(pending?.result).toBeUndefined();
    expect(pending?.failure).toBeUndefined();
    await workOnce(app);
    expect(observed).toStrictEqual({ state: 'running' });
    expect(await app.fetchTaskResult(taskID)).toStrictEqual({ state: 'sleeping' });
  });

  it('gives the result of a completed task, null for an undefined result', async () => {
    const app = await appWithQueue();
    app.registerTask({ name: 'value' }, async (params: { v: unknown }) => params.v);
    app.registerTask({ name: 'nothing' }, async () => undefined);
    const value = await app.spawn('value', { v: { deep: [1, { x: 'y' }] } });
    const nothing = await app.spawn('nothing', null);
    await workOnce(app, 120, 2);
    expect(await app.fetchTaskResult(value.taskID)).toStrictEqual({ state: 'completed', result: { deep: [1, { x: 'y' }] } });
    expect(await app.fetchTaskResult(nothing.taskID)).toStrictEqual({ state: 'completed', result: null });
  });

  it("gives the last run's failure of a failed task", async () => {
    const app = await appWithQueue();
    let attempt = 0;
    app.registerTask({ name: 'fails' }, async () => {
      attempt += 1;
      throw new Error(`failure ${attempt}`);
    });
    const { taskID } = await app.spawn('fails', null, { maxAttempts: 2 });
    await workOnce(app);
    expect(await app.fetchTaskResult(taskID)).toStrictEqual({ state: 'pending' });
    await workOnce(app);
    const snapshot = await app.fetchTaskResult(taskID);
    expect(snapshot?.state).toBe('failed');
    expect(snapshot?.failure).toMatchObject({ name: 'Error', message: 'failure 2' });
    expect(snapshot?.result).toBeUndefined();
  });

  it('gives a bare state for a cancelled task', async () => {
    const app = await appWithQueue();
    const { taskID } = await app.spawn('anything', null, { queue: app.queueName });
    await app.cancelTask(taskID);
    expect(await app.fetchTaskResult(taskID)).toStrictEqual({ state: 'cancelled' });
  });

  it('reads another queue when asked', async () => {
    const app = await appWithQueue();
    const other = queueName('other');
    await app.createQueue(other);
    const { taskID } = await app.spawn('t', null, { queue: other });
    expect(await app.fetchTaskResult(taskID)).toBeNull();
    expect(await app.fetchTaskResult(taskID, { queue: other })).toStrictEqual({ state: 'pending' });
  });
});

describe('awaitTaskResult', () => {
  it('rejects a timeout that is not a finite non-negative number, before any query', async () => {
    const { con, queries } = recordingConnection();
    const app = new Absurd({ db: con, queueName: 'a' });
    for (const timeout of [-1, NaN, -Infinity, '5' as unknown as number, null as unknown as number]) {
      await expect(app.awaitTaskResult(MISSING, { timeout })).rejects.toThrow(
        new Error('timeout must be a finite non-negative number'),
      );
    }
    expect(queries).toHaveLength(0);
  });

  it('throws "not found" for an unknown task', async () => {
    const app = await appWithQueue();
    await expect(app.awaitTaskResult(MISSING, { timeout: 1 })).rejects.toThrow(new Error(`Task "${MISSING}" not found`));
    await expect(app.awaitTaskResult(MISSING)).rejects.toThrow(`Task "${MISSING}" not found`);
  });

  it('throws TimeoutError when the task does not end in time', async () => {
    const app = await appWithQueue();
    const { taskID } = await app.spawn('slow', null, { queue: app.queueName });
    for (const timeout of [0, 0.2]) {
      const error = await app.awaitTaskResult(taskID, { timeout }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TimeoutError);
      expect(error).toMatchObject({ name: 'TimeoutError', message: `Timed out waiting for task "${taskID}"` });
    }
  });

  it('returns at once for an ended task, even with timeout 0', async () => {
    const app = await appWithQueue();
    app.registerTask({ name: 'quick' }, async () => 42);
    const { taskID } = await app.spawn('quick', null);
    await workOnce(app);
    expect(await app.awaitTaskResult(taskID, { timeout: 0 })).toStrictEqual({ state: 'completed', result: 42 });
  });

  it('waits (Infinity or no timeout means forever) until the task ends', async () => {
    const app = await appWithQueue();
    app.registerTask({ name: 'later' }, async () => 'done');
    for (const timeout of [undefined, Infinity, 30]) {
      const { taskID } = await app.spawn('later', null);
      const waiting = app.awaitTaskResult(taskID, timeout === undefined ? {} : { timeout });
      await delay(150);
      await workOnce(app);
      expect(await waiting).toStrictEqual({ state: 'completed', result: 'done' });
    }
  });

  it('returns failed and cancelled snapshots as final', async () => {
    const app = await appWithQueue();
    app.registerTask({ name: 'boom' }, async () => {
      throw new Error('boom');
    });
    const failing = await app.spawn('boom', null, { maxAttempts: 1 });
    await workOnce(app);
    expect(await app.awaitTaskResult(failing.taskID, { timeout: 5 })).toMatchObject({
      state: 'failed',
      failure: { name: 'Error', message: 'boom' },
    });
    const cancelled = await app.spawn('boom', null);
    const waiting = app.awaitTaskResult(cancelled.taskID, { timeout: 10 });
    await delay(100);
    await app.cancelTask(cancelled.taskID);
    expect(await waiting).toStrictEqual({ state: 'cancelled' });
  });

  it('polls the queue given', async () => {
    const app = await appWithQueue();
    const other = queueName('other');
    await app.createQueue(other);
    const { taskID } = await app.spawn('t', null, { queue: other });
    await app.cancelTask(taskID, other);
    expect(await app.awaitTaskResult(taskID, { queue: other, timeout: 1 })).toStrictEqual({ state: 'cancelled' });
  });

  it('polls after 50 ms, doubling up to 1 s, the last sleep clamped to the timeout', async () => {
    vi.useFakeTimers({ now: 0 });
    try {
      const polls: number[] = [];
      const con = {
        query: async () => {
          polls.push(Date.now());
          return { rows: [{ state: 'running', result: null, failure_reason: null }] };
        },
      };
      const app = new Absurd({ db: con as unknown as Queryable, queueName: 'poll' });
      const outcome = app.awaitTaskResult(MISSING, { timeout: 3 }).catch((error: unknown) => error);
      await vi.advanceTimersByTimeAsync(10_000);
      expect(await outcome).toBeInstanceOf(TimeoutError);
      expect(polls).toEqual([0, 50, 150, 350, 750, 1550, 2550, 3000]);
    } finally {
      vi.useRealTimers();
    }
  });
});
