/**
 * The engine's catalogue against the contract: every function of spec §2.0 (names, argument
 * names, types and defaults, results, language, volatility, strictness), the global facts of §0
 * (no extra overloads, no SECURITY DEFINER or SET clauses, no triggers, foreign keys or
 * sequences), the tables of §1.3 and §1.5 and the indexes of §1.6.
 */
import type pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import {
  CATALOGUE,
  PRIMARY_KEYS,
  QUEUES_COLUMNS,
  QUEUE_TABLES,
  expectedArguments,
  expectedResult,
  type Column,
  type FunctionSpec,
} from './contract.js';
import { createQueue, expectPgError, ident, queueName, setNow, table, useSession, utcClient } from './helpers.js';

const db = useTestDatabase();
const c = useSession(db, { outsideSchema: true });

interface ProcRow {
  oid: number;
  name: string;
  arguments: string;
  identity: string;
  result: string;
  argnames: string[] | null;
  argmodes: string[] | null;
  intypes: string[];
  retset: boolean;
  language: string;
  volatility: string;
  strict: boolean;
  secdef: boolean;
  config: string[] | null;
  kind: string;
}

let procs: ProcRow[] = [];

async function loadProcs(): Promise<ProcRow[]> {
  const { rows } = await c.query<ProcRow>(`
    select p.oid::int as oid,
           p.proname as name,
           pg_get_function_arguments(p.oid) as arguments,
           pg_get_function_identity_arguments(p.oid) as identity,
           pg_get_function_result(p.oid) as result,
           p.proargnames::text[] as argnames,
           p.proargmodes::text[] as argmodes,
           array(select format_type(t, null) from unnest(p.proargtypes::oid[]) with ordinality as u(t, i) order by i) as intypes,
           p.proretset as retset,
           l.lanname as language,
           p.provolatile::text as volatility,
           p.proisstrict as strict,
           p.prosecdef as secdef,
           p.proconfig::text[] as config,
           p.prokind::text as kind
      from pg_proc p
      join pg_namespace n on n.oid = p.pronamespace
      join pg_language l on l.oid = p.prolang
     where n.nspname = 'absurd'
     order by p.proname, p.pronargs`);
  return rows;
}

function findProc(spec: FunctionSpec): ProcRow | undefined {
  return procs.find((p) => p.name === spec.name && p.intypes.length === spec.args.length);
}

