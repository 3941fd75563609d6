import { describe, expect, it } from 'vitest';
import { Absurd } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import { eventRow, queueName, recordingConnection, runRows, table, useClients, workOnce } from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);

describe('Absurd.emitEvent', () => {
  it('refuses an empty event name before any query', async () => {
    const { con, queries } = recordingConnection();
    const app = new Absurd({ db: con, queueName: 'e' });
    await expect(app.emitEvent('', { a: 1 })).rejects.toThrow(new Error('eventName must be a non-empty string'));
    expect(queries).toHaveLength(0);
  });

  it('stores the payload on the client queue, JSON null when there is none', async () => {
    const app = await clients.app(queueName('Awkward', 'quoted'), { db: db.pool });
    await app.emitEvent('with-payload', { ok: [1, 'two'] });
    await app.emitEvent('no-payload');
    expect((await eventRow(db.pool, app.queueName, 'with-payload'))?.payload).toEqual({ ok: [1, 'two'] });
    const { rows } = await db.pool.query(
      `select jsonb_typeof(payload) as kind from ${table('e', app.queueName)} where event_name = 'no-payload'`,
    );
    expect(rows[0]).toEqual({ kind: 'null' });
  });

  it('first write wins: later emissions change neither payload nor emitted_at', async () => {
    const app = await clients.app(queueName('first'), { db: db.pool });
    await app.emitEvent('once', 'first');
    const before = await eventRow(db.pool, app.queueName, 'once');
    await new Promise((resolve) => setTimeout(resolve, 5));
    await app.emitEvent('once', 'second');
    await app.emitEvent('once');
    expect(await eventRow(db.pool, app.queueName, 'once')).toEqual(before);
    expect(before?.payload).toBe('first');
  });

  it('emits on another queue when one is named; events are per queue', async () => {
    const app = await clients.app(queueName('here'), { db: db.pool });
    const there = queueName('there');
    await app.createQueue(there);
    await app.emitEvent('shared-name', 'there', there);
    await app.emitEvent('shared-name', 'here');
    expect((await eventRow(db.pool, there, 'shared-name'))?.payload).toBe('there');
    expect((await eventRow(db.pool, app.queueName, 'shared-name'))?.payload).toBe('here');
    await expect(app.emitEvent('x', null, '')).rejects.toThrow('Queue name must be provided');
  });

  it('wakes a task waiting for the event; a second emission wakes nobody again', async () => {
    const app = await clients.app(queueName('wake'), { db: db.pool });
    const received: unknown[] = [];
    app.registerTask({ name: 'waiter' }, async (_p, ctx) => {
      received.push(await ctx.awaitEvent('go'));
      return 'woken';
    });
    const { taskID } = await app.spawn('waiter', null);
    await workOnce(app);
    expect((await runRows(db.pool, app.queueName, taskID))[0]).toMatchObject({ state: 'sleeping', wake_event: 'go' });
    await app.emitEvent('go', { n: 1 });
    expect((await runRows(db.pool, app.queueName, taskID))[0]).toMatchObject({ state: 'pending', event_payload: { n: 1 } });
    await workOnce(app);
    expect(received).toEqual([{ n: 1 }]);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: 'woken' });
    await app.emitEvent('go', { n: 2 });
    expect(await workOnce(app)).toEqual([]);
  });
});

describe('ctx.emitEvent', () => {
  it("emits on the task's queue, wakes waiters, and the first emission wins", async () => {
    const app = await clients.app(queueName('Awkward', 'quoted'), { db: db.pool });
    app.registerTask({ name: 'listener' }, async (_p, ctx) => ctx.awaitEvent('signal'));
    app.registerTask({ name: 'announcer' }, async (_p, ctx) => {
      await ctx.emitEvent('signal', { from: ctx.taskID });
      await ctx.emitEvent('signal', 'ignored');
      await ctx.emitEvent('bare');
      return null;
    });
    const listener = await app.spawn('listener', null);
    await workOnce(app);
    const announcer = await app.spawn('announcer', null);
    await workOnce(app);
    expect(await app.fetchTaskResult(announcer.taskID)).toEqual({ state: 'completed', result: null });
    await workOnce(app);
    expect(await app.fetchTaskResult(listener.taskID)).toEqual({ state: 'completed', result: { from: announcer.taskID } });
    const { rows } = await db.pool.query(`select jsonb_typeof(payload) as kind from ${table('e', app.queueName)} where event_name = 'bare'`);
    expect(rows).toEqual([{ kind: 'null' }]);
  });

  it('refuses an empty event name', async () => {
    const app = await clients.app(queueName('ctxempty'), { db: db.pool });
    app.registerTask({ name: 'bad-emit' }, async (_p, ctx) => ctx.emitEvent(''));
    const { taskID } = await app.spawn('bad-emit', null, { maxAttempts: 1 });
    await workOnce(app);
    expect(await app.fetchTaskResult(taskID)).toMatchObject({
      state: 'failed',
      failure: { message: 'eventName must be a non-empty string' },
    });
  });
});
