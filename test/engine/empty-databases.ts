import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, inject } from 'vitest';
import { databaseUrlFor } from '../../packages/cli/src/database/urls.js';

/** Databases without the engine schema, on the test server; see {@link useEmptyDatabases}. */
export interface EmptyDatabases {
  /** Creates a new empty database and returns its URL; it is dropped after the file. */
  create(): Promise<string>;
}

/**
 * For tests that install the schema themselves: creates empty databases on demand and drops
 * them (with force) after the file's tests. Call at the top level of a test file.
 *
 * @example
 * const empty = useEmptyDatabases();
 * it('installs', async () => { const url = await empty.create(); await migrate(url); });
 */
export function useEmptyDatabases(): EmptyDatabases {
  const serverUrl = inject('absurdTestServerUrl');
  const created: string[] = [];

  afterAll(async () => {
    if (created.length === 0) return;
    const admin = new pg.Client({ connectionString: serverUrl });
    await admin.connect();
    try {
      for (const name of created) await admin.query(`drop database if exists ${name} with (force)`);
    } finally {
      await admin.end();
    }
  });

  return {
    async create() {
      const name = `absurd_empty_${randomBytes(6).toString('hex')}`;
      const admin = new pg.Client({ connectionString: serverUrl });
      await admin.connect();
      try {
        await admin.query(`create database ${name}`);
      } finally {
        await admin.end();
      }
      created.push(name);
      return databaseUrlFor(serverUrl, name);
    },
  };
}
