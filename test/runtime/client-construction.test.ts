import net from 'node:net';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { Absurd } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import { queueName, recordingConnection, useClients, utf8QueueName57 } from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);

/** The private fields the absurd-sdk tests read. */
const internals = (app: Absurd) => app as unknown as { con: unknown; ownsConnection: boolean; defaultMaxAttempts: number; log: unknown; hooks: unknown };
const connectionString = (app: Absurd) => (internals(app).con as pg.Pool).options.connectionString;

describe('what the constructor accepts', () => {
  it('treats a string as the database URL and owns the pool it creates', async () => {
    const app = new Absurd(db.url);
    try {
      expect(internals(app).con).toBeInstanceOf(pg.Pool);
      expect(connectionString(app)).toBe(db.url);
      expect(app.queueName).toBe('default');
      expect(await app.listQueues()).toEqual([]);
    } finally {
      await app.close();
    }
    expect((internals(app).con as pg.Pool).ended).toBe(true);
  });

  it('uses a pg.Pool as is and does not end it on close', async () => {
    const pool = clients.pool({ max: 2, idleTimeoutMillis: 0 });
    const app = new Absurd(pool);
    expect(internals(app).con).toBe(pool);
    expect(app.queueName).toBe('default');
    await app.close();
    expect(pool.ended).toBe(false);
    expect((await pool.query('select 1 as one')).rows[0].one).toBe(1);
  });

  it('uses a pg.Client as is', async () => {
    const client = await db.connect();
    const app = new Absurd(client);
    const queue = queueName('client');
    await app.createQueue(queue);
    expect(await app.listQueues()).toContain(queue);
    await app.close();
    expect((await client.query('select 1 as one')).rows[0].one).toBe(1);
  });

  it('treats any object with a query function as the connection', async () => {
    const { con, texts } = recordingConnection();
    const app = new Absurd(con);
    expect(internals(app).con).toBe(con);
    expect(await app.listQueues()).toEqual([]);
    expect(texts()).toHaveLength(1);
    expect(texts()[0]).toContain('absurd.list_queues()');
  });

  it('takes an options object with db, queueName, defaultMaxAttempts, log and hooks', () => {
    const { con } = recordingConnection();
    const log = { log() {}, info() {}, warn() {}, error() {} };
    const hooks = { beforeSpawn: (_n: string, _p: unknown, o: object) => o };
    const app = new Absurd({ db: con, queueName: 'Mixed Case q', defaultMaxAttempts: 9, log, hooks });
    expect(app.queueName).toBe('Mixed Case q');
    expect(internals(app).con).toBe(con);
    expect(internals(app).ownsConnection).toBe(false);
    expect(internals(app).defaultMaxAttempts).toBe(9);
    expect(internals(app).log).toBe(log);
    expect(internals(app).hooks).toBe(hooks);
  });

  it('defaults to 5 attempts, the console log and no hooks', () => {
    const app = new Absurd(recordingConnection().con);
    expect(internals(app).defaultMaxAttempts).toBe(5);
    expect(internals(app).log).toBe(console);
    expect(internals(app).hooks).toEqual({});
  });
});

describe('queue name validation', () => {
  it('accepts whitespace, quotes, mixed case and 57 UTF-8 bytes', async () => {
    for (const name of ['   ', '\t', queueName('Awkward', 'quoted'), utf8QueueName57(), 'UPPER lower']) {
      expect(new Absurd({ db: recordingConnection().con, queueName: name }).queueName).toBe(name);
    }
    const longest = utf8QueueName57();
    expect(Buffer.byteLength(longest, 'utf8')).toBe(57);
    const app = new Absurd({ db: db.pool, queueName: longest });
    await app.createQueue();
    expect(await app.listQueues()).toContain(longest);
  });

  it('rejects an empty name and one of 58 bytes with the engine messages', () => {
    const con = recordingConnection().con;
    expect(() => new Absurd({ db: con, queueName: '' })).toThrow(new Error('Queue name must be provided'));
    const tooLong = `${utf8QueueName57()}x`;
    expect(Buffer.byteLength(tooLong, 'utf8')).toBe(58);
    expect(() => new Absurd({ db: con, queueName: tooLong })).toThrow(
      new Error(`Queue name "${tooLong}" is too long (max 57 bytes).`),
    );
    // 29 two-byte characters are 58 bytes although only 29 characters long.
    const multiByte = 'é'.repeat(29);
    expect(() => new Absurd({ db: con, queueName: multiByte })).toThrow('is too long (max 57 bytes).');
  });

  it('validates the queue before creating any connection', async () => {
    // A port nobody listens on: any connection attempt would fail with a connection error.
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as net.AddressInfo).port;
    let connections = 0;
    probe.on('connection', (socket) => {
      connections += 1;
      socket.destroy();
    });
    // Count the pools the client builds (a pool is where any connection would come from).
    const OriginalPool = pg.Pool;
    let poolsBuilt = 0;
    (pg as { Pool: typeof pg.Pool }).Pool = class CountingPool extends OriginalPool {
      constructor(config?: pg.PoolConfig) {
        super(config);
        poolsBuilt += 1;
      }
    };
    try {
      const url = `postgresql://nobody@127.0.0.1:${port}/nothing`;
      expect(() => new Absurd({ db: url, queueName: '' })).toThrow(new Error('Queue name must be provided'));
      expect(() => new Absurd({ db: url, queueName: 'x'.repeat(58) })).toThrow('is too long (max 57 bytes).');
      expect(poolsBuilt).toBe(0);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(connections).toBe(0);
      // The same URL with a valid queue does build a pool: the spy would have seen it.
      const app = new Absurd({ db: url, queueName: 'fine' });
      expect(poolsBuilt).toBe(1);
      await app.close();
    } finally {
      (pg as { Pool: typeof pg.Pool }).Pool = OriginalPool;
      await new Promise((resolve) => probe.close(resolve));
    }
  });
});

