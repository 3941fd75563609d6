import { afterEach, describe, expect, it, vi } from 'vitest';
import { Absurd, CancelledTask, FailedTask, SuspendTask, type TaskContext } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import {
  appAtFakeTime,
  type AppAtFakeTimeOptions,
  checkpoints,
  delay,
  fnv1aJitter,
  gate,
  onAbsurdSchema,
  queueName,
  rawSpawn,
  runRows,
  table,
  taskRow,
  type TestAppOptions,
  useClients,
  useFakeClock,
  workOnce,
} from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);
const clock = useFakeClock();

const T0 = Date.parse('2036-01-02T03:04:05.000Z');
const at = (ms: number) => new Date(ms).toISOString();

/** A client on a single-connection pool at fake database time T0 that records its statements. */
function timedApp(queue = queueName('exec'), before?: AppAtFakeTimeOptions['before']) {
  return appAtFakeTime(clients, clock, queue, T0, { before });
}

function appWithQueue(queue = queueName('exec'), options: TestAppOptions = {}) {
  return clients.app(queue, { db: db.pool, ...options });
}

describe('an unknown task name', () => {
  it('defers the run by 15 s plus a deterministic FNV-1a jitter, using no attempt', async () => {
    const { app, pool, queries } = await timedApp(queueName('Awkward', 'quoted'));
    const spawned = [];
    for (let i = 0; i < 6; i++) spawned.push(await app.spawn('not-deployed-yet', { i }, { queue: app.queueName, maxAttempts: 1 }));
    const claimed = await app.claimTasks({ batchSize: 6 });
    expect(claimed).toHaveLength(6);
    for (const task of claimed) await app.executeTask(task, 120);

    for (const { taskID, runID } of spawned) {
      const expected = 15 + fnv1aJitter(runID);
      expect(expected).toBeGreaterThanOrEqual(15);
      expect(expected).toBeLessThanOrEqual(30);
      const [run] = await runRows(pool, app.queueName, taskID);
      expect(run).toMatchObject({ run_id: runID, attempt: 1, state: 'sleeping', failure_reason: null, claimed_by: null });
      expect(run?.available_at.toISOString()).toBe(at(T0 + expected * 1000));
      expect(await taskRow(pool, app.queueName, taskID)).toMatchObject({ state: 'sleeping', attempts: 1 });
      expect(app.recorded.messages('warn')).toContain(
        `claimed unknown task "not-deployed-yet" (${taskID}); deferred run ${runID} by ${expected}s`,
      );
    }
    expect(app.recorded.messages('error')).toEqual([]);
    const schedules = queries.filter((q) => q.text.includes('absurd.schedule_run'));
    expect(schedules).toHaveLength(6);
    expect(schedules[0]?.text).toMatch(/^SELECT absurd\.schedule_run\(/);
    // A checkpoint preload, when the run needs one, comes before the deferral.
    const firstPreload = queries.findIndex((q) => q.text.includes('get_task_checkpoint_states('));
    if (firstPreload >= 0) expect(firstPreload).toBeLessThan(queries.indexOf(schedules[0]!));
  });

  it('runs the deferred run (same run, attempt 1) once the task is registered and the time has come', async () => {
    const { app, pool } = await timedApp();
    const { taskID, runID } = await app.spawn('late-deploy', 'p', { queue: app.queueName, maxAttempts: 1 });
    await workOnce(app);
    const due = (await runRows(pool, app.queueName, taskID))[0]!.available_at.getTime();
    app.registerTask({ name: 'late-deploy' }, async (params, ctx) => ({ params, attempt: ctx.attempt, runID: ctx.runID }));
    await clock.set(pool, due - 1000, { dbOnly: true });
    expect(await workOnce(app)).toEqual([]);
    await clock.set(pool, due, { dbOnly: true });
    await workOnce(app);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: { params: 'p', attempt: 1, runID } });
  });

  it('fails the run with the deferral error when deferring fails', async () => {
    const refuse = { on: false };
    const { app } = await timedApp(queueName('deferfail'), (query) => {
      if (refuse.on && query.text.includes('schedule_run')) throw new Error('schedule refused');
    });
    const { taskID } = await app.spawn('ghost', null, { queue: app.queueName, maxAttempts: 1 });
    refuse.on = true;
    await workOnce(app);
    refuse.on = false;
    expect(await app.fetchTaskResult(taskID)).toMatchObject({
      state: 'failed',
      failure: { name: 'Error', message: 'schedule refused' },
    });
  });
});

