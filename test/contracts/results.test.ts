/**
 * The result boundaries. A handler's return value is checked before `complete_run` (a refused
 * result fails the task without retry: the same code would return the same thing); a client
 * reading a result through a contract parses it again (the task may have been completed by a
 * worker without the contract); a parent awaiting a child through the child's contract gets the
 * child's parsed result, and a child result that contract refuses fails the parent without retry.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Absurd, defineTask, taskHandle, type Queryable } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import {
  drain,
  expectFailedWithoutRetry,
  onAbsurdSchema,
  queueName,
  recordingLog,
  runRows,
  table,
  taskRow,
  useClients,
  validationErrorOf,
  withoutRetry,
  workOnce,
} from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);

function receipt(queue: string) {
  return defineTask({
    name: 'receipt',
    queue,
    params: z.object({ orderId: z.string() }),
    result: z.object({ sentAt: z.iso.datetime().transform((s) => new Date(s)), pages: z.number().int() }),
    defaults: { maxAttempts: 5 },
  });
}

/** A connection that forwards to the pool and keeps the text of every statement. */
function recordingPool(): { con: Queryable; texts: string[] } {
  const pool = clients.pool();
  const texts: string[] = [];
  const con = {
    query(text: string, values?: unknown[]) {
      texts.push(text);
      return pool.query(text, values);
    },
  } as unknown as Queryable;
  return { con, texts };
}

