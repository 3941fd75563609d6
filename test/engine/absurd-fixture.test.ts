/**
 * The fixture of Absurd's own schema (test/fixtures/absurd-main.sql) against the contract: exactly
 * the functions of §2.0, the tables of §1.3 and §1.5, the indexes of §1.6 and nothing of what
 * absurd-kit adds; the contract's behaviour where absurd-kit deliberately differs; and tasks in
 * every state on unpartitioned, partitioned and quoted queues.
 */
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { schemaStatus } from '../../packages/absurd-kit/src/migrate.js';
import { absurdSchemaScript, populateEveryState, useAbsurdDatabases, type EveryState } from '../support/absurd-schema.js';
import { CATALOGUE, PRIMARY_KEYS, QUEUES_COLUMNS, QUEUE_TABLES, expectedArguments, expectedResult } from '../sql/contract.js';

const absurd = useAbsurdDatabases();
let url: string;
let db: pg.Client;

beforeAll(async () => {
  url = await absurd.create();
  db = new pg.Client({ connectionString: url });
  db.on('error', () => {}); // the database is dropped with force after the file
  await db.connect();
  // Off the search_path (the test server's role may be called absurd), as catalogue.test.ts reads it.
  await db.query(`set search_path = public`);
  await db.query(`set timezone = 'UTC'`);
  return () => db.end();
});

const rowsOf = async <R extends pg.QueryResultRow>(sql: string, params: unknown[] = []) => (await db.query<R>(sql, params)).rows;

describe('the install script', () => {
  it('is one script without psql meta-commands, plain create function except the two replaceable ones', async () => {
    const script = await absurdSchemaScript();
    expect(script.split('\n').filter((line) => /^\s*\\/.test(line))).toEqual([]);
    const replaceable = [...script.matchAll(/^create or replace function absurd\.(\w+)\(([^)]*)\)/gm)].map((m) => `${m[1]}(${m[2]})`);
    expect(replaceable).toEqual(['get_schema_version()', 'create_queue(p_queue_name text)']);
  });

  it('leaves a database that absurd-kit calls foreign, at contract level main', async () => {
    expect(await schemaStatus(url)).toEqual({ state: 'foreign', schemaVersion: 'main' });
  });
});

describe('functions (§2.0)', () => {
  it('are exactly the 38 of the catalogue, with their arguments, defaults, results, language and volatility', async () => {
    const procs = await rowsOf<{ line: string }>(`
      select p.proname || '(' || pg_get_function_arguments(p.oid) || ') ' || pg_get_function_result(p.oid)
             || ' ' || l.lanname || ' ' || p.provolatile::text || case when p.proisstrict then ' strict' else '' end as line
        from pg_proc p join pg_language l on l.oid = p.prolang
       where p.pronamespace = 'absurd'::regnamespace
       order by 1`);
    const expected = CATALOGUE.map(
      (spec) =>
        `${spec.name}(${expectedArguments(spec)}) ${expectedResult(spec)} ${spec.language ?? 'plpgsql'} ` +
        `${spec.immutableStrict ? 'i strict' : 'v'}`,
    ).sort();
    expect(procs.map((p) => p.line)).toEqual(expected);
  });

  it('hold nothing of absurd-kit: no kit_ call, no NOTIFY, no absurd.parent announcement', async () => {
    const offending = await rowsOf<{ name: string }>(`
      select p.proname as name from pg_proc p
       where p.pronamespace = 'absurd'::regnamespace
         and (p.prosrc ~* 'kit_' or p.prosrc ~* 'notify' or p.prosrc ~ 'absurd\\.parent')`);
    expect(offending).toEqual([]);
  });

  it('report contract level main', async () => {
    expect(await rowsOf('select absurd.get_schema_version() as v')).toEqual([{ v: 'main' }]);
  });
});

