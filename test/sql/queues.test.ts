import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import {
  awkwardQueueNames,
  claimOne,
  completeRun,
  createQueue,
  expectPgError,
  ident,
  one,
  pgError,
  queueName,
  schemaSnapshot,
  setNow,
  spawn,
  table,
  taskRow,
  useSession,
  utf8QueueName57,
} from './helpers.js';

const db = useTestDatabase();
const c = useSession(db);

const PER_QUEUE = ['t', 'r', 'c', 'e', 'w'] as const;

async function relations(queue: string): Promise<Record<string, { kind: string; options: string[] | null }>> {
  const { rows } = await c.query<{ relname: string; relkind: string; reloptions: string[] | null }>(
    `select c.relname, c.relkind::text as relkind, c.reloptions
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'absurd' and c.relname = any($1::text[])`,
    [['t', 'r', 'c', 'e', 'w', 'i'].map((p) => `${p}_${queue}`)],
  );
  return Object.fromEntries(rows.map((r) => [r.relname.slice(0, 1), { kind: r.relkind, options: r.reloptions }]));
}

async function indexNames(queue: string): Promise<Map<string, string>> {
  const { rows } = await c.query<{ indexname: string; indexdef: string }>(
    `select indexname, indexdef from pg_indexes where schemaname = 'absurd' and tablename = any($1::text[])`,
    [PER_QUEUE.map((p) => `${p}_${queue}`)],
  );
  return new Map(rows.map((r) => [r.indexname, r.indexdef]));
}

describe('validate_queue_name', () => {
  it('returns the name unchanged for names of up to 57 bytes', async () => {
    const name = 'q'.repeat(57);
    const { rows } = await c.query<{ v: string }>('select absurd.validate_queue_name($1) as v', [name]);
    expect(one(rows).v).toBe(name);
  });

  it('rejects 58 bytes with the exact message', async () => {
    const name = 'q'.repeat(58);
    const error = await expectPgError(c.query('select absurd.validate_queue_name($1)', [name]), 'P0001');
    expect(error.message).toBe(`Queue name "${name}" is too long (max 57 bytes).`);
  });

  it('rejects NULL and the empty string', async () => {
    for (const name of [null, '']) {
      const error = await expectPgError(c.query('select absurd.validate_queue_name($1)', [name]), 'P0001');
      expect(error.message).toBe('Queue name must be provided');
    }
  });

  it('counts UTF-8 bytes, not characters', async () => {
    const accepted = ['é'.repeat(28) + 'q', '€'.repeat(19), '😀'.repeat(14) + 'q'];
    for (const name of accepted) {
      expect(Buffer.byteLength(name)).toBe(57);
      const { rows } = await c.query<{ v: string }>('select absurd.validate_queue_name($1) as v', [name]);
      expect(one(rows).v).toBe(name);
    }
    const rejected = ['é'.repeat(29), '€'.repeat(19) + 'q', '😀'.repeat(15)];
    for (const name of rejected) {
      expect(name.length).toBeLessThan(58);
      await expectPgError(c.query('select absurd.validate_queue_name($1)', [name]), 'P0001', 'is too long (max 57 bytes).');
    }
  });

  it('accepts spaces, quotes, upper case, leading - or _, digits only and whitespace only', async () => {
    for (const name of ['bad space', `bad'quote`, 'bad"dq', 'UpperCase', '-lead', '_lead', '12345', '   ', '\t']) {
      const { rows } = await c.query<{ v: string }>('select absurd.validate_queue_name($1) as v', [name]);
      expect(one(rows).v).toBe(name);
    }
  });
});

