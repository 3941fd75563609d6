import { describe, expect, it } from 'vitest';
import { TimeoutError, type SpawnResult } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import {
  awkwardQueueNames,
  checkpoints,
  delay,
  gate,
  queueName,
  runRows,
  table,
  taskRow,
  type TaskRow,
  useClients,
  waitForTaskState,
  WAKE_UP_POLL,
} from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);

async function tasksNamed(queue: string, name: string): Promise<TaskRow[]> {
  const { rows } = await db.pool.query<TaskRow>(`select * from ${table('t', queue)} where task_name = $1 order by task_id`, [name]);
  return rows;
}

describe('ctx.spawn', () => {
  it('is durable: a parent that fails after spawning gets the same child on its retry', async () => {
    const queue = queueName('durable-spawn');
    const app = await clients.app(queue);
    app.registerTask({ name: 'child' }, async (params: { n: number }) => params.n + 1);
    app.registerTask({ name: 'parent' }, async (_params, ctx) => {
      const child = await ctx.spawn('child', { n: 1 }, { headers: { trace: 't-1' } });
      if (ctx.attempt === 1) throw new Error('crash after the spawn');
      const result = await ctx.awaitTaskResult(child);
      return { childID: child.taskID, result };
    });
    const worker = await app.startWorker({ concurrency: 2, pollInterval: 0.1 });
    const { taskID } = await app.spawn('parent', {}, { retryStrategy: { kind: 'none' } });
    await waitForTaskState(db.pool, queue, taskID, 'completed');
    await worker.close();

    const children = await tasksNamed(queue, 'child');
    expect(children).toHaveLength(1);
    const child = children[0]!;
    expect(await app.fetchTaskResult(taskID)).toEqual({
      state: 'completed',
      result: { childID: child.task_id, result: { state: 'completed', result: 2 } },
    });
    expect((await runRows(db.pool, queue, taskID)).map((r) => r.state)).toEqual(['failed', 'completed']);
    expect(child.headers).toEqual({ trace: 't-1', 'absurd.parent': { queue, taskId: taskID } });
    expect(child.idempotency_key).toBe(`${taskID}:$spawn:child`);
  });

  it('is durable even when the parent dies between the spawn and its checkpoint', async () => {
    const queue = queueName('spawn-gap');
    const app = await clients.app(queue);
    // The first write of the spawn's checkpoint fails (a sequence is not rolled back): the child
    // exists, its checkpoint does not, and the parent run fails.
    await db.pool.query(`create sequence "spawn_gap_seq"`);
    await db.pool.query(`create function spawn_gap_fail() returns trigger language plpgsql as $$
      begin
        if new.checkpoint_name = '$spawn:child' and nextval('spawn_gap_seq') = 1 then
          raise exception 'simulated crash before the checkpoint';
        end if;
        return new;
      end $$`);
    await db.pool.query(`create trigger spawn_gap before insert on ${table('c', queue)} for each row execute function spawn_gap_fail()`);
    app.registerTask({ name: 'child' }, async () => 'only once');
    app.registerTask({ name: 'parent' }, async (_params, ctx) => {
      const child = await ctx.spawn('child', {});
      return ctx.awaitTaskResult(child);
    });
    const worker = await app.startWorker({ concurrency: 2, pollInterval: 0.1 });
    const { taskID } = await app.spawn('parent', {}, { retryStrategy: { kind: 'none' } });
    await waitForTaskState(db.pool, queue, taskID, 'completed');
    await worker.close();

    const runs = await runRows(db.pool, queue, taskID);
    expect(runs.map((r) => r.state)).toEqual(['failed', 'completed']);
    expect(runs[0]?.failure_reason).toMatchObject({ message: 'simulated crash before the checkpoint' });
    expect(await tasksNamed(queue, 'child')).toHaveLength(1);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: { state: 'completed', result: 'only once' } });
  });
});