describe("a handler's result", () => {
  it('that the result schema refuses fails the task without retry, and complete_run is never called', async () => {
    const queue = queueName('result-handler');
    await clients.app(queue);
    const { con, texts } = recordingPool();
    const app = new Absurd({ db: con, queueName: queue, log: recordingLog() });
    const contract = receipt(queue);
    let calls = 0;
    app.registerTask(contract, async () => {
      calls += 1;
      return { sentAt: '2024-05-01T10:00:00Z', pages: '2' as unknown as number };
    });
    const handle = await app.spawn(contract, { orderId: 'o-1' });
    await workOnce(app);

    expect(calls).toBe(1);
    expect(texts.some((text) => text.includes('absurd.complete_run'))).toBe(false);
    // Where the engine lacks kit_fail_task (Absurd's schema), the closest the contract comes.
    const failsWithoutRetry = onAbsurdSchema ? /absurd\.fail_run\(.*absurd\.cancel_task\(/s : /absurd\.kit_fail_task\(/;
    expect(texts.some((text) => failsWithoutRetry.test(text))).toBe(true);
    await expectFailedWithoutRetry(db.pool, queue, handle.taskID);
    expect((await taskRow(db.pool, queue, handle.taskID))?.completed_payload).toBeNull();
    const runs = await runRows(db.pool, queue, handle.taskID);
    expect(runs[0]?.result).toBeNull();
    expect(runs[0]?.completed_at).toBeNull();
    expect(runs[0]?.failure_reason).toMatchObject({
      name: 'ValidationError',
      subject: 'receipt',
      boundary: 'result',
      detail: null,
      issues: [{ path: 'pages' }],
      received: '"2"',
      retryable: false,
    });
    expect((runs[0]?.failure_reason as { message: string }).message).toMatch(/^receipt: result\.pages: .+, received "2"$/);
    expect(await workOnce(app)).toHaveLength(0);
    expect(calls).toBe(1);
  });

  it('that the schema accepts is stored as returned (the input form) and read back parsed', async () => {
    const queue = queueName('result-ok');
    const app = await clients.app(queue);
    const contract = receipt(queue);
    app.registerTask(contract, async () => ({ sentAt: '2024-05-01T10:00:00Z', pages: 2 }));
    const handle = await app.spawn(contract, { orderId: 'o-1' });
    await workOnce(app);
    expect((await taskRow(db.pool, queue, handle.taskID))?.completed_payload).toEqual({
      sentAt: '2024-05-01T10:00:00Z',
      pages: 2,
    });
    const expected = { state: 'completed', result: { sentAt: new Date('2024-05-01T10:00:00Z'), pages: 2 } };
    expect(await app.fetchTaskResult(handle)).toEqual(expected);
    expect(await app.awaitTaskResult(handle, { timeout: 5 })).toEqual(expected);
    // By id, without a contract, the stored JSON as it is.
    expect(await app.fetchTaskResult(handle.taskID)).toEqual({
      state: 'completed',
      result: { sentAt: '2024-05-01T10:00:00Z', pages: 2 },
    });
  });
});

describe('a client reading a stored result through a contract', () => {
  it('gets a ValidationError when the contract refuses it (the task was completed through the untyped API)', async () => {
    const queue = queueName('result-read');
    const app = await clients.app(queue);
    // Another deploy ran this task without the contract and returned something else.
    app.registerTask({ name: 'receipt' }, async () => ({ sentAt: 'last tuesday', pages: 2 }));
    const { taskID } = await app.spawn('receipt', { orderId: 'o-1' });
    await workOnce(app);
    expect((await taskRow(db.pool, queue, taskID))?.state).toBe('completed');

    const reader = await clients.app(queueName('elsewhere'));
    const handle = taskHandle(receipt(queue), taskID);
    expect(handle.queue).toBe(queue);
    const fetched = await validationErrorOf(reader.fetchTaskResult(handle));
    expect(fetched).toMatchObject({
      subject: 'receipt',
      boundary: 'result',
      issues: [{ path: 'sentAt' }],
      received: '"last tuesday"',
      retryable: false,
    });
    expect(fetched.message).toMatch(/^receipt: result\.sentAt: .+, received "last tuesday"$/);
    const awaited = await validationErrorOf(reader.awaitTaskResult(handle, { timeout: 5 }));
    expect(awaited.issues[0]?.path).toBe('sentAt');
    // Untyped, the same row reads fine.
    expect(await reader.fetchTaskResult(taskID, { queue })).toEqual({
      state: 'completed',
      result: { sentAt: 'last tuesday', pages: 2 },
    });
  });

  it('parses only completed results: pending and failed snapshots come back as they are', async () => {
    const queue = queueName('result-states');
    const app = await clients.app(queue);
    app.registerTask({ name: 'receipt' }, async () => {
      throw new Error('printer on fire');
    });
    const { taskID } = await app.spawn('receipt', { orderId: 'o-1' }, { maxAttempts: 1 });
    const handle = taskHandle(receipt(queue), taskID);
    expect(await app.fetchTaskResult(handle)).toEqual({ state: 'pending' });
    await workOnce(app);
    expect(await app.fetchTaskResult(handle)).toMatchObject({ state: 'failed', failure: { message: 'printer on fire' } });
    expect(await app.fetchTaskResult(taskHandle(receipt(queue), '0190d5a6-0000-7000-8000-000000000000'))).toBeNull();
  });
});

describe('child results', () => {
  function family(queue: string) {
    const child = receipt(queue);
    const parent = defineTask({
      name: 'order',
      queue,
      params: z.object({ orderId: z.string() }),
      result: z.object({ receiptYear: z.number(), pages: z.number() }),
      defaults: { maxAttempts: 5 },
    });
    return { child, parent };
  }

  it("are parsed by the child's contract for the parent, on first read and on replay", async () => {
    const queue = queueName('child-ok');
    const app = await clients.app(queue);
    const { child, parent } = family(queue);
    app.registerTask(child, async () => ({ sentAt: '2024-05-01T10:00:00Z', pages: 3 }));
    const seen: unknown[] = [];
    app.registerTask(parent, async (params, ctx) => {
      const handle = await ctx.spawn(child, { orderId: params.orderId });
      const snapshot = await ctx.awaitTaskResult(handle);
      seen.push(snapshot);
      if (snapshot.state !== 'completed') throw new Error(`child ended ${snapshot.state}`);
      if (ctx.attempt === 1) throw new Error('crash after reading the child');
      return { receiptYear: snapshot.result.sentAt.getUTCFullYear(), pages: snapshot.result.pages };
    });
    const handle = await app.spawn(parent, { orderId: 'o-1' });
    await drain(app);

    const expected = { state: 'completed', result: { sentAt: new Date('2024-05-01T10:00:00Z'), pages: 3 } };
    expect(seen).toEqual([expected, expected]);
    expect(await app.fetchTaskResult(handle)).toEqual({ state: 'completed', result: { receiptYear: 2024, pages: 3 } });
  });

  it("that the child's contract refuses fail the parent without retry", async () => {
    const queue = queueName('child-bad');
    const app = await clients.app(queue);
    const { child, parent } = family(queue);
    // The child runs without its contract (an older deploy) and returns a result the contract refuses.
    app.registerTask({ name: 'receipt' }, async () => ({ sentAt: '2024-05-01T10:00:00Z', pages: 'three' }));
    let afterAwait = 0;
    app.registerTask(parent, async (params, ctx) => {
      const snapshot = await ctx.awaitTaskResult(await ctx.spawn(child, { orderId: params.orderId }));
      afterAwait += 1;
      return { receiptYear: 0, pages: snapshot.state === 'completed' ? snapshot.result.pages : 0 };
    });
    const handle = await app.spawn(parent, { orderId: 'o-1' });
    await drain(app);

    expect(afterAwait).toBe(0);
    const { rows } = await db.pool.query<{ task_id: string }>(
      `select task_id from ${table('t', queue)} where task_name = 'receipt'`,
    );
    expect(rows).toHaveLength(1);
    expect((await taskRow(db.pool, queue, rows[0]!.task_id))?.state).toBe('completed');
    expect(await expectFailedWithoutRetry(db.pool, queue, handle.taskID)).toMatchObject({
      name: 'ValidationError',
      subject: 'receipt',
      boundary: 'result',
      issues: [{ path: 'pages' }],
      received: '"three"',
      retryable: false,
    });
    const failure = await app.fetchTaskResult(handle);
    expect(failure?.state).toBe(withoutRetry.taskState);
  });

  it('that did not complete are handed over unparsed', async () => {
    const queue = queueName('child-failed');
    const app = await clients.app(queue);
    const { child, parent } = family(queue);
    app.registerTask(child, async () => {
      throw new Error('no paper');
    });
    app.registerTask(parent, async (params, ctx) => {
      const snapshot = await ctx.awaitTaskResult(await ctx.spawn(child, { orderId: params.orderId }, { maxAttempts: 1 }));
      return { receiptYear: snapshot.state === 'failed' ? -1 : 0, pages: 0 };
    });
    const handle = await app.spawn(parent, { orderId: 'o-1' });
    await drain(app);
    expect(await app.fetchTaskResult(handle)).toEqual({ state: 'completed', result: { receiptYear: -1, pages: 0 } });
  });
});
