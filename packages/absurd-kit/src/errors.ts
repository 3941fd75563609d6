/**
 * Every error absurd-kit throws on purpose. Each carries a stable `code`: match on it (or on the
 * class), never on message text. Messages say what happened, to what, and what to do next.
 */
import { redactDatabaseUrl } from './config.js';
import { migrationLabel, type MigrationRef } from './engine/migration.js';

/**
 * Base class of absurd-kit's errors.
 *
 * @example
 * try { await migrate(url); } catch (error) {
 *   if (error instanceof AbsurdError && error.code === 'SCHEMA_FOREIGN') process.exitCode = 1;
 * }
 */
export class AbsurdError extends Error {
  /** Stable machine-readable code, e.g. `DATABASE_UNREACHABLE`. */
  readonly code: string;

  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/**
 * True when `error` is an {@link AbsurdError}, optionally with the given code.
 *
 * @example
 * if (isAbsurdError(error, 'SCHEMA_MISSING')) console.error('run `absurd init` first');
 */
export function isAbsurdError(error: unknown, code?: string): error is AbsurdError {
  return error instanceof AbsurdError && (code === undefined || error.code === code);
}

/**
 * The database could not be reached or refused the login. `url` never contains the password.
 *
 * @example
 * try { await migrate(url); }
 * catch (error) { if (error instanceof DatabaseUnreachableError) console.error(`is ${error.url} up?`); }
 */
export class DatabaseUnreachableError extends AbsurdError {
  declare readonly code: 'DATABASE_UNREACHABLE';
  /** The database URL with its password redacted. */
  readonly url: string;

  constructor(url: string, cause: unknown) {
    const safeUrl = redactDatabaseUrl(url);
    super(
      'DATABASE_UNREACHABLE',
      `cannot connect to ${safeUrl}: ${describeCause(cause)} — check --database-url or ABSURD_DATABASE_URL`,
      { cause },
    );
    this.url = safeUrl;
  }
}

/**
 * Schema `absurd` is not installed in the database.
 *
 * @example
 * try { await assertSchemaCurrent(pool); }
 * catch (error) { if (error instanceof SchemaMissingError) await initSchema(pool); else throw error; }
 */
export class SchemaMissingError extends AbsurdError {
  declare readonly code: 'SCHEMA_MISSING';

  constructor() {
    super('SCHEMA_MISSING', 'schema "absurd" is not installed in this database — run `absurd init`');
  }
}

/**
 * The database lacks migrations that this package has.
 *
 * @example
 * try { await assertSchemaCurrent(pool); }
 * catch (error) { if (error instanceof SchemaOutdatedError) console.error(`pending: ${error.pending.length}`); }
 */
export class SchemaOutdatedError extends AbsurdError {
  declare readonly code: 'SCHEMA_OUTDATED';
  /** The migrations not yet applied, in order. */
  readonly pending: readonly MigrationRef[];

  constructor(pending: readonly MigrationRef[]) {
    super(
      'SCHEMA_OUTDATED',
      `schema "absurd" is missing ${pending.length} migration(s) (${listMigrations(pending)}) — run \`absurd migrate\``,
    );
    this.pending = pending;
  }
}

/**
 * The database has migrations this package does not know: the package is older than the schema.
 *
 * @example
 * try { await migrate(url); }
 * catch (error) { if (error instanceof SchemaTooNewError) console.error('deploy a newer absurd-kit'); }
 */
export class SchemaTooNewError extends AbsurdError {
  declare readonly code: 'SCHEMA_TOO_NEW';
  /** The applied migrations unknown to this package. */
  readonly unknown: readonly MigrationRef[];

