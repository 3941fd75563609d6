/**
 * The lease deadline a worker keeps for each run (claim or last renewal + its length), what a run
 * does once it has passed, and `ctx.signal`: aborted when the lease is lost, when the task is
 * cancelled, and when the worker is closed past its timeout.
 */
import { describe, expect, it } from 'vitest';
import {
  CancelledTask,
  LeaseLost,
  TaskContext,
  WorkerClosed,
  type ClaimedTask,
} from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import { checkpoints, delay, gate, queueName, recordingConnection, runRows, useClients, waitFor, workOnce } from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);

/** Resolves never; rejects with the signal's reason once it is aborted (what `fetch(url, { signal })` does). */
function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_resolve, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

async function claimOne(app: Awaited<ReturnType<typeof clients.app>>, claimTimeout: number): Promise<ClaimedTask> {
  const [task] = await app.claimTasks({ claimTimeout });
  if (!task) throw new Error('nothing to claim');
  return task;
}

describe('a run whose lease ran out', () => {
  it('starts no new step, writes nothing and logs one warning; ctx.signal says LeaseLost', async () => {
    const app = await clients.app(queueName('lease-step'), { db: db.pool });
    const ran: string[] = [];
    let reason: unknown;
    app.registerTask({ name: 'slow' }, async (_params, ctx) => {
      try {
        await ctx.step('one', () => ran.push('one'));
        await delay(1300); // past the 1 s lease the checkpoint write renewed
        await ctx.step('two', () => ran.push('two'));
      } finally {
        reason = ctx.signal.reason;
      }
    });
    const { taskID, runID } = await app.spawn('slow', null);
    await app.executeTask(await claimOne(app, 1), 1);

    expect(ran).toEqual(['one']);
    expect(await checkpoints(db.pool, app.queueName, taskID)).toEqual({ one: 1 });
    expect(await runRows(db.pool, app.queueName, taskID)).toMatchObject([{ state: 'running', failure_reason: null }]);
    expect(reason).toBeInstanceOf(LeaseLost);
    expect(reason).toMatchObject({ runID, leaseSeconds: 1 });
    expect(app.recorded.messages('warn')).toEqual([`task slow (${taskID}) exceeded claim timeout of 1s`]);
    expect(app.recorded.messages('error')).toEqual([]);
  });

  it('starts no new suspension (no sleep, no event wait is sent)', async () => {
    const { con, texts } = recordingConnection(db.pool);
    const app = await clients.app(queueName('lease-suspend'), { db: con });
    let reached = false;
    app.registerTask({ name: 'sleepy' }, async (_params, ctx) => {
      await delay(1200);
      reached = true;
      await ctx.sleepFor('nap', 60);
    });
    app.registerTask({ name: 'waiting' }, async (_params, ctx) => {
      await delay(1200);
      await ctx.awaitEvent('never');
    });
    const sleepy = await app.spawn('sleepy', null);
    const waiting = await app.spawn('waiting', null);
    const tasks = await app.claimTasks({ batchSize: 2, claimTimeout: 1 });
    await Promise.all(tasks.map((task) => app.executeTask(task, 1)));

    expect(reached).toBe(true);
    const sent = texts().join('\n');
    expect(sent).not.toMatch(/kit_set_checkpoints|set_task_checkpoint_state|schedule_run|await_event|fail_run/);
    for (const { taskID } of [sleepy, waiting]) {
      expect(await runRows(db.pool, app.queueName, taskID)).toMatchObject([{ state: 'running', failure_reason: null }]);
    }
    expect(app.recorded.messages('warn')).toHaveLength(2);
  });

  it('does not record a failure of its handler: the run is no longer this worker\'s', async () => {
    const app = await clients.app(queueName('lease-fail'), { db: db.pool });
    app.registerTask({ name: 'late-failure' }, async () => {
      await delay(1200);
      throw new Error('too late to matter');
    });
    const { taskID } = await app.spawn('late-failure', null);
    await app.executeTask(await claimOne(app, 1), 1);
    expect(await runRows(db.pool, app.queueName, taskID)).toMatchObject([{ state: 'running', failure_reason: null }]);
    expect(app.recorded.messages('warn')).toEqual([`task late-failure (${taskID}) exceeded claim timeout of 1s`]);
    expect(app.recorded.messages('error')).toEqual([]);
  });

  it('fires ctx.signal at the deadline, so that a step body waiting on it stops and the run ends quietly', async () => {
    const app = await clients.app(queueName('lease-signal'), { db: db.pool });
    let abortedAfter: number | undefined;
    app.registerTask({ name: 'fetching' }, async (_params, ctx) => {
      const started = Date.now();
      await ctx.step('fetch', async () => {
        try {
          return await untilAborted(ctx.signal);
        } finally {
          abortedAfter = Date.now() - started;
        }
      });
    });
    const { taskID } = await app.spawn('fetching', null);
    await app.executeTask(await claimOne(app, 1), 1);
    expect(abortedAfter).toBeGreaterThanOrEqual(900);
    expect(abortedAfter).toBeLessThan(1500);
    expect(await runRows(db.pool, app.queueName, taskID)).toMatchObject([{ state: 'running', failure_reason: null }]);
    expect(app.recorded.messages('error')).toEqual([]);
  });

  it('counts from the claim: in a workBatch, a run whose lease ran out while it waited its turn starts no step', async () => {
    const app = await clients.app(queueName('lease-batch'), { db: db.pool });
    const ran: number[] = [];
    app.registerTask({ name: 'turn' }, async (params: { n: number }, ctx) => {
      await ctx.step('only', async () => {
        ran.push(params.n);
        await delay(1200);
      });
    });
    await app.spawn('turn', { n: 1 });
    await app.spawn('turn', { n: 2 });
    await app.workBatch('batcher', 1, 2);
    expect(ran).toEqual([1]);
    expect(app.recorded.messages('warn')).toHaveLength(2);
  });

  it('is renewed by a heartbeat for the heartbeat\'s length, and by checkpoint writes', async () => {
    const app = await clients.app(queueName('lease-renewed'), { db: db.pool });
    app.registerTask({ name: 'beating' }, async (_params, ctx) => {
      await ctx.heartbeat(3);
      await delay(1300);
      await ctx.step('after-heartbeat', () => 'ran');
      await delay(700);
      await ctx.step('after-checkpoint', () => 'ran');
      return ctx.signal.aborted;
    });
    const { taskID } = await app.spawn('beating', null);
    await app.executeTask(await claimOne(app, 1), 1);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: false });
    expect(app.recorded.lines).toEqual([]);
  });
});

