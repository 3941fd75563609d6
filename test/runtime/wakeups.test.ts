import { describe, expect, it } from 'vitest';
import type { Absurd } from '../../packages/absurd-kit/src/index.js';
import { wakeChannel } from '../../packages/absurd-kit/src/notify.js';
import { useTestDatabase } from '../support/db.js';
import {
  delay,
  gate,
  onAbsurdSchema,
  queueName,
  rawSpawn,
  recordClaims,
  runRows,
  taskRow,
  useClients,
  utf8QueueName57,
  waitFor,
  waitForTaskState,
} from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);

/** An hour: any claim that happens within a test is not the poll's doing. */
const NEVER = 3600;

/** Starts a worker and returns once its first (empty) claim is done, i.e. once it is idle. */
async function idleWorker(app: Absurd, options: Parameters<Absurd['startWorker']>[0] = {}) {
  const claims = recordClaims(app);
  const worker = await app.startWorker({ pollInterval: NEVER, ...options });
  await waitFor(() => claims[0]?.claimed !== undefined, { what: 'the first claim' });
  await delay(50);
  return { worker, claims };
}

/** The pid of the connection listening on the queue's wake channel (undefined when there is none). */
async function listenerPid(queue: string): Promise<number | undefined> {
  const { rows } = await db.pool.query<{ pid: number }>(
    `select pid from pg_stat_activity where datname = current_database() and query ilike 'listen %' and query = $1`,
    [`listen "${wakeChannel(queue)}"`],
  );
  return rows[0]?.pid;
}

