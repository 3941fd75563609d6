/**
 * Test databases and the test server of `@absurd-kit/cli/testing`: a fresh clone of the engine
 * template per call, dropped when closed; the server from ABSURD_TEST_DATABASE_URL (set here by
 * the repository's global setup), one started by `startTestServer` for a run, or one a process
 * starts for itself and stops with its last database.
 */
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { schemaStatus } from 'absurd-kit';
import { createTestDatabase, startTestServer } from '@absurd-kit/cli/testing';
import { templateName } from '../../packages/cli/src/testing/test-server.js';

async function databaseExists(serverUrl: string, name: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    return (await client.query('select 1 from pg_database where datname = $1', [name])).rowCount === 1;
  } finally {
    await client.end();
  }
}

async function reachable(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    return false;
  }
}

const runServer = process.env.ABSURD_TEST_DATABASE_URL;

afterEach(() => {
  if (runServer === undefined) delete process.env.ABSURD_TEST_DATABASE_URL;
  else process.env.ABSURD_TEST_DATABASE_URL = runServer;
});

describe('createTestDatabase on the run\'s server (ABSURD_TEST_DATABASE_URL)', () => {
  it('clones a fresh database with the current engine and no queues, and drops it on close', async () => {
    expect(runServer).toBeDefined();
    const first = await createTestDatabase();
    const second = await createTestDatabase();
    try {
      expect(first.name).toMatch(/^absurd_test_[0-9a-f]{12}$/);
      expect(second.name).not.toBe(first.name);
      expect(new URL(first.url).port).toBe(new URL(runServer!).port);
      expect(await schemaStatus(first.url)).toMatchObject({ state: 'current' });
      const client = new pg.Client({ connectionString: first.url });
      await client.connect();
      try {
        expect((await client.query('select * from absurd.list_queues()')).rows).toEqual([]);
      } finally {
        await client.end();
      }
      expect(await databaseExists(runServer!, templateName())).toBe(true);
    } finally {
      await first.close();
      await second[Symbol.asyncDispose]();
    }
    expect(await databaseExists(runServer!, first.name)).toBe(false);
    expect(await databaseExists(runServer!, second.name)).toBe(false);
    await first.close(); // idempotent
  });

  it('clones in parallel', async () => {
    const databases = await Promise.all(Array.from({ length: 4 }, () => createTestDatabase()));
    expect(new Set(databases.map((d) => d.name)).size).toBe(4);
    await Promise.all(databases.map((d) => d.close()));
  });
});

describe('servers of their own', () => {
  it('startTestServer starts the embedded server, publishes it for later processes, and stops it', async () => {
    delete process.env.ABSURD_TEST_DATABASE_URL;
    const server = await startTestServer({ containers: false });
    try {
      expect(server.source).toBe('embedded');
      expect(server.template).toBe(templateName());
      expect(process.env.ABSURD_TEST_DATABASE_URL).toBe(server.url);
      const db = await createTestDatabase();
      expect(new URL(db.url).port).toBe(new URL(server.url).port);
      await db.close();
    } finally {
      await server.stop();
    }
    expect(process.env.ABSURD_TEST_DATABASE_URL).toBeUndefined();
    expect(await reachable(server.url)).toBe(false);
  }, 60_000);

  it('without a server to use, a process starts one for its databases and stops it with the last', async () => {
    delete process.env.ABSURD_TEST_DATABASE_URL;
    const first = await createTestDatabase();
    const second = await createTestDatabase();
    const serverUrl = new URL(first.url);
    serverUrl.pathname = '/postgres';
    expect(new URL(second.url).port).toBe(serverUrl.port);
    expect(serverUrl.port).not.toBe(new URL(runServer!).port);
    await first.close();
    expect(await reachable(second.url)).toBe(true);
    await second.close();
    expect(await reachable(serverUrl.toString())).toBe(false);
  }, 60_000);

  it('a server given by URL is used as it is, neither published nor stopped', async () => {
    delete process.env.ABSURD_TEST_DATABASE_URL;
    const server = await startTestServer({ url: runServer! });
    expect(server.source).toBe('url');
    expect(process.env.ABSURD_TEST_DATABASE_URL).toBeUndefined();
    const db = await createTestDatabase({ server });
    await db.close();
    await server.stop();
    expect(await reachable(runServer!)).toBe(true);
  });
});
