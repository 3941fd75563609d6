import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { COMMANDS, run } from '../../packages/cli/src/cli.js';
import { migrationLabel } from '../../packages/absurd-kit/src/engine/migration.js';
import { migrations } from '../../packages/absurd-kit/src/engine/migrations.generated.js';
import { useEmptyDatabases } from '../engine/empty-databases.js';
import { installAbsurdSchema, populateEveryState } from '../support/absurd-schema.js';

const empty = useEmptyDatabases();
const last = migrations.at(-1)!;
const UNREACHABLE = 'postgresql://someone:hunter2@127.0.0.1:1/absurd';

/** Runs the CLI in-process with captured output and an environment of our choosing. */
async function cli(argv: string[], env: Record<string, string> = {}, isTTY = false) {
  let stdout = '';
  let stderr = '';
  const code = await run(argv, {
    stdout: { write: (s: string) => (stdout += s), isTTY },
    stderr: { write: (s: string) => (stderr += s), isTTY },
    env,
  });
  return { code, stdout, stderr };
}

async function exec(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

async function installedDatabase(): Promise<string> {
  const url = await empty.create();
  expect((await cli(['init', '-d', url])).code).toBe(0);
  return url;
}

describe('help', () => {
  it.each([['--help'], ['-h']])('%s lists every command and exits 0', async (flag) => {
    const result = await cli([flag]);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe('');
    for (const command of COMMANDS) expect(result.stdout).toContain(`  ${command.name} `);
  });

  it.each(COMMANDS.map((c) => [c.name]))('absurd %s --help shows the command usage and exits 0', async (name) => {
    const result = await cli([...name.split(' '), '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout.startsWith(`Usage: absurd ${name} `)).toBe(true);
    expect(result.stdout).toContain('--database-url <url>');
    expect(result.stderr).toBe('');
  });

  it('absurd schema --help lists the schema subcommands', async () => {
    const result = await cli(['schema', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('schema sql');
  });
});

describe('usage errors exit 2 with usage on stderr', () => {
  it.each([
    [[], /missing command/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['--frobnicate'], /unknown flag --frobnicate/],
    [['migrate', '--frobnicate'], /absurd migrate: unknown flag --frobnicate/],
    [['migrate', '-d'], /flag --database-url needs a value/],
    [['migrate', 'extra'], /unexpected argument "extra"/],
    [['schema-version', '--json=yes'], /flag --json takes no value/],
    [['schema'], /missing subcommand after "schema"/],
  ])('absurd %j', async (argv, message) => {
    const result = await cli(argv);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toContain('Usage: absurd');
    expect(result.stdout).toBe('');
  });
});

describe('absurd init', () => {
  it('installs on an empty database, then says there is nothing to do', async () => {
    const url = await empty.create();
    const first = await cli(['init', '--database-url', url]);
    expect(first).toMatchObject({ code: 0, stderr: '' });
    expect(first.stdout).toContain(`applied ${migrationLabel(migrations[0]!)}\n`);
    expect(first.stdout).toContain(`installed schema absurd (${migrationLabel(last)})`);
    const second = await cli(['init', `--database-url=${url}`]);
    expect(second).toMatchObject({ code: 0, stderr: '' });
    expect(second.stdout).toBe(`schema absurd is already installed and current (${migrationLabel(last)}); nothing to do\n`);
  });

  it('refuses a foreign schema with exit 1', async () => {
    const url = await empty.create();
    await exec(url, `create schema absurd; create function absurd.get_schema_version() returns text language sql as $$ select '0.4.0'::text $$;`);
    const result = await cli(['init', '-d', url]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/absurd init: schema "absurd" exists but was not installed by absurd-kit \(get_schema_version\(\) = '0.4.0'\)/);
  });

  it('sends an outdated schema to absurd migrate with exit 1', async () => {
    const url = await installedDatabase();
    await exec(url, `delete from absurd.kit_migrations where version = ${last.version}`);
    const result = await cli(['init', '-d', url]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('run `absurd migrate`');
  });
});

describe('absurd migrate', () => {
  it('--dry-run lists what would run and changes nothing; then migrate applies it', async () => {
    const url = await empty.create();
    const dry = await cli(['migrate', '--dry-run', '-d', url]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toBe(migrations.map((m) => `would apply ${migrationLabel(m)}\n`).join(''));
    expect((await cli(['schema-version', '-d', url])).code).toBe(1);

    const real = await cli(['migrate', '-d', url]);
    expect(real.code).toBe(0);
    expect(real.stdout).toBe(
      migrations.map((m) => `applied ${migrationLabel(m)}\n`).join('') + `schema absurd is current (${migrationLabel(last)})\n`,
    );
    const again = await cli(['migrate', '-d', url]);
    expect(again.stdout).toBe(`schema absurd is already current (${migrationLabel(last)}); nothing to do\n`);
  });

  it('shows progress on stderr only when it is a terminal', async () => {
    const url = await empty.create();
    const result = await cli(['migrate', '-d', url], {}, true);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe(migrations.map((m) => `applying ${migrationLabel(m)}…\n`).join(''));
  });

  it('--json reports the applied migrations', async () => {
    const url = await installedDatabase();
    await exec(url, `delete from absurd.kit_migrations where version = ${last.version}`);
    const result = await cli(['migrate', '--dry-run', '--json', '-d', url]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      dryRun: true,
      applied: [{ version: last.version, name: last.name }],
      latest: last.version,
    });
  });

  it('fails with exit 1 and a password-free message when the database is unreachable', async () => {
    const result = await cli(['migrate'], { ABSURD_DATABASE_URL: UNREACHABLE });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('cannot connect to postgresql://someone:***@127.0.0.1:1/absurd');
    expect(result.stderr).not.toContain('hunter2');
  });
});

describe('absurd migrate --adopt, on a database set up by Absurd', () => {
  /** A database with Absurd's schema and one queue (name needing quotes) holding tasks in every state. */
  async function absurdDatabase(queue = `it's "q" ${process.pid}`): Promise<string> {
    const url = await empty.create();
    await installAbsurdSchema(url);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query('select absurd.create_queue($1, $2)', [queue, 'partitioned']);
      await populateEveryState(client, queue);
    } finally {
      await client.end();
    }
    return url;
  }

  it('plain migrate refuses it with exit 1 and names --adopt; schema-version says foreign and names it too', async () => {
    const url = await absurdDatabase();
    const refused = await cli(['migrate', '-d', url]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`schema "absurd" exists but was not installed by absurd-kit (get_schema_version() = 'main')`);
    expect(refused.stderr).toContain('run `absurd migrate --adopt`');
    const version = await cli(['schema-version', '-d', url]);
    expect(version).toMatchObject({ code: 0, stderr: '' });
    expect(version.stdout).toBe(
      'contract: main\n' +
        'migration: none (not installed by absurd-kit; `absurd migrate --adopt` adopts it)\n' +
        `package migration: ${migrationLabel(last)}\n` +
        'state: foreign\n',
    );
  });

  it('--dry-run lists every change and changes nothing; then --adopt makes it current; a second run does nothing', async () => {
    const queue = `adopt_${process.pid}`;
    const url = await absurdDatabase(queue);
    const dry = await cli(['migrate', '--adopt', '--dry-run', '-d', url]);
    expect(dry).toMatchObject({ code: 0, stderr: '' });
    const lines = dry.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(
      `would adopt schema absurd installed by Absurd (contract level main), 1 queue(s): "${queue}" (partitioned); no queue or task is changed`,
    );
    expect(lines).toContain('would replace function absurd.spawn_task(text, text, jsonb, jsonb)');
    expect(lines).toContain('would add function absurd.kit_claim_task');
    expect(lines).toContain(`would create index "r_${queue}_cai" on "r_${queue}" (queue "${queue}")`);
    expect(lines).toContain(`would create index "r_${queue}_cdi" on "r_${queue}" (queue "${queue}")`);
    expect(lines).toContain(`would create index "r_${queue}_lsi" on "r_${queue}" (queue "${queue}")`);
    expect(lines).toContain(`would create index "t_${queue}_cli" on "t_${queue}" (queue "${queue}")`);
    expect(lines).toContain(`would create index "t_${queue}_nti" on "t_${queue}" (queue "${queue}")`);
    expect(lines).toContain('would create table absurd.kit_migrations');
    expect(lines.slice(-migrations.length)).toEqual(migrations.map((m) => `would record ${migrationLabel(m)}`));
    expect(JSON.parse((await cli(['schema-version', '--json', '-d', url])).stdout)).toMatchObject({ state: 'foreign' });

    const real = await cli(['migrate', '--adopt', '-d', url]);
    expect(real).toMatchObject({ code: 0, stderr: '' });
    expect(real.stdout).toContain(`created index "r_${queue}_cai" on "r_${queue}" (queue "${queue}")\n`);
    expect(real.stdout.endsWith(
      `adopted schema absurd: 38 function(s) replaced, 56 added, 5 index(es) on 1 queue(s); schema absurd is current (${migrationLabel(last)})
`,
    )).toBe(true);
    expect(JSON.parse((await cli(['schema-version', '--json', '-d', url])).stdout)).toEqual({
      contract: 'main',
      migration: last.version,
      packageMigration: last.version,
      state: 'current',
    });
    const again = await cli(['migrate', '--adopt', '-d', url]);
    expect(again.stdout).toBe(`schema absurd is already current (${migrationLabel(last)}); nothing to do\n`);
  });

  it('--json reports the adoption', async () => {
    const queue = `adopt_json_${process.pid}`;
    const url = await absurdDatabase(queue);
    const result = await cli(['migrate', '--adopt', '--json', '-d', url]);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report).toMatchObject({
      dryRun: false,
      applied: migrations.map(({ version, name }) => ({ version, name })),
      latest: last.version,
      adoption: {
        schemaVersion: 'main',
        queues: [{ name: queue, storageMode: 'partitioned' }],
        indexes: [
          { queue, table: `r_${queue}`, name: `r_${queue}_cai` },
          { queue, table: `r_${queue}`, name: `r_${queue}_cdi` },
          { queue, table: `r_${queue}`, name: `r_${queue}_lsi` },
          { queue, table: `t_${queue}`, name: `t_${queue}_cli` },
          { queue, table: `t_${queue}`, name: `t_${queue}_nti` },
        ],
        trackingTable: 'absurd.kit_migrations',
      },
    });
  });

  it('refuses another contract level with exit 1, naming the level found and the one supported', async () => {
    const url = await absurdDatabase();
    await exec(url, `create or replace function absurd.get_schema_version() returns text language sql as $$ select '0.3.0'::text $$`);
    const plain = await cli(['migrate', '-d', url]);
    expect(plain.stderr).toContain(`absurd-kit adopts only Absurd's contract level 'main'`);
    const result = await cli(['migrate', '--adopt', '-d', url]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`its contract level is '0.3.0'`);
    expect(result.stderr).toContain(`absurd-kit adopts only level 'main'`);
    expect(result.stderr).toContain('nothing was changed');
  });
});

describe('absurd schema-version', () => {
  it('prints the contract level and the latest migration as lines or JSON', async () => {
    const url = await installedDatabase();
    const text = await cli(['schema-version'], { ABSURD_DATABASE_URL: url });
    expect(text.code).toBe(0);
    expect(text.stdout).toBe(
      `contract: main\nmigration: ${migrationLabel(last)}\npackage migration: ${migrationLabel(last)}\nstate: current\n`,
    );
    const json = await cli(['-d', url, 'schema-version', '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({
      contract: 'main',
      migration: last.version,
      packageMigration: last.version,
      state: 'current',
    });
  });

  it('takes the database from PGDATABASE when nothing else is set', async () => {
    const url = await installedDatabase();
    const result = await cli(['schema-version', '--json'], { ABSURD_DATABASE_URL: '', PGDATABASE: url });
    expect(JSON.parse(result.stdout)).toMatchObject({ contract: 'main', state: 'current' });
  });

  it('reports a foreign schema with its contract level', async () => {
    const url = await empty.create();
    await exec(url, `create schema absurd; create function absurd.get_schema_version() returns text language sql as $$ select '0.4.0'::text $$;`);
    const result = await cli(['schema-version', '--json', '-d', url]);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ contract: '0.4.0', migration: null, packageMigration: last.version, state: 'foreign' });
  });

  it('fails with exit 1 and points to absurd init when nothing is installed', async () => {
    const result = await cli(['schema-version', '-d', await empty.create()]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('run `absurd init`');
    expect(result.stdout).toBe('');
  });
});

describe('absurd schema sql', () => {
  it('prints sql/absurd.sql from the bundled migrations without any database', async () => {
    const onDisk = await readFile(fileURLToPath(new URL('../../sql/absurd.sql', import.meta.url)), 'utf8');
    const result = await cli(['schema', 'sql'], { ABSURD_DATABASE_URL: UNREACHABLE });
    expect(result).toEqual({ code: 0, stdout: onDisk, stderr: '' });
  });
});
