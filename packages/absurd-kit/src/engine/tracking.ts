/**
 * The advisory-lock key every migrator takes (with `pg_advisory_xact_lock`) before it touches the
 * schema: the ASCII bytes of `absurd` (0x616273757264) read as one big-endian integer. Fixed
 * forever, so that any two versions of absurd-kit — and the install script — exclude each other.
 *
 * @example
 * await client.query(`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`);
 */
export const MIGRATION_LOCK_KEY = '107075471766116';

/**
 * Qualified name of the table recording which migrations were applied. Absurd's clients never
 * read it; its `kit_` prefix keeps it clear of the per-queue `t_/r_/c_/e_/w_/i_` tables.
 */
export const TRACKING_TABLE = 'absurd.kit_migrations';

/**
 * DDL creating schema `absurd` and the tracking table when missing. Run under the migration lock.
 *
 * @example
 * await client.query(CREATE_TRACKING_TABLE_SQL);
 */
export const CREATE_TRACKING_TABLE_SQL = `create schema if not exists absurd;
create table if not exists ${TRACKING_TABLE} (
  version integer primary key,
  name text not null,
  checksum text not null,
  applied_at timestamptz not null default now()
);
`;
