/**
 * Absurd's stored-procedure contract, transcribed for the tests that hold a schema to it: the
 * function catalogue of §2.0 and the tables of §1.3 and §1.5. Used for absurd-kit's engine
 * (catalogue.test.ts) and for the fixture of Absurd's own schema (test/engine/absurd-fixture.test.ts).
 */

// ---------------------------------------------------------------------------------------------
// §2.0, transcribed. Types and defaults are written the way pg_get_function_arguments and
// pg_get_function_result print them.

export type Arg = readonly [name: string, type: string, defaultExpr?: string];

export interface FunctionSpec {
  readonly name: string;
  readonly args: readonly Arg[];
  /** A scalar type, or the columns of `RETURNS TABLE(...)`. */
  readonly returns: string | readonly (readonly [string, string])[];
  readonly language?: 'sql' | 'plpgsql';
  readonly immutableStrict?: boolean;
}

export const TS = 'timestamp with time zone';
export const QUEUE: Arg = ['p_queue_name', 'text'];
export const QUEUE_OPT: Arg = ['p_queue_name', 'text', 'NULL::text'];
export const TASK_ROW = [
  ['task_id', 'uuid'],
  ['run_id', 'uuid'],
  ['attempt', 'integer'],
  ['created', 'boolean'],
] as const;
export const CHECKPOINT_ROW = [
  ['checkpoint_name', 'text'],
  ['state', 'jsonb'],
  ['status', 'text'],
  ['owner_run_id', 'uuid'],
  ['updated_at', TS],
] as const;
export const JOB_ROW = [
  ['job_name', 'text'],
  ['job_id', 'bigint'],
] as const;