describe.skipIf(onAbsurdSchema)("notifications wake an idle worker [absurd-kit's schema only: LISTEN/NOTIFY]", () => {
  it('starts a task spawned with app.spawn at once (pollInterval 3600)', async () => {
    const queue = queueName('spawn-wake');
    const app = await clients.app(queue);
    app.registerTask({ name: 'job' }, async (params: { n: number }) => params.n * 2);
    const { worker } = await idleWorker(app);
    const { taskID } = await app.spawn('job', { n: 21 });
    await waitForTaskState(db.pool, queue, taskID, 'completed', 8000);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: 42 });
    await worker.close();
  });

  it('does not start it without the notification (listen: false), so the wake-up is what matters', async () => {
    const queue = queueName('no-listen');
    const app = await clients.app(queue);
    app.registerTask({ name: 'job' }, async () => null);
    const { worker, claims } = await idleWorker(app, { listen: false });
    const { taskID } = await app.spawn('job', {});
    await delay(1000);
    expect((await taskRow(db.pool, queue, taskID))?.state).toBe('pending');
    expect(claims).toHaveLength(1);
    await worker.close();
  });

  it("runs a task whose spawn missed the worker going idle, once the spawn's transaction commits (pollInterval 3600)", async () => {
    const queue = queueName('going-idle');
    const app = await clients.app(queue);
    const entered = gate();
    const hold = gate();
    app.registerTask({ name: 'first' }, async () => {
      entered.open();
      await hold.promise;
      return 1;
    });
    app.registerTask({ name: 'second' }, async () => 2);
    const { worker, claims } = await idleWorker(app, { concurrency: 1 });
    const first = await app.spawn('first', {});
    await entered.promise;
    // The worker is busy (its one slot taken, its idle mark removed): a spawn now reads no mark and
    // sends nothing. It stays uncommitted while the worker finishes `first` and goes idle.
    const caller = await db.pool.connect();
    try {
      await caller.query('begin');
      const second = await rawSpawn(caller, queue, 'second');
      const before = claims.length;
      hold.open();
      await waitForTaskState(db.pool, queue, first.taskID, 'completed', 8000);
      await waitFor(() => claims.length > before && claims.at(-1)?.claimed === 0, { what: 'an empty claim' });
      await delay(1500);
      // While the spawn is in flight the worker asks again at a growing interval, not in a tight loop.
      expect(claims.length - before).toBeLessThanOrEqual(15);
      await caller.query('commit');
      await waitForTaskState(db.pool, queue, second.task_id, 'completed', 8000);
    } finally {
      await caller.query('rollback').catch(() => undefined);
      caller.release();
    }
    await worker.close();
  });

  it('wakes a worker of a 57-byte UTF-8 queue', async () => {
    const queue = utf8QueueName57();
    const app = await clients.app(queue);
    app.registerTask({ name: 'job' }, async () => 'woken');
    const { worker } = await idleWorker(app);
    const { taskID } = await app.spawn('job', {});
    await waitForTaskState(db.pool, queue, taskID, 'completed', 8000);
    await worker.close();
  });

  it('resumes an event waiter when app.emitEvent delivers its event', async () => {
    const queue = queueName('event-wake');
    const app = await clients.app(queue);
    app.registerTask({ name: 'waiter' }, async (_params, ctx) => ({ got: await ctx.awaitEvent('go') }));
    const { worker } = await idleWorker(app);
    const { taskID } = await app.spawn('waiter', {});
    await waitForTaskState(db.pool, queue, taskID, 'sleeping', 8000);
    await delay(200); // the claim after the suspend comes back empty; the worker is idle again
    await app.emitEvent('go', { ok: 1 });
    await waitForTaskState(db.pool, queue, taskID, 'completed', 8000);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: { got: { ok: 1 } } });
    await worker.close();
  });

  it('resumes an event waiter when plain SQL emits its event, as any SDK emits (pollInterval 3600)', async () => {
    const queue = queueName('event-raw');
    const app = await clients.app(queue);
    app.registerTask({ name: 'waiter' }, async (_params, ctx) => ({ got: await ctx.awaitEvent('go') }));
    const { worker } = await idleWorker(app);
    const { taskID } = await app.spawn('waiter', {});
    await waitForTaskState(db.pool, queue, taskID, 'sleeping', 8000);
    await delay(200);
    // absurd.emit_event itself wakes idle listening workers when it makes a run due (migration 000018).
    await db.pool.query(`select absurd.emit_event($1, 'go', '{"ok": 2}')`, [queue]);
    await waitForTaskState(db.pool, queue, taskID, 'completed', 8000);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: { got: { ok: 2 } } });
    await worker.close();
  });

  it('resumes an event waiter when another task emits the event with ctx.emitEvent', async () => {
    const queue = queueName('ctx-event-wake');
    const app = await clients.app(queue);
    app.registerTask({ name: 'waiter' }, async (_params, ctx) => ctx.awaitEvent('signal'));
    const { worker } = await idleWorker(app);
    const { taskID } = await app.spawn('waiter', {});
    await waitForTaskState(db.pool, queue, taskID, 'sleeping', 8000);
    await delay(200);
    // The emitter runs elsewhere (one claim, no loop) after a spawn that no idle worker hears (its
    // mark in kit_idle_listeners removed in the spawn's transaction, and put back once the spawn
    // committed): only the wake-up of ctx.emitEvent can make the idle worker look at the queue again.
    const other = await clients.app(queue);
    other.registerTask({ name: 'emitter' }, async (_params, ctx) => {
      await ctx.emitEvent('signal', 'from a task');
      return null;
    });
    const session = await db.pool.connect();
    let emitter: { task_id: string };
    try {
      await session.query('begin');
      const { rows: marks } = await session.query<{ listener: string; idle_until: Date }>(
        'delete from absurd.kit_idle_listeners where queue_name = $1 returning listener, idle_until',
        [queue],
      );
      emitter = await rawSpawn(session, queue, 'emitter');
      await session.query('commit');
      for (const mark of marks) {
        await session.query('insert into absurd.kit_idle_listeners (queue_name, listener, idle_until) values ($1, $2, $3)', [
          queue,
          mark.listener,
          mark.idle_until,
        ]);
      }
    } finally {
      session.release();
    }
    await other.workBatch('other-worker');
    expect((await taskRow(db.pool, queue, emitter.task_id))?.state).toBe('completed');
    await waitForTaskState(db.pool, queue, taskID, 'completed', 8000);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: 'from a task' });
    await worker.close();
  });

  it('runs a task again at once after retryTask, in place and as a new task', async () => {
    const queue = queueName('retry-wake');
    const app = await clients.app(queue);
    let fail = true;
    app.registerTask({ name: 'flaky' }, async (_params, ctx) => {
      if (fail) throw new Error('not yet');
      return { attempt: ctx.attempt };
    });
    const { worker } = await idleWorker(app);
    const { taskID } = await app.spawn('flaky', {}, { maxAttempts: 1 });
    await waitForTaskState(db.pool, queue, taskID, 'failed', 8000);
    fail = false;
    await delay(200);
    await app.retryTask(taskID);
    await waitForTaskState(db.pool, queue, taskID, 'completed', 8000);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: { attempt: 2 } });

    fail = true;
    const second = await app.spawn('flaky', {}, { maxAttempts: 1 });
    await waitForTaskState(db.pool, queue, second.taskID, 'failed', 8000);
    fail = false;
    await delay(200);
    const copy = await app.retryTask(second.taskID, { spawnNewTask: true });
    await waitForTaskState(db.pool, queue, copy.taskID, 'completed', 8000);
    await worker.close();
  });
});

