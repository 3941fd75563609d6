import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { DEFAULT_DATABASE_URL, redactDatabaseUrl, resolveDatabaseUrl } from '../../packages/absurd-kit/src/config.js';
import { databaseUrlFor } from '../../packages/cli/src/database/urls.js';
import { DatabaseUnreachableError, fromDatabaseError, isAbsurdError } from '../../packages/absurd-kit/src/errors.js';
import { migrate, schemaStatus } from '../../packages/absurd-kit/src/migrate.js';
import { useTestDatabase } from '../support/db.js';

const db = useTestDatabase();

function withCredentials(url: string, changes: { password?: string; database?: string }): string {
  const u = new URL(url);
  if (changes.password !== undefined) u.password = changes.password;
  if (changes.database !== undefined) u.pathname = `/${changes.database}`;
  return u.toString();
}

describe('resolveDatabaseUrl()', () => {
  it('prefers the explicit URL, then ABSURD_DATABASE_URL, then PGDATABASE, then the default', () => {
    const env = { ABSURD_DATABASE_URL: 'postgresql://env/a', PGDATABASE: 'postgresql://pg/b' };
    expect(resolveDatabaseUrl({ databaseUrl: 'postgresql://flag/c', env })).toBe('postgresql://flag/c');
    expect(resolveDatabaseUrl({ env })).toBe('postgresql://env/a');
    expect(resolveDatabaseUrl({ env: { PGDATABASE: 'postgresql://pg/b' } })).toBe('postgresql://pg/b');
    expect(resolveDatabaseUrl({ env: {} })).toBe(DEFAULT_DATABASE_URL);
    expect(DEFAULT_DATABASE_URL).toBe('postgresql://localhost/absurd');
  });

  it('lets empty strings fall through', () => {
    expect(resolveDatabaseUrl({ databaseUrl: '', env: { ABSURD_DATABASE_URL: '', PGDATABASE: ' ' } })).toBe(
      DEFAULT_DATABASE_URL,
    );
    expect(resolveDatabaseUrl({ databaseUrl: '', env: { ABSURD_DATABASE_URL: '', PGDATABASE: 'postgresql://x/y' } })).toBe(
      'postgresql://x/y',
    );
  });

  it('turns a bare PGDATABASE name into a URL that leaves the rest to the PG* variables', () => {
    expect(resolveDatabaseUrl({ env: { PGDATABASE: 'orders db' } })).toBe('postgresql:///orders%20db');
  });
});

describe('redactDatabaseUrl()', () => {
  it('hides passwords in the user-info and in parameters', () => {
    expect(redactDatabaseUrl('postgresql://app:s3cret@db:5432/absurd')).toBe('postgresql://app:***@db:5432/absurd');
    expect(redactDatabaseUrl('postgres://app:p@ss@db/x?sslmode=require')).toBe('postgres://app:***@db/x?sslmode=require');
    expect(redactDatabaseUrl('postgresql://db/x?user=a&password=zz')).toBe('postgresql://db/x?user=a&password=***');
    expect(redactDatabaseUrl('host=db password=zz dbname=x')).toBe('host=db password=*** dbname=x');
    expect(redactDatabaseUrl('postgresql://app@db/absurd')).toBe('postgresql://app@db/absurd');
  });
});

describe('databaseUrlFor()', () => {
  it('keeps server, credentials and options, and encodes the database name', () => {
    expect(databaseUrlFor('postgresql://app:s3cret@db:5432/postgres?sslmode=require', 'orders')).toBe(
      'postgresql://app:s3cret@db:5432/orders?sslmode=require',
    );
    expect(databaseUrlFor('postgresql://db/x', 'a b/c')).toBe('postgresql://db/a%20b%2Fc');
  });
});

describe('an unreachable database', () => {
  it('raises DatabaseUnreachableError naming the URL without the password (connection refused)', async () => {
    const error = await schemaStatus('postgresql://someone:hunter2@127.0.0.1:1/absurd').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatabaseUnreachableError);
    expect(isAbsurdError(error, 'DATABASE_UNREACHABLE')).toBe(true);
    const { message, url } = error as DatabaseUnreachableError;
    expect(message).toContain('postgresql://someone:***@127.0.0.1:1/absurd');
    expect(message).toMatch(/ECONNREFUSED/);
    expect(`${message} ${url} ${JSON.stringify(error)}`).not.toContain('hunter2');
  });

  it('hides a wrong password rejected by the server', async () => {
    const url = withCredentials(db.url, { password: 'not-the-password-42' });
    const error = await migrate(url).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatabaseUnreachableError);
    expect((error as Error).message).toMatch(/password authentication failed/);
    expect((error as Error).message).not.toContain('not-the-password-42');
  });

  it('reports a database that does not exist', async () => {
    const error = await schemaStatus(withCredentials(db.url, { database: 'absurd_no_such_db' })).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'DATABASE_UNREACHABLE' });
    expect((error as Error).message).toMatch(/absurd_no_such_db.*does not exist/);
    expect((error as Error).message).not.toContain(`:${new URL(db.url).password}@`);
  });

  it('applies to pools too', async () => {
    const pool = new pg.Pool({ connectionString: 'postgresql://someone:hunter2@127.0.0.1:1/absurd' });
    try {
      const error = await schemaStatus(pool).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DatabaseUnreachableError);
      expect((error as Error).message).not.toContain('hunter2');
    } finally {
      await pool.end();
    }
  });
});

describe('fromDatabaseError()', () => {
  it('maps listed SQLSTATEs and passes everything else through unchanged', () => {
    const authFailure = Object.assign(new Error('password authentication failed for user "x"'), { code: '28P01' });
    expect(fromDatabaseError(authFailure, { url: 'postgresql://x:y@h/d' })).toBeInstanceOf(DatabaseUnreachableError);
    const other = Object.assign(new Error('division by zero'), { code: '22012' });
    expect(fromDatabaseError(other)).toBe(other);
  });
});
