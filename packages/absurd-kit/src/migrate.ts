/**
 * Installing and upgrading the engine schema. Migrations are bundled into the package
 * (`engine/migrations.generated.ts`), so nothing here reads the filesystem.
 */
import type pg from 'pg';
import { adoptSchema, type AdoptionIndex, type AdoptionReport } from './adopt.js';
import { withClient, type DatabaseConnection } from './db.js';
import { migrations as bundledMigrations } from './engine/migrations.generated.js';
import type { Migration, MigrationRef } from './engine/migration.js';
import { CREATE_TRACKING_TABLE_SQL, MIGRATION_LOCK_KEY } from './engine/tracking.js';
import {
  MigrationChecksumError,
  MigrationFailedError,
  SchemaForeignError,
  SchemaMissingError,
  SchemaOutdatedError,
  SchemaTooNewError,
} from './errors.js';
import {
  beginTransaction,
  commitTransaction,
  getSchemaVersion,
  listAppliedMigrations,
  lockMigrations,
  probeSchema,
  recordMigration,
  rollbackTransaction,
} from './queries/migrations.queries.js';

/** A row of `absurd.kit_migrations`. */
export interface AppliedMigration extends MigrationRef {
  readonly checksum: string;
  readonly appliedAt: Date;
}

/**
 * The state of schema `absurd` in a database, compared with the migrations of this package.
 * `schemaVersion` is what `absurd.get_schema_version()` returns (the Absurd contract level,
 * `main`), or null when that function does not exist.
 */
export type SchemaStatus =
  /** No schema `absurd` (or an empty one): `absurd init` installs it. */
  | { readonly state: 'not-installed' }
  /** Schema `absurd` without absurd-kit's tracking table, e.g. installed by Absurd itself. */
  | { readonly state: 'foreign'; readonly schemaVersion: string | null }
  /** Installed by absurd-kit, but `pending` migrations of this package are not applied yet. */
  | {
      readonly state: 'outdated';
      readonly schemaVersion: string | null;
      readonly applied: readonly AppliedMigration[];
      readonly pending: readonly MigrationRef[];
    }
  /** Every migration of this package is applied, and nothing else. */
  | { readonly state: 'current'; readonly schemaVersion: string | null; readonly applied: readonly AppliedMigration[] }
  /** The database has migrations this package does not know: this package is older than it. */
  | {
      readonly state: 'newer';
      readonly schemaVersion: string | null;
      readonly applied: readonly AppliedMigration[];
      readonly unknown: readonly AppliedMigration[];
    };

/** Options shared by {@link migrate}, {@link initSchema} and {@link schemaStatus}. */
export interface SchemaOptions {
  /** The migrations to compare with and apply. Default: the ones bundled with this package. */
  migrations?: readonly Migration[];
}

/** Options for {@link migrate} and {@link initSchema}. */
export interface MigrateOptions extends SchemaOptions {
  /** Only compute what would be applied; change nothing. */
  dryRun?: boolean;
  /** Called just before each migration is applied (for progress output). */
  onMigration?: (migration: MigrationRef) => void;
  /**
   * {@link migrate} only: adopt in place a schema that Absurd installed (state `foreign`, contract
   * level `main`) instead of refusing it — see {@link AdoptionReport}. On a schema in any other
   * state, `migrate` does what it does without this option.
   */
  adopt?: boolean;
  /** With `adopt`: called before each index is built on an existing queue (for progress output). */
  onIndex?: (index: AdoptionIndex) => void;
  /**
   * With `adopt`: how many seconds to keep trying to lock the queue tables while workers write to
   * them, before giving up with nothing changed (default 30).
   */
  lockWait?: number;
}

/** What {@link migrate} did. */
export interface MigrateResult {
  /** The migrations this call applied — with `dryRun`, would apply — in order. */
  readonly applied: readonly MigrationRef[];
  /** Present when this call adopted (with `dryRun`: would adopt) a schema installed by Absurd. */
  readonly adoption?: AdoptionReport;
}

/** What {@link initSchema} did. */
export type InitResult =
  | { readonly state: 'installed'; readonly applied: readonly MigrationRef[] }
  | { readonly state: 'already-current'; readonly version: number | null };

