import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { migrationFromFile } from '../../scripts/schema-files.js';
import { migrations } from '../../packages/absurd-kit/src/engine/migrations.generated.js';
import { MIGRATION_LOCK_KEY } from '../../packages/absurd-kit/src/engine/tracking.js';
import { MigrationChecksumError, MigrationFailedError } from '../../packages/absurd-kit/src/errors.js';
import { migrate } from '../../packages/absurd-kit/src/migrate.js';
import { useEmptyDatabases } from './empty-databases.js';

const empty = useEmptyDatabases();
const allRefs = migrations.map(({ version, name }) => ({ version, name }));

async function query<R extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

const trackingRows = (url: string) =>
  query<{ version: number; name: string; checksum: string; applied_at: Date }>(
    url,
    'select version, name, checksum, applied_at from absurd.kit_migrations order by version',
  );

describe('migrate() on an empty database', () => {
  it('applies every bundled migration in order and records each with its checksum', async () => {
    const url = await empty.create();
    const result = await migrate(url);
    expect(result.applied).toEqual(allRefs);
    const rows = await trackingRows(url);
    expect(rows.map(({ version, name, checksum }) => ({ version, name, checksum }))).toEqual(
      migrations.map(({ version, name, checksum }) => ({ version, name, checksum })),
    );
    expect(await query(url, 'select absurd.get_schema_version() as v')).toEqual([{ v: 'main' }]);
  });

  it('is a no-op the second time (nothing applied, tracking rows untouched)', async () => {
    const url = await empty.create();
    await migrate(url);
    const before = await trackingRows(url);
    const again = await migrate(url);
    expect(again.applied).toEqual([]);
    expect(await trackingRows(url)).toEqual(before);
  });

  it('works with a pool and with a caller-owned client, leaving the client open', async () => {
    const url = await empty.create();
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    try {
      expect((await migrate(pool)).applied).toEqual(allRefs);
    } finally {
      await pool.end();
    }
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      expect((await migrate(client)).applied).toEqual([]);
      expect((await client.query('select 1 as ok')).rows).toEqual([{ ok: 1 }]);
    } finally {
      await client.end();
    }
  });

  it('with dryRun lists what would run and changes nothing', async () => {
    const url = await empty.create();
    expect((await migrate(url, { dryRun: true })).applied).toEqual(allRefs);
    expect(await query(url, `select count(*)::int as n from pg_namespace where nspname = 'absurd'`)).toEqual([{ n: 0 }]);
  });

  it('reports each migration to onMigration before applying it', async () => {
    const url = await empty.create();
    const seen: number[] = [];
    await migrate(url, { onMigration: (m) => seen.push(m.version) });
    expect(seen).toEqual(migrations.map((m) => m.version));
  });
});

describe('concurrent migrators', () => {
  it('serialise on the advisory lock: both succeed and each migration is applied exactly once', async () => {
    const url = await empty.create();
    // Hold the migration lock so that both migrators are certainly waiting at the same time.
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      await holder.query(`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`);
      const first = migrate(url);
      const second = migrate(url);
      await waitFor(async () => {
        const [row] = await query<{ n: number }>(
          url,
          `select count(*)::int as n from pg_locks where locktype = 'advisory' and not granted
             and database = (select oid from pg_database where datname = current_database())`,
        );
        return row?.n === 2;
      });
      await holder.query(`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`);
      const [a, b] = await Promise.all([first, second]);
      const versions = [...a.applied, ...b.applied].map((m) => m.version).sort((x, y) => x - y);
      expect(versions).toEqual(migrations.map((m) => m.version));
      expect((await trackingRows(url)).map((r) => r.version)).toEqual(migrations.map((m) => m.version));
    } finally {
      await holder.end();
    }
  });
});

describe('migrate() with a given migration set', () => {
  const one = migrationFromFile('000001_one.sql', 'create table absurd.kit_test_one (id int);\n');
  const two = migrationFromFile('000002_two.sql', 'create table absurd.kit_test_two (id int);\n');

  it('applies only what an outdated schema lacks', async () => {
    const url = await empty.create();
    expect((await migrate(url, { migrations: [one] })).applied).toEqual([{ version: 1, name: 'one' }]);
    expect((await migrate(url, { migrations: [one, two] })).applied).toEqual([{ version: 2, name: 'two' }]);
    expect(await query(url, `select to_regclass('absurd.kit_test_two') is not null as t`)).toEqual([{ t: true }]);
  });

  it('refuses to run when an applied migration changed, naming it', async () => {
    const url = await empty.create();
    await migrate(url, { migrations: [one] });
    const changed = migrationFromFile('000001_one.sql', 'create table absurd.kit_test_one (id bigint);\n');
    const error = await migrate(url, { migrations: [changed, two] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationChecksumError);
    expect(error).toMatchObject({ code: 'MIGRATION_CHECKSUM_MISMATCH', migration: { version: 1, name: 'one' } });
    expect((error as Error).message).toContain('000001_one');
    expect(await query(url, `select to_regclass('absurd.kit_test_two') as t`)).toEqual([{ t: null }]);
  });

  it('detects a changed checksum of a bundled migration', async () => {
    const url = await empty.create();
    await migrate(url);
    await query(url, `update absurd.kit_migrations set checksum = 'tampered' where version = $1`, [migrations[0]?.version]);
    await expect(migrate(url)).rejects.toMatchObject({ code: 'MIGRATION_CHECKSUM_MISMATCH' });
  });

  it('rolls a failing migration back completely and records nothing of it', async () => {
    const url = await empty.create();
    const broken = migrationFromFile('000002_broken.sql', 'create table absurd.kit_test_broken (id int);\nselect 1/0;\n');
    const error = await migrate(url, { migrations: [one, broken] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MigrationFailedError);
    expect(error).toMatchObject({ code: 'MIGRATION_FAILED', sqlState: '22012', migration: { version: 2 } });
    expect((error as Error).message).toMatch(/000002_broken failed: division by zero/);
    expect((await trackingRows(url)).map((r) => r.version)).toEqual([1]);
    expect(await query(url, `select to_regclass('absurd.kit_test_broken') as t`)).toEqual([{ t: null }]);
  });
});

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}