  constructor(unknown: readonly MigrationRef[]) {
    super(
      'SCHEMA_TOO_NEW',
      `schema "absurd" has migration(s) this version of absurd-kit does not know (${listMigrations(unknown)}) — upgrade absurd-kit`,
    );
    this.unknown = unknown;
  }
}

/**
 * Schema `absurd` exists but was not installed by absurd-kit (for example by Absurd's own
 * `absurdctl init`); absurd-kit changes it only when asked to adopt it (`migrate(db, { adopt: true })`).
 *
 * @example
 * try { await migrate(url); }
 * catch (error) { if (error instanceof SchemaForeignError) console.error(`found ${error.schemaVersion}`); }
 */
export class SchemaForeignError extends AbsurdError {
  declare readonly code: 'SCHEMA_FOREIGN';
  /** What `absurd.get_schema_version()` returned, or null when the function does not exist. */
  readonly schemaVersion: string | null;

  constructor(schemaVersion: string | null) {
    const version = schemaVersion === null ? 'no get_schema_version()' : `get_schema_version() = '${schemaVersion}'`;
    const next =
      schemaVersion === 'main'
        ? 'run `absurd migrate --adopt` to adopt it in place, keeping its queues and tasks'
        : "absurd-kit adopts only Absurd's contract level 'main': bring it there with Absurd's `absurdctl migrate`, then run `absurd migrate --adopt`";
    super('SCHEMA_FOREIGN', `schema "absurd" exists but was not installed by absurd-kit (${version}) — ${next}`);
    this.schemaVersion = schemaVersion;
  }
}

/** Why a schema cannot be adopted. */
export type NotAdoptableReason = 'contract-level' | 'schema-differs' | 'busy';

/**
 * Adoption refused; nothing was changed. `reason` says why: the schema is at another contract
 * level than `main` (or has no `get_schema_version()`), it differs from the schema Absurd installs
 * (each difference in `differences`), or its queue tables stayed locked by other transactions.
 *
 * @example
 * try { await migrate(url, { adopt: true }); }
 * catch (error) { if (error instanceof SchemaNotAdoptableError) console.error(error.differences); }
 */
export class SchemaNotAdoptableError extends AbsurdError {
  declare readonly code: 'SCHEMA_NOT_ADOPTABLE';
  readonly reason: NotAdoptableReason;
  /** What `absurd.get_schema_version()` returned, or null when the function does not exist. */
  readonly schemaVersion: string | null;
  /** What stands in the way, one fact per entry. */
  readonly differences: readonly string[];

  constructor(reason: NotAdoptableReason, schemaVersion: string | null, differences: readonly string[], message: string) {
    super('SCHEMA_NOT_ADOPTABLE', `${message}; nothing was changed`);
    this.reason = reason;
    this.schemaVersion = schemaVersion;
    this.differences = differences;
  }
}

/**
 * An applied migration's recorded checksum differs from the same migration in this package.
 *
 * @example
 * try { await migrate(url); }
 * catch (error) { if (error instanceof MigrationChecksumError) console.error(migrationLabel(error.migration)); }
 */
export class MigrationChecksumError extends AbsurdError {
  declare readonly code: 'MIGRATION_CHECKSUM_MISMATCH';
  readonly migration: MigrationRef;

  constructor(migration: MigrationRef, recorded: string, bundled: string) {
    super(
      'MIGRATION_CHECKSUM_MISMATCH',
      `migration ${migrationLabel(migration)} was applied with checksum ${recorded.slice(0, 12)}… but this package has ${bundled.slice(0, 12)}…; applied migrations must never change — restore the original file and put the change in a new migration`,
    );
    this.migration = migration;
  }
}

/**
 * A migration's SQL failed; its transaction was rolled back and nothing of it was recorded.
 *
 * @example
 * try { await migrate(url); }
 * catch (error) { if (error instanceof MigrationFailedError) console.error(error.sqlState, error.cause); }
 */
export class MigrationFailedError extends AbsurdError {
  declare readonly code: 'MIGRATION_FAILED';
  readonly migration: MigrationRef;
  /** The SQLSTATE of the underlying database error, when there is one. */
  readonly sqlState: string | undefined;