export const CATALOGUE: readonly FunctionSpec[] = [
  /* 1 */ { name: 'current_time', args: [], returns: TS },
  /* 2 */ { name: 'get_schema_version', args: [], returns: 'text', language: 'sql' },
  /* 3 */ { name: 'validate_queue_name', args: [QUEUE], returns: 'text' },
  /* 4 */ { name: 'ensure_queue_tables', args: [QUEUE], returns: 'void' },
  /* 5 */ { name: 'create_queue', args: [QUEUE, ['p_storage_mode', 'text']], returns: 'void' },
  /* 6 */ { name: 'create_queue', args: [QUEUE], returns: 'void' },
  /* 7 */ { name: 'drop_queue', args: [QUEUE], returns: 'void' },
  /* 8 */ { name: 'list_queues', args: [], returns: [['queue_name', 'text']], language: 'sql' },
  /* 9 */ {
    name: 'get_queue_policy',
    args: [QUEUE],
    returns: [
      ['queue_name', 'text'],
      ['storage_mode', 'text'],
      ['default_partition', 'text'],
      ['partition_lookahead', 'interval'],
      ['partition_lookback', 'interval'],
      ['cleanup_ttl', 'interval'],
      ['cleanup_limit', 'integer'],
      ['detach_mode', 'text'],
      ['detach_min_age', 'interval'],
    ],
    language: 'sql',
  },
  /* 10 */ { name: 'set_queue_policy', args: [QUEUE, ['p_policy', 'jsonb']], returns: 'void' },
  /* 11 */ {
    name: 'get_task_result',
    args: [QUEUE, ['p_task_id', 'uuid']],
    returns: [
      ['task_id', 'uuid'],
      ['state', 'text'],
      ['result', 'jsonb'],
      ['failure_reason', 'jsonb'],
    ],
  },
  /* 12 */ {
    name: 'spawn_task',
    args: [QUEUE, ['p_task_name', 'text'], ['p_params', 'jsonb'], ['p_options', 'jsonb', `'{}'::jsonb`]],
    returns: TASK_ROW,
  },
  /* 13 */ {
    name: 'claim_task',
    args: [QUEUE, ['p_worker_id', 'text'], ['p_claim_timeout', 'integer', '30'], ['p_qty', 'integer', '1']],
    returns: [
      ['run_id', 'uuid'],
      ['task_id', 'uuid'],
      ['attempt', 'integer'],
      ['task_name', 'text'],
      ['params', 'jsonb'],
      ['retry_strategy', 'jsonb'],
      ['max_attempts', 'integer'],
      ['headers', 'jsonb'],
      ['wake_event', 'text'],
      ['event_payload', 'jsonb'],
    ],
  },
  /* 14 */ { name: 'complete_run', args: [QUEUE, ['p_run_id', 'uuid'], ['p_state', 'jsonb', 'NULL::jsonb']], returns: 'void' },
  /* 15 */ { name: 'schedule_run', args: [QUEUE, ['p_run_id', 'uuid'], ['p_wake_at', TS]], returns: 'void' },
  /* 16 */ {
    name: 'fail_run',
    args: [QUEUE, ['p_run_id', 'uuid'], ['p_reason', 'jsonb'], ['p_retry_at', TS, `NULL::${TS}`]],
    returns: 'void',
  },
  /* 17 */ { name: 'retry_task', args: [QUEUE, ['p_task_id', 'uuid'], ['p_options', 'jsonb', `'{}'::jsonb`]], returns: TASK_ROW },
  /* 18 */ {
    name: 'set_task_checkpoint_state',
    args: [
      QUEUE,
      ['p_task_id', 'uuid'],
      ['p_step_name', 'text'],
      ['p_state', 'jsonb'],
      ['p_owner_run', 'uuid'],
      ['p_extend_claim_by', 'integer', 'NULL::integer'],
    ],
    returns: 'void',
  },
  /* 19 */ { name: 'extend_claim', args: [QUEUE, ['p_run_id', 'uuid'], ['p_extend_by', 'integer']], returns: 'void' },
  /* 20 */ {
    name: 'get_task_checkpoint_state',
    args: [QUEUE, ['p_task_id', 'uuid'], ['p_step_name', 'text'], ['p_include_pending', 'boolean', 'false']],
    returns: CHECKPOINT_ROW,
  },
  /* 21 */ { name: 'get_task_checkpoint_states', args: [QUEUE, ['p_task_id', 'uuid'], ['p_run_id', 'uuid']], returns: CHECKPOINT_ROW },
  /* 22 */ {
    name: 'await_event',
    args: [
      QUEUE,
      ['p_task_id', 'uuid'],
      ['p_run_id', 'uuid'],
      ['p_step_name', 'text'],
      ['p_event_name', 'text'],
      ['p_timeout', 'integer', 'NULL::integer'],
    ],
    returns: [
      ['should_suspend', 'boolean'],
      ['payload', 'jsonb'],
    ],
  },
  /* 23 */ { name: 'emit_event', args: [QUEUE, ['p_event_name', 'text'], ['p_payload', 'jsonb', 'NULL::jsonb']], returns: 'void' },
  /* 24 */ { name: 'cancel_task', args: [QUEUE, ['p_task_id', 'uuid']], returns: 'void' },
  /* 25 */ {
    name: 'cleanup_all_queues',
    args: [QUEUE_OPT],
    returns: [
      ['queue_name', 'text'],
      ['tasks_deleted', 'integer'],
      ['events_deleted', 'integer'],
    ],
  },
  /* 26 */ { name: 'cleanup_tasks', args: [QUEUE, ['p_ttl_seconds', 'integer'], ['p_limit', 'integer', '1000']], returns: 'integer' },
  /* 27 */ { name: 'cleanup_events', args: [QUEUE, ['p_ttl_seconds', 'integer'], ['p_limit', 'integer', '1000']], returns: 'integer' },
  /* 28 */ { name: 'portable_uuidv7', args: [], returns: 'uuid' },
  /* 29 */ { name: 'uuidv7_timestamp', args: [['p_id', 'uuid']], returns: TS, language: 'sql', immutableStrict: true },
  /* 30 */ { name: 'uuidv7_floor', args: [['p_ts', TS]], returns: 'uuid', immutableStrict: true },
  /* 31 */ { name: 'week_bucket_utc', args: [['p_ts', TS]], returns: TS, language: 'sql', immutableStrict: true },
  /* 32 */ { name: 'partition_week_tag', args: [['p_ts', TS]], returns: 'text', language: 'sql', immutableStrict: true },
  /* 33 */ { name: 'ensure_partitions', args: [QUEUE_OPT], returns: 'void' },
  /* 34 */ {
    name: 'list_detach_candidates',
    args: [QUEUE_OPT],
    returns: [
      ['queue_name', 'text'],
      ['parent_table', 'text'],
      ['partition_table', 'text'],
    ],
  },
  /* 35 */ {
    name: 'drop_detached_partition',
    args: [
      ['p_partition_table', 'text'],
      ['p_unschedule_job_name', 'text', 'NULL::text'],
    ],
    returns: 'boolean',
  },
  /* 36 */ {
    name: 'schedule_detach_jobs',
    args: [QUEUE_OPT],
    returns: [
      ['job_name', 'text'],
      ['job_id', 'bigint'],
      ['queue_name', 'text'],
      ['partition_table', 'text'],
      ['job_kind', 'text'],
    ],
  },
  /* 37 */ {
    name: 'enable_cron',
    args: [
      QUEUE_OPT,
      ['p_partition_schedule', 'text', `'5 * * * *'::text`],
      ['p_cleanup_schedule', 'text', `'17 * * * *'::text`],
      ['p_detach_schedule', 'text', `'29 * * * *'::text`],
    ],
    returns: JOB_ROW,
  },
  /* 38 */ { name: 'disable_cron', args: [QUEUE_OPT], returns: JOB_ROW },
];

