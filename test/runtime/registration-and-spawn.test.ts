import { describe, expect, it } from 'vitest';
import { Absurd, type SpawnOptions } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import {
  queueName,
  recordingConnection,
  runRows,
  table,
  taskRow,
  type TestAppOptions,
  useClients,
  utf8QueueName57,
  workOnce,
} from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);

function appWithQueue(queue = queueName('spawn'), options: TestAppOptions = {}) {
  return clients.app(queue, { db: db.pool, ...options });
}

describe('which queue a spawn goes to', () => {
  it('sends a registered task to its registered queue', async () => {
    const app = await appWithQueue();
    const other = queueName('Awkward', 'quoted');
    await app.createQueue(other);
    app.registerTask({ name: 'elsewhere', queue: other }, async () => null);
    const spawned = await app.spawn('elsewhere', { a: 1 });
    expect((await taskRow(db.pool, other, spawned.taskID)).task_name).toBe('elsewhere');
    expect((await db.pool.query(`select count(*)::int as n from ${table('t', app.queueName)}`)).rows[0].n).toBe(0);
    // Naming the registered queue explicitly is allowed.
    const again = await app.spawn('elsewhere', { a: 2 }, { queue: other });
    expect((await taskRow(db.pool, other, again.taskID)).params).toEqual({ a: 2 });
  });

  it('refuses a queue that differs from the registered one, before any query', async () => {
    const { con, queries } = recordingConnection();
    const app = new Absurd({ db: con, queueName: 'main' });
    app.registerTask({ name: 'job', queue: 'jobs' }, async () => null);
    await expect(app.spawn('job', {}, { queue: 'other' })).rejects.toThrow(
      new Error('Task "job" is registered for queue "jobs" but spawn requested queue "other".'),
    );
    await expect(app.spawn('job', {}, { queue: '' })).rejects.toThrow(new Error('Queue name must be provided'));
    expect(queries).toHaveLength(0);
  });

  it('requires a queue for an unregistered task, before any query', async () => {
    const { con, queries } = recordingConnection();
    const app = new Absurd({ db: con, queueName: 'main' });
    await expect(app.spawn('nobody', {})).rejects.toThrow(
      new Error('Task "nobody" is not registered. Provide options.queue when spawning unregistered tasks.'),
    );
    await expect(app.spawn('nobody', {}, { queue: '' })).rejects.toThrow(new Error('Queue name must be provided'));
    await expect(app.spawn('nobody', {}, { queue: 'z'.repeat(58) })).rejects.toThrow('is too long (max 57 bytes).');
    expect(queries).toHaveLength(0);
  });

  it('spawns an unregistered task on the queue given, even another client queue', async () => {
    const app = await appWithQueue();
    const target = utf8QueueName57();
    await app.createQueue(target);
    const spawned = await app.spawn('remote-task', [1, 2], { queue: target });
    expect(spawned.created).toBe(true);
    const row = await taskRow(db.pool, target, spawned.taskID);
    expect(row).toMatchObject({ task_name: 'remote-task', params: [1, 2], state: 'pending' });
  });

  it('uses registrations made after construction, and a re-registration replaces the first', async () => {
    const app = await appWithQueue();
    const second = queueName('second');
    await app.createQueue(second);
    app.registerTask({ name: 'r' }, async () => 'first');
    app.registerTask({ name: 'r', queue: second, defaultMaxAttempts: 2 }, async () => 'second');
    const spawned = await app.spawn('r', null);
    expect((await taskRow(db.pool, second, spawned.taskID)).max_attempts).toBe(2);
  });
});

