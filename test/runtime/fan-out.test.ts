/**
 * Fan-out: waits that start together (`Promise.all` over `ctx.awaitTaskResult`, `ctx.awaitEvent`
 * and `ctx.sleepFor`, and `ctx.awaitAll`) suspend the run once and resume it once every one of them
 * can be answered, or as each can with `resume: 'each'`. On a schema installed by Absurd (no
 * `kit_await_events`) they are sent one by one: more suspensions, the same results, no errors.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { AwaitedTaskFailedError, ValidationError, defineTask, isControlFlowSignal, type SpawnResult } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import { checkpoints, delay, gate, onAbsurdSchema, queueName, runRows, taskRow, useClients, waitFor, waitForTaskState, WAKE_UP_POLL } from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);

/** Lines a client logged above INFO: none is expected from a fan-out. */
function warningsAndErrors(app: { recorded: { lines: { level: string; args: unknown[] }[] } }): unknown[][] {
  return app.recorded.lines.filter((line) => line.level !== 'info' && line.level !== 'debug').map((line) => line.args);
}

describe('Promise.all over waits', () => {
  it('over ctx.awaitTaskResult of five children: one suspension, one resumption, results in order', async () => {
    const app = await clients.app(queueName('all-children'));
    const release = gate();
    app.registerTask({ name: 'child' }, async (params: { n: number }) => {
      await release.promise;
      return params.n * 10;
    });
    let entries = 0;
    app.registerTask({ name: 'parent' }, async (_params, ctx) => {
      entries += 1;
      const handles: SpawnResult[] = [];
      for (let n = 0; n < 5; n++) handles.push(await ctx.spawn('child', { n }, { stepName: `child-${n}` }));
      return Promise.all(handles.map((handle) => ctx.awaitTaskResult(handle)));
    });
    const worker = await app.startWorker({ concurrency: 8, pollInterval: WAKE_UP_POLL });
    const { taskID } = await app.spawn('parent', null);
    await waitForTaskState(db.pool, app.queueName, taskID, 'sleeping');
    release.open();
    const snapshot = await app.awaitTaskResult(taskID, { timeout: 15 });
    await worker.close();
    expect(snapshot).toEqual({ state: 'completed', result: [0, 10, 20, 30, 40].map((result) => ({ state: 'completed', result })) });
    expect(await runRows(db.pool, app.queueName, taskID)).toHaveLength(1);
    if (onAbsurdSchema) expect(entries).toBeLessThanOrEqual(6);
    else expect(entries).toBe(2);
    expect(warningsAndErrors(app)).toEqual([]);
  });

  it('over ctx.awaitEvent: resumes once, when the last of three events is emitted', async () => {
    const app = await clients.app(queueName('all-events'));
    let entries = 0;
    app.registerTask({ name: 'collect' }, async (_params, ctx) => {
      entries += 1;
      return Promise.all(['a', 'b', 'c'].map((key) => ctx.awaitEvent(`signal-${key}`)));
    });
    const worker = await app.startWorker({ pollInterval: WAKE_UP_POLL });
    const { taskID } = await app.spawn('collect', null);
    await waitForTaskState(db.pool, app.queueName, taskID, 'sleeping');
    for (const key of ['c', 'a', 'b']) {
      await app.emitEvent(`signal-${key}`, { key });
      await delay(150);
      if (key !== 'b' && !onAbsurdSchema) expect((await taskRow(db.pool, app.queueName, taskID)).state).toBe('sleeping');
    }
    expect(await app.awaitTaskResult(taskID, { timeout: 10 })).toEqual({ state: 'completed', result: [{ key: 'a' }, { key: 'b' }, { key: 'c' }] });
    await worker.close();
    if (!onAbsurdSchema) expect(entries).toBe(2);
    expect(warningsAndErrors(app)).toEqual([]);
  });

  it("with resume: 'each' the run resumes at every event and answers it", async () => {
    const app = await clients.app(queueName('each-events'));
    let entries = 0;
    app.registerTask({ name: 'collect' }, async (_params, ctx) => {
      entries += 1;
      return Promise.all(['a', 'b', 'c'].map((key) => ctx.awaitEvent(`signal-${key}`, { resume: 'each' })));
    });
    const worker = await app.startWorker({ pollInterval: WAKE_UP_POLL });
    const { taskID } = await app.spawn('collect', null);
    for (const key of ['b', 'c', 'a']) {
      await waitForTaskState(db.pool, app.queueName, taskID, 'sleeping');
      await app.emitEvent(`signal-${key}`, key);
      await waitFor(async () => (await taskRow(db.pool, app.queueName, taskID)).state !== 'pending');
    }
    expect(await app.awaitTaskResult(taskID, { timeout: 10 })).toEqual({ state: 'completed', result: ['a', 'b', 'c'] });
    await worker.close();
    if (!onAbsurdSchema) expect(entries).toBe(4); // one by one there, the run resumes at the event it suspended on
    expect(warningsAndErrors(app)).toEqual([]);
  });

  it('mixed: two children, an event with a timeout and a sleep, all answered, nothing logged', async () => {
    const app = await clients.app(queueName('mixed'));
    const release = gate();
    app.registerTask({ name: 'child' }, async (params: { n: number }) => {
      await release.promise;
      return params.n;
    });
    let entries = 0;
    app.registerTask({ name: 'parent' }, async (_params, ctx) => {
      entries += 1;
      const first = await ctx.spawn('child', { n: 1 }, { stepName: 'first' });
      const second = await ctx.spawn('child', { n: 2 }, { stepName: 'second' });
      const [a, b, approved] = await Promise.all([
        ctx.awaitTaskResult(first),
        ctx.awaitTaskResult(second),
        ctx.awaitEvent('approved', { timeout: 60 }),
        ctx.sleepFor('cool-down', 1),
      ]);
      return { a: a.result, b: b.result, approved };
    });
    const worker = await app.startWorker({ concurrency: 4, pollInterval: WAKE_UP_POLL });
    const { taskID } = await app.spawn('parent', null);
    await waitForTaskState(db.pool, app.queueName, taskID, 'sleeping');
    release.open();
    await delay(1500); // the sleep ends meanwhile
    await app.emitEvent('approved', true);
    expect(await app.awaitTaskResult(taskID, { timeout: 10 })).toEqual({ state: 'completed', result: { a: 1, b: 2, approved: true } });
    await worker.close();
    if (!onAbsurdSchema) expect(entries).toBeLessThanOrEqual(3);
    expect(await runRows(db.pool, app.queueName, taskID)).toHaveLength(1);
    expect(warningsAndErrors(app)).toEqual([]);
  });

  it("an event's own timeout in a group throws TimeoutError for that wait only, when it passes", async () => {
    const app = await clients.app(queueName('group-timeout'));
    app.registerTask({ name: 'parent' }, async (_params, ctx) => {
      // A wait's own error, as a value; the signals that end an execution (suspension) go through.
      const settle = async (wait: Promise<unknown>) => {
        try {
          return await wait;
        } catch (error) {
          if (isControlFlowSignal(error)) throw error;
          return (error as Error).name;
        }
      };
      const [quick, slow] = await Promise.all([settle(ctx.awaitEvent('quick', { timeout: 1 })), settle(ctx.awaitEvent('slow', { timeout: 30 }))]);
      return { quick, slow };
    });
    const worker = await app.startWorker({ pollInterval: WAKE_UP_POLL });
    const { taskID } = await app.spawn('parent', null);
    await waitForTaskState(db.pool, app.queueName, taskID, 'sleeping');
    await delay(2500); // past the quick wait's timeout: the run woke, and waits again for the slow one
    await waitForTaskState(db.pool, app.queueName, taskID, 'sleeping');
    await app.emitEvent('slow', 'arrived');
    expect(await app.awaitTaskResult(taskID, { timeout: 10 })).toEqual({ state: 'completed', result: { quick: 'TimeoutError', slow: 'arrived' } });
    await worker.close();
    expect(warningsAndErrors(app)).toEqual([]);
  });
});

