/**
 * `migrate(db, { adopt: true })` on databases set up by Absurd (test/fixtures/absurd-main.sql):
 * what it adds, that it changes no row, that the result equals a fresh install, its dry run, its
 * refusals (which change nothing), running it twice, concurrent adopters, and how it takes its
 * locks next to other transactions.
 */
import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { SchemaNotAdoptableError } from '../../packages/absurd-kit/src/errors.js';
import { CONTRACT_FUNCTIONS, functionsDefinedBy } from '../../packages/absurd-kit/src/engine/adoption.js';
import { migrations } from '../../packages/absurd-kit/src/engine/migrations.generated.js';
import { migrate, schemaStatus, type MigrateResult } from '../../packages/absurd-kit/src/migrate.js';
import { absurdSchemaScript, populateEveryState, snapshotRows, useAbsurdDatabases } from '../support/absurd-schema.js';
import { waitUntilBlocked } from '../sql/helpers.js';
import { dumpAbsurdCatalogue } from './catalogue.js';
import { useEmptyDatabases } from './empty-databases.js';

const absurd = useAbsurdDatabases();
const empty = useEmptyDatabases();
const allRefs = migrations.map(({ version, name }) => ({ version, name }));
const KIT_FUNCTIONS = functionsDefinedBy(migrations).filter((name) => !CONTRACT_FUNCTIONS.some((c) => c.name === name));

/** Queues of every kind adoption must handle: plain, partitioned, names that need quoting, 57 bytes. */
function queueSet(tag: string): { name: string; mode: 'unpartitioned' | 'partitioned' }[] {
  const long = `é${tag}`.padEnd(56, 'q'); // 56 characters, 57 bytes
  return [
    { name: `plain_${tag}`, mode: 'unpartitioned' },
    { name: `part_${tag}`, mode: 'partitioned' },
    { name: `it's "quoted" ${tag}`, mode: 'unpartitioned' },
    { name: long, mode: 'partitioned' },
  ];
}

let tagCounter = 0;
function tag(): string {
  tagCounter += 1;
  return `${process.pid}x${tagCounter}`;
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A database set up by Absurd, with the queues of {@link queueSet} holding tasks in every state. */
async function populatedAbsurdDatabase(queues = queueSet(tag())): Promise<{ url: string; queues: typeof queues }> {
  const url = await absurd.create();
  await withClient(url, async (client) => {
    for (const queue of queues) {
      await client.query('select absurd.create_queue($1, $2)', [queue.name, queue.mode]);
      await populateEveryState(client, queue.name);
    }
  });
  return { url, queues };
}

async function expectNotAdoptable(promise: Promise<unknown>): Promise<SchemaNotAdoptableError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SchemaNotAdoptableError);
  return error as SchemaNotAdoptableError;
}