/**
 * Applies every migration the database lacks, each in its own transaction: take the migration
 * advisory lock, re-read the applied set, record the migration, run its SQL, commit. Running it
 * again is a no-op; concurrent migrators serialise on the lock and the later ones find nothing to
 * do. Installs from scratch on a database without schema `absurd`.
 *
 * With `adopt`, a schema installed by Absurd (contract level `main`) is brought to absurd-kit's
 * engine in place, in one transaction that keeps every queue and task as it is (see
 * {@link AdoptionReport}); running it again is then a no-op.
 *
 * Throws {@link SchemaForeignError} (schema not installed by absurd-kit, without `adopt`),
 * {@link SchemaNotAdoptableError}, {@link SchemaTooNewError}, {@link MigrationChecksumError} (an
 * applied migration changed), {@link MigrationFailedError}.
 *
 * @example
 * const { applied, adoption } = await migrate('postgresql://localhost/absurd', { adopt: true });
 * console.log(`applied ${applied.length} migration(s)`, adoption ? `to ${adoption.queues.length} adopted queue(s)` : '');
 */
export async function migrate(db: DatabaseConnection, options: MigrateOptions = {}): Promise<MigrateResult> {
  const migrations = options.migrations ?? bundledMigrations;
  return withClient(db, async (client) => {
    let status = await readStatus(client, migrations);
    if (status.state === 'foreign') {
      if (!options.adopt) throw new SchemaForeignError(status.schemaVersion);
      const adopted = await adoptSchema(client, migrations, options);
      if (adopted) return adopted;
      // Another process adopted it while this one waited for the migration lock.
      status = await readStatus(client, migrations);
    }
    if (status.state === 'newer') throw new SchemaTooNewError(status.unknown);
    const pending = status.state === 'not-installed' ? migrations : status.state === 'outdated' ? status.pending : [];
    if (options.dryRun) return { applied: pending.map(toRef) };
    return { applied: await applyPending(client, migrations, pending, options.onMigration) };
  });
}

/**
 * First-time installation: installs the schema on a database without one; a no-op on a database
 * that is already current. Refuses a foreign schema ({@link SchemaForeignError}), an outdated one
 * ({@link SchemaOutdatedError}: upgrading is `migrate`'s job) and a newer one
 * ({@link SchemaTooNewError}).
 *
 * @example
 * const result = await initSchema(pool);
 * if (result.state === 'already-current') console.log('nothing to do');
 */
export async function initSchema(db: DatabaseConnection, options: MigrateOptions = {}): Promise<InitResult> {
  const migrations = options.migrations ?? bundledMigrations;
  return withClient(db, async (client) => {
    const status = await readStatus(client, migrations);
    switch (status.state) {
      case 'foreign':
        throw new SchemaForeignError(status.schemaVersion);
      case 'newer':
        throw new SchemaTooNewError(status.unknown);
      case 'outdated':
        throw new SchemaOutdatedError(status.pending);
      case 'current':
        return { state: 'already-current', version: latestVersion(status.applied) };
      case 'not-installed':
        if (options.dryRun) return { state: 'installed', applied: migrations.map(toRef) };
        return { state: 'installed', applied: await applyPending(client, migrations, migrations, options.onMigration) };
    }
  });
}

/**
 * Reports the state of schema `absurd` (see {@link SchemaStatus}). Read-only. Throws
 * {@link MigrationChecksumError} when an applied migration differs from this package's copy.
 *
 * @example
 * const status = await schemaStatus(pool);
 * if (status.state === 'outdated') console.log(status.pending.map((m) => m.name));
 */
export async function schemaStatus(db: DatabaseConnection, options: SchemaOptions = {}): Promise<SchemaStatus> {
  return withClient(db, (client) => readStatus(client, options.migrations ?? bundledMigrations));
}

/**
 * Throws unless the schema is current: {@link SchemaMissingError}, {@link SchemaForeignError},
 * {@link SchemaOutdatedError} or {@link SchemaTooNewError}. For clients and workers at start-up.
 *
 * @example
 * await assertSchemaCurrent(pool); // throws SchemaMissingError: … run `absurd init`
 */
export async function assertSchemaCurrent(db: DatabaseConnection, options: SchemaOptions = {}): Promise<void> {
  const status = await schemaStatus(db, options);
  switch (status.state) {
    case 'not-installed':
      throw new SchemaMissingError();
    case 'foreign':
      throw new SchemaForeignError(status.schemaVersion);
    case 'outdated':
      throw new SchemaOutdatedError(status.pending);
    case 'newer':
      throw new SchemaTooNewError(status.unknown);
    case 'current':
      return;
  }
}

/**
 * The highest applied migration version, or null when there is none.
 *
 * @example
 * latestVersion(status.state === 'current' ? status.applied : []); // e.g. 5
 */
export function latestVersion(applied: readonly MigrationRef[]): number | null {
  return applied.reduce<number | null>((max, m) => (max === null || m.version > max ? m.version : max), null);
}

interface SchemaProbe {
  hasSchema: boolean;
  hasTrackingTable: boolean;
  hasObjects: boolean;
  hasVersionFunction: boolean;
}

