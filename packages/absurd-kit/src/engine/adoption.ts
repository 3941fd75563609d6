/**
 * What adopting a schema installed by Absurd relies on (`migrate(db, { adopt: true })`, run by
 * `src/adopt.ts`): the contract level it adopts, the tables, columns and function signatures of
 * Absurd's schema at that level (§1.3, §1.5 and §2.0 of the contract), and the migrations'
 * text as adoption runs it. absurd-kit's per-queue indexes are built by
 * `src/queries/adoption.sql`.
 */
import type { Migration } from './migration.js';

/** The only contract level (`absurd.get_schema_version()`) absurd-kit adopts. */
export const ADOPTABLE_SCHEMA_VERSION = 'main';

/** The longest queue name whose derived index names (`r_<q>_cai`) fit in 63 bytes. */
export const MAX_QUEUE_NAME_BYTES = 57;

/** A column the contract requires: its name and its type as `format_type` prints it. */
export type ContractColumn = readonly [name: string, type: string];

const TS = 'timestamp with time zone';

/** The columns of `absurd.queues` that the contract requires (§1.3). */
export const QUEUES_COLUMNS: readonly ContractColumn[] = [
  ['queue_name', 'text'],
  ['created_at', TS],
  ['storage_mode', 'text'],
  ['default_partition', 'text'],
  ['partition_lookahead', 'interval'],
  ['partition_lookback', 'interval'],
  ['cleanup_ttl', 'interval'],
  ['cleanup_limit', 'integer'],
  ['detach_mode', 'text'],
  ['detach_min_age', 'interval'],
];

/** The prefixes of a queue's tables: tasks, runs, checkpoints, events, waits, idempotency keys. */
export type QueueTablePrefix = 't' | 'r' | 'c' | 'e' | 'w' | 'i';

/** The columns of each per-queue table that the contract requires (§1.5); `i_` only when partitioned. */
export const QUEUE_TABLE_COLUMNS: Readonly<Record<QueueTablePrefix, readonly ContractColumn[]>> = {
  t: [
    ['task_id', 'uuid'],
    ['task_name', 'text'],
    ['params', 'jsonb'],
    ['headers', 'jsonb'],
    ['retry_strategy', 'jsonb'],
    ['max_attempts', 'integer'],
    ['cancellation', 'jsonb'],
    ['enqueue_at', TS],
    ['first_started_at', TS],
    ['state', 'text'],
    ['attempts', 'integer'],
    ['last_attempt_run', 'uuid'],
    ['completed_payload', 'jsonb'],
    ['cancelled_at', TS],
    ['idempotency_key', 'text'],
  ],
  r: [
    ['run_id', 'uuid'],
    ['task_id', 'uuid'],
    ['attempt', 'integer'],
    ['state', 'text'],
    ['claimed_by', 'text'],
    ['claim_expires_at', TS],
    ['available_at', TS],
    ['wake_event', 'text'],
    ['event_payload', 'jsonb'],
    ['started_at', TS],
    ['completed_at', TS],
    ['failed_at', TS],
    ['result', 'jsonb'],
    ['failure_reason', 'jsonb'],
    ['created_at', TS],
  ],
  c: [
    ['task_id', 'uuid'],
    ['checkpoint_name', 'text'],
    ['state', 'jsonb'],
    ['status', 'text'],
    ['owner_run_id', 'uuid'],
    ['updated_at', TS],
  ],
  e: [
    ['event_name', 'text'],
    ['payload', 'jsonb'],
    ['emitted_at', TS],
  ],
  w: [
    ['task_id', 'uuid'],
    ['run_id', 'uuid'],
    ['step_name', 'text'],
    ['event_name', 'text'],
    ['timeout_at', TS],
    ['created_at', TS],
  ],
  i: [
    ['idempotency_key', 'text'],
    ['task_id', 'uuid'],
  ],
};

