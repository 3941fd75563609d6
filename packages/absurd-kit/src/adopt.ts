/**
 * Adopting in place a schema `absurd` that Absurd installed (contract level `main`), for
 * `migrate(db, { adopt: true })`: absurd-kit's function bodies replace Absurd's (same names,
 * arguments and results: compatible by contract), absurd-kit's own functions and per-queue indexes
 * are added, and its tracking table records every bundled migration. One transaction under the
 * migration lock; no queue, task, run, checkpoint, event or wait is touched.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import {
  ADOPTABLE_SCHEMA_VERSION,
  CONTRACT_FUNCTIONS,
  MAX_QUEUE_NAME_BYTES,
  QUEUES_COLUMNS,
  QUEUE_TABLE_COLUMNS,
  adoptionSql,
  functionsDefinedBy,
  type ContractColumn,
  type QueueTablePrefix,
} from './engine/adoption.js';
import type { Migration, MigrationRef } from './engine/migration.js';
import { CREATE_TRACKING_TABLE_SQL, MIGRATION_LOCK_KEY, TRACKING_TABLE } from './engine/tracking.js';
import { MigrationFailedError, SchemaNotAdoptableError } from './errors.js';
import {
  listAbsurdFunctions,
  listAbsurdRelations,
  listAdoptedQueues,
  listKitQueueIndexes,
  listQueueTableLocks,
  lockQueueRegistry,
  releaseAdoptionLocks,
  rollbackToAdoptionLocks,
  savepointAdoptionLocks,
  setLockTimeout,
  showLockTimeout,
  type IListAbsurdFunctionsResult,
  type IListAbsurdRelationsResult,
} from './queries/adoption.queries.js';
import {
  beginTransaction,
  commitTransaction,
  getSchemaVersion,
  lockMigrations,
  probeSchema,
  recordMigration,
  rollbackTransaction,
} from './queries/migrations.queries.js';

/** A queue of the adopted schema. */
export interface AdoptedQueue {
  readonly name: string;
  readonly storageMode: string;
}

/** An index that adoption adds to an existing queue. */
export interface AdoptionIndex {
  readonly queue: string;
  /** The table it indexes, e.g. `r_orders`. */
  readonly table: string;
  /** Its name, e.g. `r_orders_cai`. */
  readonly name: string;
}

/** What adopting a schema installed by Absurd did (with `dryRun`: would do). */
export interface AdoptionReport {
  /** The contract level found: always `main`. */
  readonly schemaVersion: string;
  /** Every queue of the schema; none of their rows is changed. */
  readonly queues: readonly AdoptedQueue[];
  /** Absurd's functions that take absurd-kit's body, e.g. `absurd.claim_task(text, text, integer, integer)`. */
  readonly replacedFunctions: readonly string[];
  /** Functions the schema did not have, e.g. `absurd.kit_claim_task`. */
  readonly addedFunctions: readonly string[];
  /** absurd-kit's indexes created on the existing queues (partitions included). */
  readonly indexes: readonly AdoptionIndex[];
  /** The tracking table created, recording every bundled migration as applied. */
  readonly trackingTable: string;
}

/** Options of {@link adoptSchema}. */
export interface AdoptOptions {
  dryRun?: boolean | undefined;
  onMigration?: ((migration: MigrationRef) => void) | undefined;
  /** Called before each index is built (the part that can take long on a large queue). */
  onIndex?: ((index: AdoptionIndex) => void) | undefined;
  /** Seconds to keep trying to lock the queue tables while workers write to them (default 30). */
  lockWait?: number | undefined;
}

/** What {@link adoptSchema} returns. */
export interface AdoptResult {
  readonly applied: readonly MigrationRef[];
  readonly adoption: AdoptionReport;
}

/** How long one attempt waits for a table lock: well below the default deadlock_timeout (1 s). */
const LOCK_ATTEMPT_TIMEOUT = '200ms';
const DEFAULT_LOCK_WAIT_SECONDS = 30;

