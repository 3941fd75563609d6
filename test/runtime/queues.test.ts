import { Absurd as SdkAbsurd } from 'absurd-sdk';
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { Absurd, type QueueStorageMode } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import { queueName, recordingConnection, table, useClients, utf8QueueName57 } from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);

async function relationKind(name: string): Promise<string | null> {
  const { rows } = await db.pool.query(
    `select c.relkind::text as kind from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'absurd' and c.relname = $1`,
    [name],
  );
  return (rows[0] as { kind: string } | undefined)?.kind ?? null;
}

describe('queue names', () => {
  const methods = ['createQueue', 'setQueuePolicy', 'getQueuePolicy', 'dropQueue'] as const;
  const refusal = (call: Promise<unknown>) => call.then(() => undefined, (error: unknown) => error as Error);

  it.each(methods)('%s refuses an empty or overlong name before any query, as absurd-sdk does', async (method) => {
    const { con, queries } = recordingConnection();
    const app = new Absurd({ db: con, queueName: 'ok' });
    const sdk = new SdkAbsurd({ db: con as unknown as pg.Pool, queueName: 'ok' });
    for (const name of ['', 'q'.repeat(58), 'é'.repeat(29)]) {
      const ours = await refusal(app[method](name));
      expect(ours, `${method}(${JSON.stringify(name)})`).toBeInstanceOf(Error);
      expect(ours?.message).toBe((await refusal(sdk[method](name)))?.message);
    }
    expect((await refusal(app[method]('q'.repeat(58))))?.message).toBe(`Queue name "${'q'.repeat(58)}" is too long (max 57 bytes).`);
    expect((await refusal(app[method]('')))?.message).toBe('Queue name must be provided');
    expect(queries).toHaveLength(0);
  });

  it.each(methods)('%s accepts a name of exactly 57 bytes', async (method) => {
    const app = new Absurd({ db: recordingConnection().con, queueName: 'ok' });
    expect(await refusal(app[method]('é'.repeat(28) + 'q'))).toBeUndefined();
  });
});

describe('createQueue', () => {
  it("creates the client's queue, unpartitioned by default, and is idempotent", async () => {
    const app = await clients.app(queueName('Awkward', 'quoted'), { db: db.pool });
    await app.createQueue();
    expect(await relationKind(`t_${app.queueName}`)).toBe('r');
    expect(await relationKind(`i_${app.queueName}`)).toBeNull();
    expect((await app.getQueuePolicy())?.storageMode).toBe('unpartitioned');
    expect((await app.listQueues()).filter((q) => q === app.queueName)).toHaveLength(1);
  });

  it('creates a partitioned queue with its idempotency table', async () => {
    const app = await clients.app(queueName('client'), { db: db.pool, createQueue: false });
    const queue = utf8QueueName57();
    await app.createQueue(queue, { storageMode: 'partitioned' });
    expect(await relationKind(`t_${queue}`)).toBe('p');
    expect(await relationKind(`i_${queue}`)).toBe('r');
    expect((await app.getQueuePolicy(queue))?.storageMode).toBe('partitioned');
    // Creating it again with the other mode is an engine error.
    await expect(app.createQueue(queue)).rejects.toThrow();
  });

  it('sends create_queue with one argument unpartitioned, two partitioned', async () => {
    const { con, queries } = recordingConnection();
    const app = new Absurd({ db: con, queueName: 'wire' });
    await app.createQueue();
    await app.createQueue('other', { storageMode: 'unpartitioned' });
    await app.createQueue('parted', { storageMode: 'partitioned' });
    expect(queries.map((q) => q.values)).toEqual([['wire'], ['other'], ['parted', 'partitioned']]);
    expect(queries[0]?.text).toContain('absurd.create_queue(');
    expect(queries[2]?.text).toContain('absurd.create_queue(');
  });

  it('sends exactly one query when no policy is given, two when one is', async () => {
    const { con, queries } = recordingConnection();
    const app = new Absurd({ db: con, queueName: 'one' });
    await app.createQueue(undefined, {});
    expect(queries).toHaveLength(1);
    await app.createQueue('two', { cleanupLimit: 10 });
    expect(queries).toHaveLength(3);
    expect(queries[2]?.text).toContain('absurd.set_queue_policy');
    expect(queries[2]?.values).toEqual(['two', '{"cleanup_limit":10}']);
  });

  it('rejects an unknown storage mode before any query', async () => {
    const { con, queries } = recordingConnection();
    const app = new Absurd({ db: con, queueName: 'bad' });
    await expect(app.createQueue('bad', { storageMode: 'sharded' as QueueStorageMode })).rejects.toThrow(
      new Error('Invalid queue storage mode: sharded'),
    );
    expect(queries).toHaveLength(0);
  });

  it('applies the policy given at creation', async () => {
    const app = await clients.app(queueName('withpolicy'), { db: db.pool, createQueue: false });
    await app.createQueue(undefined, { cleanupTtl: '3 days', cleanupLimit: 25 });
    expect(await app.getQueuePolicy()).toMatchObject({ cleanupTtl: '3 days', cleanupLimit: 25 });
  });
});