describe('a task registered for another queue', () => {
  it('fails at once with "Misconfigured task (queue mismatch)" without running the handler', async () => {
    const app = await appWithQueue();
    const home = queueName('home');
    await app.createQueue(home);
    let ran = false;
    app.registerTask({ name: 'misplaced', queue: home }, async () => {
      ran = true;
    });
    const producer = new Absurd({ db: db.pool, queueName: app.queueName });
    const { taskID } = await producer.spawn('misplaced', null, { queue: app.queueName, maxAttempts: 1 });
    await workOnce(app);
    expect(ran).toBe(false);
    const snapshot = await app.fetchTaskResult(taskID);
    expect(snapshot).toMatchObject({ state: 'failed', failure: { name: 'Error', message: 'Misconfigured task (queue mismatch)' } });
  });
});

describe('failure reasons', () => {
  class PaymentDeclined extends Error {
    constructor(message: string) {
      super(message);
      this.name = 'PaymentDeclined';
    }
  }

  it('stores {name, message, stack} for errors and logs one line without the stack', async () => {
    const app = await appWithQueue();
    const thrown = new PaymentDeclined('card expired');
    app.registerTask({ name: 'declined' }, async () => {
      throw thrown;
    });
    const { taskID, runID } = await app.spawn('declined', null, { maxAttempts: 1 });
    await workOnce(app);
    const [run] = await runRows(db.pool, app.queueName, taskID);
    expect(run?.failure_reason).toStrictEqual({ name: 'PaymentDeclined', message: 'card expired', stack: thrown.stack });
    expect((run?.failure_reason as { stack: string } | undefined)?.stack).toContain('card expired');
    expect(app.recorded.lines.filter((l) => l.level === 'error')).toEqual([
      {
        level: 'error',
        args: [`task "declined" run ${runID}: PaymentDeclined: card expired — attempt 1 of 1 failed, no attempts left`],
      },
    ]);
  });

  it('logs a failure with attempts left as one warning, and the last one as an error', async () => {
    const app = await appWithQueue();
    app.registerTask({ name: 'flaky' }, async (_params, ctx) => {
      throw new Error(`down\nat attempt ${ctx.attempt}`);
    });
    const { taskID } = await app.spawn('flaky', null, { maxAttempts: 2 });
    await workOnce(app);
    await workOnce(app);
    const runs = await runRows(db.pool, app.queueName, taskID);
    expect(runs).toHaveLength(2);
    expect(app.recorded.lines.map((l) => [l.level, l.args])).toEqual([
      ['warn', [`task "flaky" run ${runs[0]!.run_id}: Error: down — attempt 1 of 2 failed`]],
      ['error', [`task "flaky" run ${runs[1]!.run_id}: Error: down — attempt 2 of 2 failed, no attempts left`]],
    ]);
  });

  it('logs a failure of a task with unlimited attempts as a warning', async () => {
    const app = await appWithQueue();
    app.registerTask({ name: 'endless' }, async () => {
      throw 'not an Error';
    });
    // A spawn without max_attempts (psql, pg_cron, absurdctl) may be retried for ever.
    const { run_id } = await rawSpawn(db.pool, app.queueName, 'endless', null);
    await workOnce(app);
    expect(app.recorded.messages('warn')).toEqual([`task "endless" run ${run_id}: not an Error — attempt 1 failed`]);
    expect(app.recorded.messages('error')).toEqual([]);
  });

  it('stores stack null when an error has none', async () => {
    const app = await appWithQueue();
    app.registerTask({ name: 'stackless' }, async () => {
      const error = new TypeError('no stack');
      error.stack = '';
      throw error;
    });
    const { taskID } = await app.spawn('stackless', null, { maxAttempts: 1 });
    await workOnce(app);
    expect((await runRows(db.pool, app.queueName, taskID))[0]?.failure_reason).toStrictEqual({
      name: 'TypeError',
      message: 'no stack',
      stack: null,
    });
  });

  it('stores {message: String(value)} for thrown non-errors', async () => {
    const app = await appWithQueue();
    app.registerTask({ name: 'throws-anything' }, async (params: { kind: string }) => {
      const values: Record<string, unknown> = { text: 'plain text', number: 42, object: { a: 1 }, undef: undefined, nul: null };
      throw values[params.kind];
    });
    const expected: Record<string, string> = {
      text: 'plain text',
      number: '42',
      object: '[object Object]',
      undef: 'undefined',
      nul: 'null',
    };
    const ids = new Map<string, string>();
    for (const kind of Object.keys(expected)) ids.set(kind, (await app.spawn('throws-anything', { kind }, { maxAttempts: 1 })).taskID);
    await workOnce(app, 120, 5);
    for (const [kind, message] of Object.entries(expected)) {
      expect((await runRows(db.pool, app.queueName, ids.get(kind)!))[0]?.failure_reason, kind).toStrictEqual({ message });
    }
  });

  it('rethrows an error of fail_run itself (other than AB001/AB002) to the caller', async () => {
    const { app } = await timedApp(queueName('failfail'), (query) => {
      if (query.text.includes('absurd.fail_run')) throw new Error('database went away');
    });
    app.registerTask({ name: 'doomed' }, async () => {
      throw new Error('handler error');
    });
    await app.spawn('doomed', null);
    const [task] = await app.claimTasks();
    await expect(app.executeTask(task!, 120)).rejects.toThrow('database went away');
  });
});