describe('create_queue', () => {
  it('creates the five tables, unpartitioned, with fillfactor 70 on t_, r_ and c_, and no i_ table', async () => {
    const q = await createQueue(c, queueName('tables'));
    const rels = await relations(q);
    expect(Object.keys(rels).sort()).toEqual(['c', 'e', 'r', 't', 'w']);
    for (const p of PER_QUEUE) expect(rels[p]?.kind, p).toBe('r');
    expect(rels.t?.options).toEqual(['fillfactor=70']);
    expect(rels.r?.options).toEqual(['fillfactor=70']);
    expect(rels.c?.options).toEqual(['fillfactor=70']);
    expect(rels.e?.options ?? null).toBeNull();
    expect(rels.w?.options ?? null).toBeNull();
  });

  it('records the queue with the default policy', async () => {
    const at = await setNow(c, '2024-02-03T04:05:06.789Z');
    const q = await createQueue(c, queueName('row'));
    const { rows } = await c.query(
      `select queue_name, created_at, storage_mode, default_partition, partition_lookahead::text as lookahead,
              partition_lookback::text as lookback, cleanup_ttl::text as ttl, cleanup_limit, detach_mode,
              detach_min_age::text as min_age
         from absurd.queues where queue_name = $1`,
      [q],
    );
    expect(one(rows)).toEqual({
      queue_name: q,
      created_at: at,
      storage_mode: 'unpartitioned',
      default_partition: 'enabled',
      lookahead: '28 days',
      lookback: '1 day',
      ttl: '30 days',
      cleanup_limit: 1000,
      detach_mode: 'none',
      min_age: '30 days',
    });
    await c.query('set absurd.fake_now = default');
  });

  it('creates the explicit indexes with their documented names and definitions', async () => {
    const q = await createQueue(c, queueName('idx'));
    const idx = await indexNames(q);
    const def = (name: string) => idx.get(name) ?? `missing index ${name}`;
    expect(def(`r_${q}_sai`)).toContain('(state, available_at)');
    expect(def(`r_${q}_ti`)).toContain('(task_id)');
    expect(def(`r_${q}_cei`)).toContain('(claim_expires_at)');
    expect(def(`r_${q}_cei`)).toMatch(/WHERE .*state = 'running'.*claim_expires_at IS NOT NULL/);
    expect(def(`w_${q}_eni`)).toContain('(event_name)');
    expect(def(`w_${q}_ti`)).toContain('(task_id)');
    expect(def(`e_${q}_eai`)).toContain('(emitted_at)');
    for (const name of [`r_${q}_sai`, `r_${q}_ti`, `r_${q}_cei`, `w_${q}_eni`, `w_${q}_ti`, `e_${q}_eai`]) {
      expect(def(name), name).toContain(`ON absurd.${name.slice(0, 1)}_${q} `);
    }
  });

  it('creates the primary keys and the unpartitioned idempotency unique constraint', async () => {
    const q = await createQueue(c, queueName('keys'));
    const { rows } = await c.query<{ rel: string; type: string; cols: string[] }>(
      `select cl.relname as rel, con.contype::text as type,
              array(select a.attname::text from unnest(con.conkey) with ordinality k(attnum, ord)
                      join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.attnum order by k.ord) as cols
         from pg_constraint con join pg_class cl on cl.oid = con.conrelid
         join pg_namespace n on n.oid = cl.relnamespace
        where n.nspname = 'absurd' and cl.relname = any($1::text[]) and con.contype in ('p', 'u')
        order by 1, 2`,
      [PER_QUEUE.map((p) => `${p}_${q}`)],
    );
    expect(rows).toEqual([
      { rel: `c_${q}`, type: 'p', cols: ['task_id', 'checkpoint_name'] },
      { rel: `e_${q}`, type: 'p', cols: ['event_name'] },
      { rel: `r_${q}`, type: 'p', cols: ['run_id'] },
      { rel: `t_${q}`, type: 'p', cols: ['task_id'] },
      { rel: `t_${q}`, type: 'u', cols: ['idempotency_key'] },
      { rel: `w_${q}`, type: 'p', cols: ['run_id', 'step_name'] },
    ]);
  });

  it('creates the documented columns in order, with types, nullability and defaults', async () => {
    const q = await createQueue(c, queueName('cols'));
    const { rows } = await c.query<{ rel: string; col: string; type: string; nullable: string; def: string | null }>(
      `select table_name as rel, column_name as col, data_type as type, is_nullable as nullable, column_default as def
         from information_schema.columns where table_schema = 'absurd' and table_name = any($1::text[])
        order by table_name, ordinal_position`,
      [PER_QUEUE.map((p) => `${p}_${q}`)],
    );
    const shape = (p: string) =>
      rows
        .filter((r) => r.rel === `${p}_${q}`)
        .map((r) => `${r.col} ${r.type}${r.nullable === 'NO' ? ' not null' : ''}${r.def ? ` default ${r.def}` : ''}`)
        // pg_get_expr qualifies the function only when schema absurd is not on the search_path.
        .map((s) => s.replace('absurd."current_time"()', '"current_time"()'));
    const now = '"current_time"()';
    expect(shape('t')).toEqual([
      'task_id uuid not null',
      'task_name text not null',
      'params jsonb not null',
      'headers jsonb',
      'retry_strategy jsonb',
      'max_attempts integer',
      'cancellation jsonb',
      `enqueue_at timestamp with time zone not null default ${now}`,
      'first_started_at timestamp with time zone',
      'state text not null',
      'attempts integer not null default 0',
      'last_attempt_run uuid',
      'completed_payload jsonb',
      'cancelled_at timestamp with time zone',
      'idempotency_key text',
    ]);
    expect(shape('r')).toEqual([
      'run_id uuid not null',
      'task_id uuid not null',
      'attempt integer not null',
      'state text not null',
      'claimed_by text',
      'claim_expires_at timestamp with time zone',
      'available_at timestamp with time zone not null',
      'wake_event text',
      'event_payload jsonb',
      'started_at timestamp with time zone',
      'completed_at timestamp with time zone',
      'failed_at timestamp with time zone',
      'result jsonb',
      'failure_reason jsonb',
      `created_at timestamp with time zone not null default ${now}`,
      // absurd-kit's own, after the contract's columns (migrations 000016 and 000028).
      'priority integer not null default 0',
      'cancel_deadline timestamp with time zone',
      'superseded boolean not null default false',
    ]);
    expect(shape('c')).toEqual([
      'task_id uuid not null',
      'checkpoint_name text not null',
      'state jsonb',
      "status text not null default 'committed'::text",
      'owner_run_id uuid',
      `updated_at timestamp with time zone not null default ${now}`,
    ]);
    expect(shape('e')).toEqual(['event_name text not null', 'payload jsonb', `emitted_at timestamp with time zone not null default ${now}`]);
    expect(shape('w')).toEqual([
      'task_id uuid not null',
      'run_id uuid not null',
      'step_name text not null',
      'event_name text not null',
      'timeout_at timestamp with time zone',
      `created_at timestamp with time zone not null default ${now}`,
    ]);
  });

  it('checks task and run states', async () => {
    const q = await createQueue(c, queueName('states'));
    await expectPgError(
      c.query(`insert into ${table('t', q)} (task_id, task_name, params, state) values (gen_random_uuid(), 'x', '{}', 'bogus')`),
      '23514',
    );
    await expectPgError(
      c.query(
        `insert into ${table('r', q)} (run_id, task_id, attempt, state, available_at) values (gen_random_uuid(), gen_random_uuid(), 1, 'bogus', now())`,
      ),
      '23514',
    );
    for (const state of ['pending', 'running', 'sleeping', 'completed', 'failed', 'cancelled']) {
      await c.query(`insert into ${table('t', q)} (task_id, task_name, params, state) values (gen_random_uuid(), 'x', '{}', $1)`, [state]);
      await c.query(
        `insert into ${table('r', q)} (run_id, task_id, attempt, state, available_at) values (gen_random_uuid(), gen_random_uuid(), 1, $1, now())`,
        [state],
      );
    }
  });

  it('the one-argument and two-argument forms both create unpartitioned queues; the mode is normalised', async () => {
    const a = queueName('one');
    const b = queueName('two');
    const d = queueName('norm');
    await c.query('select absurd.create_queue($1)', [a]);
    await c.query('select absurd.create_queue($1, $2)', [b, 'unpartitioned']);
    await c.query('select absurd.create_queue($1, $2)', [d, '  UnPartitioned ']);
    const { rows } = await c.query<{ queue_name: string; storage_mode: string }>(
      'select queue_name, storage_mode from absurd.queues where queue_name = any($1::text[]) order by queue_name',
      [[a, b, d]],
    );
    expect(rows.map((r) => r.storage_mode)).toEqual(['unpartitioned', 'unpartitioned', 'unpartitioned']);
    for (const q of [a, b, d]) expect(Object.keys(await relations(q)).sort()).toEqual(['c', 'e', 'r', 't', 'w']);
  });

  it('both overloads exist and untyped parameters resolve without ambiguity', async () => {
    const { rows } = await c.query<{ sig: string }>(
      `select p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' as sig from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'absurd' and p.proname = 'create_queue' order by 1`,
    );
    expect(rows.map((r) => r.sig)).toEqual(['create_queue(p_queue_name text)', 'create_queue(p_queue_name text, p_storage_mode text)']);
    await c.query('select absurd.create_queue($1)', [queueName('untyped')]);
  });

  it('re-creating with the same mode is a silent no-op that keeps the data', async () => {
    const q = await createQueue(c, queueName('again'));
    const spawned = await spawn(c, q, 'keep-me');
    await c.query('select absurd.create_queue($1)', [q]);
    await c.query('select absurd.create_queue($1, $2)', [q, 'unpartitioned']);
    expect((await taskRow(c, q, spawned.task_id)).task_name).toBe('keep-me');
    const { rows } = await c.query('select count(*)::int as n from absurd.queues where queue_name = $1', [q]);
    expect(one(rows)).toEqual({ n: 1 });
  });

  it("rejects unsupported storage modes such as 'timescale' and changes nothing", async () => {
    const q = queueName('ts');
    const before = await schemaSnapshot(c);
    await expectPgError(c.query('select absurd.create_queue($1, $2)', [q, 'timescale']), 'P0001', 'Unsupported queue storage mode "timescale"');
    await expectPgError(c.query('select absurd.create_queue($1, $2)', [q, null]), 'P0001', 'Unsupported queue storage mode');
    await expectPgError(c.query('select absurd.create_queue($1, $2)', [q, '']), 'P0001', 'Unsupported queue storage mode');
    expect(await schemaSnapshot(c)).toEqual(before);
  });

  it('rejects invalid names and changes nothing', async () => {
    const before = await schemaSnapshot(c);
    await expectPgError(c.query('select absurd.create_queue($1)', ['q'.repeat(58)]), 'P0001', 'is too long (max 57 bytes).');
    await expectPgError(c.query('select absurd.create_queue($1, $2)', ['é'.repeat(29), 'unpartitioned']), 'P0001', 'is too long');
    await expectPgError(c.query('select absurd.create_queue($1)', ['']), 'P0001', 'Queue name must be provided');
    await expectPgError(c.query('select absurd.create_queue($1)', [null]), 'P0001', 'Queue name must be provided');
    expect(await schemaSnapshot(c)).toEqual(before);
  });

  it('rejects re-creating an unpartitioned queue as partitioned', async () => {
    const q = await createQueue(c, queueName('mm1'));
    const before = await schemaSnapshot(c);
    await expectPgError(
      c.query('select absurd.create_queue($1, $2)', [q, 'partitioned']),
      'P0001',
      `Queue "${q}" already exists with storage mode "unpartitioned"`,
    );
    expect(await schemaSnapshot(c)).toEqual(before);
  });

  it('rejects re-creating a partitioned queue as unpartitioned, with either overload', async () => {
    const q = queueName('mm2');
    await c.query('select absurd.create_queue($1, $2)', [q, 'partitioned']);
    const before = await schemaSnapshot(c);
    for (const call of [
      c.query('select absurd.create_queue($1)', [q]),
      c.query('select absurd.create_queue($1, $2)', [q, 'unpartitioned']),
    ]) {
      await expectPgError(call, 'P0001', `Queue "${q}" already exists with storage mode "partitioned"`);
    }
    expect(await schemaSnapshot(c)).toEqual(before);
  });

  it('works end to end for names that need quoting, including a 57-byte UTF-8 name', async () => {
    for (const q of awkwardQueueNames()) {
      await createQueue(c, q);
      expect(Object.keys(await relations(q)).sort(), q).toEqual(['c', 'e', 'r', 't', 'w']);
      const idx = await indexNames(q);
      for (const name of [`r_${q}_sai`, `r_${q}_ti`, `r_${q}_cei`, `w_${q}_eni`, `w_${q}_ti`, `e_${q}_eai`]) {
        expect(idx.has(name), `${name} for queue ${q}`).toBe(true);
      }
      const spawned = await spawn(c, q, 'job', { q });
      const claimed = await claimOne(c, q);
      expect(claimed.params).toEqual({ q });
      await completeRun(c, q, claimed.run_id, { ok: q });
      expect((await taskRow(c, q, spawned.task_id)).state).toBe('completed');
    }
  });

  it('accepts whitespace-only names', async () => {
    for (const q of ['   ', '\t']) {
      await createQueue(c, q);
      expect(Object.keys(await relations(q)).sort()).toEqual(['c', 'e', 'r', 't', 'w']);
      await spawn(c, q);
      expect((await claimOne(c, q)).task_name).toBe('job');
    }
  });

  it('ensure_queue_tables builds missing tables idempotently, treating a queue without a row as unpartitioned', async () => {
    const q = queueName('ensure');
    await c.query('select absurd.ensure_queue_tables($1)', [q]);
    expect(Object.keys(await relations(q)).sort()).toEqual(['c', 'e', 'r', 't', 'w']);
    await c.query('select absurd.ensure_queue_tables($1)', [q]);
    await c.query(`drop table ${table('w', q)}`);
    await c.query('select absurd.ensure_queue_tables($1)', [q]);
    expect(Object.keys(await relations(q)).sort()).toEqual(['c', 'e', 'r', 't', 'w']);
    await expectPgError(c.query('select absurd.ensure_queue_tables($1)', ['q'.repeat(58)]), 'P0001', 'is too long');
  });
});

