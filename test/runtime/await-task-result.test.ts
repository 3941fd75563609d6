/**
 * `ctx.awaitTaskResult` on a task that will not announce its end to the waiting task: spawned with
 * a client (as code written for absurd-sdk does, even inside the handler), by another service, or
 * by another task. Such a wait polls the task in-process, as absurd-sdk's does, holding the run's
 * slot and lease; a child spawned with `ctx.spawn` on another queue (announced when it ends), and
 * any task on the waiter's own queue, still suspend the waiter.
 */
import { describe, expect, it } from 'vitest';
import {
  CancelledTask,
  TimeoutError,
  type Absurd,
  type SpawnResult,
} from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import {
  checkpoints,
  delay,
  gate,
  queueName,
  runRows,
  table,
  taskRow,
  type TaskRow,
  useClients,
  waitFor,
  waitForTaskState,
  WAKE_UP_POLL,
} from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);


async function tasksNamed(queue: string, name: string): Promise<TaskRow[]> {
  const { rows } = await db.pool.query<TaskRow>(`select * from ${table('t', queue)} where task_name = $1 order by task_id`, [name]);
  return rows;
}

/** A client on a queue of parents and one on a queue of children. */
async function parentsAndChildren(label: string) {
  const parents = await clients.app(queueName(`${label}-parents`));
  const children = await clients.app(queueName(`${label}-children`));
  return { parents, children };
}

/** Spawns `child` on the children's queue with the parents' client, as absurd-sdk code does in a handler. */
function spawnWithClient(parents: Absurd, children: Absurd, params: unknown = {}): Promise<SpawnResult> {
  return parents.spawn('child', params, { queue: children.queueName });
}

