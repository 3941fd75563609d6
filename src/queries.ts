/**
 * Every statement the runtime sends. Each one calls a stored function of schema `absurd`: the
 * engine owns all state transitions, the runtime only asks for them.
 *
 * Parameters are sent untyped (JSON as text into `jsonb`), the way every Absurd SDK sends them,
 * so these statements also document the calls the engine must keep accepting.
 */

/** $1 queue, $2 task name, $3 params (json text), $4 options (json text), $5 notify channel. */
export const SPAWN_TASK = `select s.task_id, s.run_id, s.attempt, s.created, pg_notify($5, '')
  from absurd.spawn_task($1, $2, $3, $4) as s`;

/** $1 queue, $2 worker id, $3 claim timeout (s), $4 quantity. */
export const CLAIM_TASK = `select run_id, task_id, attempt, task_name, params, retry_strategy, max_attempts,
       headers, wake_event, event_payload
  from absurd.claim_task($1, $2, $3, $4)`;

/** $1 queue, $2 run, $3 result (json text). */
export const COMPLETE_RUN = `select absurd.complete_run($1, $2, $3)`;

/** $1 queue, $2 run, $3 failure reason (json text), $4 retry at (null = retry strategy). */
export const FAIL_RUN = `select absurd.fail_run($1, $2, $3, $4)`;

/** $1 queue, $2 run, $3 seconds from the database's now. */
export const SCHEDULE_RUN_AFTER = `SELECT absurd.schedule_run($1, $2, absurd.current_time() + make_interval(secs => $3::double precision))`;

/** $1 queue, $2 task, $3 run. */
export const GET_CHECKPOINT_STATES = `select checkpoint_name, state
  from absurd.get_task_checkpoint_states($1, $2, $3)`;

/** $1 queue, $2 task, $3 checkpoint name. */
export const GET_CHECKPOINT_STATE = `select checkpoint_name, state
  from absurd.get_task_checkpoint_state($1, $2, $3)`;

/** $1 queue, $2 task, $3 checkpoint name, $4 state (json text), $5 owner run, $6 extend claim by (s). */
export const SET_CHECKPOINT_STATE = `select absurd.set_task_checkpoint_state($1, $2, $3, $4, $5, $6)`;

/** $1 queue, $2 run, $3 seconds. */
export const EXTEND_CLAIM = `select absurd.extend_claim($1, $2, $3)`;

/** $1 queue, $2 task, $3 run, $4 step name, $5 event name, $6 timeout (s, null = none). */
export const AWAIT_EVENT = `select should_suspend, payload
  from absurd.await_event($1, $2, $3, $4, $5, $6)`;

/** $1 queue, $2 event name, $3 payload (json text), $4 notify channel. */
export const EMIT_EVENT = `select absurd.emit_event($1, $2, $3), pg_notify($4, '')`;

/** $1 queue, $2 task. */
export const CANCEL_TASK = `select absurd.cancel_task($1, $2)`;

/** $1 queue, $2 task, $3 options (json text), $4 notify channel. */
export const RETRY_TASK = `select r.task_id, r.run_id, r.attempt, r.created, pg_notify($4, '')
  from absurd.retry_task($1, $2, $3) as r`;

/** $1 queue, $2 task. */
export const GET_TASK_RESULT = `select state, result, failure_reason from absurd.get_task_result($1, $2)`;

/** $1 queue. */
export const CREATE_QUEUE = `select absurd.create_queue($1)`;

/** $1 queue, $2 storage mode. */
export const CREATE_QUEUE_WITH_MODE = `select absurd.create_queue($1, $2)`;

/** $1 queue. */
export const DROP_QUEUE = `select absurd.drop_queue($1)`;

export const LIST_QUEUES = `select queue_name from absurd.list_queues()`;

/** $1 queue. */
export const GET_QUEUE_POLICY = `select queue_name, storage_mode, partition_lookahead::text as partition_lookahead,
       partition_lookback::text as partition_lookback, cleanup_ttl::text as cleanup_ttl, cleanup_limit,
       detach_mode, detach_min_age::text as detach_min_age
  from absurd.get_queue_policy($1)`;

/** $1 queue, $2 policy (json text). */
export const SET_QUEUE_POLICY = `select absurd.set_queue_policy($1, $2::jsonb)`;

/** $1 queue: seconds until the earliest sleeping or pending run is due (null: none). */
export const NEXT_WAKE = `select absurd.kit_seconds_until_next_run($1) as seconds`;

/** $1 notify channel: wakes the queue's idle workers. */
export const NOTIFY = `select pg_notify($1, '')`;

/** The engine's clock (honours absurd.fake_now). */
export const CURRENT_TIME = `select absurd.current_time() as now`;

/** $1 queue, $2 run, $3 failure reason (json text): fails the run and its task, no retry. */
export const FAIL_TASK = `select absurd.kit_fail_task($1, $2, $3)`;