describe('tables (§1.3, §1.5) and indexes (§1.6)', () => {
  const columns = (relation: string) =>
    rowsOf<{ name: string; type: string; not_null: boolean; default_expr: string | null }>(
      `select a.attname as name, format_type(a.atttypid, a.atttypmod) as type, a.attnotnull as not_null,
              pg_get_expr(d.adbin, d.adrelid) as default_expr
         from pg_attribute a left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
        where a.attrelid = $1::regclass and a.attnum > 0 and not a.attisdropped
        order by a.attnum`,
      [relation],
    ).then((rows) => rows.map((r) => [r.name, r.type, r.not_null, r.default_expr]));
  const primaryKey = (relation: string) =>
    rowsOf<{ cols: string[] }>(
      `select array(select a.attname::text from unnest(con.conkey) with ordinality as k(n, i)
                      join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.n order by k.i) as cols
         from pg_constraint con where con.conrelid = $1::regclass and con.contype = 'p'`,
      [relation],
    ).then((rows) => rows.map((r) => r.cols));
  const q = (prefix: string, queue: string) => `absurd.${pg.escapeIdentifier(`${prefix}_${queue}`)}`;

  const plain = `plain ${process.pid}`;
  const quoted = `it's "quoted" ${process.pid}`;
  const partitioned = `partitioned_${process.pid}`;
  beforeAll(async () => {
    await db.query('select absurd.create_queue($1)', [plain]);
    await db.query('select absurd.create_queue($1)', [quoted]);
    await db.query('select absurd.create_queue($1, $2)', [partitioned, 'partitioned']);
  });

  it('absurd.queues has the contract’s columns and named checks; nothing else lives in the schema but queue tables', async () => {
    expect(await columns('absurd.queues')).toEqual(QUEUES_COLUMNS);
    expect(await primaryKey('absurd.queues')).toEqual([['queue_name']]);
    const checks = await rowsOf<{ conname: string }>(
      `select conname from pg_constraint where conrelid = 'absurd.queues'::regclass and contype = 'c' order by 1`,
    );
    expect(checks).toHaveLength(8);
    expect(checks.every((c) => /^queues_\w+_check$/.test(c.conname))).toBe(true);
    const others = await rowsOf<{ relname: string }>(
      `select relname from pg_class where relnamespace = 'absurd'::regnamespace and relkind in ('r', 'p')
          and relname <> 'queues' and not relispartition and relname !~ '^[trcewi]_'`,
    );
    expect(others).toEqual([]);
    expect(await rowsOf(`select to_regclass('absurd.kit_migrations') as t`)).toEqual([{ t: null }]);
  });

  it.each([
    ['unpartitioned', plain],
    ['unpartitioned, quoted name', quoted],
    ['partitioned', partitioned],
  ])('a %s queue has the five tables (six when partitioned) with the contract’s columns and keys', async (mode, queue) => {
    for (const prefix of ['t', 'r', 'c', 'e', 'w'] as const) {
      expect(await columns(q(prefix, queue))).toEqual(QUEUE_TABLES[prefix]);
      expect(await primaryKey(q(prefix, queue))).toEqual([PRIMARY_KEYS[prefix]]);
    }
    const kinds = await rowsOf<{ prefix: string; kind: string }>(
      `select left(relname, 1) as prefix, relkind::text as kind from pg_class
        where relnamespace = 'absurd'::regnamespace and relname = any($1) order by 1`,
      [['t', 'r', 'c', 'e', 'w', 'i'].map((p) => `${p}_${queue}`)],
    );
    const partitionedMode = mode === 'partitioned';
    expect(kinds).toEqual(
      (partitionedMode ? ['c', 'e', 'i', 'r', 't', 'w'] : ['c', 'e', 'r', 't', 'w']).map((prefix) => ({
        prefix,
        kind: partitionedMode && prefix !== 'e' && prefix !== 'i' ? 'p' : 'r',
      })),
    );
  });

  it.each([
    ['unpartitioned', plain],
    ['partitioned', partitioned],
  ])('a %s queue has exactly the contract’s indexes: not absurd-kit’s r_<q>_cai and t_<q>_cpi', async (mode, queue) => {
    const indexes = await rowsOf<{ name: string }>(
      `select ci.relname as name
         from pg_index i join pg_class ci on ci.oid = i.indexrelid join pg_class ct on ct.oid = i.indrelid
        where ct.relnamespace = 'absurd'::regnamespace and ct.relname = any($1) order by 1`,
      [['t', 'r', 'c', 'e', 'w', 'i'].map((p) => `${p}_${queue}`)],
    );
    const expected = [
      `c_${queue}_pkey`,
      `e_${queue}_eai`,
      `e_${queue}_pkey`,
      ...(mode === 'partitioned' ? [`i_${queue}_pkey`, `i_${queue}_ti`] : []),
      `r_${queue}_cei`,
      `r_${queue}_pkey`,
      `r_${queue}_sai`,
      `r_${queue}_ti`,
      ...(mode === 'partitioned' ? [] : [`t_${queue}_idempotency_key_key`]),
      `t_${queue}_pkey`,
      `w_${queue}_eni`,
      `w_${queue}_pkey`,
      `w_${queue}_ti`,
    ];
    expect(indexes.map((i) => i.name)).toEqual(expected.sort());
  });
});