describe('absurd.queues', () => {
  it('has the documented columns, defaults and named checks', async () => {
    const { rows } = await c.query<{ conname: string }>(
      `select conname from pg_constraint where conrelid = 'absurd.queues'::regclass and contype = 'c' order by conname`,
    );
    expect(rows.map((r) => r.conname)).toEqual(
      [
        'queues_cleanup_limit_check',
        'queues_cleanup_ttl_check',
        'queues_default_partition_check',
        'queues_detach_min_age_check',
        'queues_detach_mode_check',
        'queues_partition_lookahead_check',
        'queues_partition_lookback_check',
        'queues_storage_mode_check',
      ].sort(),
    );
    const q = queueName('checks');
    const bad: [string, string][] = [
      ['storage_mode', `'timescale'`],
      ['default_partition', `'maybe'`],
      ['partition_lookahead', `'-1 day'`],
      ['partition_lookback', `'-1 second'`],
      ['cleanup_ttl', `'-1 day'`],
      ['cleanup_limit', '0'],
      ['detach_mode', `'always'`],
      ['detach_min_age', `'-1 day'`],
    ];
    for (const [column, literal] of bad) {
      await expectPgError(c.query(`insert into absurd.queues (queue_name, ${column}) values ($1, ${literal})`, [q]), '23514', column);
    }
  });

  it('accepts a row with only queue_name (legacy queue) and fills every default', async () => {
    const at = await setNow(c, '2024-06-01T00:00:00Z');
    const q = queueName('legacy');
    await c.query('insert into absurd.queues (queue_name) values ($1)', [q]);
    const { rows } = await c.query('select * from absurd.queues where queue_name = $1', [q]);
    expect(one(rows)).toMatchObject({ queue_name: q, created_at: at, storage_mode: 'unpartitioned', cleanup_limit: 1000 });
    await c.query('set absurd.fake_now = default');
  });
});