describe('functions (§2.0)', () => {
  beforeAll(async () => {
    procs = await loadProcs();
  });

  it('transcribes all 38 rows of the catalogue', () => {
    expect(CATALOGUE).toHaveLength(38);
  });

  describe.each(CATALOGUE.map((spec) => [`${spec.name}(${spec.args.map((a) => a[0]).join(', ')})`, spec] as const))(
    '%s',
    (_label, spec) => {
      it('exists with the contract’s argument names, types and defaults', () => {
        const proc = findProc(spec);
        expect(proc, `absurd.${spec.name} with ${spec.args.length} argument(s)`).toBeDefined();
        expect(proc!.kind).toBe('f');
        expect(proc!.arguments).toBe(expectedArguments(spec));
        expect(proc!.intypes).toEqual(spec.args.map((a) => a[1]));
      });

      it('returns the contract’s type or columns', () => {
        const proc = findProc(spec);
        expect(proc).toBeDefined();
        expect(proc!.result).toBe(expectedResult(spec));
        const isTable = typeof spec.returns !== 'string';
        expect(proc!.retset).toBe(isTable);
        const inputs = spec.args.map((a) => a[0]);
        if (isTable) {
          const columns = (spec.returns as readonly (readonly [string, string])[]).map((col) => col[0]);
          expect(proc!.argnames).toEqual([...inputs, ...columns]);
          expect(proc!.argmodes).toEqual([...inputs.map(() => 'i'), ...columns.map(() => 't')]);
        } else {
          // All-IN functions store no modes; names only when there are arguments.
          expect(proc!.argmodes).toBeNull();
          expect(proc!.argnames ?? []).toEqual(inputs);
        }
      });

      it(`is ${spec.language ?? 'plpgsql'}, ${spec.immutableStrict ? 'IMMUTABLE STRICT' : 'VOLATILE and not STRICT'}`, () => {
        const proc = findProc(spec);
        expect(proc).toBeDefined();
        expect(proc!.language).toBe(spec.language ?? 'plpgsql');
        expect(proc!.volatility).toBe(spec.immutableStrict ? 'i' : 'v');
        expect(proc!.strict).toBe(spec.immutableStrict === true);
      });
    },
  );

  it('has no overloads of contract names beyond the two create_queue forms', () => {
    const names = new Set(CATALOGUE.map((s) => s.name));
    const counts = new Map<string, string[]>();
    for (const p of procs) if (names.has(p.name)) counts.set(p.name, [...(counts.get(p.name) ?? []), p.identity]);
    const overloaded = [...counts].filter(([, ids]) => ids.length > 1);
    expect(overloaded).toEqual([['create_queue', ['p_queue_name text', 'p_queue_name text, p_storage_mode text']]]);
  });

  it("has one SECURITY DEFINER function, the routers' writer, and no SET clause but the planners' settings and its search_path", () => {
    expect(procs.length).toBeGreaterThanOrEqual(38);
    // kit_write_queue_routers (migration 000025) rewrites the routers, which belong to the role
    // that ran the migrations, for any role that creates or drops a queue; it runs with a fixed
    // search_path, as a SECURITY DEFINER function must, and writes their generated text unchecked.
    expect(procs.filter((p) => p.secdef).map((p) => `${p.name}: ${p.config?.join(', ')}`)).toEqual([
      'kit_write_queue_routers: search_path=pg_catalog, pg_temp, check_function_bodies=off',
    ]);
    // The claim plans without sorts, sequential scans or JIT (engine migration 000017), in each
    // queue's kit_q_<md5>_claim_task (migration 000020), and the claim of a queue with limits keeps
    // generic plans (000021; since 000024 in kit_claim_limited_rounds and each limited queue's
    // kit_q_<md5>_claim_limited; the plain claim's, the completions' and the checkpoint writes' since 000022): settings of the planner, which no client sees. Nothing else sets
    // search_path or anything else.
    for (const p of procs.filter((p) => p.config !== null)) {
      expect(`${p.name}: ${p.config?.join(', ')}`).toMatch(
        /^(kit_q_[0-9a-f]{32}_claim_task: enable_sort=off, enable_seqscan=off, jit=off, enable_hashjoin=off, enable_mergejoin=off, plan_cache_mode=force_generic_plan|(kit_claim_limited_rounds|kit_q_[0-9a-f]{32}_claim_limited): plan_cache_mode=force_generic_plan|kit_write_queue_routers: search_path=pg_catalog, pg_temp, check_function_bodies=off|kit_limits_release_runs: plan_cache_mode=force_generic_plan, enable_seqscan=off|kit_q_[0-9a-f]{32}_(complete|set_checkpoints): enable_seqscan=off, plan_cache_mode=force_generic_plan|kit_q_[0-9a-f]{32}_(kit_claim|spawn): enable_seqscan=off)$/,
      );
    }
    expect(procs.find((p) => p.name === 'kit_claim_limited_rounds')?.config).toEqual(['plan_cache_mode=force_generic_plan']);
  });

  it("writes each queue's claim with the claim's planner settings", async () => {
    const q = queueName('settings');
    await c.query('select absurd.create_queue($1)', [q]);
    const { rows } = await c.query<{ config: string[] | null }>(
      `select proconfig::text[] as config from pg_proc where proname = 'kit_q_' || md5($1) || '_claim_task'`,
      [q],
    );
    expect(rows).toEqual([
      {
        config: ['enable_sort=off', 'enable_seqscan=off', 'jit=off', 'enable_hashjoin=off', 'enable_mergejoin=off', 'plan_cache_mode=force_generic_plan'],
      },
    ]);
  });

  it('resolves the calls SDKs make with untyped parameters', async () => {
    const q = queueName('untyped', 'rotating');
    await c.query('select absurd.create_queue($1)', [q]);
    await c.query('select absurd.create_queue($1, $2)', [q, 'unpartitioned']);
    const spawned = await c.query('select task_id, run_id, attempt, created from absurd.spawn_task($1, $2, $3, $4)', [
      q,
      'job',
      '{"a":1}',
      '{"max_attempts":2}',
    ]);
    expect(spawned.rows[0]).toMatchObject({ attempt: 1, created: true });
    await c.query('select * from absurd.spawn_task($1, $2, $3)', [q, 'job', '{}']);
    const claimed = await c.query('select * from absurd.claim_task($1, $2, $3, $4)', [q, 'w', 60, 2]);
    expect(claimed.rows).toHaveLength(2);
    const [first, second] = claimed.rows as [{ run_id: string; task_id: string }, { run_id: string; task_id: string }];
    await c.query('select absurd.set_task_checkpoint_state($1, $2, $3, $4, $5, $6)', [q, first.task_id, 's', '"x"', first.run_id, 60]);
    expect((await c.query('select * from absurd.get_task_checkpoint_state($1, $2, $3)', [q, first.task_id, 's'])).rows).toHaveLength(1);
    expect((await c.query('select * from absurd.get_task_checkpoint_states($1, $2, $3)', [q, first.task_id, first.run_id])).rows).toHaveLength(1);
    await c.query('select absurd.extend_claim($1, $2, $3)', [q, first.run_id, 30]);
    await c.query('select absurd.emit_event($1, $2, $3)', [q, 'ev', '{"p":1}']);
    const awaited = await c.query('select * from absurd.await_event($1, $2, $3, $4, $5, $6)', [q, first.task_id, first.run_id, 'w', 'ev', 10]);
    expect(awaited.rows).toEqual([{ should_suspend: false, payload: { p: 1 } }]);
    await c.query('select absurd.complete_run($1, $2, $3)', [q, first.run_id, '{"done":1}']);
    await c.query('select absurd.fail_run($1, $2, $3, $4)', [q, second.run_id, '{"message":"x"}', null]);
    expect((await c.query('select * from absurd.get_task_result($1, $2)', [q, first.task_id])).rows).toEqual([
      { task_id: first.task_id, state: 'completed', result: { done: 1 }, failure_reason: null },
    ]);
  });

  it('lets set-returning functions be used in FROM with their column names', async () => {
    const q = queueName('from', 'rotating');
    await createQueue(c, q);
    const { rows: queues } = await c.query('select queue_name from absurd.list_queues() where queue_name = $1', [q]);
    expect(queues).toEqual([{ queue_name: q }]);
    const { rows: policy } = await c.query('select queue_name, storage_mode, cleanup_limit from absurd.get_queue_policy($1)', [q]);
    expect(policy).toEqual([{ queue_name: q, storage_mode: 'unpartitioned', cleanup_limit: 1000 }]);
    const { rows: spawned } = await c.query(`select task_id, run_id, attempt, created from absurd.spawn_task($1, 'job', '{}')`, [q]);
    const { rows: result } = await c.query('select task_id, state, result, failure_reason from absurd.get_task_result($1, $2)', [
      q,
      spawned[0]!.task_id,
    ]);
    expect(result).toEqual([{ task_id: spawned[0]!.task_id, state: 'pending', result: null, failure_reason: null }]);
    const { rows: cleaned } = await c.query('select queue_name, tasks_deleted, events_deleted from absurd.cleanup_all_queues($1)', [q]);
    expect(cleaned).toEqual([{ queue_name: q, tasks_deleted: 0, events_deleted: 0 }]);
    const { rows: candidates } = await c.query('select queue_name, parent_table, partition_table from absurd.list_detach_candidates($1)', [q]);
    expect(candidates).toEqual([]);
  });
});

