import path from 'node:path';
import { createDatabaseStatement, databaseExists } from '../queries/databases.queries.js';
import { connectDatabase } from './connect.js';
import { startPostgresServer, type PostgresServer } from './postgres-server.js';

/** Options of {@link startEmbeddedDatabase}. */
export interface EmbeddedDatabaseOptions {
  /** Directory for the server's data (kept across runs). Default `.absurd` in the working directory. */
  directory?: string;
  /** Database to create (if missing) and connect to. Default `absurd`. */
  database?: string;
  /** TCP port on 127.0.0.1. Default: the port used last time if free, else any free one. */
  port?: number;
  /** Server log lines. */
  onLog?: (line: string) => void;
}

/** A running embedded database. */
export interface EmbeddedDatabase {
  /** URL of the database (with the local password). */
  readonly url: string;
  readonly server: PostgresServer;
  stop(): Promise<void>;
}

/**
 * Starts (or restarts) the embedded PostgreSQL server kept under `.absurd/` and makes sure the
 * database exists: the zero-configuration default of `npm start` and `absurd dev`.
 *
 * @example
 * const { url, stop } = await startEmbeddedDatabase();
 * // … use url …
 * await stop();
 */
export async function startEmbeddedDatabase(options: EmbeddedDatabaseOptions = {}): Promise<EmbeddedDatabase> {
  const directory = path.resolve(options.directory ?? '.absurd');
  const database = options.database ?? 'absurd';
  const server = await startPostgresServer({ dataDir: path.join(directory, 'pgdata'), port: options.port, onLog: options.onLog });
  try {
    const admin = await connectDatabase(server.url);
    try {
      const [exists] = await databaseExists.run({ database }, admin);
      if (!exists) {
        // CREATE DATABASE takes an identifier, which no parameter can carry: the query quotes it.
        const [create] = await createDatabaseStatement.run({ database }, admin);
        if (create) await admin.query(create.statement);
      }
    } finally {
      await admin.end();
    }
  } catch (error) {
    await server.stop();
    throw error;
  }
  return { url: server.urlFor(database), server, stop: () => server.stop() };
}