describe('drop_queue', () => {
  it('drops every table and the queue row', async () => {
    const q = await createQueue(c, queueName('drop'));
    await spawn(c, q);
    await c.query('select absurd.drop_queue($1)', [q]);
    expect(await relations(q)).toEqual({});
    const { rows } = await c.query('select count(*)::int as n from absurd.queues where queue_name = $1', [q]);
    expect(one(rows)).toEqual({ n: 0 });
  });

  it('drops queues whose names need quoting', async () => {
    const names = awkwardQueueNames();
    for (const q of names) await createQueue(c, q);
    for (const q of names) {
      await c.query('select absurd.drop_queue($1)', [q]);
      expect(await relations(q), q).toEqual({});
    }
    const { rows } = await c.query('select count(*)::int as n from absurd.queues where queue_name = any($1::text[])', [names]);
    expect(one(rows)).toEqual({ n: 0 });
  });

  it('is silent for an unknown queue, and does not validate the name', async () => {
    const before = await schemaSnapshot(c);
    await c.query('select absurd.drop_queue($1)', [queueName('never')]);
    await c.query('select absurd.drop_queue($1)', ['x'.repeat(80)]);
    expect(await schemaSnapshot(c)).toEqual(before);
  });

  it('drops a legacy queue with an overlong name and tables of arbitrary shape', async () => {
    const q = `legacy_${'z'.repeat(60)}_${queueName('l')}`;
    expect(Buffer.byteLength(q)).toBeGreaterThan(57);
    await c.query('insert into absurd.queues (queue_name) values ($1)', [q]);
    // Postgres truncates identifiers to 63 bytes, exactly as the engine's own dynamic SQL would.
    await c.query(`create table absurd.${ident(`t_${q}`)} (id integer)`);
    await c.query(`create table absurd.${ident(`r_${q}`)} (something text, other jsonb)`);
    await c.query(`create table absurd.${ident(`c_${q}`)} ()`);
    await c.query(`create table absurd.${ident(`e_${q}`)} (x int primary key)`);
    await c.query(`create table absurd.${ident(`w_${q}`)} (y int)`);
    await c.query('select absurd.drop_queue($1)', [q]);
    const { rows } = await c.query<{ n: number }>(
      `select count(*)::int as n from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'absurd' and c.relname like '%legacy_zzzz%'`,
    );
    expect(one(rows).n).toBe(0);
    const row = await c.query('select count(*)::int as n from absurd.queues where queue_name = $1', [q]);
    expect(one(row.rows)).toEqual({ n: 0 });
  });

  it('tolerates missing tables and objects that depend on the tables', async () => {
    const q = await createQueue(c, queueName('deps'));
    await c.query(`drop table ${table('e', q)}`);
    await c.query(`create view absurd.${ident(`v_${q}`)} as select task_id from ${table('t', q)}`);
    await c.query('select absurd.drop_queue($1)', [q]);
    expect(await relations(q)).toEqual({});
    expect((await pgError(c.query(`select * from absurd.${ident(`v_${q}`)}`))).code).toBe('42P01');
  });
});