  constructor(migration: MigrationRef, cause: unknown) {
    super('MIGRATION_FAILED', `migration ${migrationLabel(migration)} failed: ${describeCause(cause)}`, { cause });
    this.migration = migration;
    this.sqlState = sqlStateOf(cause);
  }
}

/** Why a schedule was refused, as {@link ScheduleError.code}. */
export type ScheduleErrorCode =
  | 'INVALID_CRON'
  | 'UNKNOWN_TIMEZONE'
  | 'SCHEDULE_NOT_FOUND'
  | 'QUEUE_NOT_FOUND'
  | 'INVALID_SCHEDULE'
  | 'SCHEDULES_UNSUPPORTED';

/**
 * A schedule was refused: an invalid cron expression (the message names the field), an unknown
 * time zone, an unknown schedule or queue, an engine without schedules (`SCHEDULES_UNSUPPORTED`:
 * a schema installed by Absurd, or before migration 000015). Thrown by `defineSchedule` at
 * definition and by the client's schedule methods (the engine's SQLSTATEs `AB010`–`AB014`, mapped
 * in the table below). Params a task's contract refuses are a {@link ValidationError} instead.
 *
 * @example
 * try { await app.pauseSchedule('nightly-report'); }
 * catch (error) { if (error instanceof ScheduleError && error.code === 'SCHEDULE_NOT_FOUND') console.error(error.message); }
 */
export class ScheduleError extends AbsurdError {
  declare readonly code: ScheduleErrorCode;

  constructor(code: ScheduleErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}

/** The engine's schedule SQLSTATEs (migration 000015) and the codes they become. */
const SCHEDULE_SQLSTATES: readonly (readonly [string, ScheduleErrorCode])[] = [
  ['AB010', 'INVALID_CRON'],
  ['AB011', 'UNKNOWN_TIMEZONE'],
  ['AB012', 'SCHEDULE_NOT_FOUND'],
  ['AB013', 'QUEUE_NOT_FOUND'],
  ['AB014', 'INVALID_SCHEDULE'],
];

/** What {@link fromDatabaseError} needs to know about where an error happened. */
export interface DatabaseErrorContext {
  /** The database URL in use (redacted before it reaches any message). */
  url?: string | undefined;
}

/**
 * SQLSTATE → absurd-kit error. The single place where database errors become typed errors;
 * add an entry (and a class above) whenever a feature needs to surface a SQLSTATE — the engine's
 * own `AB###` codes and the contract's `P0001` cases included. Unlisted SQLSTATEs pass through
 * unchanged as the driver's error.
 */
const SQLSTATE_ERRORS: ReadonlyMap<string, (cause: unknown, context: DatabaseErrorContext) => AbsurdError> = new Map(
  [
    '08000', // connection_exception
    '08001', // sqlclient_unable_to_establish_sqlconnection
    '08004', // sqlserver_rejected_establishment_of_sqlconnection
    '08006', // connection_failure
    '28000', // invalid_authorization_specification
    '28P01', // invalid_password
    '3D000', // invalid_catalog_name: the database does not exist
    '53300', // too_many_connections
    '57P03', // cannot_connect_now (starting up, shutting down)
  ]
    .map((state): [string, (cause: unknown, context: DatabaseErrorContext) => AbsurdError] => [
      state,
      (cause, context) => new DatabaseUnreachableError(context.url ?? 'the database', cause),
    ])
    .concat(
      SCHEDULE_SQLSTATES.map(([state, code]) => [state, (cause) => new ScheduleError(code, (cause as Error).message, { cause })]),
    ),
);

/**
 * Maps a database error to its absurd-kit error through the SQLSTATE table; returns anything it
 * does not recognise unchanged.
 *
 * @example
 * try { await client.connect(); } catch (error) { throw fromDatabaseError(error, { url }); }
 */
export function fromDatabaseError(error: unknown, context: DatabaseErrorContext = {}): unknown {
  const state = sqlStateOf(error);
  const build = state === undefined ? undefined : SQLSTATE_ERRORS.get(state);
  return build ? build(error, context) : error;
}

/** The SQLSTATE of a node-postgres error (its `code` when that is five characters). */
function sqlStateOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * An error in one line for a log: `Name: first line of its message`, without the stack (network
 * errors may be AggregateErrors without a message: their first error is named instead).
 *
 * @example
 * errorLine(new TypeError('bad\nmore')); // 'TypeError: bad'
 */
export function errorLine(error: unknown): string {
  if (error instanceof AggregateError && error.message === '' && error.errors.length > 0) return errorLine(error.errors[0]);
  if (!(error instanceof Error)) return String(error);
  const message = error.message.split('\n', 1)[0] ?? '';
  return message === '' ? error.name : `${error.name}: ${message}`;
}

/** One line describing an underlying error (network errors may be AggregateErrors without a message). */
function describeCause(cause: unknown): string {
  if (cause instanceof AggregateError && cause.message === '' && cause.errors.length > 0) {
    return describeCause(cause.errors[0]);
  }
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return cause.message || (typeof code === 'string' ? code : cause.name);
  }
  return String(cause);
}

function listMigrations(migrations: readonly MigrationRef[]): string {
  const shown = migrations.slice(0, 5).map(migrationLabel).join(', ');
  return migrations.length > 5 ? `${shown}, …` : shown;
}

/**
 * A wait ran out of time: `awaitTaskResult` on the client or in a task, or `ctx.awaitEvent` with a
 * timeout. Named `TimeoutError` like the `absurd-sdk` class it replaces.
 *
 * @example
 * try { await app.awaitTaskResult(id, { timeout: 30 }); }
 * catch (error) { if (error instanceof TimeoutError) console.log('still running'); }
 */
export class TimeoutError extends AbsurdError {
  declare readonly code: 'TIMEOUT';

