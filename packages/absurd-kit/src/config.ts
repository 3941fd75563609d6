/**
 * Configuration from the environment. This is the only module that reads `process.env`; every
 * other module receives values from here or from explicit options.
 */

/** The database used when nothing else is configured (Absurd's default). */
export const DEFAULT_DATABASE_URL = 'postgresql://localhost/absurd';

/** Environment variables as a plain map (`process.env` by default). */
export type Environment = Readonly<Record<string, string | undefined>>;

/** Options for {@link resolveDatabaseUrl}. */
export interface DatabaseUrlOptions {
  /** An explicit URL (constructor option, `--database-url` flag); wins when non-empty. */
  databaseUrl?: string | undefined;
  /** Environment to read instead of `process.env` (tests, embedding). */
  env?: Environment | undefined;
}

/**
 * Resolves the database to use, in Absurd's order: the explicit URL, then `ABSURD_DATABASE_URL`,
 * then `PGDATABASE`, then `postgresql://localhost/absurd`. Empty strings count as unset.
 * A `PGDATABASE` that is a bare database name (the usual libpq meaning) becomes
 * `postgresql:///<name>`, leaving host, port, user and password to the `PG*` variables.
 *
 * @example
 * resolveDatabaseUrl({ databaseUrl: flags.databaseUrl }); // e.g. 'postgresql://localhost/absurd'
 * resolveDatabaseUrl({ env: { PGDATABASE: 'orders' } });  // 'postgresql:///orders'
 */
export function resolveDatabaseUrl(options: DatabaseUrlOptions = {}): string {
  const env = options.env ?? process.env;
  const explicit = nonEmpty(options.databaseUrl) ?? nonEmpty(env.ABSURD_DATABASE_URL);
  if (explicit) return explicit;
  const pgDatabase = nonEmpty(env.PGDATABASE);
  if (pgDatabase) return looksLikeUrl(pgDatabase) ? pgDatabase : `postgresql:///${encodeURIComponent(pgDatabase)}`;
  return DEFAULT_DATABASE_URL;
}

/**
 * The URL with any password replaced by `***` (in the user-info part and in a `password=` query
 * or keyword parameter), for messages and logs.
 *
 * @example
 * redactDatabaseUrl('postgresql://app:s3cret@db/absurd'); // 'postgresql://app:***@db/absurd'
 */
export function redactDatabaseUrl(url: string): string {
  let redacted = url;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0];
  if (scheme) {
    // The user-info ends at the last "@" before the query: an unencoded "@" may sit in the password.
    const rest = url.slice(scheme.length);
    const beforeQuery = rest.split(/[?#]/, 1)[0] ?? '';
    const at = beforeQuery.lastIndexOf('@');
    const colon = beforeQuery.indexOf(':');
    if (at >= 0 && colon >= 0 && colon < at) {
      redacted = `${scheme}${rest.slice(0, colon)}:***${rest.slice(at)}`;
    }
  }
  return redacted.replace(/([?&;\s]|^)(password)=([^&\s]*)/gi, '$1$2=***');
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

function looksLikeUrl(value: string): boolean {
  return /^postgres(ql)?:\/\//i.test(value) || value.includes('=');
}