describe('runs that end quietly', () => {
  it('a task cancelled during a step stops at the checkpoint write (AB001)', async () => {
    const { app, pool, queries } = await timedApp();
    const caught: unknown[] = [];
    let after = false;
    app.registerTask({ name: 'cancel-me' }, async (_p, ctx) => {
      try {
        await ctx.step('work', async () => {
          await app.cancelTask(ctx.taskID);
          return 'finished anyway';
        });
      } catch (error) {
        caught.push(error);
        throw error;
      }
      after = true;
      return 'not reached';
    });
    const { taskID } = await app.spawn('cancel-me', null);
    await workOnce(app);
    expect(caught).toHaveLength(1);
    expect(caught[0]).toBeInstanceOf(CancelledTask);
    expect(caught[0]).toMatchObject({ name: 'CancelledTask', message: 'Task cancelled' });
    expect(after).toBe(false);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'cancelled' });
    expect((await runRows(pool, app.queueName, taskID)).map((r) => [r.state, r.failure_reason])).toEqual([['cancelled', null]]);
    expect(await checkpoints(pool, app.queueName, taskID)).toEqual({});
    expect(app.recorded.messages('error')).toEqual([]);
    expect(queries.some((q) => q.text.includes('absurd.fail_run'))).toBe(false);
  });

  it('a task cancelled before it returns is not completed (AB001 from complete_run)', async () => {
    const { app } = await timedApp();
    app.registerTask({ name: 'cancel-at-end' }, async (_p, ctx) => {
      await app.cancelTask(ctx.taskID);
      return 'result';
    });
    const { taskID } = await app.spawn('cancel-at-end', null);
    await workOnce(app);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'cancelled' });
    expect(app.recorded.messages('error')).toEqual([]);
  });

  it('a zombie whose expired lease was swept stops at its next checkpoint write (AB002)', async () => {
    const { app, pool, queries } = await timedApp();
    const hold = gate();
    const caught: unknown[] = [];
    app.registerTask({ name: 'zombie' }, async (_p, ctx) => {
      await hold.promise;
      try {
        await ctx.step('late', () => 'too late');
      } catch (error) {
        caught.push(error);
        throw error;
      }
      return 'not reached';
    });
    const { taskID } = await app.spawn('zombie', null, { maxAttempts: 1 });
    const [task] = await app.claimTasks({ claimTimeout: 10, workerId: 'zombie-worker' });
    const running = app.executeTask(task!, 10);
    await delay(20);
    await clock.set(pool, T0 + 11_000, { dbOnly: true });
    expect(await app.claimTasks({ workerId: 'sweeper' })).toEqual([]);
    hold.open();
    await running;
    expect(caught[0]).toBeInstanceOf(FailedTask);
    expect(caught[0]).toMatchObject({ name: 'FailedTask', message: 'Task already failed' });
    const snapshot = await app.fetchTaskResult(taskID);
    expect(snapshot).toMatchObject({
      state: 'failed',
      failure: { name: '$ClaimTimeout', workerId: 'zombie-worker', attempt: 1 },
    });
    expect(await checkpoints(pool, app.queueName, taskID)).toEqual({});
    expect(app.recorded.messages('error')).toEqual([]);
    expect(queries.some((q) => q.text.includes('absurd.fail_run'))).toBe(false);
  });

  it('a zombie that completes after the sweep changes nothing; the retry completes the task (AB002)', async () => {
    const { app, pool } = await timedApp();
    const hold = gate();
    app.registerTask({ name: 'zombie-complete' }, async (_p, ctx) => {
      if (ctx.attempt === 1) await hold.promise;
      return `attempt ${ctx.attempt}`;
    });
    const { taskID } = await app.spawn('zombie-complete', null, { maxAttempts: 2 });
    const [task] = await app.claimTasks({ claimTimeout: 10 });
    const running = app.executeTask(task!, 10);
    await delay(20);
    await clock.set(pool, T0 + 11_000, { dbOnly: true });
    const [retry] = await app.claimTasks();
    expect(retry?.attempt).toBe(2);
    hold.open();
    await running;
    expect(app.recorded.messages('error')).toEqual([]);
    const runs = await runRows(pool, app.queueName, taskID);
    expect(runs.map((r) => [r.attempt, r.state])).toEqual([
      [1, 'failed'],
      [2, 'running'],
    ]);
    await app.executeTask(retry!, 120);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: 'attempt 2' });
  });
  it('a task cancelled before awaitEvent stops there (AB001 from await_event)', async () => {
    const { app, queries } = await timedApp();
    const caught: unknown[] = [];
    app.registerTask({ name: 'cancel-then-wait' }, async (_p, ctx) => {
      await app.cancelTask(ctx.taskID);
      try {
        await ctx.awaitEvent('anything');
      } catch (error) {
        caught.push(error);
        throw error;
      }
    });
    const { taskID } = await app.spawn('cancel-then-wait', null);
    await workOnce(app);
    expect(caught[0]).toBeInstanceOf(CancelledTask);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'cancelled' });
    expect(queries.some((q) => q.text.includes('absurd.fail_run'))).toBe(false);
  });

  it('a failure of a cancelled task is logged, and its AB001 from fail_run is swallowed', async () => {
    const { app, queries } = await timedApp();
    app.registerTask({ name: 'cancel-then-throw' }, async (_p, ctx) => {
      await app.cancelTask(ctx.taskID);
      throw new Error('after cancel');
    });
    const { taskID } = await app.spawn('cancel-then-throw', null);
    await workOnce(app);
    expect(queries.filter((q) => q.text.includes('absurd.fail_run'))).toHaveLength(1);
    expect(app.recorded.messages('warn')).toEqual([expect.stringMatching(/^task "cancel-then-throw" run .+: Error: after cancel — attempt 1 of 5 failed$/)]);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'cancelled' });
  });
});