describe('spawn defaults', () => {
  it('returns a pending first run with UUIDv7 ids', async () => {
    const app = await appWithQueue();
    app.registerTask({ name: 't' }, async () => null);
    const spawned = await app.spawn('t', { x: 1 });
    expect(spawned).toEqual({ taskID: expect.any(String), runID: expect.any(String), attempt: 1, created: true });
    expect(spawned.taskID).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(spawned.runID).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    const task = await taskRow(db.pool, app.queueName, spawned.taskID);
    expect(task).toMatchObject({ state: 'pending', attempts: 1, last_attempt_run: spawned.runID });
    const runs = await runRows(db.pool, app.queueName, spawned.taskID);
    expect(runs.map((r) => [r.run_id, r.attempt, r.state])).toEqual([[spawned.runID, 1, 'pending']]);
  });

  it('sends maxAttempts 5 by default, else the client default, the registration default, the spawn option', async () => {
    const app = await appWithQueue();
    app.registerTask({ name: 'plain' }, async () => null);
    app.registerTask({ name: 'three', defaultMaxAttempts: 3 }, async () => null);
    const maxAttempts = async (client: Absurd, name: string, options?: SpawnOptions) =>
      (await taskRow(db.pool, client.queueName, (await client.spawn(name, null, options)).taskID)).max_attempts;
    expect(await maxAttempts(app, 'plain')).toBe(5);
    expect(await maxAttempts(app, 'three')).toBe(3);
    expect(await maxAttempts(app, 'three', { maxAttempts: 8 })).toBe(8);
    expect(await maxAttempts(app, 'unregistered', { queue: app.queueName })).toBe(5);

    const seven = await appWithQueue(queueName('seven'), { defaultMaxAttempts: 7 });
    seven.registerTask({ name: 'plain' }, async () => null);
    seven.registerTask({ name: 'two', defaultMaxAttempts: 2 }, async () => null);
    expect(await maxAttempts(seven, 'plain')).toBe(7);
    expect(await maxAttempts(seven, 'two')).toBe(2);
  });

  it('takes the registration default cancellation unless the spawn gives one', async () => {
    const app = await appWithQueue();
    app.registerTask({ name: 'c', defaultCancellation: { maxDuration: 600, maxDelay: 60 } }, async () => null);
    const byDefault = await app.spawn('c', null);
    expect((await taskRow(db.pool, app.queueName, byDefault.taskID)).cancellation).toEqual({ max_duration: 600, max_delay: 60 });
    const overridden = await app.spawn('c', null, { cancellation: { maxDelay: 5 } });
    expect((await taskRow(db.pool, app.queueName, overridden.taskID)).cancellation).toEqual({ max_delay: 5 });
    app.registerTask({ name: 'none' }, async () => null);
    const none = await app.spawn('none', null);
    expect((await taskRow(db.pool, app.queueName, none.taskID)).cancellation).toBeNull();
  });

  it('maxAttempts is not checked client-side: the engine refuses 0', async () => {
    const app = await appWithQueue();
    app.registerTask({ name: 't' }, async () => null);
    await expect(app.spawn('t', null, { maxAttempts: 0 })).rejects.toThrow('max_attempts must be >= 1');
  });
});