describe('where absurd-kit deliberately differs, the fixture behaves as the contract', () => {
  const queue = `differs_${process.pid}`;
  beforeAll(async () => {
    await db.query('select absurd.create_queue($1)', [queue]);
  });

  it('spawn_task stores an unusable cancellation value as given', async () => {
    const [spawned] = await rowsOf<{ task_id: string }>(
      `select task_id from absurd.spawn_task($1, 'job', '{}', '{"cancellation": {"max_delay": 1.5}}')`,
      [queue],
    );
    const [row] = await rowsOf(`select cancellation from absurd.${pg.escapeIdentifier(`t_${queue}`)} where task_id = $1`, [
      spawned!.task_id,
    ]);
    expect(row).toEqual({ cancellation: { max_delay: 1.5 } });
    await db.query('select absurd.cancel_task($1, $2)', [queue, spawned!.task_id]);
  });

  it('cancel_task announces nothing to a parent named in the absurd.parent header', async () => {
    const parents = `parents_${process.pid}`;
    await db.query('select absurd.create_queue($1)', [parents]);
    const headers = { 'absurd.parent': { queue: parents, taskId: '00000000-0000-7000-8000-000000000000' } };
    const [child] = await rowsOf<{ task_id: string }>(`select task_id from absurd.spawn_task($1, 'child', '{}', $2)`, [
      queue,
      JSON.stringify({ headers }),
    ]);
    await db.query('select absurd.cancel_task($1, $2)', [queue, child!.task_id]);
    expect(await rowsOf(`select event_name from absurd.${pg.escapeIdentifier(`e_${parents}`)}`)).toEqual([]);
  });

  it('portable_uuidv7() uses the built-in uuidv7() where PostgreSQL has one, else follows fake time', async () => {
    const [{ builtin }] = (await rowsOf<{ builtin: boolean }>(
      `select to_regprocedure('pg_catalog.uuidv7()') is not null as builtin`,
    )) as [{ builtin: boolean }];
    await db.query(`set absurd.fake_now = '2001-02-03T04:05:06.789Z'`);
    try {
      const [{ at }] = (await rowsOf<{ at: Date }>('select absurd.uuidv7_timestamp(absurd.portable_uuidv7()) as at')) as [{ at: Date }];
      if (builtin) expect(Math.abs(at.getTime() - Date.now())).toBeLessThan(60_000);
      else expect(at).toEqual(new Date('2001-02-03T04:05:06.789Z'));
    } finally {
      await db.query('set absurd.fake_now = default');
    }
  });
});

describe('tasks in every state', () => {
  it.each([
    ['an unpartitioned queue', `every state ${process.pid}`, 'unpartitioned'],
    ['a partitioned queue', `every_state_p_${process.pid}`, 'partitioned'],
    ['a queue whose name needs quoting', `every "state" it's ${process.pid}`, 'unpartitioned'],
  ])('can be made on %s with the contract’s functions', async (_label, queue, mode) => {
    await db.query('select absurd.create_queue($1, $2)', [queue, mode]);
    const tasks: EveryState = await populateEveryState(db, queue);
    const states = await rowsOf<{ task_id: string; state: string; runs: string[] }>(
      `select t.task_id, t.state,
              array(select r.state from absurd.${pg.escapeIdentifier(`r_${queue}`)} r where r.task_id = t.task_id order by r.attempt) as runs
         from absurd.${pg.escapeIdentifier(`t_${queue}`)} t`,
    );
    const byTask = Object.fromEntries(states.map((s) => [s.task_id, { state: s.state, runs: s.runs }]));
    expect({
      pending: byTask[tasks.pending],
      pendingWithKey: byTask[tasks.pendingWithKey],
      running: byTask[tasks.running],
      sleeping: byTask[tasks.sleeping],
      waiting: byTask[tasks.waiting],
      waitingWithTimeout: byTask[tasks.waitingWithTimeout],
      retrying: byTask[tasks.retrying],
      completed: byTask[tasks.completed],
      failed: byTask[tasks.failed],
      cancelled: byTask[tasks.cancelled],
    }).toEqual({
      pending: { state: 'pending', runs: ['pending'] },
      pendingWithKey: { state: 'pending', runs: ['pending'] },
      running: { state: 'running', runs: ['running'] },
      sleeping: { state: 'sleeping', runs: ['sleeping'] },
      waiting: { state: 'sleeping', runs: ['sleeping'] },
      waitingWithTimeout: { state: 'sleeping', runs: ['sleeping'] },
      retrying: { state: 'sleeping', runs: ['failed', 'sleeping'] },
      completed: { state: 'completed', runs: ['completed'] },
      failed: { state: 'failed', runs: ['failed'] },
      cancelled: { state: 'cancelled', runs: ['cancelled'] },
    });
    const waits = await rowsOf<{ event_name: string }>(
      `select event_name from absurd.${pg.escapeIdentifier(`w_${queue}`)} order by 1`,
    );
    expect(waits.map((w) => w.event_name)).toEqual(['go', 'go-later']);
    const events = await rowsOf<{ event_name: string; emitted: boolean }>(
      `select event_name, payload is not null as emitted from absurd.${pg.escapeIdentifier(`e_${queue}`)} order by 1`,
    );
    expect(events).toEqual([
      { event_name: 'go', emitted: false },
      { event_name: 'go-later', emitted: false },
      { event_name: 'ready', emitted: true },
    ]);
  });
});
