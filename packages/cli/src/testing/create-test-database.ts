/**
 * `createTestDatabase`: a fresh database on the test server of the run — the one a global setup
 * started, one given, or one this process starts for itself.
 */
import { TestDatabase } from './test-database.js';
import { startTestServer, type TestServer } from './test-server.js';

/** Options of {@link createTestDatabase}. */
export interface TestDatabaseOptions {
  /** The server to clone on: a URL (any database on it), or one from {@link startTestServer}. See {@link createTestDatabase}. */
  server?: string | TestServer;
}

/** Servers this process reached by URL, each with its template made sure of once. */
const serversByUrl = new Map<string, Promise<TestServer>>();
/** The server this process started for itself, and how many of its databases are open. */
let ownServer: { server: Promise<TestServer>; open: number } | undefined;

/**
 * A fresh database with the engine installed, cloned from the test server's template (tens of
 * milliseconds). The server: `options.server`; else `ABSURD_TEST_DATABASE_URL` (which
 * {@link startTestServer} sets in a global setup); else one this process starts for itself, shared
 * by its databases and stopped when the last of them is closed.
 *
 * @example
 * const db = await createTestDatabase();
 * try {
 *   // … new Absurd({ db: db.url }) …
 * } finally {
 *   await db.close();
 * }
 */
export async function createTestDatabase(options: TestDatabaseOptions = {}): Promise<TestDatabase> {
  if (typeof options.server === 'object') return options.server.createDatabase();
  const url = options.server ?? nonEmpty(process.env.ABSURD_TEST_DATABASE_URL);
  if (url !== undefined) {
    let server = serversByUrl.get(url);
    if (!server) {
      server = startTestServer({ url, publish: false });
      serversByUrl.set(url, server);
      server.catch(() => serversByUrl.delete(url));
    }
    return (await server).createDatabase();
  }
  return ownServerDatabase();
}

/** A database on the server this process starts for itself (stopped when its last database closes). */
async function ownServerDatabase(): Promise<TestDatabase> {
  const own = (ownServer ??= { server: startTestServer({ publish: false }), open: 0 });
  own.open += 1;
  const release = async () => {
    own.open -= 1;
    if (own.open > 0) return;
    if (ownServer === own) ownServer = undefined;
    await (await own.server).stop();
  };
  try {
    const server = await own.server;
    const cloned = await server.createDatabase();
    return new TestDatabase(cloned.name, cloned.url, async () => {
      try {
        await cloned.close();
      } finally {
        await release();
      }
    });
  } catch (error) {
    await release().catch(() => {});
    throw error;
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}