describe('polling and timers', () => {
  it('picks up a task spawned by plain SQL (no notification) at the next poll', async () => {
    const queue = queueName('raw-poll');
    const app = await clients.app(queue);
    app.registerTask({ name: 'job' }, async (params: { from: string }) => params.from);
    const { worker } = await idleWorker(app, { pollInterval: 0.2 });
    const { task_id } = await rawSpawn(db.pool, queue, 'job', { from: 'psql' });
    await waitForTaskState(db.pool, queue, task_id, 'completed', 8000);
    expect(await app.fetchTaskResult(task_id)).toEqual({ state: 'completed', result: 'psql' });
    await worker.close();
  });

  it.skipIf(onAbsurdSchema)("wakes an idle worker with pollInterval 3600 for a task spawned by plain SQL, as any SDK spawns [absurd-kit's schema only: LISTEN/NOTIFY]", async () => {
    const queue = queueName('raw-wakes');
    const app = await clients.app(queue);
    app.registerTask({ name: 'job' }, async () => null);
    const { worker } = await idleWorker(app);
    // absurd.spawn_task itself notifies idle listening workers (engine migration 000016).
    const raw = await rawSpawn(db.pool, queue, 'job');
    await waitForTaskState(db.pool, queue, raw.task_id, 'completed', 8000);
    await worker.close();
  });

  it.skipIf(onAbsurdSchema)("resumes a task sleeping 2 s when it is due, without waiting for the 3600 s poll [absurd-kit's schema only: kit_seconds_until_next_run]", async () => {
    const queue = queueName('sleep-timer');
    const app = await clients.app(queue);
    let before = 0;
    let after = 0;
    app.registerTask({ name: 'napper' }, async (_params, ctx) => {
      await ctx.step('before', async () => ++before);
      await ctx.sleepFor('nap', 2);
      return ctx.step('after', async () => ++after);
    });
    const { worker } = await idleWorker(app);
    const { taskID } = await app.spawn('napper', {});
    await waitForTaskState(db.pool, queue, taskID, 'sleeping', 8000);
    await waitForTaskState(db.pool, queue, taskID, 'completed', 10_000);
    expect([before, after]).toEqual([1, 1]);
    const runs = await runRows(db.pool, queue, taskID);
    expect(runs).toHaveLength(1); // a sleep keeps its run
    expect(runs[0]!.completed_at!.getTime()).toBeGreaterThanOrEqual(runs[0]!.created_at.getTime() + 2000 - 50);
    await worker.close();
  });

  it.skipIf(onAbsurdSchema)("resumes a retry with a backoff when it is due [absurd-kit's schema only: kit_seconds_until_next_run]", async () => {
    const queue = queueName('backoff-timer');
    const app = await clients.app(queue);
    app.registerTask({ name: 'flaky' }, async (_params, ctx) => {
      if (ctx.attempt === 1) throw new Error('first attempt fails');
      return ctx.attempt;
    });
    const { worker } = await idleWorker(app);
    const { taskID } = await app.spawn('flaky', {}, { retryStrategy: { kind: 'fixed', baseSeconds: 1 } });
    await waitForTaskState(db.pool, queue, taskID, 'completed', 10_000);
    const runs = await runRows(db.pool, queue, taskID);
    expect(runs.map((r) => r.state)).toEqual(['failed', 'completed']);
    await worker.close();
  });
});