describe('ctx.signal', () => {
  it.each(['heartbeat', 'checkpoint write'] as const)(
    'fires with CancelledTask when a %s finds the task cancelled; a step body waiting on it stops',
    async (notice) => {
      const app = await clients.app(queueName('signal-cancel'), { db: db.pool });
      const started = gate();
      const cancelled = gate();
      let reason: unknown;
      app.registerTask({ name: 'long' }, async (_params, ctx) => {
        const noticing = (async () => {
          await cancelled.promise;
          if (notice === 'heartbeat') await ctx.heartbeat();
          else await ctx.step('other', () => 'x');
        })();
        const waiting = ctx.step('long', async () => {
          started.open();
          try {
            return await untilAborted(ctx.signal);
          } finally {
            reason = ctx.signal.reason;
          }
        });
        await Promise.all([waiting, noticing]);
      });
      const { taskID } = await app.spawn('long', null);
      const execution = workOnce(app);
      await started.promise;
      await app.cancelTask(taskID);
      cancelled.open();
      await execution;
      expect(reason).toBeInstanceOf(CancelledTask);
      expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'cancelled' });
      expect(await checkpoints(db.pool, app.queueName, taskID)).toEqual({});
      expect(app.recorded.lines).toEqual([]);
    },
  );

  it('fires with WorkerClosed when the worker is closed and its timeout passes; the run keeps its lease', async () => {
    const app = await clients.app(queueName('signal-close'), { db: db.pool });
    const started = gate();
    let reason: unknown;
    let stopped = false;
    app.registerTask({ name: 'endless' }, async (_params, ctx) => {
      await ctx.step('forever', async () => {
        started.open();
        try {
          return await untilAborted(ctx.signal);
        } finally {
          reason = ctx.signal.reason;
          stopped = true;
        }
      });
    });
    const { taskID } = await app.spawn('endless', null);
    const worker = await app.startWorker({ pollInterval: 0.05 });
    await started.promise;
    const closing = Date.now();
    await worker.close({ timeout: 0.2 });
    expect(Date.now() - closing).toBeLessThan(1000);
    await waitFor(() => stopped, { what: 'the step body to stop' });
    expect(reason).toBeInstanceOf(WorkerClosed);
    expect(await runRows(db.pool, app.queueName, taskID)).toMatchObject([{ state: 'running', failure_reason: null }]);
    await waitFor(() => worker.inFlight === 0, { what: 'the execution to end' });
    expect(app.recorded.lines).toEqual([]);
  });

  it('never fires in a context made by hand (no worker, no lease)', async () => {
    const app = await clients.app(queueName('signal-standalone'), { db: db.pool });
    await app.spawn('by-hand', null, { queue: app.queueName });
    const task = await claimOne(app, 1);
    const ctx = await TaskContext.create({ con: db.pool, queueName: app.queueName, task, claimTimeout: 1 });
    await delay(1100);
    expect(ctx.signal.aborted).toBe(false);
  });
});
