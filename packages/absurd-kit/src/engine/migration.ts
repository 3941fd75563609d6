import { createHash } from 'node:crypto';

/**
 * One engine migration as bundled into the package (see `migrations.generated.ts`).
 *
 * @example
 * const m: Migration = { version: 1, name: 'foundation', sql: 'create schema if not exists absurd;\n', checksum: migrationChecksum('...') };
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

const FILE_NAME = /^(\d{6})_([A-Za-z0-9][A-Za-z0-9_-]*)\.sql$/;

/**
 * Splits a migration file name into its version and name, or returns `undefined` when the name
 * does not follow the `NNNNNN_name.sql` pattern.
 *
 * @example
 * parseMigrationFileName('000002_queues.sql'); // { version: 2, name: 'queues' }
 */
export function parseMigrationFileName(fileName: string): MigrationRef | undefined {
  const match = FILE_NAME.exec(fileName);
  if (!match?.[1] || !match[2]) return undefined;
  const version = Number(match[1]);
  return version > 0 ? { version, name: match[2] } : undefined;
}

/**
 * The canonical label of a migration, as used in file names and messages.
 *
 * @example
 * migrationLabel({ version: 2, name: 'queues' }); // '000002_queues'
 */
export function migrationLabel(migration: MigrationRef): string {
  return `${String(migration.version).padStart(6, '0')}_${migration.name}`;
}

/**
 * Normalises a migration file's text: drops a byte-order mark and turns CRLF/CR line endings into
 * `\n`, so that the checksum does not depend on how the repository was checked out.
 *
 * @example
 * normaliseMigrationText('select 1;\r\n'); // 'select 1;\n'
 */
export function normaliseMigrationText(text: string): string {
  return text.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
}

/**
 * Hex sha256 of a migration's (normalised) text.
 *
 * @example
 * migrationChecksum('create schema if not exists absurd;\n'); // '3b1f…'
 */
export function migrationChecksum(sql: string): string {
  return createHash('sha256').update(sql, 'utf8').digest('hex');
}

/**
 * Builds a {@link Migration} from a file name and its text, or throws when the name is invalid.
 *
 * @example
 * const m = migrationFromFile('000001_foundation.sql', 'create schema if not exists absurd;\n');
 */
export function migrationFromFile(fileName: string, text: string): Migration {
  const ref = parseMigrationFileName(fileName);
  if (!ref) {
    throw new Error(`migration file "${fileName}" must be named NNNNNN_name.sql (six digits from 000001, then letters, digits, _ or -)`);
  }
  const sql = normaliseMigrationText(text);
  return { ...ref, sql, checksum: migrationChecksum(sql) };
}