describe('claimTasks and workBatch', () => {
  it('claimTasks defaults to one run, a 120 s lease and worker id "worker"', async () => {
    const { app, pool } = await timedApp();
    const spawned = [await app.spawn('t', 1, { queue: app.queueName }), await app.spawn('t', 2, { queue: app.queueName })];
    const claimed = await app.claimTasks();
    expect(claimed).toHaveLength(1);
    // absurd-sdk's ten columns, plus — where the engine has kit_claim_task — the run's visible
    // checkpoints (none yet for a fresh task) and its queue lag (spawned at the claim's time: 0).
    const columns = ['attempt', 'event_payload', 'headers', 'max_attempts', 'params', 'retry_strategy', 'run_id', 'task_id', 'task_name', 'wake_event'];
    expect(Object.keys(claimed[0]!).sort()).toEqual((onAbsurdSchema ? columns : [...columns, 'checkpoints', 'queue_lag']).sort());
    if (!onAbsurdSchema) expect(claimed[0]).toMatchObject({ checkpoints: {}, queue_lag: 0 });
    const run = (await runRows(pool, app.queueName, claimed[0]!.task_id))[0];
    expect(run).toMatchObject({ claimed_by: 'worker', state: 'running' });
    expect(run?.claim_expires_at!.toISOString()).toBe(at(T0 + 120_000));
    const rest = await app.claimTasks({ batchSize: 5, claimTimeout: 7, workerId: 'w-2' });
    expect(rest.map((t) => t.task_id)).toEqual(spawned.map((s) => s.taskID).filter((id) => id !== claimed[0]!.task_id));
    const other = (await runRows(pool, app.queueName, rest[0]!.task_id))[0];
    expect(other).toMatchObject({ claimed_by: 'w-2' });
    expect(other?.claim_expires_at!.toISOString()).toBe(at(T0 + 7_000));
  });

  it('workBatch(workerId, claimTimeout, batchSize) claims once and runs the batch one after the other', async () => {
    const { app, pool } = await timedApp();
    let running = 0;
    let most = 0;
    const workers: string[] = [];
    app.registerTask({ name: 'seq' }, async (_p, ctx) => {
      running += 1;
      most = Math.max(most, running);
      workers.push((await runRows(pool, ctx.queueName, ctx.taskID))[0]!.claimed_by!);
      await delay(20);
      running -= 1;
      return null;
    });
    for (let i = 0; i < 4; i++) await app.spawn('seq', i);
    await app.workBatch('batcher', 60, 3);
    expect(workers).toEqual(['batcher', 'batcher', 'batcher']);
    expect(most).toBe(1);
    const states = await pool.query(`select state, count(*)::int as n from ${table('t', app.queueName)} group by state order by state`);
    expect(states.rows).toEqual([
      { state: 'completed', n: 3 },
      { state: 'pending', n: 1 },
    ]);
    await app.workBatch();
    expect(workers.at(-1)).toBe('worker');
  });
});