  constructor(message: string) {
    super('TIMEOUT', message);
  }
}

/**
 * A concurrency or rate limit that cannot be set: a blank name, a number below 1, a period of 0,
 * an empty key path, neither `maxRunning` nor `rate` (checked before anything is sent; the engine
 * refuses the same with SQLSTATE AB004), or a task contract declaring such a limit.
 *
 * @example
 * try { await app.setLimit('all', { maxRunning: 0 }); }
 * catch (error) { if (error instanceof InvalidLimitError) console.log(error.message); }
 */
export class InvalidLimitError extends AbsurdError {
  declare readonly code: 'INVALID_LIMIT';

  constructor(message: string) {
    super('INVALID_LIMIT', message);
  }
}

/**
 * A task awaited by `ctx.awaitAll` failed or was cancelled (with `failures: 'throw'`, the default).
 * Names the task by its position in the list given, its id and queue, and why it ended.
 *
 * @example
 * try { await ctx.awaitAll(handles); }
 * catch (error) { if (error instanceof AwaitedTaskFailedError) console.log(error.index, error.snapshot); }
 */
export class AwaitedTaskFailedError extends AbsurdError {
  declare readonly code: 'AWAITED_TASK_FAILED';
  /** Position of the task in the list given to `ctx.awaitAll`. */
  readonly index: number;
  readonly taskID: string;
  readonly queue: string;
  /** The task's final snapshot: `failed` with its failure reason, or `cancelled`. */
  readonly snapshot: { state: 'failed' | 'cancelled'; failure?: unknown };

