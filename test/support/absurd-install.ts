/**
 * Installing the fixture of Absurd's own schema (test/fixtures/absurd-main.sql). Free of vitest,
 * so that the global setup can build a test template from it too; the tests use absurd-schema.ts.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const fixture = fileURLToPath(new URL('../fixtures/absurd-main.sql', import.meta.url));

/** The text of Absurd's install script as the fixture holds it. */
export function absurdSchemaScript(): Promise<string> {
  return readFile(fixture, 'utf8');
}

/**
 * Installs Absurd's schema on the database at `url`, as Absurd's own tests do: the whole script
 * in one simple-protocol query (one implicit transaction).
 */
export async function installAbsurdSchema(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(await absurdSchemaScript());
  } finally {
    await client.end();
  }
}
