import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { migrations } from '../../packages/absurd-kit/src/engine/migrations.generated.js';
import {
  SchemaForeignError,
  SchemaMissingError,
  SchemaOutdatedError,
  SchemaTooNewError,
} from '../../packages/absurd-kit/src/errors.js';
import { assertSchemaCurrent, initSchema, migrate, schemaStatus } from '../../packages/absurd-kit/src/migrate.js';
import { useEmptyDatabases } from './empty-databases.js';

const empty = useEmptyDatabases();
const last = migrations.at(-1)!;
const allRefs = migrations.map(({ version, name }) => ({ version, name }));

async function exec(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

async function installed(): Promise<string> {
  const url = await empty.create();
  await migrate(url);
  return url;
}

/** What Absurd's own installation looks like to us: its schema, no tracking table. */
const FOREIGN_SCHEMA = `
  create schema absurd;
  create function absurd.get_schema_version() returns text language sql as $$ select '0.4.0'::text $$;
  create table absurd.queues (queue_name text primary key);`;

describe('schemaStatus()', () => {
  it('reports not-installed on an empty database', async () => {
    expect(await schemaStatus(await empty.create())).toEqual({ state: 'not-installed' });
  });

  it('treats an empty schema absurd as not installed', async () => {
    const url = await empty.create();
    await exec(url, 'create schema absurd');
    expect(await schemaStatus(url)).toEqual({ state: 'not-installed' });
    expect((await migrate(url)).applied).toEqual(allRefs);
  });

  it('reports current with the contract level and every applied migration', async () => {
    const status = await schemaStatus(await installed());
    expect(status.state).toBe('current');
    if (status.state !== 'current') return;
    expect(status.schemaVersion).toBe('main');
    expect(status.applied.map((m) => m.version)).toEqual(migrations.map((m) => m.version));
    expect(status.applied[0]?.appliedAt).toBeInstanceOf(Date);
  });

  it('reports a schema without the tracking table as foreign, with its get_schema_version()', async () => {
    const url = await empty.create();
    await exec(url, FOREIGN_SCHEMA);
    expect(await schemaStatus(url)).toEqual({ state: 'foreign', schemaVersion: '0.4.0' });
  });

  it('reports foreign with a null version when get_schema_version() is missing', async () => {
    const url = await empty.create();
    await exec(url, 'create schema absurd; create table absurd.queues (queue_name text primary key);');
    expect(await schemaStatus(url)).toEqual({ state: 'foreign', schemaVersion: null });
  });

  it('reports outdated, listing the missing migration', async () => {
    const url = await installed();
    await exec(url, `delete from absurd.kit_migrations where version = ${last.version}`);
    const status = await schemaStatus(url);
    expect(status).toMatchObject({ state: 'outdated', pending: [{ version: last.version, name: last.name }] });
  });

  it('reports newer when the database has a migration this package does not know', async () => {
    const url = await installed();
    await exec(url, `insert into absurd.kit_migrations (version, name, checksum) values (999999, 'future', 'x')`);
    const status = await schemaStatus(url);
    expect(status).toMatchObject({ state: 'newer', unknown: [{ version: 999999, name: 'future' }] });
  });
});

describe('initSchema()', () => {
  it('installs on an empty database', async () => {
    const url = await empty.create();
    expect(await initSchema(url)).toEqual({ state: 'installed', applied: allRefs });
    expect((await schemaStatus(url)).state).toBe('current');
  });

  it('is a no-op on a current database and says so', async () => {
    const url = await installed();
    expect(await initSchema(url)).toEqual({ state: 'already-current', version: last.version });
  });

  it('refuses a foreign schema without touching it', async () => {
    const url = await empty.create();
    await exec(url, FOREIGN_SCHEMA);
    const error = await initSchema(url).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SchemaForeignError);
    expect(error).toMatchObject({ code: 'SCHEMA_FOREIGN', schemaVersion: '0.4.0' });
    expect((error as Error).message).toContain('not installed by absurd-kit');
    expect(await schemaStatus(url)).toEqual({ state: 'foreign', schemaVersion: '0.4.0' });
  });

  it('tells the user to run absurd migrate on an outdated schema', async () => {
    const url = await installed();
    await exec(url, `delete from absurd.kit_migrations where version = ${last.version}`);
    const error = await initSchema(url).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SchemaOutdatedError);
    expect((error as Error).message).toContain('run `absurd migrate`');
    expect((error as SchemaOutdatedError).pending).toEqual([{ version: last.version, name: last.name }]);
  });
});

describe('migrate() refusals', () => {
  it('refuses a foreign schema and creates no tracking table', async () => {
    const url = await empty.create();
    await exec(url, FOREIGN_SCHEMA);
    await expect(migrate(url)).rejects.toBeInstanceOf(SchemaForeignError);
    await expect(migrate(url, { dryRun: true })).rejects.toBeInstanceOf(SchemaForeignError);
    expect(await schemaStatus(url)).toEqual({ state: 'foreign', schemaVersion: '0.4.0' });
  });

  it('refuses a newer schema: the package must be upgraded', async () => {
    const url = await installed();
    await exec(url, `insert into absurd.kit_migrations (version, name, checksum) values (999999, 'future', 'x')`);
    const error = await migrate(url).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SchemaTooNewError);
    expect(error).toMatchObject({ code: 'SCHEMA_TOO_NEW' });
    expect((error as Error).message).toMatch(/999999_future.*upgrade absurd-kit/);
  });
});

describe('assertSchemaCurrent()', () => {
  it('passes on a current schema and throws the matching error otherwise', async () => {
    await expect(assertSchemaCurrent(await installed())).resolves.toBeUndefined();
    const error = await assertSchemaCurrent(await empty.create()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SchemaMissingError);
    expect(error).toMatchObject({ code: 'SCHEMA_MISSING' });
    expect((error as Error).message).toContain('run `absurd init`');
  });
});