describe('connection defaults from the environment', () => {
  const saved = { ABSURD_DATABASE_URL: process.env.ABSURD_DATABASE_URL, PGDATABASE: process.env.PGDATABASE };
  const apps: Absurd[] = [];
  afterEach(async () => {
    for (const [key, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    for (const app of apps.splice(0)) await app.close();
  });
  const build = (options?: ConstructorParameters<typeof Absurd>[0]) => {
    const app = new Absurd(options);
    apps.push(app);
    return app;
  };

  it('uses ABSURD_DATABASE_URL first', () => {
    process.env.ABSURD_DATABASE_URL = 'postgresql://env-host/absurd_env';
    process.env.PGDATABASE = 'postgresql://pg-host/pg_db';
    const app = build();
    expect(connectionString(app)).toBe('postgresql://env-host/absurd_env');
    expect(internals(app).ownsConnection).toBe(true);
  });

  it('falls through an empty ABSURD_DATABASE_URL to PGDATABASE, passed on as is', () => {
    process.env.ABSURD_DATABASE_URL = '';
    process.env.PGDATABASE = 'postgresql://pg-host/pg_db';
    expect(connectionString(build())).toBe('postgresql://pg-host/pg_db');
    delete process.env.ABSURD_DATABASE_URL;
    expect(connectionString(build({ queueName: 'other' }))).toBe('postgresql://pg-host/pg_db');
  });

  it('turns a bare PGDATABASE name into a URL naming only the database', () => {
    // absurd-sdk passes a bare name on verbatim, which node-postgres reads as host "base";
    // absurd-kit leaves host, port and user to the other PG* variables instead.
    delete process.env.ABSURD_DATABASE_URL;
    process.env.PGDATABASE = 'orders';
    expect(connectionString(build())).toBe('postgresql:///orders');
  });

  it('falls back to postgresql://localhost/absurd', () => {
    process.env.ABSURD_DATABASE_URL = '';
    process.env.PGDATABASE = '';
    expect(connectionString(build())).toBe('postgresql://localhost/absurd');
    delete process.env.ABSURD_DATABASE_URL;
    delete process.env.PGDATABASE;
    expect(connectionString(build({ queueName: 'q' }))).toBe('postgresql://localhost/absurd');
  });

  it('prefers an explicit URL to the environment; an empty one falls through', () => {
    process.env.ABSURD_DATABASE_URL = 'postgresql://env-host/absurd_env';
    expect(connectionString(build({ db: 'postgresql://explicit/db' }))).toBe('postgresql://explicit/db');
    expect(connectionString(build('postgresql://explicit/db2'))).toBe('postgresql://explicit/db2');
    expect(connectionString(build({ db: '' }))).toBe('postgresql://env-host/absurd_env');
  });

  it('a working URL from ABSURD_DATABASE_URL reaches the database', async () => {
    process.env.ABSURD_DATABASE_URL = db.url;
    const app = build({ queueName: queueName('env') });
    await app.createQueue();
    expect(await app.listQueues()).toContain(app.queueName);
  });
});

describe('registerTask', () => {
  const app = () => new Absurd({ db: recordingConnection().con, queueName: 'reg' });

  it('requires a name', () => {
    expect(() => app().registerTask({ name: '' }, async () => null)).toThrow(new Error('Task registration requires a name'));
    expect(() => app().registerTask({} as { name: string }, async () => null)).toThrow('Task registration requires a name');
  });

  it('requires defaultMaxAttempts of at least 1', () => {
    expect(() => app().registerTask({ name: 't', defaultMaxAttempts: 0 }, async () => null)).toThrow(
      new Error('defaultMaxAttempts must be at least 1'),
    );
    expect(() => app().registerTask({ name: 't', defaultMaxAttempts: -3 }, async () => null)).toThrow(
      'defaultMaxAttempts must be at least 1',
    );
    expect(() => app().registerTask({ name: 't', defaultMaxAttempts: 1 }, async () => null)).not.toThrow();
  });

  it('validates the registered queue', () => {
    expect(() => app().registerTask({ name: 't', queue: '' }, async () => null)).toThrow('Queue name must be provided');
    expect(() => app().registerTask({ name: 't', queue: 'y'.repeat(58) }, async () => null)).toThrow(
      'is too long (max 57 bytes).',
    );
  });
});
