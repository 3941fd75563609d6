/**
 * absurd-kit: durable execution for TypeScript on PostgreSQL alone.
 *
 * @example
 * import { Absurd } from 'absurd-kit';
 * const app = new Absurd({ queueName: 'orders' });
 */
export { Absurd } from './client.js';
export type {
  AbsurdHooks,
  AbsurdOptions,
  AwaitTaskResultOptions,
  ContractHandler,
  FetchTaskResultOptions,
  RetryTaskOptions,
  TaskHandler,
  TaskRegistrationOptions,
} from './client-options.js';
export { TaskContext } from './task-context.js';
export { getCurrentContext } from './current-context.js';
export type {
  AwaitEventOptions,
  ClaimedTask,
  ContextAwaitTaskResultOptions,
  ExecuteOptions,
  Log,
  NoSteps,
  StepHandle,
  TaskRef,
} from './types.js';
export type { Worker, WorkerCloseOptions, WorkerOptions } from './worker.js';
export { closeOnSignals } from './shutdown.js';
export type { Closable, CloseOnSignalsOptions } from './shutdown.js';
export { serializeError } from './execute-task.js';
export type { JsonObject, JsonValue } from './json.js';
export type { Queryable } from './queryable.js';
export type {
  CreateQueueOptions,
  QueueDetachMode,
  QueuePolicy,
  QueuePolicyOptions,
  QueueStorageMode,
} from './queue-admin.js';
export type { CancellationPolicy, RetryStrategy, SpawnOptions } from './spawn-options.js';
export { taskHandle } from './task-result.js';
export type {
  SpawnResult,
  TaskHandle,
  TaskResultSnapshot,
  TaskResultState,
  TypedTaskResultSnapshot,
} from './task-result.js';
export { defineEvent, defineTask, isEventContract, isTaskContract } from './define.js';
export type {
  DefineTaskOptions,
  EventContract,
  Input,
  Output,
  ParamsOf,
  PayloadOf,
  ResultOf,
  Schema,
  StepSchemas,
  StepsOf,
  TaskContract,
  TaskDefaults,
} from './define.js';
export { CancelledTask, FailedTask, SuspendTask, isControlFlowSignal } from './signals.js';
export { assertSchemaCurrent, initSchema, latestVersion, migrate, schemaStatus } from './migrate.js';
export type {
  AppliedMigration,
  InitResult,
  MigrateOptions,
  MigrateResult,
  SchemaOptions,
  SchemaStatus,
} from './migrate.js';
export { installScript } from './engine/install-script.js';
export { migrations as engineMigrations } from './engine/migrations.generated.js';
export { migrationLabel } from './engine/migration.js';
export type { Migration, MigrationRef } from './engine/migration.js';
export type { DatabaseConnection } from './db.js';
export { redactDatabaseUrl, resolveDatabaseUrl } from './config.js';
export type { DatabaseUrlOptions, Environment } from './config.js';
export {
  AbsurdError,
  DatabaseUnreachableError,
  MigrationChecksumError,
  MigrationFailedError,
  SchemaForeignError,
  SchemaMissingError,
  SchemaOutdatedError,
  SchemaTooNewError,
  TimeoutError,
  ValidationError,
  isAbsurdError,
} from './errors.js';
export type { ValidationBoundary, ValidationIssue } from './errors.js';
export { validateQueueName } from './queue-name.js';
export { wakeChannel } from './notify.js';
