import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, inject } from 'vitest';
import { databaseUrlFor } from '../../packages/cli/src/database/urls.js';

/** A database cloned from the template for one test file. */
export interface TestDatabase {
  /** Connection URL of this file's database. */
  readonly url: string;
  /** A shared pool (max 10 connections) on this file's database. */
  readonly pool: pg.Pool;
  /** A new, connected client of its own (for fake time, locks, races); closed after the file. */
  connect(): Promise<pg.Client>;
}

/**
 * Clones the engine template into a fresh database before the file's tests and drops it after.
 *
 * @example
 * const db = useTestDatabase();
 * it('works', async () => { await db.pool.query('select 1'); });
 */
export function useTestDatabase(): TestDatabase {
  const serverUrl = inject('absurdTestServerUrl');
  const template = inject('absurdTestTemplate');
  const name = `absurd_test_${randomBytes(6).toString('hex')}`;
  const url = databaseUrlFor(serverUrl, name);
  const clients: pg.Client[] = [];
  let pool: pg.Pool | undefined;

  beforeAll(async () => {
    const admin = new pg.Client({ connectionString: serverUrl });
    await admin.connect();
    try {
      // Concurrent clones of one template can collide on its lock; retry briefly.
      for (let attempt = 1; ; attempt++) {
        try {
          await admin.query(`create database ${name} template ${template}`);
          break;
        } catch (error) {
          if (attempt >= 20) throw error;
          await new Promise((r) => setTimeout(r, 100 * attempt));
        }
      }
    } finally {
      await admin.end();
    }
    pool = new pg.Pool({ connectionString: url, max: 10 });
    // pool.end() does not wait for sockets to close; the forced drop below may then terminate an
    // idle connection, which must not surface as an uncaught error.
    pool.on('error', () => {});
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await pool?.end();
    const admin = new pg.Client({ connectionString: serverUrl });
    await admin.connect();
    try {
      await admin.query(`drop database if exists ${name} with (force)`);
    } finally {
      await admin.end();
    }
  });

  return {
    url,
    get pool() {
      if (!pool) throw new Error('the test database is only available inside tests and hooks');
      return pool;
    },
    async connect() {
      const client = new pg.Client({ connectionString: url });
      client.on('error', () => {});
      await client.connect();
      clients.push(client);
      return client;
    },
  };
}
