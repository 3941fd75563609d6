import pg from 'pg';
import { DatabaseUnreachableError, fromDatabaseError } from './errors.js';

/**
 * What absurd-kit functions accept as a database: a connection URL (a client is opened and closed
 * for the call), a `pg.Pool` (one client is borrowed), or a connected `pg.Client`/`PoolClient`
 * that is not inside a transaction.
 */
export type DatabaseConnection = string | pg.Pool | pg.ClientBase;

/** How long opening a connection may take before it counts as unreachable. */
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * Opens a client on `url`. Any failure to connect or log in becomes a
 * {@link DatabaseUnreachableError} whose message names the URL without its password.
 *
 * @example
 * const client = await connectClient('postgresql://localhost/absurd');
 * try { await client.query('select 1'); } finally { await client.end(); }
 */
export async function connectClient(url: string): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    application_name: 'absurd-kit',
  });
  // A connection that drops later emits 'error' on the client; without a listener that would
  // crash the process instead of failing the pending query.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => {});
    throw unreachable(url, error);
  }
  return client;
}

/**
 * Runs `fn` with one dedicated client of `db` and gives the client back afterwards (closes it
 * when it was opened from a URL, releases it to its pool, leaves a caller's own client open).
 *
 * @example
 * const version = await withClient(pool, async (client) => (await client.query('show server_version')).rows[0]);
 */
export async function withClient<T>(db: DatabaseConnection, fn: (client: pg.ClientBase) => Promise<T>): Promise<T> {
  if (typeof db === 'string') {
    const client = await connectClient(db);
    try {
      return await fn(client);
    } finally {
      await client.end().catch(() => {});
    }
  }
  if (isPool(db)) {
    let client: pg.PoolClient;
    try {
      client = await db.connect();
    } catch (error) {
      throw unreachable(describePoolTarget(db), error);
    }
    let failure: unknown;
    try {
      return await fn(client);
    } catch (error) {
      failure = error;
      throw error;
    } finally {
      // A client that failed mid-transaction may be in a bad state: destroy it rather than reuse.
      client.release(failure instanceof Error ? failure : undefined);
    }
  }
  return fn(db);
}

/** Pools and clients share `connect`/`query`; only pools count their clients. */
function isPool(db: pg.Pool | pg.ClientBase): db is pg.Pool {
  return 'totalCount' in db && 'idleCount' in db;
}

function unreachable(url: string, error: unknown): unknown {
  const mapped = fromDatabaseError(error, { url });
  // Anything else that stops a connection (refused, DNS, timeout, TLS) means unreachable too.
  return mapped === error ? new DatabaseUnreachableError(url, error) : mapped;
}

/** A URL-shaped description of a pool's target for messages (the password is never included). */
function describePoolTarget(pool: pg.Pool): string {
  const options = pool.options as pg.PoolConfig;
  if (options.connectionString) return options.connectionString;
  const user = options.user ? `${options.user}@` : '';
  const port = options.port ? `:${options.port}` : '';
  return `postgresql://${user}${options.host ?? 'localhost'}${port}/${options.database ?? ''}`;
}
