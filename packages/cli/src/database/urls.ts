/**
 * Database URLs for the tooling: another database on the same server, and whether the user
 * configured a database at all (the embedded default applies otherwise).
 */
import { resolveDatabaseUrl, type DatabaseUrlOptions } from 'absurd-kit';

/**
 * The URL of database `database` on the server of `url`: same host, port, user, password and
 * options, the database name percent-encoded.
 *
 * @example
 * databaseUrlFor('postgresql://app@db:5432/postgres?sslmode=require', 'orders');
 * // 'postgresql://app@db:5432/orders?sslmode=require'
 */
export function databaseUrlFor(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

/**
 * The database the user configured — the explicit URL, `ABSURD_DATABASE_URL` or `PGDATABASE` — or
 * undefined when none is, so that a caller can fall back to an embedded database.
 *
 * @example
 * const url = configuredDatabaseUrl() ?? (await startEmbeddedDatabase()).url;
 */
export function configuredDatabaseUrl(options: DatabaseUrlOptions = {}): string | undefined {
  const env = options.env ?? process.env;
  const configured =
    nonEmpty(options.databaseUrl) ?? nonEmpty(env.ABSURD_DATABASE_URL) ?? nonEmpty(env.PGDATABASE);
  return configured === undefined ? undefined : resolveDatabaseUrl(options);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}