describe('list_queues', () => {
  it('lists every queue ordered by name', async () => {
    const prefix = queueName('lst');
    const names = [`${prefix}_b`, `${prefix}_c`, `${prefix}_a`];
    for (const q of names) await createQueue(c, q);
    const { rows, fields } = await c.query<{ queue_name: string }>('select * from absurd.list_queues()');
    expect(fields.map((f) => f.name)).toEqual(['queue_name']);
    const ours = rows.map((r) => r.queue_name).filter((n) => n.startsWith(prefix));
    expect(ours).toEqual([`${prefix}_a`, `${prefix}_b`, `${prefix}_c`]);
    const all = await c.query<{ queue_name: string }>('select queue_name from absurd.queues order by queue_name');
    expect(rows.map((r) => r.queue_name)).toEqual(all.rows.map((r) => r.queue_name));
  });

  it('includes a 57-byte UTF-8 name and a legacy row', async () => {
    const utf = utf8QueueName57();
    await createQueue(c, utf);
    const legacy = queueName('legacy-list');
    await c.query('insert into absurd.queues (queue_name) values ($1)', [legacy]);
    const { rows } = await c.query<{ queue_name: string }>('select queue_name from absurd.list_queues()');
    expect(rows.map((r) => r.queue_name)).toEqual(expect.arrayContaining([utf, legacy]));
  });
});
