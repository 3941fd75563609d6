import { fileURLToPath } from 'node:url';
import { readMigrationDirectory } from '../../scripts/schema-files.js';
import { migrate } from '../../packages/absurd-kit/src/migrate.js';
import { installAbsurdSchema } from './absurd-install.js';

const migrationsDir = fileURLToPath(new URL('../../sql/migrations/', import.meta.url));

/**
 * Which schema the test template holds, from `ABSURD_TEST_SCHEMA`:
 * - `kit` (default): absurd-kit's engine, installed by `migrate()`;
 * - `adopted`: Absurd's schema (test/fixtures/absurd-main.sql) adopted by `migrate({ adopt: true })`,
 *   e.g. `ABSURD_TEST_SCHEMA=adopted npx vitest run test/sql test/runtime/interop-absurd-sdk.test.ts`
 *   runs the contract and interop tests on an adopted database;
 * - `absurd`: Absurd's schema alone, for running absurd-kit's runtime where no adoption was done.
 */
export type TestSchema = 'kit' | 'adopted' | 'absurd';

/** The schema `ABSURD_TEST_SCHEMA` asks for; throws on an unknown value. */
export function testSchemaFromEnvironment(env: NodeJS.ProcessEnv = process.env): TestSchema {
  const value = env.ABSURD_TEST_SCHEMA?.trim() || 'kit';
  if (value === 'kit' || value === 'adopted' || value === 'absurd') return value;
  throw new Error(`ABSURD_TEST_SCHEMA must be kit, adopted or absurd, not ${JSON.stringify(value)}`);
}

/**
 * Installs the test schema on the database at `url` through the real code paths. The migrations
 * are read from `sql/migrations/` (not the bundled module), so tests always run the SQL as it is
 * on disk; `test/engine/schema-files.test.ts` catches a stale bundle.
 */
export async function applySchemaForTests(url: string, schema: TestSchema = 'kit'): Promise<void> {
  if (schema !== 'kit') await installAbsurdSchema(url);
  if (schema === 'absurd') return;
  await migrate(url, { migrations: await readMigrationDirectory(migrationsDir), adopt: schema === 'adopted' });
}
