/**
 * One engine migration as bundled into the package (see `migrations.generated.ts`, built from
 * `sql/migrations/NNNNNN_name.sql` by the repository's `npm run schema:build`).
 *
 * @example
 * import { engineMigrations, type Migration } from 'absurd-kit';
 * const last: Migration | undefined = engineMigrations.at(-1);
 */
export interface Migration {
  /** The number in the file name, e.g. 1 for `000001_foundation.sql`. Unique and ascending. */
  readonly version: number;
  /** The rest of the file name without `.sql`, e.g. `foundation`. */
  readonly name: string;
  /** The file's text (line endings normalised to `\n`). */
  readonly sql: string;
  /** Hex sha256 of {@link Migration.sql}; recorded when applied, verified on every later run. */
  readonly checksum: string;
}

/** A migration's identity without its text. */
export type MigrationRef = Pick<Migration, 'version' | 'name'>;

/**
 * The canonical label of a migration, as used in file names and messages.
 *
 * @example
 * migrationLabel({ version: 2, name: 'queues' }); // '000002_queues'
 */
export function migrationLabel(migration: MigrationRef): string {
  return `${String(migration.version).padStart(6, '0')}_${migration.name}`;
}