/**
 * Adopts the foreign schema `absurd` of `client`'s database (with `dryRun`, only plans it).
 * Returns null when, once it held the migration lock, the schema was no longer foreign (another
 * process adopted it meanwhile); the caller then treats the database as absurd-kit's own.
 *
 * Locks, in this order: the migration advisory lock; SHARE on absurd.queues (no queue is created
 * or dropped meanwhile); ACCESS EXCLUSIVE on each queue's r_ table (migrations 000016 and 000028
 * add columns to it) and on its t_ table (migration 000028 drops indexes of it): every use of the
 * runs and tasks waits until the commit, partitions included. Table locks are taken with a short
 * lock_timeout and retried from a savepoint, so that when the adoption and a worker's transaction
 * wait for each other it is the adoption that gives way, never the worker.
 *
 * @example
 * const result = await adoptSchema(client, engineMigrations, { dryRun: true });
 */
export async function adoptSchema(
  client: pg.ClientBase,
  migrations: readonly Migration[],
  options: AdoptOptions = {},
): Promise<AdoptResult | null> {
  const applied = migrations.map(({ version, name }) => ({ version, name }));
  if (options.dryRun) return { applied, adoption: toReport(await inspect(client, migrations)) };

  await beginTransaction.run(undefined, client);
  try {
    await lockMigrations.run({ key: MIGRATION_LOCK_KEY }, client);
    const [found] = await probeSchema.run(undefined, client);
    if (!found || found.hasTrackingTable || !found.hasSchema) {
      await rollbackTransaction.run(undefined, client);
      return null;
    }
    // Refuse before locking anything; then look again under the locks, where nothing can change.
    await inspect(client, migrations);
    await lockQueueTables(client, options.lockWait ?? DEFAULT_LOCK_WAIT_SECONDS);
    const plan = await inspect(client, migrations);

    await client.query(CREATE_TRACKING_TABLE_SQL);
    for (const migration of migrations) {
      options.onMigration?.({ version: migration.version, name: migration.name });
      await recordMigration.run({ version: migration.version, name: migration.name, checksum: migration.checksum }, client);
      try {
        await client.query(adoptionSql(migration));
      } catch (error) {
        throw new MigrationFailedError(migration, error);
      }
    }
    for (const { index, statement } of plan.indexStatements) {
      options.onIndex?.(index);
      await client.query(statement);
    }
    await commitTransaction.run(undefined, client);
    return { applied, adoption: toReport(plan) };
  } catch (error) {
    await rollbackTransaction.run(undefined, client).catch(() => {});
    throw error;
  }
}

interface Plan extends AdoptionReport {
  readonly indexStatements: readonly { readonly index: AdoptionIndex; readonly statement: string }[];
}

function toReport(plan: Plan): AdoptionReport {
  const { indexStatements: _statements, ...report } = plan;
  return report;
}

/** Reads the schema and works out what adoption does; throws {@link SchemaNotAdoptableError}. */
async function inspect(client: pg.ClientBase, migrations: readonly Migration[]): Promise<Plan> {
  const [found] = await probeSchema.run(undefined, client);
  const schemaVersion = found?.hasVersionFunction ? ((await getSchemaVersion.run(undefined, client))[0]?.version ?? null) : null;
  if (schemaVersion !== ADOPTABLE_SCHEMA_VERSION) throw wrongLevel(schemaVersion);

  const relations = new Map((await listAbsurdRelations.run(undefined, client)).map((r) => [r.name, r]));
  const differences: string[] = [];
  for (const name of relations.keys()) {
    if (name.startsWith('kit_')) differences.push(`${quoted(name)} exists: part of absurd-kit is installed already`);
  }

  const registry = relations.get('queues');
  if (registry === undefined) differences.push('table absurd.queues is missing');
  else checkTable(registry, 'absurd.queues', QUEUES_COLUMNS, differences);
  // The queues can be listed (and checked in turn) as long as their names and modes can be read.
  const registryUsable =
    registry !== undefined &&
    (registry.kind === 'r' || registry.kind === 'p') &&
    hasColumn(registry, 'queue_name', 'text') &&
    hasColumn(registry, 'storage_mode', 'text');
  const queues = registryUsable ? await listAdoptedQueues.run(undefined, client) : [];
  for (const queue of queues) checkQueue(queue, relations, differences);

  const functions = checkFunctions(await listAbsurdFunctions.run(undefined, client), migrations, differences);

  const indexStatements: Plan['indexStatements'][number][] = [];
  if (registryUsable) {
    for (const row of await listKitQueueIndexes.run(undefined, client)) {
      if (row.exists || !relations.has(row.table)) continue;
      if (row.nameTaken) {
        differences.push(`${quoted(row.index)} exists but is not an index of ${quoted(row.table)}`);
        continue;
      }
      indexStatements.push({ index: { queue: row.queue, table: row.table, name: row.index }, statement: row.statement });
    }
  }

  if (differences.length > 0) {
    const shown = differences.slice(0, 5).join('; ') + (differences.length > 5 ? `; and ${differences.length - 5} more` : '');
    throw new SchemaNotAdoptableError(
      'schema-differs',
      schemaVersion,
      differences,
      `cannot adopt schema "absurd": it differs from the schema Absurd installs at contract level '${ADOPTABLE_SCHEMA_VERSION}' — ${shown}`,
    );
  }
  return {
    schemaVersion,
    queues: queues.map((q) => ({ name: q.name, storageMode: q.storageMode })),
    ...functions,
    indexes: indexStatements.map((s) => s.index),
    trackingTable: TRACKING_TABLE,
    indexStatements,
  };
}