describe('a handler that swallows SuspendTask', () => {
  it('keeps running while the run sleeps; its completion fails unmapped and the task retries', async () => {
    const app = await appWithQueue();
    const caught: unknown[] = [];
    app.registerTask({ name: 'swallower' }, async (_p, ctx) => {
      if (ctx.attempt === 1) {
        try {
          await ctx.sleepFor('nap', 3600);
        } catch (error) {
          caught.push(error);
        }
      }
      return `attempt ${ctx.attempt}`;
    });
    const { taskID } = await app.spawn('swallower', null, { maxAttempts: 2 });
    await workOnce(app);
    expect(caught[0]).toBeInstanceOf(SuspendTask);
    const [failed, retry] = await runRows(db.pool, app.queueName, taskID);
    expect(failed?.state).toBe('failed');
    expect((failed?.failure_reason as { message: string } | undefined)?.message).toMatch(/is not currently running/);
    expect(retry).toMatchObject({ attempt: 2, state: 'pending' });
    expect(app.recorded.messages('warn')).toHaveLength(1);
    await workOnce(app);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: 'attempt 2' });
  });
});

describe('wrapTaskExecution', () => {
  it('wraps the handler and the completion', async () => {
    const order: string[] = [];
    let seenCtx: TaskContext | undefined;
    const app = await appWithQueue(queueName('wrap'), {
      hooks: {
        wrapTaskExecution: async <T>(ctx: TaskContext, execute: () => Promise<T>) => {
          seenCtx = ctx;
          order.push(`before: ${(await app.fetchTaskResult(ctx.taskID))?.state}`);
          const result = await execute();
          order.push(`after: ${(await app.fetchTaskResult(ctx.taskID))?.state} ${JSON.stringify(result)}`);
          return result;
        },
      },
    });
    let handlerCtx: TaskContext | undefined;
    app.registerTask({ name: 'wrapped' }, async (_p, ctx) => {
      handlerCtx = ctx;
      order.push('handler');
      return { v: 1 };
    });
    const { taskID } = await app.spawn('wrapped', null);
    await workOnce(app);
    expect(order).toEqual(['before: running', 'handler', 'after: completed {"v":1}']);
    expect(seenCtx).toBe(handlerCtx);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: { v: 1 } });
  });

  it('sees the handler error, and an error of its own fails the run', async () => {
    const seen: unknown[] = [];
    const app = await appWithQueue(queueName('wraperr'), {
      hooks: {
        wrapTaskExecution: async <T>(ctx: TaskContext, execute: () => Promise<T>) => {
          if (ctx.taskName === 'wrapper-fails') throw new Error('wrapper refused');
          try {
            return await execute();
          } catch (error) {
            seen.push((error as Error).message);
            throw error;
          }
        },
      },
    });
    app.registerTask({ name: 'handler-fails' }, async () => {
      throw new Error('handler broke');
    });
    let ran = false;
    app.registerTask({ name: 'wrapper-fails' }, async () => {
      ran = true;
    });
    const a = await app.spawn('handler-fails', null, { maxAttempts: 1 });
    const b = await app.spawn('wrapper-fails', null, { maxAttempts: 1 });
    await workOnce(app, 120, 2);
    expect(seen).toEqual(['handler broke']);
    expect(ran).toBe(false);
    expect(await app.fetchTaskResult(a.taskID)).toMatchObject({ state: 'failed', failure: { message: 'handler broke' } });
    expect(await app.fetchTaskResult(b.taskID)).toMatchObject({ state: 'failed', failure: { message: 'wrapper refused' } });
  });
});

