import { describe, expect, it } from 'vitest';
import { Absurd } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import { onAbsurdSchema, queueName, recordingConnection, table, useClients, workOnce } from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);

const internals = (app: Absurd) =>
  app as unknown as { con: unknown; ownsConnection: boolean; defaultMaxAttempts: number; log: unknown; hooks: unknown };

async function taskCount(queue: string): Promise<number> {
  return (await db.pool.query(`select count(*)::int as n from ${table('t', queue)}`)).rows[0].n as number;
}

describe('bindToConnection', () => {
  it('spawns inside the caller transaction: rolled back, no task; committed, the task exists', async () => {
    const app = await clients.app(queueName('Awkward', 'quoted'), { db: db.pool });
    app.registerTask({ name: 'tx' }, async () => 'ran');
    const client = await db.pool.connect();
    try {
      const bound = app.bindToConnection(client);
      await client.query('begin');
      const rolledBack = await bound.spawn('tx', { n: 1 });
      expect(rolledBack.created).toBe(true);
      // Another session does not see it before commit.
      expect(await taskCount(app.queueName)).toBe(0);
      await client.query('rollback');
      expect(await taskCount(app.queueName)).toBe(0);
      expect(await app.fetchTaskResult(rolledBack.taskID)).toBeNull();

      await client.query('begin');
      const committed = await bound.spawn('tx', { n: 2 });
      await bound.emitEvent('in-tx', 'payload');
      await client.query('commit');
      expect(await app.fetchTaskResult(committed.taskID)).toEqual({ state: 'pending' });
      expect((await db.pool.query(`select payload from ${table('e', app.queueName)}`)).rows).toEqual([{ payload: 'payload' }]);
      await workOnce(app);
      expect(await app.fetchTaskResult(committed.taskID)).toEqual({ state: 'completed', result: 'ran' });
    } finally {
      client.release();
    }
  });

  it('runs every query on the bound connection', async () => {
    const app = await clients.app(queueName('route'), { db: db.pool, createQueue: false });
    const { con, texts } = recordingConnection(db.pool);
    const bound = app.bindToConnection(con);
    await bound.createQueue();
    await bound.spawn('x', null, { queue: app.queueName });
    await bound.listQueues();
    expect(texts()).toHaveLength(3);
    expect(texts()[1]).toContain('absurd.spawn_task(');
    // Absurd's spawn_task notifies nobody: there the client does.
    expect(texts()[1]?.includes('pg_notify')).toBe(onAbsurdSchema);
  });

  it('shares the registry both ways, including registrations made later', async () => {
    const queue = queueName('shared');
    const app = await clients.app(queue, { db: db.pool });
    const other = queueName('other');
    await app.createQueue(other);
    const bound = app.bindToConnection(db.pool);
    app.registerTask({ name: 'later', queue: other, defaultMaxAttempts: 4 }, async () => 'from app');
    bound.registerTask({ name: 'from-bound' }, async () => 'from bound');

    const viaBound = await bound.spawn('later', null);
    expect((await db.pool.query(`select max_attempts from ${table('t', other)} where task_id = $1`, [viaBound.taskID])).rows[0])
      .toEqual({ max_attempts: 4 });
    await expect(bound.spawn('later', null, { queue })).rejects.toThrow(
      `Task "later" is registered for queue "${other}" but spawn requested queue "${queue}".`,
    );
    const viaApp = await app.spawn('from-bound', null);
    await workOnce(app);
    expect(await app.fetchTaskResult(viaApp.taskID)).toEqual({ state: 'completed', result: 'from bound' });
  });

  it('keeps the queue, default attempts, log and hooks of the original', () => {
    const log = { log() {}, info() {}, warn() {}, error() {} };
    const hooks = {};
    const app = new Absurd({ db: recordingConnection().con, queueName: 'Keep Me', defaultMaxAttempts: 3, log, hooks });
    const con = recordingConnection().con;
    const bound = app.bindToConnection(con);
    expect(bound).not.toBe(app);
    expect(bound.queueName).toBe('Keep Me');
    expect(internals(bound)).toMatchObject({ con, defaultMaxAttempts: 3, log, hooks, ownsConnection: false });
  });

  it('ends an owned connection on close, and leaves an unowned one open', async () => {
    const app = await clients.app(queueName('own'), { db: db.pool, createQueue: false });
    const owned = await db.connect();
    let ended = false;
    owned.on('end', () => {
      ended = true;
    });
    await app.bindToConnection(owned, true).close();
    expect(ended).toBe(true);

    const kept = await db.connect();
    await app.bindToConnection(kept).close();
    expect((await kept.query('select 1 as one')).rows[0].one).toBe(1);
  });
});
