/**
 * Database access of the operator commands: one connection per command, a schema check first,
 * queue existence checks, the runtime's client on that connection, and running the statements
 * that the CLI's queries build for per-queue tables.
 */
import type pg from 'pg';
import {
  Absurd,
  SchemaMissingError,
  SchemaOutdatedError,
  SchemaTooNewError,
  schemaStatus,
  type AbsurdOptions,
  type QueueStorageMode,
} from 'absurd-kit';
import type { CommandContext } from './cli-command.js';
import { QueueNotFoundError } from './cli-errors.js';
import { connectDatabase } from './database/connect.js';
import { queueStorageMode } from './queries/queues.queries.js';

/**
 * Opens one connection to the command's database, checks that the engine schema is there (a
 * schema installed by Absurd's own tools is accepted: these commands use only the shared
 * contract), runs `fn` and closes the connection.
 *
 * Throws `DatabaseUnreachableError`, `SchemaMissingError` ("run `absurd init`"),
 * `SchemaOutdatedError` or `SchemaTooNewError` before `fn` runs.
 *
 * @example
 * await withEngine(context, async (db) => (await queueRows.run(undefined, db)).length);
 */
export async function withEngine<T>(context: CommandContext, fn: (db: pg.Client) => Promise<T>): Promise<T> {
  const db = await connectDatabase(context.databaseUrl());
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
 * The runtime's client on the command's connection, for what it already does the way every
 * producer does it — spawning, emitting, cancelling, retrying, creating and dropping queues — wake-up
 * notifications and contract checks included. It never owns `db`.
 *
 * @example
 * await engineClient(db).cancelTask(taskID, 'orders');
 */
export function engineClient(db: pg.ClientBase, options: Omit<AbsurdOptions, 'db'> = {}): Absurd {
  return new Absurd({ ...options, db });
}

/**
 * An SQL identifier in double quotes (queue names may hold quotes, spaces and upper case), for
 * messages that name a table the way psql wants it typed.
 *
 * @example
 * quoteIdent('t_bad"name'); // '"t_bad""name"'
 */
export function quoteIdent(name: string): string {
  if (name.includes('\0')) throw new Error('an identifier cannot contain a NUL character');
  return `"${name.replaceAll('"', '""')}"`;
}

/**
 * The queue's storage mode; throws {@link QueueNotFoundError} when there is no such queue.
 *
 * @example
 * await requireQueue(db, 'orders'); // 'unpartitioned'
 */
export async function requireQueue(db: pg.ClientBase, queue: string, hint?: string): Promise<QueueStorageMode> {
  const [row] = await queueStorageMode.run({ queueName: queue }, db);
  if (!row) throw new QueueNotFoundError(queue, hint);
  return row.storage_mode as QueueStorageMode;
}

/**
 * Runs a statement that one of the CLI's queries built for a queue's tables (see
 * `src/queries/tasks.sql`): its text comes from SQL, where every table name was quoted by
 * `format('%I', …)`; `values` are its parameters. `R` is the row shape the query's header
 * documents (these statements are not checked by pgtyped, the queries that build them are).
 *
 * @example
 * const [built] = await taskStateStatement.run({ queueName: 'orders' }, db);
 * const [task] = await runStatement<{ state: string }>(db, built!.statement, [taskID]);
 */
export async function runStatement<R extends object>(db: pg.ClientBase, statement: string, values: readonly unknown[] = []): Promise<R[]> {
  const { rows } = await db.query<R>(statement, [...values]);
  return rows;
}

/**
 * The one row a query returns, or an error naming the query (a query that always returns one row
 * returned none: the engine schema is not what this version expects).
 *
 * @example
 * const built = oneRow(await taskStateStatement.run({ queueName }, db), 'TaskStateStatement');
 */
export function oneRow<R>(rows: readonly R[], query: string): R {
  const row = rows[0];
  if (row === undefined) throw new Error(`${query} returned no row`);
  return row;
}