describe('lease timers', () => {
  let exitSpy: ReturnType<typeof vi.spyOn> | undefined;
  const exits: unknown[] = [];
  const patchExit = () => {
    exits.length = 0;
    exitSpy = vi.spyOn(process, 'exit').mockImplementation(((code?: number) => {
      exits.push(code);
    }) as typeof process.exit);
  };
  afterEach(() => {
    exitSpy?.mockRestore();
    exitSpy = undefined;
  });

  async function slowTask(name: string, body: (ctx: TaskContext) => Promise<void>) {
    const app = await appWithQueue(queueName('lease'));
    app.registerTask({ name }, async (_p, ctx) => {
      await body(ctx);
      return 'done';
    });
    const { taskID } = await app.spawn(name, null);
    const [task] = await app.claimTasks({ claimTimeout: 1 });
    return { app, taskID, task: task! };
  }

  it('warns when a run outlives its lease, without exiting unless asked', async () => {
    patchExit();
    const { app, taskID, task } = await slowTask('slow', () => delay(1300));
    await app.executeTask(task, 1);
    expect(app.recorded.messages('warn')).toEqual([`task slow (${taskID}) exceeded claim timeout of 1s`]);
    expect(exits).toEqual([]);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: 'done' });
  });

  it('with fatalOnLeaseTimeout exits the process at twice the lease (process.exit looked up when it fires)', async () => {
    const { app, taskID, task } = await slowTask('very-slow', () => delay(2300));
    const running = app.executeTask(task, 1, { fatalOnLeaseTimeout: true });
    patchExit();
    await running;
    expect(exits).toEqual([1]);
    expect(app.recorded.messages('error')).toEqual([
      `task very-slow (${taskID}) exceeded claim timeout of 1s by more than 100%; terminating process`,
    ]);
    expect(app.recorded.messages('warn')).toEqual([`task very-slow (${taskID}) exceeded claim timeout of 1s`]);
  });

  it('workBatch never exits the process', async () => {
    patchExit();
    const app = await appWithQueue(queueName('batch'));
    app.registerTask({ name: 'batch-slow' }, async () => {
      await delay(2300);
    });
    const { taskID } = await app.spawn('batch-slow', null);
    await app.workBatch('w', 1, 1);
    expect(exits).toEqual([]);
    expect(app.recorded.messages('warn')).toEqual([`task batch-slow (${taskID}) exceeded claim timeout of 1s`]);
  });

  it('are reset by every checkpoint write', async () => {
    patchExit();
    const { app, task } = await slowTask('stepping', async (ctx) => {
      for (let i = 0; i < 4; i++) {
        await delay(600);
        await ctx.step('tick', () => i);
      }
    });
    await app.executeTask(task, 1, { fatalOnLeaseTimeout: true });
    expect(app.recorded.messages('warn')).toEqual([]);
    expect(exits).toEqual([]);
  });

  it('are reset by a heartbeat for its own length', async () => {
    patchExit();
    const { app, task } = await slowTask('beating', async (ctx) => {
      await ctx.heartbeat(4);
      await delay(1500);
    });
    await app.executeTask(task, 1, { fatalOnLeaseTimeout: true });
    expect(app.recorded.messages('warn')).toEqual([]);
    expect(exits).toEqual([]);
  });

  it('are cleared when the run ends, also when it suspends or fails', async () => {
    patchExit();
    const app = await appWithQueue(queueName('cleared'));
    app.registerTask({ name: 'quick' }, async () => 'fast');
    app.registerTask({ name: 'suspends' }, async (_p, ctx) => {
      await ctx.awaitEvent('never');
    });
    app.registerTask({ name: 'fails' }, async () => {
      throw new Error('fast failure');
    });
    for (const name of ['quick', 'suspends', 'fails']) await app.spawn(name, null, { maxAttempts: 1 });
    const tasks = await app.claimTasks({ batchSize: 3, claimTimeout: 1 });
    expect(tasks).toHaveLength(3);
    for (const task of tasks) await app.executeTask(task, 1, { fatalOnLeaseTimeout: true });
    await delay(2300);
    expect(app.recorded.messages('warn')).toEqual([]);
    expect(exits).toEqual([]);
  });
});