describe('the stored options', () => {
  it('stores every option as snake_case JSON', async () => {
    const app = await appWithQueue(queueName('Awkward', 'quoted'));
    app.registerTask({ name: 'full' }, async () => null);
    const spawned = await app.spawn('full', { p: true }, {
      maxAttempts: 4,
      retryStrategy: { kind: 'exponential', baseSeconds: 2, factor: 3, maxSeconds: 100 },
      headers: { trace: 'abc', nested: { n: 1 } },
      cancellation: { maxDuration: 3600, maxDelay: 120 },
      idempotencyKey: 'key-1',
    });
    const task = await taskRow(db.pool, app.queueName, spawned.taskID);
    expect(task).toMatchObject({
      params: { p: true },
      max_attempts: 4,
      retry_strategy: { kind: 'exponential', base_seconds: 2, factor: 3, max_seconds: 100 },
      headers: { trace: 'abc', nested: { n: 1 } },
      cancellation: { max_duration: 3600, max_delay: 120 },
      idempotency_key: 'key-1',
    });
  });

  it('leaves out unset fields and an empty cancellation', async () => {
    const app = await appWithQueue();
    app.registerTask({ name: 'sparse' }, async () => null);
    const spawned = await app.spawn('sparse', 'text', { retryStrategy: { kind: 'fixed' }, cancellation: {} });
    const task = await taskRow(db.pool, app.queueName, spawned.taskID);
    expect(task).toMatchObject({
      params: 'text',
      retry_strategy: { kind: 'fixed' },
      headers: null,
      cancellation: null,
      idempotency_key: null,
      max_attempts: 5,
    });
  });

  it('sends the options JSON and the params as JSON text', async () => {
    const { con, queries } = recordingConnection(db.pool);
    const app = new Absurd({ db: con, queueName: queueName('wire') });
    await app.createQueue();
    app.registerTask({ name: 'w' }, async () => null);
    await app.spawn('w', { n: 1 }, { retryStrategy: { kind: 'none' }, headers: { h: 'v' } });
    const spawn = queries.find((q) => /absurd\.(kit_)?spawn_task\(/.test(q.text));
    expect(spawn?.values?.slice(0, 4)).toEqual([app.queueName, 'w', '{"n":1}', expect.any(String)]);
    expect(JSON.parse(spawn?.values?.[3] as string)).toEqual({
      headers: { h: 'v' },
      max_attempts: 5,
      retry_strategy: { kind: 'none' },
    });
  });

  it('stores undefined params as JSON null', async () => {
    const app = await appWithQueue();
    app.registerTask({ name: 'u' }, async () => null);
    const spawned = await app.spawn('u', undefined);
    const { rows } = await db.pool.query(
      `select params, jsonb_typeof(params) as kind from ${table('t', app.queueName)} where task_id = $1`,
      [spawned.taskID],
    );
    expect(rows[0]).toEqual({ params: null, kind: 'null' });
  });
});

describe('beforeSpawn', () => {
  it('sees the resolved options and its result replaces them', async () => {
    const seen: unknown[] = [];
    const app = await appWithQueue(queueName('hook'), {
      hooks: {
        beforeSpawn: (name, params, options) => {
          seen.push({ name, params, options });
          return { ...options, headers: { ...options.headers, injected: 'yes' } };
        },
      },
    });
    app.registerTask({ name: 'h', defaultMaxAttempts: 3, defaultCancellation: { maxDelay: 30 } }, async () => null);
    const spawned = await app.spawn('h', { v: 1 }, { headers: { own: '1' } });
    expect(seen).toEqual([
      {
        name: 'h',
        params: { v: 1 },
        options: { headers: { own: '1' }, maxAttempts: 3, cancellation: { maxDelay: 30 } },
      },
    ]);
    expect((await taskRow(db.pool, app.queueName, spawned.taskID)).headers).toEqual({ own: '1', injected: 'yes' });
  });

  it('sees the client default of 5 for an unregistered task', async () => {
    let seen: SpawnOptions | undefined;
    const queue = queueName('hook5');
    const app = await appWithQueue(queue, { hooks: { beforeSpawn: (_n, _p, o) => (seen = o) } });
    await app.spawn('x', null, { queue });
    expect(seen).toEqual({ queue, maxAttempts: 5 });
  });

  it('may be async, and dropping maxAttempts stores NULL (unlimited)', async () => {
    const app = await appWithQueue(queueName('hookasync'), {
      hooks: {
        beforeSpawn: async (_n, _p, options) => {
          await new Promise((resolve) => setTimeout(resolve, 5));
          const { maxAttempts: _dropped, ...rest } = options;
          return rest;
        },
      },
    });
    app.registerTask({ name: 'a', defaultMaxAttempts: 2 }, async () => null);
    const spawned = await app.spawn('a', null);
    const { rows } = await db.pool.query(
      `select max_attempts, max_attempts is null as unlimited from ${table('t', app.queueName)} where task_id = $1`,
      [spawned.taskID],
    );
    expect(rows[0]).toEqual({ max_attempts: null, unlimited: true });
  });

  it('cannot move a spawn to another queue', async () => {
    const decoy = queueName('decoy');
    const app = await appWithQueue(queueName('fixed'), { hooks: { beforeSpawn: (_n, _p, o) => ({ ...o, queue: decoy }) } });
    await app.createQueue(decoy);
    app.registerTask({ name: 'stay' }, async () => null);
    const registered = await app.spawn('stay', null);
    const unregistered = await app.spawn('loose', null, { queue: app.queueName });
    for (const { taskID } of [registered, unregistered]) {
      expect((await taskRow(db.pool, app.queueName, taskID)).state).toBe('pending');
    }
    expect((await db.pool.query(`select count(*)::int as n from ${table('t', decoy)}`)).rows[0].n).toBe(0);
  });
});

describe('idempotency', () => {
  it('returns the existing task with created=false, its last run and attempts', async () => {
    const app = await appWithQueue();
    let runs = 0;
    app.registerTask({ name: 'once' }, async () => {
      runs += 1;
      if (runs === 1) throw new Error('first attempt fails');
      return 'ok';
    });
    const first = await app.spawn('once', { n: 1 }, { idempotencyKey: 'k', retryStrategy: { kind: 'none' } });
    expect(first.created).toBe(true);
    await workOnce(app);
    const task = await taskRow(db.pool, app.queueName, first.taskID);
    expect(task.attempts).toBe(2);
    const duplicate = await app.spawn('once', { n: 2 }, { idempotencyKey: 'k' });
    expect(duplicate).toEqual({ taskID: first.taskID, runID: task.last_attempt_run, attempt: 2, created: false });
    expect((await taskRow(db.pool, app.queueName, first.taskID)).params).toEqual({ n: 1 });

    // The key is kept after completion and is per queue (any task name).
    await workOnce(app);
    expect((await app.fetchTaskResult(first.taskID))?.state).toBe('completed');
    const afterDone = await app.spawn('other-name', null, { idempotencyKey: 'k', queue: app.queueName });
    expect(afterDone).toMatchObject({ taskID: first.taskID, created: false });
    const elsewhere = queueName('elsewhere');
    await app.createQueue(elsewhere);
    const fresh = await app.spawn('once-elsewhere', null, { idempotencyKey: 'k', queue: elsewhere });
    expect(fresh.created).toBe(true);
    expect(fresh.taskID).not.toBe(first.taskID);
  });

  it('works on a partitioned queue', async () => {
    const queue = queueName('parted');
    const app = await clients.app(queue, { db: db.pool, createQueue: false });
    await app.createQueue(queue, { storageMode: 'partitioned' });
    app.registerTask({ name: 'p' }, async () => null);
    const first = await app.spawn('p', null, { idempotencyKey: 'pk' });
    const second = await app.spawn('p', null, { idempotencyKey: 'pk' });
    expect(second).toEqual({ ...first, created: false });
  });
});