function wrongLevel(schemaVersion: string | null): SchemaNotAdoptableError {
  const found =
    schemaVersion === null
      ? 'it has no get_schema_version() function, so its contract level is unknown'
      : `its contract level is '${schemaVersion}' (get_schema_version())`;
  return new SchemaNotAdoptableError(
    'contract-level',
    schemaVersion,
    [found],
    `cannot adopt schema "absurd": ${found}, and absurd-kit adopts only level '${ADOPTABLE_SCHEMA_VERSION}' — bring it to '${ADOPTABLE_SCHEMA_VERSION}' with Absurd's own \`absurdctl migrate\` first`,
  );
}

/** `absurd."t_it's"`: a relation of schema absurd as a message shows it. */
function quoted(relation: string): string {
  return `absurd."${relation.replaceAll('"', '""')}"`;
}

function hasColumn(relation: IListAbsurdRelationsResult, column: string, type: string): boolean {
  const at = relation.columnNames.indexOf(column);
  return at >= 0 && relation.columnTypes[at] === type;
}

/** Checks that a table has the contract's columns with their types; false (with differences) if not. */
function checkTable(
  relation: IListAbsurdRelationsResult,
  label: string,
  required: readonly ContractColumn[],
  differences: string[],
): boolean {
  if (relation.kind !== 'r' && relation.kind !== 'p') {
    differences.push(`${label} is not a table (relkind ${relation.kind})`);
    return false;
  }
  let usable = true;
  for (const [column, type] of required) {
    const at = relation.columnNames.indexOf(column);
    if (at < 0) {
      differences.push(`${label} has no column ${column} (${type})`);
      usable = false;
    } else if (relation.columnTypes[at] !== type) {
      differences.push(`${label}.${column} is ${relation.columnTypes[at]}, not ${type}`);
      usable = false;
    }
  }
  return usable;
}

function checkQueue(
  queue: { name: string; storageMode: string; bytes: number },
  relations: ReadonlyMap<string, IListAbsurdRelationsResult>,
  differences: string[],
): void {
  const label = `queue ${JSON.stringify(queue.name)}`;
  if (queue.bytes > MAX_QUEUE_NAME_BYTES) {
    differences.push(
      `${label}: its name has ${queue.bytes} bytes, more than ${MAX_QUEUE_NAME_BYTES}, so its index names would be cut short — drop it with absurd.drop_queue or move its tasks to a queue with a shorter name`,
    );
    return;
  }
  const prefixes: QueueTablePrefix[] = queue.storageMode === 'partitioned' ? ['t', 'r', 'c', 'e', 'w', 'i'] : ['t', 'r', 'c', 'e', 'w'];
  for (const prefix of prefixes) {
    const name = `${prefix}_${queue.name}`;
    const relation = relations.get(name);
    if (!relation) {
      differences.push(`${label}: table ${quoted(name)} is missing`);
      continue;
    }
    checkTable(relation, `${label}: ${quoted(name)}`, QUEUE_TABLE_COLUMNS[prefix], differences);
    if ((prefix === 'r' || prefix === 't') && !relation.owned) {
      differences.push(`${label}: ${quoted(name)} belongs to role "${relation.owner}" — adopt as that role (or a member of it) to index it`);
    }
  }
}