describe('adopting a database set up by Absurd, with tasks in every state', () => {
  let url: string;
  let queues: ReturnType<typeof queueSet>;
  let before: Record<string, string[]>;
  let result: MigrateResult;

  beforeAll(async () => {
    ({ url, queues } = await populatedAbsurdDatabase());
    before = await withClient(url, (client) => snapshotRows(client));
    result = await migrate(url, { adopt: true });
  });

  it('reports what it did: functions replaced and added, four indexes per queue, every migration recorded', () => {
    expect(result.applied).toEqual(allRefs);
    const adoption = result.adoption!;
    expect(adoption.schemaVersion).toBe('main');
    expect(adoption.queues).toEqual(
      [...queues].sort((a, b) => (a.name < b.name ? -1 : 1)).map((q) => ({ name: q.name, storageMode: q.mode })),
    );
    expect(adoption.replacedFunctions).toHaveLength(CONTRACT_FUNCTIONS.length);
    expect(adoption.replacedFunctions).toContain('absurd.claim_task(text, text, integer, integer)');
    expect(adoption.addedFunctions).toEqual(KIT_FUNCTIONS.map((name) => `absurd.${name}`));
    expect(adoption.addedFunctions).toContain('absurd.kit_claim_task');
    expect([...adoption.indexes].sort((a, b) => (a.name < b.name ? -1 : 1))).toEqual(
      queues
        .flatMap((q) => [
          { queue: q.name, table: `r_${q.name}`, name: `r_${q.name}_cai` },
          { queue: q.name, table: `r_${q.name}`, name: `r_${q.name}_cdi` },
          { queue: q.name, table: `r_${q.name}`, name: `r_${q.name}_lsi` },
          { queue: q.name, table: `t_${q.name}`, name: `t_${q.name}_cli` },
          { queue: q.name, table: `t_${q.name}`, name: `t_${q.name}_nti` },
        ])
        .sort((a, b) => (a.name < b.name ? -1 : 1)),
    );
    expect(adoption.trackingTable).toBe('absurd.kit_migrations');
  });

  it('changes no row of any table', async () => {
    expect(await withClient(url, (client) => snapshotRows(client))).toEqual(before);
  });

  it('leaves the schema current, every bundled migration recorded with its checksum', async () => {
    const status = await schemaStatus(url);
    expect(status.state).toBe('current');
    const rows = await withClient(url, async (c) => (await c.query('select version, name, checksum from absurd.kit_migrations order by version')).rows);
    expect(rows).toEqual(migrations.map(({ version, name, checksum }) => ({ version, name, checksum })));
  });

  it('gives the same schema as a fresh install with the same queues: functions, indexes on every queue and partition, all', async () => {
    const fresh = await empty.create();
    await migrate(fresh);
    await withClient(fresh, async (client) => {
      for (const queue of queues) await client.query('select absurd.create_queue($1, $2)', [queue.name, queue.mode]);
    });
    const [adopted, installed] = await Promise.all([dumpAbsurdCatalogue(url), dumpAbsurdCatalogue(fresh)]);
    expect(withoutPartitionIndexNames(adopted)).toEqual(withoutPartitionIndexNames(installed));
    const kitIndexes = adopted.indexes!.filter((line) => /_(cai|cdi)"? ON /.test(line));
    expect(kitIndexes).toHaveLength(queues.length * 2);
  });

  it('is a no-op the second time: nothing applied, nothing adopted, nothing changed', async () => {
    const catalogue = await dumpAbsurdCatalogue(url);
    expect(await migrate(url, { adopt: true })).toEqual({ applied: [] });
    expect(await dumpAbsurdCatalogue(url)).toEqual(catalogue);
  });
});

describe('going back, as docs/compatibility.md says', () => {
  it('restores Absurd’s function bodies, then drops the additions: Absurd’s schema again, rows untouched', async () => {
    const { url, queues } = await populatedAbsurdDatabase();
    await migrate(url, { adopt: true });
    const rows = await withClient(url, (client) => snapshotRows(client));
    const docs = await readFile(new URL('../../docs/compatibility.md', import.meta.url), 'utf8');
    const goingBack = docs.slice(docs.indexOf('### Going back'));
    const dropSql = /```sql\n([\s\S]*?)```/.exec(goingBack)?.[1];
    expect(dropSql).toBeDefined();
    await withClient(url, async (client) => {
      // Step 1: the create function statements of Absurd's install script, as create or replace.
      await client.query((await absurdSchemaScript()).replace(/^create function /gm, 'create or replace function '));
      // Step 2: the SQL of the docs.
      await client.query(dropSql!);
    });
    const untouched = await absurd.create();
    await withClient(untouched, async (client) => {
      for (const queue of queues) await client.query('select absurd.create_queue($1, $2)', [queue.name, queue.mode]);
    });
    const [back, original] = await Promise.all([dumpAbsurdCatalogue(url), dumpAbsurdCatalogue(untouched)]);
    expect(withoutPartitionIndexNames(back)).toEqual(withoutPartitionIndexNames(original));
    expect(await withClient(url, (client) => snapshotRows(client))).toEqual(rows);
    expect(await schemaStatus(url)).toEqual({ state: 'foreign', schemaVersion: 'main' });
  });
});

describe('a dry run', () => {
  it('reports exactly what adoption then does, and changes nothing', async () => {
    const { url } = await populatedAbsurdDatabase();
    const catalogue = await dumpAbsurdCatalogue(url);
    const rows = await withClient(url, (client) => snapshotRows(client));
    const planned = await migrate(url, { adopt: true, dryRun: true });
    expect(await dumpAbsurdCatalogue(url)).toEqual(catalogue);
    expect(await withClient(url, (client) => snapshotRows(client))).toEqual(rows);
    expect(await schemaStatus(url)).toEqual({ state: 'foreign', schemaVersion: 'main' });
    expect(await migrate(url, { adopt: true })).toEqual(planned);
  });
});

describe('refusals change nothing', () => {
  /** Applies `damage` to a populated Absurd database, then expects adoption (and its dry run) to refuse. */
  async function refused(damage: (client: pg.Client, queue: string) => Promise<void>): Promise<SchemaNotAdoptableError> {
    const { url, queues } = await populatedAbsurdDatabase(queueSet(tag()).slice(0, 2));
    await withClient(url, (client) => damage(client, queues[1]!.name));
    const catalogue = await dumpAbsurdCatalogue(url);
    const rows = await withClient(url, (client) => snapshotRows(client));
    const dry = await expectNotAdoptable(migrate(url, { adopt: true, dryRun: true }));
    const error = await expectNotAdoptable(migrate(url, { adopt: true }));
    expect(dry.message).toBe(error.message);
    expect(await dumpAbsurdCatalogue(url)).toEqual(catalogue);
    expect(await withClient(url, (client) => snapshotRows(client))).toEqual(rows);
    expect((await schemaStatus(url)).state).toBe('foreign');
    return error;
  }

  it('another contract level, naming the level found and the one supported', async () => {
    const error = await refused((c) => c.query(`create or replace function absurd.get_schema_version() returns text language sql as $$ select '0.4.0'::text $$`).then(() => {}));
    expect(error).toMatchObject({ code: 'SCHEMA_NOT_ADOPTABLE', reason: 'contract-level', schemaVersion: '0.4.0' });
    expect(error.message).toContain(`its contract level is '0.4.0'`);
    expect(error.message).toContain(`absurd-kit adopts only level 'main'`);
    expect(error.message).toContain('nothing was changed');
  });

  it('a schema without get_schema_version()', async () => {
    const error = await refused((c) => c.query('drop function absurd.get_schema_version()').then(() => {}));
    expect(error).toMatchObject({ reason: 'contract-level', schemaVersion: null });
    expect(error.message).toContain('no get_schema_version() function');
  });

  it('a queue missing a table the contract requires', async () => {
    let queue = '';
    const error = await refused(async (c, q) => {
      queue = q;
      await c.query(`drop table absurd.${pg.escapeIdentifier(`w_${q}`)}`);
    });
    expect(error.reason).toBe('schema-differs');
    expect(error.differences).toEqual([`queue ${JSON.stringify(queue)}: table absurd."w_${queue}" is missing`]);
    expect(error.message).toContain(`table absurd."w_${queue}" is missing`);
  });

  it('a table missing a column, or holding it with another type', async () => {
    let queue = '';
    const error = await refused(async (c, q) => {
      queue = q;
      await c.query(`alter table absurd.${pg.escapeIdentifier(`r_${q}`)} drop column wake_event`);
      await c.query(`alter table absurd.queues alter column cleanup_limit type bigint`);
    });
    expect(error.differences).toEqual([
      'absurd.queues.cleanup_limit is bigint, not integer',
      `queue ${JSON.stringify(queue)}: absurd."r_${queue}" has no column wake_event (text)`,
    ]);
  });

  it('a contract function with other arguments, and one of absurd-kit’s functions already there', async () => {
    const error = await refused(async (c) => {
      await c.query(`create function absurd.spawn_task(p_queue_name text, p_task_name text) returns void language sql as $$ select $$`);
      await c.query(`create function absurd.kit_claim_task() returns void language sql as $$ select $$`);
    });
    expect(error.differences).toEqual([
      'absurd.kit_claim_task() exists: part of absurd-kit is installed already',
      `absurd.spawn_task(p_queue_name text, p_task_name text) does not have the contract's arguments ` +
        '(p_queue_name text, p_task_name text, p_params jsonb, p_options jsonb)',
    ]);
  });
});

describe('functions beyond the contract', () => {
  it('adopts a schema that also holds a helper function of a later Absurd release, and leaves that function as it is', async () => {
    // Absurd's 0.5.0 install script adds absurd.retry_delay_seconds(jsonb, integer), which its own
    // spawn_task and fail_run call; absurd-kit's bodies of those do not, and nothing else needs it gone.
    const { url } = await populatedAbsurdDatabase(queueSet(tag()).slice(0, 2));
    const helper = `absurd.retry_delay_seconds(jsonb, integer)`;
    const body = () =>
      withClient(url, async (c) => (await c.query<{ prosrc: string }>(`select prosrc from pg_proc where oid = $1::regprocedure`, [helper])).rows[0]?.prosrc);
    await withClient(url, (c) =>
      c.query(`create function absurd.retry_delay_seconds(p_strategy jsonb, p_attempt integer) returns double precision
                 language sql immutable as $$ select 60::double precision $$`),
    );
    const rows = await withClient(url, (client) => snapshotRows(client));

    const result = await migrate(url, { adopt: true });

    expect(result.adoption?.schemaVersion).toBe('main');
    expect(result.adoption?.replacedFunctions).not.toContain(helper);
    expect((await schemaStatus(url)).state).toBe('current');
    expect(await body()).toBe(' select 60::double precision ');
    expect(await withClient(url, (client) => snapshotRows(client))).toEqual(rows);
  });
});

describe('concurrency', () => {
  it('concurrent adopters serialise: one adopts, the others find the schema current', async () => {
    const { url } = await populatedAbsurdDatabase(queueSet(tag()).slice(0, 2));
    const results = await Promise.all([1, 2, 3].map(() => migrate(url, { adopt: true })));
    expect(results.filter((r) => r.adoption !== undefined)).toHaveLength(1);
    expect(results.filter((r) => r.adoption === undefined)).toEqual([{ applied: [] }, { applied: [] }]);
    expect((await schemaStatus(url)).state).toBe('current');
  });

  it('waits for a transaction writing to a queue table, then adopts', async () => {
    const { url, queues } = await populatedAbsurdDatabase(queueSet(tag()).slice(0, 1));
    await withClient(url, async (writer) => {
      await writer.query('begin');
      await writer.query(`update absurd.${pg.escapeIdentifier(`r_${queues[0]!.name}`)} set state = state where false`);
      let done = false;
      const adoption = migrate(url, { adopt: true }).finally(() => (done = true));
      await new Promise((resolve) => setTimeout(resolve, 700));
      expect(done).toBe(false);
      await writer.query('commit');
      expect((await adoption).adoption).toBeDefined();
    });
  });

  it('gives up after lockWait when a transaction keeps a queue table, changing nothing', async () => {
    const { url, queues } = await populatedAbsurdDatabase(queueSet(tag()).slice(0, 1));
    const tasks = `t_${queues[0]!.name}`;
    await withClient(url, async (writer) => {
      await writer.query('begin');
      await writer.query(`update absurd.${pg.escapeIdentifier(tasks)} set state = state where false`);
      const catalogue = await dumpAbsurdCatalogue(url);
      const error = await expectNotAdoptable(migrate(url, { adopt: true, lockWait: 1 }));
      expect(error.reason).toBe('busy');
      expect(error.message).toContain(`kept absurd."${tasks}" locked for 1 s`);
      expect(await dumpAbsurdCatalogue(url)).toEqual(catalogue);
      await writer.query('rollback');
    });
    expect((await migrate(url, { adopt: true })).adoption).toBeDefined();
  });

  it('gives way when its lock order crosses a worker’s: the worker’s statement goes through, then adoption completes', async () => {
    const { url, queues } = await populatedAbsurdDatabase(queueSet(tag()).slice(0, 1));
    const q = queues[0]!.name;
    await withClient(url, async (worker) => {
      await withClient(url, async (observer) => {
        // The worker holds t_<q> (as spawn_task does after its first insert) ...
        await worker.query('begin');
        await worker.query(`update absurd.${pg.escapeIdentifier(`t_${q}`)} set state = state where false`);
        const workerPid = (await worker.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
        // ... the adoption locks r_<q>, then waits for t_<q> ...
        const adoption = migrate(url, { adopt: true, lockWait: 20 });
        const adopterPid = await waitForAdopterBlocked(observer, workerPid);
        expect(adopterPid).toBeGreaterThan(0);
        // ... and the worker now needs r_<q>: a deadlock unless the adoption backs off first.
        await worker.query(`update absurd.${pg.escapeIdentifier(`r_${q}`)} set state = state where false`);
        await worker.query('commit');
        expect((await adoption).adoption).toBeDefined();
      });
    });
  });
});

/**
 * A catalogue dump in which the indexes of partitions go without their names: Postgres names them
 * itself (`<partition>_<columns>_idx`), and where a long name is cut short it numbers them in the
 * order they were made, which differs between indexing existing partitions and creating new ones.
 */
function withoutPartitionIndexNames(dump: Record<string, string[]>): Record<string, string[]> {
  const unnamed = (line: string) => line.replace(/^(CREATE (UNIQUE )?INDEX )("[^"]*(_idx|_pkey)\d*"|\S*(_idx|_pkey)\d*) ON /, '$1<name> ON ');
  const partitionIndexName = /(_idx|_pkey)\d*"? [a-zA-Z]/;
  return {
    ...dump,
    indexes: (dump.indexes ?? []).map(unnamed).sort(),
    relations: (dump.relations ?? []).filter((line) => !partitionIndexName.test(line)),
  };
}

/** The pid of the backend (other than `exceptPid`) waiting for a lock while running `lock table`. */
async function waitForAdopterBlocked(observer: pg.Client, exceptPid: number): Promise<number> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const { rows } = await observer.query<{ pid: number }>(
      `select pid from pg_stat_activity
        where wait_event_type = 'Lock' and pid <> $1 and pid <> pg_backend_pid() and query ilike 'lock table%'`,
      [exceptPid],
    );
    if (rows[0]) {
      await waitUntilBlocked(observer, rows[0].pid);
      return rows[0].pid;
    }
    if (Date.now() > deadline) throw new Error('the adoption never waited for a table lock');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
