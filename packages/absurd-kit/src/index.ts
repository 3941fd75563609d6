/**
 * absurd-kit: durable execution for TypeScript on PostgreSQL alone.
 *
 * The public entry: what a worker, a producer or a deploy script uses, and nothing else. The test
 * `test/runtime/public-api.test.ts` pins this list.
 *
 * @example
 * import { Absurd } from 'absurd-kit';
 * const app = new Absurd({ queueName: 'orders' });
 */

// The client: registering handlers, spawning, events, results, queues, workers.
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
export type { CancellationPolicy, RetryStrategy, SpawnManyItem, SpawnOptions } from './spawn-options.js';
export type {
  CreateQueueOptions,
  QueueDetachMode,
  QueuePolicy,
  QueuePolicyOptions,
  QueueStorageMode,
} from './queue-admin.js';
export { validateQueueName } from './queue-name.js';
export type { Queryable } from './queryable.js';
export type { JsonObject, JsonValue } from './json.js';

// Results of tasks.
export { taskHandle } from './task-result.js';
export type {
  AwaitedSnapshot,
  SpawnResult,
  TaskHandle,
  TaskResultSnapshot,
  TaskResultState,
  TypedTaskResultSnapshot,
} from './task-result.js';

// Inside a task.
export { TaskContext } from './task-context.js';
export { getCurrentContext } from './current-context.js';
export type { AwaitAllOptions, AwaitEventOptions, ChildSpawnOptions, ClaimedTask, ContextAwaitTaskResultOptions, StepHandle, WaitResume } from './types.js';
export { CancelledTask, FailedTask, LeaseLost, SuspendTask, WorkerClosed, isControlFlowSignal } from './signals.js';

// Workers.
export type { Worker, WorkerCloseOptions, WorkerOptions } from './worker.js';
export { closeOnSignals } from './shutdown.js';
export type { Closable, CloseOnSignalsOptions } from './shutdown.js';

// Contracts.
export { defineEvent, defineTask, isEventContract, isTaskContract } from './define.js';
export type {
  DefineTaskOptions,
  EventContract,
  Input,
  Output,
  ParamsKeyPath,
  ParamsOf,
  PayloadOf,
  ResultOf,
  Schema,
  StepSchemas,
  StepsOf,
  TaskConcurrency,
  TaskContract,
  TaskDefaults,
  TaskRateLimit,
} from './define.js';

// Schedules: declared next to the contracts, applied by a worker or `absurd schedules sync`.
export { defineSchedule, isScheduleContract } from './define-schedule.js';
export type { CatchUpPolicy, DefineScheduleOptions, ScheduleContract, ScheduleSpawnOptions } from './define-schedule.js';
export type { ScheduleInfo, ScheduleInput } from './schedules.js';
// Flow control: concurrency and rate limits (Absurd#setLimit, removeLimit, listLimits).
export type { LimitOptions, QueueLimit, RateLimitOptions } from './limits.js';

// The engine schema: installing, upgrading, checking.
export { assertSchemaCurrent, initSchema, latestVersion, migrate, schemaStatus } from './migrate.js';
export type {
  AppliedMigration,
  InitResult,
  MigrateOptions,
  MigrateResult,
  SchemaOptions,
  SchemaStatus,
} from './migrate.js';
export type { AdoptedQueue, AdoptionIndex, AdoptionReport } from './adopt.js';
export { installScript } from './engine/install-script.js';
export { migrations as engineMigrations } from './engine/migrations.generated.js';
export { migrationLabel } from './engine/migration.js';
export type { Migration, MigrationRef } from './engine/migration.js';

// Connecting.
export type { DatabaseConnection } from './db.js';
export { redactDatabaseUrl, resolveDatabaseUrl } from './config.js';
export type { DatabaseUrlOptions, Environment } from './config.js';

// Errors: every class a public function throws.
export {
  AbsurdError,
  AwaitedTaskFailedError,
  DatabaseUnreachableError,
  InvalidLimitError,
  MigrationChecksumError,
  MigrationFailedError,
  ScheduleError,
  SchemaForeignError,
  SchemaMissingError,
  SchemaNotAdoptableError,
  SchemaOutdatedError,
  SchemaTooNewError,
  TimeoutError,
  ValidationError,
  isAbsurdError,
} from './errors.js';
export type { NotAdoptableReason, ScheduleErrorCode, ValidationBoundary, ValidationIssue } from './errors.js';
