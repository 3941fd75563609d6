/**
 * The CLI's own database connections: one `pg.Client` per command, opened here so that a failure
 * to connect reads the same everywhere.
 */
import pg from 'pg';
import { DatabaseUnreachableError } from 'absurd-kit';

/** How long opening a connection may take before the database counts as unreachable. */
const CONNECT_TIMEOUT_MS = 10_000;

/**
 * Opens a client on `url`. Any failure to connect or log in (refused, DNS, timeout, TLS, a wrong
 * password, a missing database) becomes a `DatabaseUnreachableError` whose message names the URL
 * without its password and says how to point the CLI elsewhere.
 *
 * @example
 * const db = await connectDatabase('postgresql://localhost/absurd');
 * try { await listQueues(db); } finally { await db.end(); }
 */
export async function connectDatabase(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS, application_name: 'absurd-kit' });
  // A connection that drops later emits 'error' on the client; without a listener that would
  // crash the process instead of failing the pending query.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => {});
    throw new DatabaseUnreachableError(url, error);
  }
  return client;
}