describe('global facts (§0.3)', () => {
  it('has no triggers, foreign keys or sequences in schema absurd, also once queues exist', async () => {
    await createQueue(c, queueName('facts', 'quoted'));
    await c.query('select absurd.create_queue($1, $2)', [queueName('facts-part', 'plain'), 'partitioned']);
    const { rows } = await c.query<{ what: string; name: string }>(`
      select 'trigger' as what, t.tgname::text as name
        from pg_trigger t join pg_class r on r.oid = t.tgrelid join pg_namespace n on n.oid = r.relnamespace
       where n.nspname = 'absurd' and not t.tgisinternal
      union all
      select 'foreign key', con.conname::text
        from pg_constraint con join pg_namespace n on n.oid = con.connamespace
       where n.nspname = 'absurd' and con.contype = 'f'
      union all
      select 'sequence', s.relname::text
        from pg_class s join pg_namespace n on n.oid = s.relnamespace
       where n.nspname = 'absurd' and s.relkind = 'S'`);
    expect(rows).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// Tables (§1.3, §1.5) and indexes (§1.6).

async function columnsOf(relation: string): Promise<Column[]> {
  const { rows } = await c.query<{ name: string; type: string; not_null: boolean; default_expr: string | null }>(
    `select a.attname as name, format_type(a.atttypid, a.atttypmod) as type, a.attnotnull as not_null,
            pg_get_expr(d.adbin, d.adrelid) as default_expr
       from pg_attribute a
       left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
      where a.attrelid = $1::regclass and a.attnum > 0 and not a.attisdropped
      order by a.attnum`,
    [relation],
  );
  return rows.map((r) => [r.name, r.type, r.not_null, r.default_expr] as const);
}

async function primaryKey(relation: string): Promise<string[]> {
  const { rows } = await c.query<{ cols: string[] }>(
    `select array(select a.attname::text from unnest(con.conkey) with ordinality as k(n, i)
                    join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.n order by k.i) as cols
       from pg_constraint con where con.conrelid = $1::regclass and con.contype = 'p'`,
    [relation],
  );
  expect(rows).toHaveLength(1);
  return rows[0]!.cols;
}

describe('absurd.queues (§1.3)', () => {
  it('has the contract’s columns, types, nullability and defaults', async () => {
    expect(await columnsOf('absurd.queues')).toEqual(QUEUES_COLUMNS);
    expect(await primaryKey('absurd.queues')).toEqual(['queue_name']);
  });

  it('names its checks queues_<column>_check', async () => {
    const { rows } = await c.query<{ conname: string }>(
      `select conname from pg_constraint where conrelid = 'absurd.queues'::regclass and contype = 'c' order by conname`,
    );
    expect(rows.map((r) => r.conname)).toEqual(
      [
        'cleanup_limit',
        'cleanup_ttl',
        'default_partition',
        'detach_min_age',
        'detach_mode',
        'partition_lookahead',
        'partition_lookback',
        'storage_mode',
      ].map((col) => `queues_${col}_check`),
    );
  });

  it('accepts a row with only queue_name and fills in the defaults, created_at from current_time()', async () => {
    const q = queueName('legacy-row', 'rotating');
    await c.query('begin');
    try {
      await setNow(c, '2024-03-04T05:06:07.089Z');
      await c.query('insert into absurd.queues (queue_name) values ($1)', [q]);
      const { rows } = await c.query(
        `select created_at, storage_mode, default_partition, partition_lookahead::text, partition_lookback::text,
                cleanup_ttl::text, cleanup_limit, detach_mode, detach_min_age::text
           from absurd.queues where queue_name = $1`,
        [q],
      );
      expect(rows[0]).toEqual({
        created_at: new Date('2024-03-04T05:06:07.089Z'),
        storage_mode: 'unpartitioned',
        default_partition: 'enabled',
        partition_lookahead: '28 days',
        partition_lookback: '1 day',
        cleanup_ttl: '30 days',
        cleanup_limit: 1000,
        detach_mode: 'none',
        detach_min_age: '30 days',
      });
    } finally {
      await c.query('rollback');
      await c.query('set absurd.fake_now = default');
    }
  });

  it.each([
    ['storage_mode', `'timescale'`],
    ['default_partition', `'oops'`],
    ['partition_lookahead', `'-1 second'`],
    ['partition_lookback', `'-1 day'`],
    ['cleanup_ttl', `'-1 day'`],
    ['cleanup_limit', '0'],
    ['detach_mode', `'always'`],
    ['detach_min_age', `'-1 day'`],
  ])('rejects a bad %s through queues_<column>_check', async (column, value) => {
    const error = await expectPgError(
      c.query(`insert into absurd.queues (queue_name, ${column}) values ($1, ${value})`, [queueName('bad-policy', 'rotating')]),
      '23514',
    );
    expect(error.constraint).toBe(`queues_${column}_check`);
  });

  it('accepts the boundary values of the checks', async () => {
    await c.query(
      `insert into absurd.queues (queue_name, storage_mode, default_partition, partition_lookahead, partition_lookback,
                                  cleanup_ttl, cleanup_limit, detach_mode, detach_min_age)
       values ($1, 'partitioned', 'disabled', '0', '0', '0', 1, 'empty', '0')`,
      [queueName('edge-policy', 'rotating')],
    );
  });
});

describe('per-queue tables of an unpartitioned queue (§1.5)', () => {
  let q: string;
  beforeAll(async () => {
    q = queueName('tables', 'utf8-57');
    expect(Buffer.byteLength(q)).toBe(57);
    await createQueue(c, q);
  });

  it.each(['t', 'r', 'c', 'e', 'w'] as const)('%s_<q> has the contract’s columns in order, and its primary key', async (prefix) => {
    // absurd-kit's own columns come after the contract's (r_<q>.priority: migration 000016;
    // r_<q>.cancel_deadline: migration 000028).
    const own: Column[] =
      prefix === 'r' ? [['priority', 'integer', true, '0'], ['cancel_deadline', 'timestamp with time zone', false, null], ['superseded', 'boolean', true, 'false']] : [];
    expect(await columnsOf(table(prefix, q))).toEqual([...QUEUE_TABLES[prefix], ...own]);
    expect(await primaryKey(table(prefix, q))).toEqual(PRIMARY_KEYS[prefix]);
  });

  it('stores t_, r_ and c_ with fillfactor 70, e_ and w_ without options, all as plain tables', async () => {
    const { rows } = await c.query<{ prefix: string; relkind: string; options: string[] | null }>(
      `select left(relname, 1) as prefix, relkind::text, reloptions::text[] as options
         from pg_class where relnamespace = 'absurd'::regnamespace and relname = any($1) order by relname`,
      [['c', 'e', 'r', 't', 'w'].map((p) => `${p}_${q}`)],
    );
    expect(rows).toEqual([
      { prefix: 'c', relkind: 'r', options: ['fillfactor=70'] },
      { prefix: 'e', relkind: 'r', options: null },
      { prefix: 'r', relkind: 'r', options: ['fillfactor=70'] },
      { prefix: 't', relkind: 'r', options: ['fillfactor=70'] },
      { prefix: 'w', relkind: 'r', options: null },
    ]);
  });

  it('has no i_<q> table', async () => {
    const { rows } = await c.query('select to_regclass($1) as rel', [table('i', q)]);
    expect(rows[0].rel).toBeNull();
  });

  it('makes t_.idempotency_key unique', async () => {
    const { rows } = await c.query<{ cols: string[] }>(
      `select array(select a.attname::text from unnest(i.indkey::int2[]) with ordinality as k(n, o)
                      join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.n order by k.o) as cols
         from pg_index i where i.indrelid = $1::regclass and i.indisunique and not i.indisprimary`,
      [table('t', q)],
    );
    expect(rows.map((r) => r.cols)).toEqual([['idempotency_key']]);
  });

  it.each(['t', 'r'] as const)('checks the state of %s_<q> rows against the six states', async (prefix) => {
    const values =
      prefix === 't'
        ? `(task_id, task_name, params, state) values (gen_random_uuid(), 'x', '{}', $1)`
        : `(run_id, task_id, attempt, state, available_at) values (gen_random_uuid(), gen_random_uuid(), 1, $1, now())`;
    await c.query('begin');
    try {
      for (const state of ['pending', 'running', 'sleeping', 'completed', 'failed', 'cancelled']) {
        await c.query(`insert into ${table(prefix, q)} ${values}`, [state]);
      }
    } finally {
      await c.query('rollback');
    }
    await expectPgError(c.query(`insert into ${table(prefix, q)} ${values}`, ['done']), '23514');
  });

  it('leaves c_.status a free text column', async () => {
    await c.query('begin');
    try {
      await c.query(`insert into ${table('c', q)} (task_id, checkpoint_name, status) values (gen_random_uuid(), 's', 'anything')`);
    } finally {
      await c.query('rollback');
    }
  });
});

interface IndexRow {
  name: string;
  columns: string[];
  predicate: string | null;
  unique: boolean;
}

async function indexesOf(relation: string): Promise<IndexRow[]> {
  const { rows } = await c.query<IndexRow>(
    `select ci.relname as name,
            array(select a.attname::text from unnest(i.indkey::int2[]) with ordinality as k(n, o)
                    join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.n order by k.o) as columns,
            pg_get_expr(i.indpred, i.indrelid) as predicate,
            i.indisunique as unique
       from pg_index i join pg_class ci on ci.oid = i.indexrelid
      where i.indrelid = $1::regclass and not i.indisprimary and not i.indisunique
      order by ci.relname`,
    [relation],
  );
  return rows;
}

describe('indexes (§1.6)', () => {
  it.each(['plain', 'utf8-57', 'quoted'] as const)('creates the explicit indexes with their load-bearing names (%s name)', async (style) => {
    const q = queueName('idx', style);
    await createQueue(c, q);
    // Extra indexes are allowed (they change nothing for clients); the contract's must be there
    // under their exact names with their exact definitions.
    expect(await indexesOf(table('r', q))).toEqual(
      expect.arrayContaining([
        {
          name: `r_${q}_cei`,
          columns: ['claim_expires_at'],
          predicate: `((state = 'running'::text) AND (claim_expires_at IS NOT NULL))`,
          unique: false,
        },
        { name: `r_${q}_sai`, columns: ['state', 'available_at'], predicate: null, unique: false },
        { name: `r_${q}_ti`, columns: ['task_id'], predicate: null, unique: false },
      ]),
    );
    expect(await indexesOf(table('w', q))).toEqual(
      expect.arrayContaining([
        { name: `w_${q}_eni`, columns: ['event_name'], predicate: null, unique: false },
        { name: `w_${q}_ti`, columns: ['task_id'], predicate: null, unique: false },
      ]),
    );
    expect(await indexesOf(table('e', q))).toEqual(
      expect.arrayContaining([{ name: `e_${q}_eai`, columns: ['emitted_at'], predicate: null, unique: false }]),
    );
    const { rows } = await c.query<{ indexname: string }>(
      `select indexname from pg_indexes where schemaname = 'absurd' and indexname = any($1) order by indexname`,
      [[`r_${q}_cei`, `w_${q}_ti`, `e_${q}_eai`]],
    );
    expect(rows.map((r) => r.indexname)).toEqual([`e_${q}_eai`, `r_${q}_cei`, `w_${q}_ti`]);
  });

  describe('are used by the engine’s scans (enable_seqscan = off)', () => {
    let q: string;
    let planner: pg.Client;
    beforeAll(async () => {
      q = queueName('plan', 'quoted');
      await createQueue(c, q);
      planner = await utcClient(db, { outsideSchema: true });
      await planner.query('set enable_seqscan = off');
    });

    async function plan(sql: string): Promise<string> {
      const { rows } = await planner.query<{ 'QUERY PLAN': string }>(`explain ${sql}`);
      return rows.map((r) => r['QUERY PLAN']).join('\n');
    }

    it('the lease-expiry scan uses r_<q>_cei', async () => {
      const text = await plan(
        `select run_id from ${table('r', q)}
          where state = 'running' and claim_expires_at is not null and claim_expires_at <= '2024-01-01T00:00:00Z'::timestamptz
          for update skip locked`,
      );
      expect(text).toContain(ident(`r_${q}_cei`));
    });

    it('the event cleanup scan uses e_<q>_eai', async () => {
      const text = await plan(
        `select event_name from ${table('e', q)} where emitted_at < '2024-01-01T00:00:00Z'::timestamptz order by emitted_at limit 10`,
      );
      expect(text).toContain(ident(`e_${q}_eai`));
    });

    it('deleting a task’s waits uses w_<q>_ti', async () => {
      const text = await plan(`delete from ${table('w', q)} where task_id = '01890a5d-ac96-774b-bcce-b302099a8057'::uuid`);
      expect(text).toContain(ident(`w_${q}_ti`));
    });
  });
});
