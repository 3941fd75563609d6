import { fileURLToPath } from 'node:url';
import { readMigrationDirectory } from '../../scripts/schema-files.js';
import { migrate } from '../../packages/absurd-kit/src/migrate.js';

const migrationsDir = fileURLToPath(new URL('../../sql/migrations/', import.meta.url));

/**
 * Applies every engine migration to the database at `url` through the real runner. The
 * migrations are read from `sql/migrations/` (not the bundled module), so tests always run the
 * SQL as it is on disk; `test/engine/schema-files.test.ts` catches a stale bundle.
 */
export async function applySchemaForTests(url: string): Promise<void> {
  await migrate(url, { migrations: await readMigrationDirectory(migrationsDir) });
}