/** The arguments of a §2.0 row as `pg_get_function_arguments` prints them. */
export function expectedArguments(spec: FunctionSpec): string {
  return spec.args.map(([name, type, def]) => `${name} ${type}${def === undefined ? '' : ` DEFAULT ${def}`}`).join(', ');
}

/** The result of a §2.0 row as `pg_get_function_result` prints it. */
export function expectedResult(spec: FunctionSpec): string {
  if (typeof spec.returns === 'string') return spec.returns;
  return `TABLE(${spec.returns.map(([name, type]) => `${name} ${type}`).join(', ')})`;
}

// ---------------------------------------------------------------------------------------------
// Tables (§1.3, §1.5).

export type Column = readonly [name: string, type: string, notNull: boolean, defaultExpr: string | null];

export const NOW_DEFAULT = 'absurd."current_time"()';

export const QUEUES_COLUMNS: readonly Column[] = [
  ['queue_name', 'text', true, null],
  ['created_at', TS, true, NOW_DEFAULT],
  ['storage_mode', 'text', true, `'unpartitioned'::text`],
  ['default_partition', 'text', true, `'enabled'::text`],
  ['partition_lookahead', 'interval', true, `'28 days'::interval`],
  ['partition_lookback', 'interval', true, `'1 day'::interval`],
  ['cleanup_ttl', 'interval', true, `'30 days'::interval`],
  ['cleanup_limit', 'integer', true, '1000'],
  ['detach_mode', 'text', true, `'none'::text`],
  ['detach_min_age', 'interval', true, `'30 days'::interval`],
];

export const QUEUE_TABLES: Record<'t' | 'r' | 'c' | 'e' | 'w', readonly Column[]> = {
  t: [
    ['task_id', 'uuid', true, null],
    ['task_name', 'text', true, null],
    ['params', 'jsonb', true, null],
    ['headers', 'jsonb', false, null],
    ['retry_strategy', 'jsonb', false, null],
    ['max_attempts', 'integer', false, null],
    ['cancellation', 'jsonb', false, null],
    ['enqueue_at', TS, true, NOW_DEFAULT],
    ['first_started_at', TS, false, null],
    ['state', 'text', true, null],
    ['attempts', 'integer', true, '0'],
    ['last_attempt_run', 'uuid', false, null],
    ['completed_payload', 'jsonb', false, null],
    ['cancelled_at', TS, false, null],
    ['idempotency_key', 'text', false, null],
  ],
  r: [
    ['run_id', 'uuid', true, null],
    ['task_id', 'uuid', true, null],
    ['attempt', 'integer', true, null],
    ['state', 'text', true, null],
    ['claimed_by', 'text', false, null],
    ['claim_expires_at', TS, false, null],
    ['available_at', TS, true, null],
    ['wake_event', 'text', false, null],
    ['event_payload', 'jsonb', false, null],
    ['started_at', TS, false, null],
    ['completed_at', TS, false, null],
    ['failed_at', TS, false, null],
    ['result', 'jsonb', false, null],
    ['failure_reason', 'jsonb', false, null],
    ['created_at', TS, true, NOW_DEFAULT],
  ],
  c: [
    ['task_id', 'uuid', true, null],
    ['checkpoint_name', 'text', true, null],
    ['state', 'jsonb', false, null],
    ['status', 'text', true, `'committed'::text`],
    ['owner_run_id', 'uuid', false, null],
    ['updated_at', TS, true, NOW_DEFAULT],
  ],
  e: [
    ['event_name', 'text', true, null],
    ['payload', 'jsonb', false, null],
    ['emitted_at', TS, true, NOW_DEFAULT],
  ],
  w: [
    ['task_id', 'uuid', true, null],
    ['run_id', 'uuid', true, null],
    ['step_name', 'text', true, null],
    ['event_name', 'text', true, null],
    ['timeout_at', TS, false, null],
    ['created_at', TS, true, NOW_DEFAULT],
  ],
};

export const PRIMARY_KEYS: Record<'t' | 'r' | 'c' | 'e' | 'w', readonly string[]> = {
  t: ['task_id'],
  r: ['run_id'],
  c: ['task_id', 'checkpoint_name'],
  e: ['event_name'],
  w: ['run_id', 'step_name'],
};