/**
 * Compares the schema's functions with the contract and with the functions the migrations define:
 * a contract function must keep its exact signature (else `create or replace` would fail, or add an
 * overload that makes the SDKs' untyped calls ambiguous); a function absurd-kit adds must not exist.
 */
function checkFunctions(
  existing: readonly IListAbsurdFunctionsResult[],
  migrations: readonly Migration[],
  differences: string[],
): Pick<AdoptionReport, 'replacedFunctions' | 'addedFunctions'> {
  const ours = new Set(functionsDefinedBy(migrations));
  const contractNames = new Set(CONTRACT_FUNCTIONS.map((f) => f.name));
  const replaced: string[] = [];
  const present = new Set<string>();
  for (const fn of existing) {
    const signature = `absurd.${fn.name}(${fn.types})`;
    if (contractNames.has(fn.name)) {
      const expected = CONTRACT_FUNCTIONS.find((c) => c.name === fn.name && c.arguments === fn.arguments);
      if (!expected) {
        const wanted = CONTRACT_FUNCTIONS.filter((c) => c.name === fn.name).map((c) => `(${c.arguments})`).join(' or ');
        differences.push(`absurd.${fn.name}(${fn.arguments}) does not have the contract's arguments ${wanted}`);
      } else if (fn.kind !== 'f' || fn.result !== expected.result || fn.defaults > expected.defaults) {
        differences.push(`absurd.${fn.name}(${fn.arguments}) returns ${fn.result || fn.kind}, not ${expected.result}`);
      } else if (!fn.owned) {
        differences.push(`${signature} belongs to role "${fn.owner}" — adopt as that role (or a member of it) to replace it`);
      } else {
        replaced.push(signature);
        present.add(`${fn.name}(${fn.arguments})`);
      }
    } else if (ours.has(fn.name) || fn.name.startsWith('kit_')) {
      differences.push(`${signature} exists: part of absurd-kit is installed already`);
    }
  }
  const added: string[] = [];
  for (const name of ours) {
    const overloads = CONTRACT_FUNCTIONS.filter((c) => c.name === name);
    if (overloads.length === 0) added.push(`absurd.${name}`);
    for (const c of overloads) if (!present.has(`${c.name}(${c.arguments})`)) added.push(`absurd.${c.name}(${c.arguments})`);
  }
  return { replacedFunctions: replaced, addedFunctions: added };
}

/**
 * Takes the table locks of the adoption (see {@link adoptSchema}), each with a short lock_timeout;
 * when one is not granted in time, releases those already taken, waits a little and starts over,
 * for at most `waitSeconds`.
 */
async function lockQueueTables(client: pg.ClientBase, waitSeconds: number): Promise<void> {
  const [{ value: previous } = { value: '0' }] = await showLockTimeout.run(undefined, client);
  const deadline = Date.now() + waitSeconds * 1000;
  for (let attempt = 1; ; attempt++) {
    let relation = 'queues';
    await savepointAdoptionLocks.run(undefined, client);
    try {
      await setLockTimeout.run({ timeout: LOCK_ATTEMPT_TIMEOUT }, client);
      await lockQueueRegistry.run(undefined, client);
      for (const lock of await listQueueTableLocks.run(undefined, client)) {
        relation = lock.relation;
        await client.query(lock.statement);
      }
      await releaseAdoptionLocks.run(undefined, client);
      await setLockTimeout.run({ timeout: previous }, client);
      return;
    } catch (error) {
      const state = (error as { code?: unknown }).code;
      // 55P03: lock_timeout; 40P01: chosen as a deadlock victim (a low deadlock_timeout).
      if (state !== '55P03' && state !== '40P01') throw error;
      await rollbackToAdoptionLocks.run(undefined, client);
      if (Date.now() >= deadline) {
        throw new SchemaNotAdoptableError(
          'busy',
          ADOPTABLE_SCHEMA_VERSION,
          [`${quoted(relation)} stayed locked`],
          `cannot adopt schema "absurd" now: other transactions kept ${quoted(relation)} locked for ${waitSeconds} s — end long-running transactions on it and run again`,
        );
      }
      await sleep(Math.min(1000, 25 * attempt) + Math.random() * 50);
    }
  }
}