describe('ctx.awaitTaskResult on a task spawned with a client, on another queue', () => {
  it('polls: the parent ends as soon as the child does, in one execution, with one child', async () => {
    const { parents, children } = await parentsAndChildren('client-child');
    const release = gate();
    children.registerTask({ name: 'child' }, async (params: { n: number }) => {
      await release.promise;
      return params.n * 2;
    });
    let entries = 0;
    parents.registerTask({ name: 'parent' }, async (params: { n: number }, ctx) => {
      entries += 1;
      const child = await spawnWithClient(parents, children, params); // not a step: spawned again at every entry
      return ctx.awaitTaskResult(child.taskID, { queue: children.queueName }); // default checkInterval: 60 s
    });
    const parentWorker = await parents.startWorker({ pollInterval: WAKE_UP_POLL });
    const childWorker = await children.startWorker({ pollInterval: WAKE_UP_POLL });
    const { taskID } = await parents.spawn('parent', { n: 21 });
    const [child] = await waitFor(async () => {
      const rows = await tasksNamed(children.queueName, 'child');
      return rows.length > 0 && rows;
    });
    await waitForTaskState(db.pool, children.queueName, child!.task_id, 'running');
    await delay(300);
    expect((await taskRow(db.pool, parents.queueName, taskID)).state).toBe('running'); // polling, not suspended
    release.open();

    expect(await parents.awaitTaskResult(taskID, { timeout: 8 })).toEqual({
      state: 'completed',
      result: { state: 'completed', result: 42 },
    });
    await parentWorker.close();
    await childWorker.close();
    expect(entries).toBe(1);
    expect(await tasksNamed(children.queueName, 'child')).toHaveLength(1);
    const [parentRun] = await runRows(db.pool, parents.queueName, taskID);
    const [childRun] = await runRows(db.pool, children.queueName, child!.task_id);
    expect(await runRows(db.pool, parents.queueName, taskID)).toHaveLength(1);
    // Within one pause of the backoff (at most a second) of the child's end.
    expect(parentRun!.completed_at!.getTime() - childRun!.completed_at!.getTime()).toBeLessThan(1500);
    expect(await checkpoints(db.pool, parents.queueName, taskID)).toEqual({
      [`$awaitTaskResult:${child!.task_id}`]: { state: 'completed', result: 42 },
    });
  });

  it('throws TimeoutError when the timeout passes first, in the same execution, without a checkpoint', async () => {
    const { parents, children } = await parentsAndChildren('client-timeout');
    let entries = 0;
    parents.registerTask({ name: 'parent' }, async (_params, ctx) => {
      entries += 1;
      const child = await spawnWithClient(parents, children); // no worker serves the children's queue
      try {
        await ctx.awaitTaskResult(child, { queue: children.queueName, timeout: 1 });
        return 'not timed out';
      } catch (error) {
        if (!(error instanceof TimeoutError)) throw error;
        return { timedOut: error.message, childID: child.taskID };
      }
    });
    const worker = await parents.startWorker({ pollInterval: WAKE_UP_POLL });
    const { taskID } = await parents.spawn('parent', null);
    const snapshot = await parents.awaitTaskResult(taskID, { timeout: 8 });
    await worker.close();

    const [child] = await tasksNamed(children.queueName, 'child');
    expect(snapshot).toEqual({
      state: 'completed',
      result: { timedOut: `Timed out waiting for task "${child!.task_id}"`, childID: child!.task_id },
    });
    expect(entries).toBe(1);
    expect(await tasksNamed(children.queueName, 'child')).toHaveLength(1);
    const runs = await runRows(db.pool, parents.queueName, taskID);
    expect(runs).toHaveLength(1);
    const took = runs[0]!.completed_at!.getTime() - runs[0]!.created_at.getTime();
    expect(took).toBeGreaterThanOrEqual(1000);
    expect(took).toBeLessThan(3000);
    expect(await checkpoints(db.pool, parents.queueName, taskID)).toEqual({});
  });

  it('stops at once when the polling parent is cancelled (ctx.signal says so) and frees its slot; the child is unaffected', async () => {
    const { parents, children } = await parentsAndChildren('client-cancel');
    const polling = gate();
    let outcome: unknown;
    let reason: unknown;
    parents.registerTask({ name: 'parent' }, async (_params, ctx) => {
      const child = await ctx.step('spawn', () => spawnWithClient(parents, children));
      polling.open();
      try {
        return await ctx.awaitTaskResult(child, { queue: children.queueName });
      } catch (error) {
        outcome = error;
        throw error;
      } finally {
        reason = ctx.signal.reason;
      }
    });
    parents.registerTask({ name: 'next' }, async () => 'ran');
    // One slot, and the default lease (120 s: heartbeats a minute apart), so only the poll can notice.
    const worker = await parents.startWorker({ concurrency: 1, pollInterval: WAKE_UP_POLL });
    const { taskID } = await parents.spawn('parent', null);
    await polling.promise;
    await delay(300);
    expect((await taskRow(db.pool, parents.queueName, taskID)).state).toBe('running');

    await parents.cancelTask(taskID);
    const next = await parents.spawn('next', null);
    expect(await parents.awaitTaskResult(next.taskID, { timeout: 5 })).toEqual({ state: 'completed', result: 'ran' });
    await worker.close();
    expect(outcome).toBeInstanceOf(CancelledTask);
    expect(reason).toBeInstanceOf(CancelledTask);
    expect((await runRows(db.pool, parents.queueName, taskID)).map((run) => run.state)).toEqual(['cancelled']);
    const [child] = await tasksNamed(children.queueName, 'child');
    expect(child?.state).toBe('pending');
    expect(parents.recorded.messages('error')).toEqual([]);
  });

  it('keeps the lease alive with heartbeats while it polls longer than the lease', async () => {
    const { parents, children } = await parentsAndChildren('client-lease');
    const release = gate();
    children.registerTask({ name: 'child' }, async () => {
      await release.promise;
      return 'late';
    });
    let entries = 0;
    parents.registerTask({ name: 'parent' }, async (_params, ctx) => {
      entries += 1;
      const child = await ctx.step('spawn', () => spawnWithClient(parents, children));
      return ctx.awaitTaskResult(child, { queue: children.queueName });
    });
    // A 2 s lease: heartbeats every second. Lost, it would be logged (and never exit the process here).
    const parentWorker = await parents.startWorker({ claimTimeout: 2, fatalOnLeaseTimeout: false, pollInterval: WAKE_UP_POLL });
    const childWorker = await children.startWorker({ pollInterval: WAKE_UP_POLL });
    const { taskID } = await parents.spawn('parent', null);
    await waitForTaskState(db.pool, parents.queueName, taskID, 'running');
    await delay(3500);
    const { rows } = await db.pool.query<{ state: string; alive: boolean }>(
      `select state, claim_expires_at > absurd.current_time() as alive from ${table('r', parents.queueName)} where task_id = $1`,
      [taskID],
    );
    expect(rows).toEqual([{ state: 'running', alive: true }]);
    release.open();

    expect(await parents.awaitTaskResult(taskID, { timeout: 8 })).toEqual({
      state: 'completed',
      result: { state: 'completed', result: 'late' },
    });
    await parentWorker.close();
    await childWorker.close();
    expect(entries).toBe(1);
    expect(await runRows(db.pool, parents.queueName, taskID)).toHaveLength(1);
    expect(parents.recorded.messages('warn')).toEqual([]);
  });
});