describe.skipIf(onAbsurdSchema)("timers across workers [absurd-kit's schema only: LISTEN/NOTIFY, kit_seconds_until_next_run]", () => {
  it('an idle worker resumes a sleep that started on another, busy worker', async () => {
    const queue = queueName('sleep-elsewhere');
    const idle = await clients.app(queue);
    const busy = await clients.app(queue);
    const hold = gate();
    for (const app of [idle, busy]) {
      app.registerTask({ name: 'napper' }, async (_params, ctx) => {
        await ctx.sleepFor('nap', 1);
        return 'rested';
      });
      app.registerTask({ name: 'blocker' }, async () => {
        await hold.promise;
        return null;
      });
    }
    const { worker: idleWorker_ } = await idleWorker(idle);
    // Work that no notification announces: the busy worker takes the napper, then the blocker.
    const napper = await rawSpawn(db.pool, queue, 'napper');
    const blocker = await rawSpawn(db.pool, queue, 'blocker');
    const busyWorker = await busy.startWorker({ pollInterval: NEVER, listen: false });
    await waitForTaskState(db.pool, queue, blocker.task_id, 'running', 8000);
    await waitForTaskState(db.pool, queue, napper.task_id, 'completed', 8000);
    hold.open();
    await waitForTaskState(db.pool, queue, blocker.task_id, 'completed', 8000);
    await idleWorker_.close();
    await busyWorker.close();
  });

  it('an idle worker resumes an event wait that timed out after it started on another, busy worker', async () => {
    const queue = queueName('event-timeout-elsewhere');
    const idle = await clients.app(queue);
    const busy = await clients.app(queue);
    const hold = gate();
    for (const app of [idle, busy]) {
      app.registerTask({ name: 'waiter' }, async (_params, ctx) => {
        try {
          return await ctx.awaitEvent('never', { timeout: 1 });
        } catch (error) {
          if (error instanceof Error && error.name === 'TimeoutError') return 'timed out';
          throw error;
        }
      });
      app.registerTask({ name: 'blocker' }, async () => {
        await hold.promise;
        return null;
      });
    }
    const { worker: idleWorker_ } = await idleWorker(idle);
    const waiter = await rawSpawn(db.pool, queue, 'waiter');
    const blocker = await rawSpawn(db.pool, queue, 'blocker');
    const busyWorker = await busy.startWorker({ pollInterval: NEVER, listen: false });
    await waitForTaskState(db.pool, queue, blocker.task_id, 'running', 8000);
    await waitForTaskState(db.pool, queue, waiter.task_id, 'completed', 8000);
    expect(await idle.fetchTaskResult(waiter.task_id)).toEqual({ state: 'completed', result: 'timed out' });
    hold.open();
    await idleWorker_.close();
    await busyWorker.close();
  });

  it('an idle worker runs a retry whose backoff started on another, busy worker', async () => {
    const queue = queueName('backoff-elsewhere');
    const idle = await clients.app(queue);
    const busy = await clients.app(queue);
    const hold = gate();
    for (const app of [idle, busy]) {
      app.registerTask({ name: 'flaky' }, async (_params, ctx) => {
        if (ctx.attempt === 1) throw new Error('first attempt fails');
        return ctx.attempt;
      });
      app.registerTask({ name: 'blocker' }, async () => {
        await hold.promise;
        return null;
      });
    }
    const { worker: idleWorker_ } = await idleWorker(idle);
    const flaky = await rawSpawn(db.pool, queue, 'flaky', {}, { retry_strategy: { kind: 'fixed', base_seconds: 1 } });
    const blocker = await rawSpawn(db.pool, queue, 'blocker');
    const busyWorker = await busy.startWorker({ pollInterval: NEVER, listen: false });
    await waitForTaskState(db.pool, queue, blocker.task_id, 'running', 8000);
    await waitForTaskState(db.pool, queue, flaky.task_id, 'completed', 8000);
    hold.open();
    await idleWorker_.close();
    await busyWorker.close();
  });
});

describe.skipIf(onAbsurdSchema)("the LISTEN connection [absurd-kit's schema only: LISTEN/NOTIFY]", () => {
  it('reconnects after its backend is terminated, catches up on what it missed, and wakes the worker again', async () => {
    const queue = queueName('listen-recover');
    const app = await clients.app(queue);
    app.registerTask({ name: 'job' }, async (params: { n: number }) => params.n);
    const { worker } = await idleWorker(app);
    const first = await waitFor(() => listenerPid(queue), { what: 'the LISTEN connection' });

    const { rows } = await db.pool.query<{ ok: boolean }>('select pg_terminate_backend($1) as ok', [first]);
    expect(rows[0]?.ok).toBe(true);
    // Spawned while nobody listens: the notification is lost, the reconnect must make up for it.
    const missed = await app.spawn('job', { n: 1 });
    await waitForTaskState(db.pool, queue, missed.taskID, 'completed', 10_000);

    const second = await waitFor(() => listenerPid(queue), { what: 'a new LISTEN connection' });
    expect(second).not.toBe(first);
    await delay(100);
    const later = await app.spawn('job', { n: 2 });
    await waitForTaskState(db.pool, queue, later.taskID, 'completed', 8000);
    await worker.close();
    // A closed worker leaves no connection behind; a new worker of the same client listens again.
    await waitFor(async () => (await listenerPid(queue)) === undefined, { what: 'the LISTEN connection to close' });
    const again = await idleWorker(app);
    const third = await app.spawn('job', { n: 3 });
    await waitForTaskState(db.pool, queue, third.taskID, 'completed', 8000);
    await again.worker.close();
  });
});