/**
 * A function of the contract (§2.0) as Postgres describes it: `arguments` as
 * `pg_get_function_identity_arguments` prints them, `result` as `pg_get_function_result` does,
 * and how many trailing arguments have defaults. `create or replace function` keeps a function
 * only when its argument names and types and its result stay the same and no default is removed;
 * these are exactly what adoption checks before replacing Absurd's bodies with absurd-kit's.
 */
export interface ContractFunction {
  readonly name: string;
  readonly arguments: string;
  readonly defaults: number;
  readonly result: string;
}

const Q = 'p_queue_name text';
const TASK_ROW = 'TABLE(task_id uuid, run_id uuid, attempt integer, created boolean)';
const CHECKPOINT_ROW = `TABLE(checkpoint_name text, state jsonb, status text, owner_run_id uuid, updated_at ${TS})`;
const JOB_ROW = 'TABLE(job_name text, job_id bigint)';

/** Every function of the contract, each overload on its own (only `create_queue` has two). */
export const CONTRACT_FUNCTIONS: readonly ContractFunction[] = [
  { name: 'current_time', arguments: '', defaults: 0, result: TS },
  { name: 'get_schema_version', arguments: '', defaults: 0, result: 'text' },
  { name: 'validate_queue_name', arguments: Q, defaults: 0, result: 'text' },
  { name: 'ensure_queue_tables', arguments: Q, defaults: 0, result: 'void' },
  { name: 'create_queue', arguments: `${Q}, p_storage_mode text`, defaults: 0, result: 'void' },
  { name: 'create_queue', arguments: Q, defaults: 0, result: 'void' },
  { name: 'drop_queue', arguments: Q, defaults: 0, result: 'void' },
  { name: 'list_queues', arguments: '', defaults: 0, result: 'TABLE(queue_name text)' },
  {
    name: 'get_queue_policy',
    arguments: Q,
    defaults: 0,
    result:
      'TABLE(queue_name text, storage_mode text, default_partition text, partition_lookahead interval, ' +
      'partition_lookback interval, cleanup_ttl interval, cleanup_limit integer, detach_mode text, detach_min_age interval)',
  },
  { name: 'set_queue_policy', arguments: `${Q}, p_policy jsonb`, defaults: 0, result: 'void' },
  {
    name: 'get_task_result',
    arguments: `${Q}, p_task_id uuid`,
    defaults: 0,
    result: 'TABLE(task_id uuid, state text, result jsonb, failure_reason jsonb)',
  },
  { name: 'spawn_task', arguments: `${Q}, p_task_name text, p_params jsonb, p_options jsonb`, defaults: 1, result: TASK_ROW },
  {
    name: 'claim_task',
    arguments: `${Q}, p_worker_id text, p_claim_timeout integer, p_qty integer`,
    defaults: 2,
    result:
      'TABLE(run_id uuid, task_id uuid, attempt integer, task_name text, params jsonb, retry_strategy jsonb, ' +
      'max_attempts integer, headers jsonb, wake_event text, event_payload jsonb)',
  },
  { name: 'complete_run', arguments: `${Q}, p_run_id uuid, p_state jsonb`, defaults: 1, result: 'void' },
  { name: 'schedule_run', arguments: `${Q}, p_run_id uuid, p_wake_at ${TS}`, defaults: 0, result: 'void' },
  { name: 'fail_run', arguments: `${Q}, p_run_id uuid, p_reason jsonb, p_retry_at ${TS}`, defaults: 1, result: 'void' },
  { name: 'retry_task', arguments: `${Q}, p_task_id uuid, p_options jsonb`, defaults: 1, result: TASK_ROW },
  {
    name: 'set_task_checkpoint_state',
    arguments: `${Q}, p_task_id uuid, p_step_name text, p_state jsonb, p_owner_run uuid, p_extend_claim_by integer`,
    defaults: 1,
    result: 'void',
  },
  { name: 'extend_claim', arguments: `${Q}, p_run_id uuid, p_extend_by integer`, defaults: 0, result: 'void' },
  {
    name: 'get_task_checkpoint_state',
    arguments: `${Q}, p_task_id uuid, p_step_name text, p_include_pending boolean`,
    defaults: 1,
    result: CHECKPOINT_ROW,
  },
  { name: 'get_task_checkpoint_states', arguments: `${Q}, p_task_id uuid, p_run_id uuid`, defaults: 0, result: CHECKPOINT_ROW },
  {
    name: 'await_event',
    arguments: `${Q}, p_task_id uuid, p_run_id uuid, p_step_name text, p_event_name text, p_timeout integer`,
    defaults: 1,
    result: 'TABLE(should_suspend boolean, payload jsonb)',
  },
  { name: 'emit_event', arguments: `${Q}, p_event_name text, p_payload jsonb`, defaults: 1, result: 'void' },
  { name: 'cancel_task', arguments: `${Q}, p_task_id uuid`, defaults: 0, result: 'void' },
  {
    name: 'cleanup_all_queues',
    arguments: Q,
    defaults: 1,
    result: 'TABLE(queue_name text, tasks_deleted integer, events_deleted integer)',
  },
  { name: 'cleanup_tasks', arguments: `${Q}, p_ttl_seconds integer, p_limit integer`, defaults: 1, result: 'integer' },
  { name: 'cleanup_events', arguments: `${Q}, p_ttl_seconds integer, p_limit integer`, defaults: 1, result: 'integer' },
  { name: 'portable_uuidv7', arguments: '', defaults: 0, result: 'uuid' },
  { name: 'uuidv7_timestamp', arguments: 'p_id uuid', defaults: 0, result: TS },
  { name: 'uuidv7_floor', arguments: `p_ts ${TS}`, defaults: 0, result: 'uuid' },
  { name: 'week_bucket_utc', arguments: `p_ts ${TS}`, defaults: 0, result: TS },
  { name: 'partition_week_tag', arguments: `p_ts ${TS}`, defaults: 0, result: 'text' },
  { name: 'ensure_partitions', arguments: Q, defaults: 1, result: 'void' },
  {
    name: 'list_detach_candidates',
    arguments: Q,
    defaults: 1,
    result: 'TABLE(queue_name text, parent_table text, partition_table text)',
  },
  {
    name: 'drop_detached_partition',
    arguments: 'p_partition_table text, p_unschedule_job_name text',
    defaults: 1,
    result: 'boolean',
  },
  {
    name: 'schedule_detach_jobs',
    arguments: Q,
    defaults: 1,
    result: 'TABLE(job_name text, job_id bigint, queue_name text, partition_table text, job_kind text)',
  },
  {
    name: 'enable_cron',
    arguments: `${Q}, p_partition_schedule text, p_cleanup_schedule text, p_detach_schedule text`,
    defaults: 4,
    result: JOB_ROW,
  },
  { name: 'disable_cron', arguments: Q, defaults: 1, result: JOB_ROW },
];

const CREATE_FUNCTION = /^create function /gm;
const DEFINED_FUNCTION = /^create (?:or replace )?function absurd\.(\w+)\(/gm;

/**
 * A migration's text as adoption runs it: every `create function` becomes `create or replace
 * function`, so that Absurd's function of the same signature gets absurd-kit's body (keeping its
 * owner, grants and the column defaults that refer to it). The migrations create functions,
 * absurd.queues (`if not exists`) and nothing else that Absurd's schema already holds.
 */
export function adoptionSql(migration: Migration): string {
  return migration.sql.replace(CREATE_FUNCTION, 'create or replace function ');
}

/** The names of the functions the migrations define, in order of first definition. */
export function functionsDefinedBy(migrations: readonly Migration[]): string[] {
  const names = new Set<string>();
  for (const migration of migrations) {
    for (const match of migration.sql.matchAll(DEFINED_FUNCTION)) if (match[1]) names.add(match[1]);
  }
  return [...names];
}