describe('ctx.awaitTaskResult', () => {
  it('works within one queue on a worker with a single slot (the waiting parent frees it)', async () => {
    const queue = queueName('same-queue');
    const app = await clients.app(queue);
    app.registerTask({ name: 'child' }, async (params: { n: number }) => params.n * 10);
    app.registerTask({ name: 'parent' }, async (_params, ctx) => {
      const handles: SpawnResult[] = [];
      for (const n of [1, 2, 3]) handles.push(await ctx.spawn('child', { n }));
      const results = [];
      for (const handle of handles) results.push(await ctx.awaitTaskResult(handle));
      return results.map((r) => r.result);
    });
    const worker = await app.startWorker({ concurrency: 1, pollInterval: WAKE_UP_POLL });
    const { taskID } = await app.spawn('parent', {});
    await waitForTaskState(db.pool, queue, taskID, 'completed', 15_000);
    await worker.close();
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: [10, 20, 30] });
    expect(await runRows(db.pool, queue, taskID)).toHaveLength(1);
  });

  it('awaits a child on another queue, woken by the child worker with the default checkInterval', async () => {
    const parents = queueName('parents');
    const [children] = awkwardQueueNames();
    const parentApp = await clients.app(parents);
    const childApp = await clients.app(children!);
    childApp.registerTask({ name: 'child' }, async (params: { word: string }) => params.word.toUpperCase());
    parentApp.registerTask({ name: 'parent' }, async (_params, ctx) => {
      const child = await ctx.spawn('child', { word: 'hi' }, { queue: children });
      return ctx.awaitTaskResult(child, { queue: children });
    });
    const parentWorker = await parentApp.startWorker({ pollInterval: WAKE_UP_POLL });
    const childWorker = await childApp.startWorker({ pollInterval: WAKE_UP_POLL });
    const { taskID } = await parentApp.spawn('parent', {});
    await waitForTaskState(db.pool, parents, taskID, 'completed', 8000);
    await parentWorker.close();
    await childWorker.close();
    expect(await parentApp.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: { state: 'completed', result: 'HI' } });
    const [child] = await tasksNamed(children!, 'child');
    expect(child?.headers).toEqual({ 'absurd.parent': { queue: parents, taskId: taskID } });
  });

  it('finds a child that its registration routes to another queue through the handle alone', async () => {
    const parents = queueName('routing-parents');
    const children = queueName('routing-children');
    const parentApp = await clients.app(parents);
    const childApp = await clients.app(children);
    const child = async (params: { n: number }) => params.n + 100;
    childApp.registerTask({ name: 'routed' }, child);
    parentApp.registerTask({ name: 'routed', queue: children }, child); // spawn routing only
    parentApp.registerTask({ name: 'parent' }, async (_params, ctx) => ctx.awaitTaskResult(await ctx.spawn('routed', { n: 1 })));
    const parentWorker = await parentApp.startWorker({ pollInterval: WAKE_UP_POLL });
    const childWorker = await childApp.startWorker({ pollInterval: WAKE_UP_POLL });
    const { taskID } = await parentApp.spawn('parent', {});
    await waitForTaskState(db.pool, parents, taskID, 'completed', 8000);
    await parentWorker.close();
    await childWorker.close();
    expect(await parentApp.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: { state: 'completed', result: 101 } });
    expect(await tasksNamed(children, 'routed')).toHaveLength(1);
    expect(await tasksNamed(parents, 'routed')).toHaveLength(0);
  });

  it('gives a failed snapshot for a failed child', async () => {
    const queue = queueName('failed-child');
    const app = await clients.app(queue);
    app.registerTask({ name: 'child' }, async () => {
      throw new Error('child broke');
    });
    app.registerTask({ name: 'parent' }, async (_params, ctx) => ctx.awaitTaskResult(await ctx.spawn('child', {}, { maxAttempts: 1 })));
    const worker = await app.startWorker({ pollInterval: WAKE_UP_POLL });
    const { taskID } = await app.spawn('parent', {});
    await waitForTaskState(db.pool, queue, taskID, 'completed', 8000);
    await worker.close();
    const snapshot = await app.fetchTaskResult(taskID);
    expect(snapshot?.result).toMatchObject({ state: 'failed', failure: { name: 'Error', message: 'child broke' } });
    expect(Object.keys(snapshot?.result as object).sort()).toEqual(['failure', 'state']);
  });

  it('gives a cancelled snapshot for a cancelled child', async () => {
    const queue = queueName('cancelled-child');
    const app = await clients.app(queue);
    app.registerTask({ name: 'child' }, async (_params, ctx) => ctx.awaitEvent('never'));
    app.registerTask({ name: 'parent' }, async (_params, ctx) => {
      const child = await ctx.step('spawn', async () => (await ctx.spawn('child', {})).taskID);
      return ctx.awaitTaskResult(child, { checkInterval: 1 });
    });
    const worker = await app.startWorker({ pollInterval: WAKE_UP_POLL });
    const { taskID } = await app.spawn('parent', {});
    await waitForTaskState(db.pool, queue, taskID, 'sleeping', 8000);
    const [child] = await tasksNamed(queue, 'child');
    await waitForTaskState(db.pool, queue, child!.task_id, 'sleeping', 8000);
    await app.cancelTask(child!.task_id);
    await waitForTaskState(db.pool, queue, taskID, 'completed', 8000);
    await worker.close();
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: { state: 'cancelled' } });
  });

  it('is woken at once when a running child finds out at its next checkpoint that it was cancelled', async () => {
    const queue = queueName('cancelled-running-child');
    const app = await clients.app(queue);
    const hold = gate();
    const entered = gate();
    app.registerTask({ name: 'child' }, async (_params, ctx) => {
      await ctx.step('work', async () => {
        entered.open();
        await hold.promise;
        return 'done';
      });
      return 'finished';
    });
    app.registerTask({ name: 'parent' }, async (_params, ctx) => ctx.awaitTaskResult(await ctx.spawn('child', {}))); // default checkInterval
    const worker = await app.startWorker({ concurrency: 2, pollInterval: WAKE_UP_POLL });
    const { taskID } = await app.spawn('parent', {});
    await entered.promise;
    await waitForTaskState(db.pool, queue, taskID, 'sleeping', 8000);
    const [child] = await tasksNamed(queue, 'child');
    await app.cancelTask(child!.task_id);
    hold.open(); // the child's checkpoint write now meets the cancellation
    await waitForTaskState(db.pool, queue, taskID, 'completed', 8000);
    await worker.close();
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: { state: 'cancelled' } });
  });

  it('re-checks every checkInterval for a task spawned without a parent (nobody announces its end)', async () => {
    const queue = queueName('no-parent');
    const app = await clients.app(queue);
    let entries = 0;
    app.registerTask({ name: 'loner' }, async (_params, ctx) => ctx.awaitEvent('release'));
    app.registerTask({ name: 'parent' }, async (params: { childID: string; checkInterval?: number }, ctx) => {
      entries += 1;
      return ctx.awaitTaskResult(params.childID, { checkInterval: params.checkInterval });
    });
    const worker = await app.startWorker({ concurrency: 2, pollInterval: WAKE_UP_POLL });
    const loner = await app.spawn('loner', {});
    const { taskID } = await app.spawn('parent', { childID: loner.taskID, checkInterval: 1 });
    const slow = await app.spawn('parent', { childID: loner.taskID }); // default checkInterval: 60 s
    await waitForTaskState(db.pool, queue, taskID, 'sleeping', 8000);
    await waitForTaskState(db.pool, queue, slow.taskID, 'sleeping', 8000);
    await app.emitEvent('release', 'free');
    await waitForTaskState(db.pool, queue, loner.taskID, 'completed', 8000);
    await waitForTaskState(db.pool, queue, taskID, 'completed', 8000);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: { state: 'completed', result: 'free' } });
    expect(entries).toBeGreaterThanOrEqual(3); // both parents once, then the re-check(s)
    expect(await runRows(db.pool, queue, taskID)).toHaveLength(1);
    // The parent with the default interval has not looked again yet.
    expect((await taskRow(db.pool, queue, slow.taskID))?.state).toBe('sleeping');
    await worker.close();
  });

  it('honours a timeout across suspends and throws TimeoutError in the parent', async () => {
    const queue = queueName('await-timeout');
    const app = await clients.app(queue);
    let entries = 0;
    app.registerTask({ name: 'child' }, async (_params, ctx) => ctx.awaitEvent('never'));
    app.registerTask({ name: 'parent' }, async (_params, ctx) => {
      entries += 1;
      const child = await ctx.spawn('child', {});
      try {
        await ctx.awaitTaskResult(child, { timeout: 2, checkInterval: 1 });
        return 'not timed out';
      } catch (error) {
        if (!(error instanceof TimeoutError)) throw error;
        return { timedOut: error.message, name: error.name };
      }
    });
    const worker = await app.startWorker({ concurrency: 2, pollInterval: WAKE_UP_POLL });
    const { taskID } = await app.spawn('parent', {});
    await waitForTaskState(db.pool, queue, taskID, 'completed', 10_000);
    await worker.close();
    const [child] = await tasksNamed(queue, 'child');
    expect(await app.fetchTaskResult(taskID)).toEqual({
      state: 'completed',
      result: { timedOut: `Timed out waiting for task "${child!.task_id}"`, name: 'TimeoutError' },
    });
    expect(entries).toBeGreaterThanOrEqual(3); // started, re-checked after 1 s, timed out after 2 s
    const runs = await runRows(db.pool, queue, taskID);
    expect(runs).toHaveLength(1);
    // The wait took the full timeout (not less), measured on the database clock.
    expect(runs[0]!.completed_at!.getTime() - runs[0]!.created_at.getTime()).toBeGreaterThanOrEqual(2000);
    // A timeout is not a result: no snapshot checkpoint was written for the wait.
    expect(Object.keys(await checkpoints(db.pool, queue, taskID))).not.toContain(`$awaitTaskResult:${child!.task_id}`);
  });

  it('stops waiting when the waiting parent is cancelled; the child is unaffected', async () => {
    const queue = queueName('cancel-parent');
    const app = await clients.app(queue);
    let entries = 0;
    app.registerTask({ name: 'child' }, async (_params, ctx) => ctx.awaitEvent('release'));
    app.registerTask({ name: 'parent' }, async (_params, ctx) => {
      entries += 1;
      return ctx.awaitTaskResult(await ctx.spawn('child', {}), { checkInterval: 1 });
    });
    const worker = await app.startWorker({ concurrency: 2, pollInterval: WAKE_UP_POLL });
    const { taskID } = await app.spawn('parent', {});
    await waitForTaskState(db.pool, queue, taskID, 'sleeping', 8000);
    const [child] = await tasksNamed(queue, 'child');
    await waitForTaskState(db.pool, queue, child!.task_id, 'sleeping', 8000);
    await app.cancelTask(taskID);
    const entriesAtCancel = entries;
    await app.emitEvent('release', 'done');
    await waitForTaskState(db.pool, queue, child!.task_id, 'completed', 8000);
    await delay(1500); // longer than the check interval
    await worker.close();
    expect(entries).toBe(entriesAtCancel);
    expect((await taskRow(db.pool, queue, taskID))?.state).toBe('cancelled');
    expect((await runRows(db.pool, queue, taskID)).map((r) => r.state)).toEqual(['cancelled']);
    expect(await app.fetchTaskResult(child!.task_id)).toEqual({ state: 'completed', result: 'done' });
  });

  it('checkpoints the final snapshot in the shared shape under $awaitTaskResult:<id> (or the step name given)', async () => {
    const queue = queueName('await-shape');
    const app = await clients.app(queue);
    app.registerTask({ name: 'ok' }, async () => ({ value: [1, 'two'] }));
    app.registerTask({ name: 'bad' }, async () => {
      throw new TypeError('bad input');
    });
    app.registerTask({ name: 'stuck' }, async (_params, ctx) => ctx.awaitEvent('never'));
    app.registerTask({ name: 'parent' }, async (_params, ctx) => {
      const ok = await ctx.spawn('ok', {});
      const bad = await ctx.spawn('bad', {}, { maxAttempts: 1 });
      const stuck = await ctx.spawn('stuck', {});
      await ctx.step('cancel-stuck', async () => {
        await app.cancelTask(stuck.taskID);
        return null;
      });
      await ctx.awaitTaskResult(ok);
      await ctx.awaitTaskResult(bad, { stepName: 'the-bad-one' });
      await ctx.awaitTaskResult(stuck.taskID, { checkInterval: 1 });
      return { ok: ok.taskID, bad: bad.taskID, stuck: stuck.taskID };
    });
    const worker = await app.startWorker({ concurrency: 2, pollInterval: WAKE_UP_POLL });
    const { taskID } = await app.spawn('parent', {});
    await waitForTaskState(db.pool, queue, taskID, 'completed', 10_000);
    await worker.close();
    const ids = (await app.fetchTaskResult(taskID))?.result as { ok: string; bad: string; stuck: string };
    const saved = await checkpoints(db.pool, queue, taskID);
    expect(saved[`$awaitTaskResult:${ids.ok}`]).toEqual({ state: 'completed', result: { value: [1, 'two'] } });
    const failed = saved['the-bad-one'] as Record<string, unknown>;
    expect(Object.keys(failed).sort()).toEqual(['failure', 'state']);
    expect(failed).toMatchObject({ state: 'failed', failure: { name: 'TypeError', message: 'bad input' } });
    expect(saved[`$awaitTaskResult:${ids.stuck}`]).toEqual({ state: 'cancelled' });
  });
});
