import { AsyncLocalStorage } from 'node:async_hooks';
import { describe, expect, it } from 'vitest';
import { getCurrentContext, type JsonObject, type TaskContext } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import { delay, queueName, useClients, workOnce } from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);

function appWithQueue(queue = queueName('ctx'), hooks = {}) {
  return clients.app(queue, { db: db.pool, hooks });
}

describe('getCurrentContext', () => {
  it('is undefined outside any task', async () => {
    expect(getCurrentContext()).toBeUndefined();
    await delay(1);
    expect(getCurrentContext()).toBeUndefined();
  });

  it('is the running task context in the handler, nested async calls, timers and steps', async () => {
    const app = await appWithQueue();
    const seen: Record<string, TaskContext | undefined> = {};
    let handlerCtx: TaskContext | undefined;
    async function deepHelper(): Promise<TaskContext | undefined> {
      await delay(2);
      return (async () => {
        await Promise.resolve();
        return getCurrentContext();
      })();
    }
    app.registerTask({ name: 'where-am-i' }, async (_p, ctx) => {
      handlerCtx = ctx;
      seen.handler = getCurrentContext();
      seen.nested = await deepHelper();
      seen.timer = await new Promise((resolve) => setTimeout(() => resolve(getCurrentContext()), 2));
      seen.step = await ctx.step('inside', async () => {
        seen.insideStep = getCurrentContext();
        return 'ok';
      }).then(() => getCurrentContext());
      const [a, b] = await Promise.all([deepHelper(), deepHelper()]);
      seen.all1 = a;
      seen.all2 = b;
      return null;
    });
    const { taskID } = await app.spawn('where-am-i', null);
    await workOnce(app);
    expect(handlerCtx?.taskID).toBe(taskID);
    for (const [where, ctx] of Object.entries(seen)) expect(ctx, where).toBe(handlerCtx);
    expect(Object.keys(seen).sort()).toEqual(['all1', 'all2', 'handler', 'insideStep', 'nested', 'step', 'timer']);
    expect(getCurrentContext()).toBeUndefined();
  });

  it('keeps concurrent executions apart', async () => {
    const app = await appWithQueue();
    const mismatches: string[] = [];
    app.registerTask({ name: 'concurrent' }, async (params: { wait: number }, ctx) => {
      for (let i = 0; i < 5; i++) {
        await delay(params.wait);
        if (getCurrentContext()?.taskID !== ctx.taskID) mismatches.push(ctx.taskID);
      }
      return getCurrentContext()?.taskID ?? null;
    });
    const spawned = await Promise.all([3, 5, 7].map((wait) => app.spawn('concurrent', { wait })));
    const claimed = await app.claimTasks({ batchSize: 3 });
    expect(claimed).toHaveLength(3);
    await Promise.all(claimed.map((task) => app.executeTask(task, 120)));
    expect(mismatches).toEqual([]);
    for (const { taskID } of spawned) expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: taskID });
  });

  it('is set inside wrapTaskExecution too, and the wrapper gets the same context', async () => {
    const seen: unknown[] = [];
    const app = await appWithQueue(queueName('wrapped'), {
      wrapTaskExecution: async <T>(ctx: TaskContext, execute: () => Promise<T>) => {
        seen.push(getCurrentContext() === ctx);
        return execute();
      },
    });
    app.registerTask({ name: 'w' }, async (_p, ctx) => {
      seen.push(getCurrentContext() === ctx);
      return null;
    });
    await app.spawn('w', null);
    await workOnce(app);
    expect(seen).toEqual([true, true]);
  });

  it('lets a wrapper restore a context of its own around the handler', async () => {
    const requestId = new AsyncLocalStorage<string>();
    const app = await appWithQueue(queueName('als'), {
      wrapTaskExecution: <T>(ctx: TaskContext, execute: () => Promise<T>) =>
        requestId.run(String(ctx.headers.requestId ?? 'none'), execute),
    });
    app.registerTask({ name: 'traced' }, async () => {
      await delay(1);
      return requestId.getStore() ?? null;
    });
    const { taskID } = await app.spawn('traced', null, { headers: { requestId: 'req-42' } });
    await workOnce(app);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: 'req-42' });
  });
});

describe('context properties', () => {
  it('exposes taskID, runID, attempt, taskName and queueName', async () => {
    const app = await appWithQueue(queueName('Awkward', 'quoted'));
    const seen: unknown[] = [];
    app.registerTask({ name: 'props' }, async (_p, ctx) => {
      seen.push({ taskID: ctx.taskID, runID: ctx.runID, attempt: ctx.attempt, taskName: ctx.taskName, queueName: ctx.queueName });
      if (ctx.attempt === 1) throw new Error('again');
      return null;
    });
    const first = await app.spawn('props', null, { retryStrategy: { kind: 'none' } });
    await workOnce(app);
    const [retry] = await workOnce(app);
    expect(seen).toEqual([
      { taskID: first.taskID, runID: first.runID, attempt: 1, taskName: 'props', queueName: app.queueName },
      { taskID: first.taskID, runID: retry?.run_id, attempt: 2, taskName: 'props', queueName: app.queueName },
    ]);
    expect(retry?.run_id).not.toBe(first.runID);
  });

  it('headers are the spawn headers, the same object on every read; {} without headers', async () => {
    const app = await appWithQueue();
    const seen: { same: boolean; headers: Readonly<JsonObject>; missing: unknown }[] = [];
    app.registerTask({ name: 'headers' }, async (_p, ctx) => {
      const headers = ctx.headers;
      seen.push({ same: headers === ctx.headers, headers, missing: ctx.headers.notThere });
      return null;
    });
    await app.spawn('headers', null, { headers: { trace: 't-1', nested: { a: [1] } } });
    await app.spawn('headers', null);
    await workOnce(app, 120, 2);
    expect(seen).toHaveLength(2);
    const withHeaders = seen.find((s) => Object.keys(s.headers).length > 0);
    const without = seen.find((s) => Object.keys(s.headers).length === 0);
    expect(withHeaders).toEqual({ same: true, headers: { trace: 't-1', nested: { a: [1] } }, missing: undefined });
    expect(without).toEqual({ same: true, headers: {}, missing: undefined });
  });
});