async function probe(client: pg.ClientBase): Promise<SchemaProbe> {
  const [row] = await probeSchema.run(undefined, client);
  if (!row) throw new Error('schema probe returned no row');
  return row;
}

async function schemaVersionOf(client: pg.ClientBase, found: SchemaProbe): Promise<string | null> {
  if (!found.hasVersionFunction) return null;
  const [row] = await getSchemaVersion.run(undefined, client);
  return row?.version ?? null;
}

/** An empty schema `absurd` (say, created by a DBA to hold grants) counts as not installed. */
function isForeign(found: SchemaProbe): boolean {
  return found.hasSchema && !found.hasTrackingTable && found.hasObjects;
}

async function readApplied(client: pg.ClientBase): Promise<AppliedMigration[]> {
  return listAppliedMigrations.run(undefined, client);
}

async function readStatus(client: pg.ClientBase, migrations: readonly Migration[]): Promise<SchemaStatus> {
  const found = await probe(client);
  if (!found.hasTrackingTable) {
    return isForeign(found) ? { state: 'foreign', schemaVersion: await schemaVersionOf(client, found) } : { state: 'not-installed' };
  }
  const applied = await readApplied(client);
  const schemaVersion = await schemaVersionOf(client, found);
  const known = new Map(migrations.map((m) => [m.version, m]));
  verifyChecksums(applied, known);
  const unknown = applied.filter((m) => !known.has(m.version));
  if (unknown.length > 0) return { state: 'newer', schemaVersion, applied, unknown };
  const done = new Set(applied.map((m) => m.version));
  const pending = migrations.filter((m) => !done.has(m.version)).map(toRef);
  return pending.length > 0 ? { state: 'outdated', schemaVersion, applied, pending } : { state: 'current', schemaVersion, applied };
}

function verifyChecksums(applied: readonly AppliedMigration[], known: ReadonlyMap<number, Migration>): void {
  for (const row of applied) {
    const bundled = known.get(row.version);
    if (bundled && bundled.checksum !== row.checksum) throw new MigrationChecksumError(row, row.checksum, bundled.checksum);
  }
}

async function applyPending(
  client: pg.ClientBase,
  migrations: readonly Migration[],
  pending: readonly MigrationRef[],
  onMigration: ((migration: MigrationRef) => void) | undefined,
): Promise<MigrationRef[]> {
  const byVersion = new Map(migrations.map((m) => [m.version, m]));
  const applied: MigrationRef[] = [];
  for (const ref of pending) {
    const migration = byVersion.get(ref.version);
    if (!migration) continue;
    if (await applyOne(client, migration, byVersion, onMigration)) applied.push(toRef(migration));
  }
  return applied;
}

/**
 * Applies one migration in its own transaction; returns false when another migrator applied it
 * while this one waited for the lock.
 */
async function applyOne(
  client: pg.ClientBase,
  migration: Migration,
  known: ReadonlyMap<number, Migration>,
  onMigration: ((migration: MigrationRef) => void) | undefined,
): Promise<boolean> {
  await beginTransaction.run(undefined, client);
  try {
    // Transaction-level lock: released by commit/rollback, so a crash can never leave it held.
    // Everything below is decided after acquiring it, from a fresh read-committed snapshot, so a
    // migrator that waited sees what the previous holder committed.
    await lockMigrations.run({ key: MIGRATION_LOCK_KEY }, client);
    const found = await probe(client);
    if (isForeign(found)) throw new SchemaForeignError(await schemaVersionOf(client, found));
    if (!found.hasTrackingTable) await client.query(CREATE_TRACKING_TABLE_SQL);
    const applied = await readApplied(client);
    verifyChecksums(applied, known);
    const unknown = applied.filter((m) => !known.has(m.version));
    if (unknown.length > 0) throw new SchemaTooNewError(unknown);
    if (applied.some((m) => m.version === migration.version)) {
      await rollbackTransaction.run(undefined, client);
      return false;
    }
    onMigration?.(toRef(migration));
    // Record first: should the lock ever be bypassed (say, a hand-run install script), a second
    // migrator fails on the primary key before running any of the migration's SQL.
    await recordMigration.run(
      { version: migration.version, name: migration.name, checksum: migration.checksum },
      client,
    );
    try {
      await client.query(migration.sql);
    } catch (error) {
      throw new MigrationFailedError(migration, error);
    }
    await commitTransaction.run(undefined, client);
    return true;
  } catch (error) {
    await rollbackTransaction.run(undefined, client).catch(() => {});
    throw error;
  }
}

function toRef(migration: MigrationRef): MigrationRef {
  return { version: migration.version, name: migration.name };
}
