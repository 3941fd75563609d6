import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { installScript } from '../../packages/absurd-kit/src/engine/install-script.js';
import { migrationFromFile } from '../../scripts/schema-files.js';
import { migrate, schemaStatus } from '../../packages/absurd-kit/src/migrate.js';
import { dumpAbsurdCatalogue } from './catalogue.js';
import { useEmptyDatabases } from './empty-databases.js';

const empty = useEmptyDatabases();
const installScriptPath = fileURLToPath(new URL('../../sql/absurd.sql', import.meta.url));

/** Runs the script the way Absurd's own test-suites load theirs: one simple-protocol query. */
async function runScript(url: string, script: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(script);
  } finally {
    await client.end();
  }
}

describe('sql/absurd.sql', () => {
  it('installs in one query the same schema as migrate(), after which migrate() is a no-op', async () => {
    const script = await readFile(installScriptPath, 'utf8');
    const [fromScript, fromMigrate] = [await empty.create(), await empty.create()];
    await runScript(fromScript, script);
    await migrate(fromMigrate);
    const [a, b] = await Promise.all([dumpAbsurdCatalogue(fromScript), dumpAbsurdCatalogue(fromMigrate)]);
    expect(a.functions?.length).toBeGreaterThan(0);
    expect(a.trackingRows?.length).toBeGreaterThan(0);
    expect(a).toEqual(b);
    expect((await migrate(fromScript)).applied).toEqual([]);
    expect((await schemaStatus(fromScript)).state).toBe('current');
  });

  it('fails as a whole when run a second time, changing nothing', async () => {
    const script = await readFile(installScriptPath, 'utf8');
    const url = await empty.create();
    await runScript(url, script);
    const before = await dumpAbsurdCatalogue(url);
    await expect(runScript(url, script)).rejects.toThrow(/kit_migrations_pkey|already exists/);
    expect(await dumpAbsurdCatalogue(url)).toEqual(before);
  });

  it('contains no psql meta-commands and starts with the generated header', async () => {
    const script = await readFile(installScriptPath, 'utf8');
    expect(script.startsWith('-- @generated')).toBe(true);
    expect(script).toContain('DO NOT EDIT');
    expect(script.split('\n').filter((line) => /^\s*\\/.test(line))).toEqual([]);
  });
});

describe('installScript()', () => {
  it('refuses a migration whose last statement lacks its semicolon', () => {
    const m = migrationFromFile('000001_open.sql', 'create table absurd.x (id int)\n-- trailing comment\n');
    expect(() => installScript([m])).toThrow(/000001_open must end its last statement with ";"/);
  });

  it('refuses psql meta-commands', () => {
    const m = migrationFromFile('000001_meta.sql', '\\set ON_ERROR_STOP on\nselect 1;\n');
    expect(() => installScript([m])).toThrow(/000001_meta line 1: psql meta-commands/);
  });

  it('accepts a trailing comment after the last semicolon', () => {
    const m = migrationFromFile('000001_ok.sql', 'select 1; -- done\n\n');
    expect(installScript([m])).toContain("values (1, 'ok', ");
  });
});