describe('ctx.spawnMany', () => {
  const chargeOn = (queue: string) =>
    defineTask({
      name: 'charge',
      queue,
      params: z.object({ invoice: z.string(), cents: z.number().int().positive() }),
      result: z.object({ charged: z.number() }),
    });

  it('spawns every child in one step, typed by the contract, and a replay gets the same children', async () => {
    const app = await clients.app(queueName('spawn-many'));
    const charge = chargeOn(app.queueName);
    app.registerTask(charge, async (params) => ({ charged: params.cents }));
    const seen: string[][] = [];
    app.registerTask({ name: 'month' }, async (_params, ctx) => {
      const handles = await ctx.spawnMany(charge, [
        { invoice: 'a', cents: 100 },
        { invoice: 'b', cents: 250 },
        { invoice: 'c', cents: 50 },
      ], { cancelWithParent: !onAbsurdSchema });
      seen.push(handles.map((handle) => handle.taskID));
      if (ctx.attempt === 1) throw new Error('crash after the spawn');
      const charged = await ctx.awaitAll(handles);
      return charged.map((snapshot) => snapshot.result.charged);
    });
    const worker = await app.startWorker({ concurrency: 4, pollInterval: WAKE_UP_POLL });
    const { taskID } = await app.spawn('month', null, { retryStrategy: { kind: 'none' } });
    expect(await app.awaitTaskResult(taskID, { timeout: 15 })).toEqual({ state: 'completed', result: [100, 250, 50] });
    await worker.close();
    expect(seen[0]).toHaveLength(3);
    for (const later of seen.slice(1)) expect(later).toEqual(seen[0]);
    const { rows } = await db.pool.query(`select count(*)::int as n from absurd."t_${app.queueName}" where task_name = 'charge'`);
    expect(rows[0].n).toBe(3);
    const stored = await checkpoints(db.pool, app.queueName, taskID);
    expect(stored['$spawnMany:charge']).toMatchObject({ queue: app.queueName, tasks: seen[0]!.map((id) => ({ taskID: id })) });
    if (!onAbsurdSchema) expect(stored['$spawnMany:charge']).toMatchObject({ cancelWithParent: true });
  });

  it('checks every element before writing anything; the error names the element', async () => {
    const app = await clients.app(queueName('spawn-many-bad'));
    const charge = chargeOn(app.queueName);
    let refused: unknown;
    app.registerTask({ name: 'month' }, async (_params, ctx) => {
      try {
        await ctx.spawnMany(charge, [{ invoice: 'a', cents: 1 }, { invoice: 'b', cents: -5 } as never]);
      } catch (error) {
        refused = error;
      }
      const none = await ctx.spawnMany(charge, [], { stepName: 'nothing' });
      return { none };
    });
    const worker = await app.startWorker({ pollInterval: WAKE_UP_POLL });
    const { taskID } = await app.spawn('month', null);
    expect(await app.awaitTaskResult(taskID, { timeout: 10 })).toEqual({ state: 'completed', result: { none: [] } });
    await worker.close();
    expect(refused).toBeInstanceOf(ValidationError);
    expect((refused as ValidationError).message).toMatch(/items\[1\]\.params\.cents/);
    const { rows } = await db.pool.query(`select count(*)::int as n from absurd."t_${app.queueName}" where task_name = 'charge'`);
    expect(rows[0].n).toBe(0);
  });
});