describe('queue policy', () => {
  it('round-trips every key, intervals as text', async () => {
    const app = await clients.app(queueName('policy'), { db: db.pool, createQueue: false });
    await app.createQueue(undefined, { storageMode: 'partitioned' });
    await app.setQueuePolicy(undefined, {
      partitionLookahead: '21 days',
      partitionLookback: '14 days',
      cleanupTtl: '7 days',
      cleanupLimit: 500,
      detachMode: 'empty',
      detachMinAge: '45 days',
    });
    expect(await app.getQueuePolicy()).toStrictEqual({
      queueName: app.queueName,
      storageMode: 'partitioned',
      partitionLookahead: '21 days',
      partitionLookback: '14 days',
      cleanupTtl: '7 days',
      cleanupLimit: 500,
      detachMode: 'empty',
      detachMinAge: '45 days',
    });
  });

  it('changes only the keys given', async () => {
    const app = await clients.app(queueName('Awkward', 'quoted'), { db: db.pool });
    const before = await app.getQueuePolicy();
    await app.setQueuePolicy(app.queueName, { cleanupLimit: 7 });
    expect(await app.getQueuePolicy(app.queueName)).toStrictEqual({ ...before, cleanupLimit: 7 });
  });

  it('sends snake_case JSON, and nothing at all for no keys', async () => {
    const { con, queries } = recordingConnection();
    const app = new Absurd({ db: con, queueName: 'p' });
    await app.setQueuePolicy();
    await app.setQueuePolicy('p', {});
    expect(queries).toHaveLength(0);
    await app.setQueuePolicy(undefined, { partitionLookahead: '1 day', detachMode: 'none', detachMinAge: '2 days' });
    expect(queries).toHaveLength(1);
    expect(queries[0]?.text).toContain('absurd.set_queue_policy(');
    expect(queries[0]?.values?.[0]).toBe('p');
    expect(JSON.parse(queries[0]?.values?.[1] as string)).toEqual({
      partition_lookahead: '1 day',
      detach_mode: 'none',
      detach_min_age: '2 days',
    });
  });

  it('is null for a queue that does not exist', async () => {
    const app = await clients.app(queueName('missing'), { db: db.pool, createQueue: false });
    expect(await app.getQueuePolicy()).toBeNull();
  });
});

describe('listQueues and dropQueue', () => {
  it('lists created queues and forgets dropped ones with their tables', async () => {
    const app = await clients.app(queueName('list'), { db: db.pool, createQueue: false });
    const names = [queueName('Awkward', 'quoted'), utf8QueueName57(), queueName('Plain')];
    for (const name of names) await app.createQueue(name);
    const listed = await app.listQueues();
    for (const name of names) expect(listed).toContain(name);

    const [dropped] = names as [string];
    await app.spawn('t', null, { queue: dropped });
    await app.dropQueue(dropped);
    expect(await app.listQueues()).not.toContain(dropped);
    expect(await relationKind(`t_${dropped}`)).toBeNull();
    await expect(db.pool.query(`select 1 from ${table('t', dropped)}`)).rejects.toThrow();
    expect(await app.getQueuePolicy(dropped)).toBeNull();
  });

  it("drops the client's own queue by default", async () => {
    const app = await clients.app(queueName('own'), { db: db.pool });
    await app.dropQueue();
    expect(await app.listQueues()).not.toContain(app.queueName);
  });
});
