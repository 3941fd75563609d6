/*
  Installing and upgrading the engine schema (src/migrate.ts). The migration statements
  themselves are bundled in src/engine/; these read and record what was applied.

  ProbeSchema              what schema `absurd` holds: the schema, absurd-kit's tracking table,
                           any objects, the contract's version function. Works on any database.
  GetSchemaVersion         absurd.get_schema_version(): the Absurd contract level.
  LockMigrations           the transaction-level advisory lock every migrator takes first (`key`:
                           MIGRATION_LOCK_KEY of src/engine/tracking.ts).
  ListAppliedMigrations    the rows of the tracking table, by version.
  RecordMigration          records a migration as applied (before its SQL runs).
  BeginTransaction, CommitTransaction, RollbackTransaction
                           each migration runs in a transaction of its own.
*/

/* @name ProbeSchema */
with ns as (select oid from pg_namespace where nspname = 'absurd')
select exists (select 1 from ns) as "hasSchema!",
       to_regclass('absurd.kit_migrations') is not null as "hasTrackingTable!",
       exists (select 1 from pg_class where relnamespace in (select oid from ns))
         or exists (select 1 from pg_proc where pronamespace in (select oid from ns))
         or exists (select 1 from pg_type where typnamespace in (select oid from ns)) as "hasObjects!",
       to_regprocedure('absurd.get_schema_version()') is not null as "hasVersionFunction!";

/* @name GetSchemaVersion */
select absurd.get_schema_version() as version;

/* @name LockMigrations */
select pg_advisory_xact_lock(:key!::bigint);

/* @name ListAppliedMigrations */
select version, name, checksum, applied_at as "appliedAt" from absurd.kit_migrations order by version;

/* @name RecordMigration */
insert into absurd.kit_migrations (version, name, checksum) values (:version!, :name!, :checksum!);

/* @name BeginTransaction */
begin;

/* @name CommitTransaction */
commit;

/* @name RollbackTransaction */
rollback;