describe('ctx.awaitAll', () => {
  it("returns every snapshot in order; a failed child fails the wait naming it, or is returned with failures: 'return'", async () => {
    const app = await clients.app(queueName('await-all'));
    app.registerTask({ name: 'child' }, async (params: { n: number }) => {
      if (params.n === 2) throw new Error(`cannot do ${params.n}`);
      return params.n;
    });
    app.registerTask({ name: 'parent' }, async (params: { failures: 'throw' | 'return' }, ctx) => {
      const handles: SpawnResult[] = [];
      for (let n = 0; n < 4; n++) handles.push(await ctx.spawn('child', { n }, { stepName: `child-${n}`, maxAttempts: 1 }));
      try {
        return { snapshots: await ctx.awaitAll(handles, { failures: params.failures }) };
      } catch (error) {
        if (!(error instanceof AwaitedTaskFailedError)) throw error;
        return { index: error.index, message: error.message, isChild: error.taskID === handles[2]!.taskID };
      }
    });
    const worker = await app.startWorker({ concurrency: 4, pollInterval: WAKE_UP_POLL });
    const thrown = await app.spawn('parent', { failures: 'throw' });
    const returned = await app.spawn('parent', { failures: 'return' });
    const failed = await app.awaitTaskResult(thrown.taskID, { timeout: 15 });
    const all = await app.awaitTaskResult(returned.taskID, { timeout: 15 });
    await worker.close();
    expect(failed).toEqual({
      state: 'completed',
      result: { index: 2, message: expect.stringMatching(/^awaited task 2 \(\S+ in queue "[^"]+"\) failed: cannot do 2$/), isChild: true },
    });
    expect(all.state).toBe('completed');
    const snapshots = (all.result as { snapshots: { state: string; result?: unknown }[] }).snapshots;
    expect(snapshots.map((s) => s.state)).toEqual(['completed', 'completed', 'failed', 'completed']);
    expect(snapshots.map((s) => s.result ?? null)).toEqual([0, 1, null, 3]);
    expect(warningsAndErrors(app).filter((args) => !String(args[0]).includes('cannot do 2'))).toEqual([]);
  });

  it('cancelling the parent cancels the children spawned with cancelWithParent that have not ended', async () => {
    const parents = await clients.app(queueName('cascade-parents'));
    const children = await clients.app(queueName('cascade-children'));
    parents.registerTask({ name: 'parent' }, async (_params, ctx) => {
      const doomed = await ctx.spawn('child', { n: 1 }, { queue: children.queueName, stepName: 'doomed', cancelWithParent: true });
      const kept = await ctx.spawn('child', { n: 2 }, { queue: children.queueName, stepName: 'kept' });
      return ctx.awaitAll([doomed, kept]);
    });
    const worker = await parents.startWorker({ pollInterval: WAKE_UP_POLL }); // nobody serves the children
    const { taskID } = await parents.spawn('parent', null, { maxAttempts: 1 });
    if (onAbsurdSchema) {
      // No kit_cancel_children there: the option is refused with what to do, nothing is spawned.
      const snapshot = await parents.awaitTaskResult(taskID, { timeout: 10 });
      await worker.close();
      expect(JSON.stringify(snapshot)).toContain('cancelWithParent needs engine migration 000012');
      expect((await db.pool.query(`select count(*)::int as n from absurd."t_${children.queueName}"`)).rows[0].n).toBe(0);
      return;
    }
    await waitForTaskState(db.pool, parents.queueName, taskID, 'sleeping');
    const spawned = await checkpoints(db.pool, parents.queueName, taskID);
    expect(spawned.doomed).toMatchObject({ cancelWithParent: true });
    expect(spawned.kept).not.toHaveProperty('cancelWithParent');

    await parents.cancelTask(taskID);
    await worker.close();
    const doomedID = (spawned.doomed as { taskID: string }).taskID;
    const keptID = (spawned.kept as { taskID: string }).taskID;
    expect((await taskRow(db.pool, children.queueName, doomedID)).state).toBe('cancelled');
    expect((await taskRow(db.pool, children.queueName, keptID)).state).toBe('pending');
    expect(warningsAndErrors(parents)).toEqual([]);
  });

  it('fans out to 1,000 children with ctx.spawnMany and completes, suspending a bounded number of times', async () => {
    const count = onAbsurdSchema ? 100 : 1000;
    const app = await clients.app(queueName('thousand'));
    app.registerTask({ name: 'child' }, async (params: { n: number }) => params.n);
    let entries = 0;
    app.registerTask({ name: 'parent' }, async (_params, ctx) => {
      entries += 1;
      const handles = await ctx.spawnMany(
        'child',
        Array.from({ length: count }, (_, n) => ({ n })),
      );
      const snapshots = await ctx.awaitAll(handles);
      return snapshots.reduce((sum, snapshot) => sum + (snapshot.result as number), 0);
    });
    const worker = await app.startWorker({ concurrency: 16, pollInterval: WAKE_UP_POLL });
    const { taskID } = await app.spawn('parent', null);
    const snapshot = await app.awaitTaskResult(taskID, { timeout: 120 });
    await worker.close();
    expect(snapshot).toEqual({ state: 'completed', result: (count * (count - 1)) / 2 });
    if (!onAbsurdSchema) expect(entries).toBeLessThanOrEqual(3);
    expect(warningsAndErrors(app)).toEqual([]);
  }, 180_000);
});
