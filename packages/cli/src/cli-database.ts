/**
 * Database access of the operator commands: one connection per command, a schema check first,
 * queue existence checks, and quoted names of the per-queue tables.
 */
import type pg from 'pg';
import { connectClient } from '../../absurd-kit/src/db.js';
import { SchemaMissingError, SchemaOutdatedError, SchemaTooNewError } from '../../absurd-kit/src/errors.js';
import { schemaStatus } from '../../absurd-kit/src/migrate.js';
import type { QueueStorageMode } from '../../absurd-kit/src/queue-admin.js';
import type { CommandContext } from './cli-command.js';
import { QueueNotFoundError } from './cli-errors.js';

/**
 * Opens one connection to the command's database, checks that the engine schema is there (a
 * schema installed by Absurd's own tools is accepted: these commands use only the shared
 * contract), runs `fn` and closes the connection.
 *
 * Throws `DatabaseUnreachableError`, `SchemaMissingError` ("run `absurd init`"),
 * `SchemaOutdatedError` or `SchemaTooNewError` before `fn` runs.
 *
 * @example
 * await withEngine(context, async (db) => (await db.query('select 1')).rows);
 */
export async function withEngine<T>(context: CommandContext, fn: (db: pg.ClientBase) => Promise<T>): Promise<T> {
  const db = await connectClient(context.databaseUrl());
  try {
    const status = await schemaStatus(db);
    if (status.state === 'not-installed') throw new SchemaMissingError();
    if (status.state === 'outdated') throw new SchemaOutdatedError(status.pending);
    if (status.state === 'newer') throw new SchemaTooNewError(status.unknown);
    return await fn(db);
  } finally {
    await db.end().catch(() => {});
  }
}

/**
 * An SQL identifier in double quotes (queue names may hold quotes, spaces and upper case).
 *
 * @example
 * quoteIdent('t_bad"name'); // '"t_bad""name"'
 */
export function quoteIdent(name: string): string {
  if (name.includes('\0')) throw new Error('an identifier cannot contain a NUL character');
  return `"${name.replaceAll('"', '""')}"`;
}

/** The per-queue tables of the contract (§1.5): tasks, runs, checkpoints, events, waits. */
export type QueueTablePrefix = 't' | 'r' | 'c' | 'e' | 'w';

/**
 * The quoted, schema-qualified name of a queue's table. Only call it with a queue name read back
 * from `absurd.queues` (see {@link requireQueue}), never with unchecked input.
 *
 * @example
 * queueTable('t', 'orders'); // 'absurd."t_orders"'
 */
export function queueTable(prefix: QueueTablePrefix, queue: string): string {
  return `absurd.${quoteIdent(`${prefix}_${queue}`)}`;
}

/**
 * The queue's storage mode; throws {@link QueueNotFoundError} when there is no such queue.
 *
 * @example
 * await requireQueue(db, 'orders'); // 'unpartitioned'
 */
export async function requireQueue(db: pg.ClientBase, queue: string, hint?: string): Promise<QueueStorageMode> {
  const { rows } = await db.query<{ storage_mode: QueueStorageMode }>(
    'select storage_mode from absurd.queues where queue_name = $1',
    [queue],
  );
  const row = rows[0];
  if (!row) throw new QueueNotFoundError(queue, hint);
  return row.storage_mode;
}

/**
 * Every queue name, sorted.
 *
 * @example
 * await queueNames(db); // ['orders', 'receipts']
 */
export async function queueNames(db: pg.ClientBase): Promise<string[]> {
  const { rows } = await db.query<{ queue_name: string }>('select queue_name from absurd.list_queues()');
  return rows.map((row) => row.queue_name);
}
