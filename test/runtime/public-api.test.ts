/**
 * The runtime's public entry exports exactly these names: values (what `import * as kit` holds at
 * run time) and types. A name added to or removed from packages/absurd-kit/src/index.ts fails here,
 * so that an internal cannot slip into the public API unnoticed: change the lists on purpose.
 */
import { readFile } from 'node:fs/promises';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import * as kit from '../../packages/absurd-kit/src/index.js';

const ENTRY = new URL('../../packages/absurd-kit/src/index.ts', import.meta.url);

const VALUES = [
  'Absurd',
  'AbsurdError',
  'AwaitedTaskFailedError',
  'CancelledTask',
  'DatabaseUnreachableError',
  'FailedTask',
  'InvalidLimitError',
  'LeaseLost',
  'MigrationChecksumError',
  'MigrationFailedError',
  'ScheduleError',
  'SchemaForeignError',
  'SchemaMissingError',
  'SchemaNotAdoptableError',
  'SchemaOutdatedError',
  'SchemaTooNewError',
  'SuspendTask',
  'TaskContext',
  'TimeoutError',
  'ValidationError',
  'WorkerClosed',
  'assertSchemaCurrent',
  'closeOnSignals',
  'defineEvent',
  'defineSchedule',
  'defineTask',
  'engineMigrations',
  'getCurrentContext',
  'initSchema',
  'installScript',
  'isAbsurdError',
  'isControlFlowSignal',
  'isEventContract',
  'isScheduleContract',
  'isTaskContract',
  'latestVersion',
  'migrate',
  'migrationLabel',
  'redactDatabaseUrl',
  'resolveDatabaseUrl',
  'schemaStatus',
  'taskHandle',
  'validateQueueName',
];

const TYPES = [
  'AbsurdHooks',
  'AbsurdOptions',
  'AdoptedQueue',
  'AdoptionIndex',
  'AdoptionReport',
  'AppliedMigration',
  'AwaitAllOptions',
  'AwaitEventOptions',
  'AwaitTaskResultOptions',
  'AwaitedSnapshot',
  'CancellationPolicy',
  'CatchUpPolicy',
  'ChildSpawnOptions',
  'ClaimedTask',
  'Closable',
  'CloseOnSignalsOptions',
  'ContextAwaitTaskResultOptions',
  'ContractHandler',
  'CreateQueueOptions',
  'DatabaseConnection',
  'DatabaseUrlOptions',
  'DefineScheduleOptions',
  'DefineTaskOptions',
  'Environment',
  'EventContract',
  'FetchTaskResultOptions',
  'InitResult',
  'Input',
  'JsonObject',
  'JsonValue',
  'LimitOptions',
  'MigrateOptions',
  'MigrateResult',
  'Migration',
  'MigrationRef',
  'NotAdoptableReason',
  'Output',
  'ParamsKeyPath',
  'ParamsOf',
  'PayloadOf',
  'Queryable',
  'QueueDetachMode',
  'QueueLimit',
  'QueuePolicy',
  'QueuePolicyOptions',
  'QueueStorageMode',
  'RateLimitOptions',
  'ResultOf',
  'RetryStrategy',
  'RetryTaskOptions',
  'ScheduleContract',
  'ScheduleErrorCode',
  'ScheduleInfo',
  'ScheduleInput',
  'ScheduleSpawnOptions',
  'Schema',
  'SchemaOptions',
  'SchemaStatus',
  'SpawnManyItem',
  'SpawnOptions',
  'SpawnResult',
  'StepHandle',
  'StepSchemas',
  'StepsOf',
  'TaskConcurrency',
  'TaskContract',
  'TaskDefaults',
  'TaskHandle',
  'TaskHandler',
  'TaskRateLimit',
  'TaskRegistrationOptions',
  'TaskResultSnapshot',
  'TaskResultState',
  'TypedTaskResultSnapshot',
  'ValidationBoundary',
  'ValidationIssue',
  'WaitResume',
  'Worker',
  'WorkerCloseOptions',
  'WorkerOptions',
];

/** The names index.ts exports, read from its source: every statement must be a named re-export. */
async function declaredExports(): Promise<{ values: string[]; types: string[] }> {
  const source = ts.createSourceFile('index.ts', await readFile(ENTRY, 'utf8'), ts.ScriptTarget.Latest);
  const values: string[] = [];
  const types: string[] = [];
  for (const statement of source.statements) {
    if (!ts.isExportDeclaration(statement) || !statement.exportClause || !ts.isNamedExports(statement.exportClause)) {
      throw new Error(`index.ts may only re-export by name; found: ${statement.getText(source).slice(0, 80)}`);
    }
    for (const element of statement.exportClause.elements) {
      (statement.isTypeOnly || element.isTypeOnly ? types : values).push(element.name.text);
    }
  }
  return { values: values.sort(), types: types.sort() };
}

describe('the public entry (absurd-kit)', () => {
  it('exports exactly these values', () => {
    expect(Object.keys(kit).sort()).toEqual(VALUES);
  });

  it('declares exactly these values and types, each by name', async () => {
    const { values, types } = await declaredExports();
    expect(values).toEqual(VALUES);
    expect(types).toEqual(TYPES);
  });

  it('lists each name once, sorted', () => {
    for (const list of [VALUES, TYPES]) expect([...new Set(list)].sort()).toEqual(list);
  });

  it('exports no internals: no serializer, channel name, log or execution plumbing', () => {
    const names = [...VALUES, ...TYPES];
    for (const internal of ['serializeError', 'wakeChannel', 'Log', 'ExecuteOptions', 'TaskContextRuntime', 'Registration']) {
      expect(names).not.toContain(internal);
    }
  });
});
