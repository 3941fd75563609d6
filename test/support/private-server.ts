import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startPostgresServer, type PostgresServer } from '../../packages/cli/src/database/postgres-server.js';
import { databaseUrlFor } from '../../packages/cli/src/database/urls.js';
import { applySchemaForTests } from './schema.js';

/** A PostgreSQL server of one test file's own, with a database holding the engine schema. */
export interface PrivateServer {
  server: PostgresServer;
  /** URL of the database with the engine schema. */
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts a private server for tests that stop, restart or crash it (never the shared one of
 * global-setup, which other files use meanwhile), with durable settings: fsync, synchronous
 * commit and full-page writes on, as in production. Binaries from `ABSURD_TEST_PG_BIN` when set
 * (e.g. `/usr/lib/postgresql/15/bin`), otherwise the embedded ones. The data directory is removed
 * on `stop()`.
 *
 * @example
 * const { server, url, stop } = await startPrivateServer();
 * await server.restart({ mode: 'immediate' });
 */
export async function startPrivateServer(options: { settings?: Record<string, string> } = {}): Promise<PrivateServer> {
  const binDir = process.env.ABSURD_TEST_PG_BIN;
  const server = await startPostgresServer({
    dataDir: await mkdtemp(path.join(tmpdir(), 'absurd-private-pg-')),
    ephemeral: true,
    binaries: binDir ? { kind: 'directory', binDir } : { kind: 'embedded' },
    settings: { fsync: 'on', synchronous_commit: 'on', full_page_writes: 'on', ...options.settings },
    onNotice: () => {},
  });
  try {
    const admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    try {
      await admin.query('create database absurd');
    } finally {
      await admin.end();
    }
    const url = databaseUrlFor(server.url, 'absurd');
    await applySchemaForTests(url);
    return { server, url, stop: () => server.stop() };
  } catch (error) {
    await server.stop();
    throw error;
  }
}