describe('ctx.awaitTaskResult chooses per awaited task', () => {
  it('suspends on a ctx.spawn child on another queue (also when only its header says so) and polls a task spawned otherwise', async () => {
    const { parents, children } = await parentsAndChildren('chooses');
    children.registerTask({ name: 'child' }, async () => 'done');
    parents.registerTask({ name: 'parent' }, async (params: { how: 'ctx.spawn' | 'step' | 'client' | 'foreign' }, ctx) => {
      let child: SpawnResult;
      if (params.how === 'ctx.spawn') {
        child = await ctx.spawn('child', null, { queue: children.queueName });
      } else if (params.how === 'step') {
        // This execution knows the child by its id only: its `absurd.parent` header names this task.
        child = await ctx.step('spawn', async () => {
          const spawned = await ctx.spawn('child', null, { queue: children.queueName });
          return { ...spawned };
        });
        if (ctx.attempt === 1) throw new Error('retry, knowing the child from the step alone');
      } else if (params.how === 'client') {
        child = await ctx.step('spawn', () => spawnWithClient(parents, children));
      } else {
        // A header naming another task: its end is announced to that one, not to this one.
        child = await ctx.step('spawn', () =>
          parents.spawn('child', null, {
            queue: children.queueName,
            headers: { 'absurd.parent': { queue: parents.queueName, taskId: '01900000-0000-7000-8000-000000000000' } },
          }),
        );
      }
      return ctx.awaitTaskResult(child, { queue: children.queueName });
    });
    const worker = await parents.startWorker({ concurrency: 4, pollInterval: WAKE_UP_POLL });
    const spawned = {
      ctxSpawn: await parents.spawn('parent', { how: 'ctx.spawn' }),
      step: await parents.spawn('parent', { how: 'step' }, { retryStrategy: { kind: 'none' } }),
      client: await parents.spawn('parent', { how: 'client' }),
      foreign: await parents.spawn('parent', { how: 'foreign' }),
    };
    // No worker serves the children's queue yet.
    await waitForTaskState(db.pool, parents.queueName, spawned.ctxSpawn.taskID, 'sleeping');
    await waitFor(async () => (await runRows(db.pool, parents.queueName, spawned.step.taskID)).length === 2);
    await waitForTaskState(db.pool, parents.queueName, spawned.step.taskID, 'sleeping');
    await waitFor(async () => (await tasksNamed(children.queueName, 'child')).length === 4);
    await delay(300);
    const states = async () =>
      Object.fromEntries(
        await Promise.all(
          Object.entries(spawned).map(async ([key, { taskID }]) => [key, (await taskRow(db.pool, parents.queueName, taskID)).state]),
        ),
      );
    expect(await states()).toEqual({ ctxSpawn: 'sleeping', step: 'sleeping', client: 'running', foreign: 'running' });

    const childWorker = await children.startWorker({ pollInterval: WAKE_UP_POLL });
    for (const { taskID } of Object.values(spawned)) {
      expect(await parents.awaitTaskResult(taskID, { timeout: 8 })).toEqual({ state: 'completed', result: { state: 'completed', result: 'done' } });
    }
    await worker.close();
    await childWorker.close();
    expect((await runRows(db.pool, parents.queueName, spawned.client.taskID)).map((run) => run.state)).toEqual(['completed']);
  });

  it('suspends on a task of its own queue that nobody announces, so a single-slot worker runs that task meanwhile', async () => {
    const app = await clients.app(queueName('own-queue'));
    app.registerTask({ name: 'loner' }, async () => 'alone');
    let entries = 0;
    app.registerTask({ name: 'parent' }, async (_params, ctx) => {
      entries += 1;
      const loner = await ctx.step('spawn', () => app.spawn('loner', null));
      return ctx.awaitTaskResult(loner, { checkInterval: 1 });
    });
    const worker = await app.startWorker({ concurrency: 1, pollInterval: WAKE_UP_POLL });
    const { taskID } = await app.spawn('parent', null);
    expect(await app.awaitTaskResult(taskID, { timeout: 8 })).toEqual({ state: 'completed', result: { state: 'completed', result: 'alone' } });
    await worker.close();
    expect(entries).toBe(2); // the wait, then the re-check after the loner ended
    expect(await runRows(db.pool, app.queueName, taskID)).toHaveLength(1);
  });
});