  constructor(index: number, taskID: string, queue: string, snapshot: { state: 'failed' | 'cancelled'; failure?: unknown }) {
    const why = snapshot.state === 'cancelled' ? 'was cancelled' : `failed: ${failureLine(snapshot.failure)}`;
    super('AWAITED_TASK_FAILED', `awaited task ${index} (${taskID} in queue "${queue}") ${why}`);
    this.index = index;
    this.taskID = taskID;
    this.queue = queue;
    this.snapshot = snapshot;
  }
}

/** A stored failure reason on one line: its `message` (and `name`) when it has one, else its JSON. */
function failureLine(failure: unknown): string {
  if (failure && typeof failure === 'object' && 'message' in failure && typeof failure.message === 'string') {
    const name = 'name' in failure && typeof failure.name === 'string' && failure.name !== 'Error' ? `${failure.name}: ` : '';
    return `${name}${failure.message}`;
  }
  return JSON.stringify(failure ?? null);
}

/** One problem found by a schema: where (`amount`, `items[0].sku`) and what. */
export interface ValidationIssue {
  /** Dotted path into the value; empty for the value itself. */
  path: string;
  message: string;
}

/** Where a payload was checked. */
export type ValidationBoundary = 'params' | 'result' | 'step' | 'event';

/**
 * A payload did not match its schema. Thrown to the caller at spawn and emit (nothing is written),
 * raised inside a task where a stored value is read (the task then fails without retry: a retry
 * cannot fix stored data), and when a client reads a result. The message names the subject, the
 * boundary, the path and the received value, each once:
 * `order-fulfillment: params.amount: expected number, received "12"`; `issues` keeps every
 * problem as the validator worded it.
 *
 * @example
 * try { await app.spawn(fulfillOrder, params); }
 * catch (error) { if (error instanceof ValidationError) console.log(error.issues); }
 */
export class ValidationError extends AbsurdError {
  declare readonly code: 'VALIDATION';
  /** The task or event whose schema refused the value. */
  readonly subject: string;
  readonly boundary: ValidationBoundary;
  /** The step or event name for `step` and `event` boundaries. */
  readonly detail: string | undefined;
  readonly issues: readonly ValidationIssue[];
  /** The refused value as JSON text, truncated. */
  readonly received: string;
  /** False where the value is stored data that a retry would read again. */
  readonly retryable: boolean;
  /** The index of the refused item in a bulk spawn (`spawnMany`); undefined elsewhere. */
  readonly item: number | undefined;

  constructor(options: {
    subject: string;
    boundary: ValidationBoundary;
    detail?: string;
    issues: readonly ValidationIssue[];
    received: string;
    retryable: boolean;
    item?: number;
  }) {
    super('VALIDATION', `${options.subject}: ${describeValidation(options)}`);
    this.subject = options.subject;
    this.boundary = options.boundary;
    this.detail = options.detail;
    this.item = options.item;
    this.issues = options.issues;
    this.received = options.received;
    this.retryable = options.retryable;
  }

  /** The failure reason stored for a task that failed on this error. */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      message: this.message,
      code: this.code,
      subject: this.subject,
      boundary: this.boundary,
      detail: this.detail ?? null,
      issues: this.issues.map((issue) => ({ ...issue })),
      received: this.received,
      retryable: this.retryable,
      ...(this.item === undefined ? {} : { item: this.item }),
    };
  }
}

/**
 * Where a value was refused and why, without the subject: the message of a {@link ValidationError}
 * after `<subject>: `, e.g. `params.email: expected string, received undefined`. Each fact is said
 * once: a validator's generic prefix (Zod's `Invalid input: `) is dropped, and so is the end of its
 * message that says what it received (Zod names only the type: `received string`), since the
 * received value follows.
 *
 * @example
 * describeValidation({ boundary: 'params', issues: [{ path: 'amount', message: 'Invalid input: expected number, received string' }], received: '"12"' });
 * // 'params.amount: expected number, received "12"'
 * // with item 2 (a bulk spawn's third item): 'items[2].params.amount: expected number, received "12"'
 */
export function describeValidation(refusal: {
  boundary: ValidationBoundary;
  detail?: string | undefined;
  item?: number | undefined;
  issues: readonly ValidationIssue[];
  received: string;
}): string {
  const site = refusal.detail === undefined ? refusal.boundary : `${refusal.boundary} "${refusal.detail}"`;
  const where = refusal.item === undefined ? site : `items[${refusal.item}].${site}`;
  const [first] = refusal.issues;
  const path = !first?.path ? '' : first.path.startsWith('[') ? first.path : `.${first.path}`;
  const problem = (first?.message ?? 'invalid value')
    .replace(/^invalid (input|type):\s+/i, '')
    .replace(/(,|\s+but)\s+received\s[\s\S]*$/i, '');
  const more = refusal.issues.length > 1 ? ` (and ${refusal.issues.length - 1} more issue(s))` : '';
  return `${where}${path}: ${problem}, received ${refusal.received}${more}`;
}
