/**
 * The database queries are checked against: a fresh one with the engine schema installed, so
 * that a query is checked against exactly the functions and tables this package ships, never
 * against whatever a developer's database happens to hold.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { migrate } from 'absurd-kit';
import { oneRow } from '../cli-database.js';
import { connectDatabase } from '../database/connect.js';
import { startPostgresServer } from '../database/postgres-server.js';
import { databaseUrlFor } from '../database/urls.js';
import { createDatabaseStatement, dropDatabaseStatement } from '../queries/databases.queries.js';

/** A database with the engine schema, until {@link CheckDatabase.close}. */
export interface CheckDatabase {
  /** Connection URL of the database. */
  readonly url: string;
  /** Drops the temporary database, or stops the throwaway server. */
  close(): Promise<void>;
}

/**
 * Opens a database with the engine schema: a temporary database on the server of `serverUrl`
 * (dropped on close), or — without a URL — a throwaway embedded Postgres with an ephemeral data
 * directory (stopped and deleted on close).
 *
 * @example
 * const db = await openCheckDatabase(process.env.ABSURD_DATABASE_URL);
 * try { … db.url … } finally { await db.close(); }
 */
export async function openCheckDatabase(serverUrl?: string): Promise<CheckDatabase> {
  return serverUrl === undefined ? startThrowawayServer() : createTemporaryDatabase(serverUrl);
}

async function startThrowawayServer(): Promise<CheckDatabase> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'absurd-codegen-pg-'));
  const server = await startPostgresServer({ dataDir, ephemeral: true });
  try {
    await migrate(server.url);
  } catch (error) {
    await server.stop();
    throw error;
  }
  return { url: server.url, close: () => server.stop() };
}

async function createTemporaryDatabase(serverUrl: string): Promise<CheckDatabase> {
  // The process id lets a caller (a test) tell its own temporary databases from concurrent ones.
  const name = `absurd_codegen_${process.pid}_${randomBytes(6).toString('hex')}`;
  const admin = await connectDatabase(serverUrl);
  try {
    const { statement } = oneRow(await createDatabaseStatement.run({ database: name }, admin), 'CreateDatabaseStatement');
    await admin.query(statement);
  } finally {
    await admin.end().catch(() => undefined);
  }
  const url = databaseUrlFor(serverUrl, name);
  const close = async () => {
    const client = await connectDatabase(serverUrl);
    try {
      // `with (force)` ends connections a failed check may have left behind.
      const { statement } = oneRow(await dropDatabaseStatement.run({ database: name }, client), 'DropDatabaseStatement');
      await client.query(statement);
    } finally {
      await client.end().catch(() => undefined);
    }
  };
  try {
    await migrate(url);
  } catch (error) {
    await close().catch(() => undefined);
    throw error;
  }
  return { url, close };
}

/** What pgtyped's wire client needs to connect. */
export interface WireConnectionOptions {
  host: string;
  port: number;
  user: string;
  password: string;
  dbName: string;
  ssl?: boolean | { rejectUnauthorized: boolean };
}

/**
 * Connection options for pgtyped's wire client from a `postgresql://` URL (TCP only: pgtyped
 * cannot use Unix sockets).
 *
 * @example
 * wireOptions('postgresql://postgres:pw@127.0.0.1:5432/app'); // { host: '127.0.0.1', port: 5432, … }
 */
export function wireOptions(url: string): WireConnectionOptions {
  const parsed = new URL(url);
  const param = (name: string) => parsed.searchParams.get(name) ?? undefined;
  const host = decodeURIComponent(parsed.hostname).replace(/^\[(.*)\]$/, '$1') || param('host') || 'localhost';
  if (host.startsWith('/')) throw new Error(`cannot check queries over a Unix socket (${host}): give a TCP host`);
  const options: WireConnectionOptions = {
    host,
    port: Number(parsed.port || param('port') || 5432),
    user: decodeURIComponent(parsed.username) || param('user') || 'postgres',
    password: decodeURIComponent(parsed.password) || param('password') || '',
    dbName: decodeURIComponent(parsed.pathname.replace(/^\//, '')) || param('dbname') || 'postgres',
  };
  const sslmode = param('sslmode');
  if (sslmode === 'require') options.ssl = { rejectUnauthorized: false };
  else if (sslmode === 'verify-ca' || sslmode === 'verify-full') options.ssl = true;
  return options;
}
