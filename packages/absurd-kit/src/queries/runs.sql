/*
  Runs: what a worker does with the runs it executes.

  ClaimTasks               claims up to `quantity` due runs of a queue for `claimTimeout` seconds
                           (also sweeps expired leases and queue policies), each with the
                           checkpoints visible to it, so a run starts without another round trip,
                           and its queue lag (seconds it waited since it became due).
  ClaimTasksListening      ClaimTasks for a worker idle-listening on the wake channel: a claim that
                           returns fewer runs than asked marks `listener` idle for `listenSeconds`
                           (spawns then notify it), one that returns all it asked for unmarks it.
  ClaimTasksStandard       the same claim with Absurd's claim_task, for engines without
                           absurd-kit's additions: no checkpoints (each run loads its own).
  CompleteRuns             completes many runs in one call (results[i] for runIds[i]); reports the
                           state of each run that was not running instead of raising.
  CompleteRun              completes one run (Absurd's complete_run), for engines without
                           kit_complete_runs; raises AB001/AB002 where CompleteRuns reports.
  FailRun                  fails a run; `retryAt` null lets the task's retry strategy decide.
  FailTask                 fails the run and its task with no retry (absurd.kit_fail_task).
  FailRunAndCancelTask     the closest Absurd's contract comes to FailTask: fails the run (its
                           retry strategy applies) and cancels the task, so that a retry scheduled
                           by fail_run is cancelled before it commits; a task whose attempts are
                           used up stays failed. One statement: one transaction.
  ScheduleRunAfter         puts a run to sleep for `seconds` on the database's clock.
  ExtendClaim              extends the run's lease by `seconds`.
  SecondsUntilNextRun      seconds until the queue's earliest sleeping or pending run is due
                           (null: none), for idle workers.
  WakeupsSettled           whether no spawn that may have missed a newly idle worker is still in
                           flight on the queue (migration 000018): a worker whose claim came back
                           empty asks it, and claims once more when it is true.
  CurrentTime              the engine's clock (honours absurd.fake_now).
*/

/* @name ClaimTasks */
select run_id as "run_id!", task_id as "task_id!", attempt as "attempt!", task_name as "task_name!", params, retry_strategy, max_attempts,
       headers, wake_event, event_payload, checkpoints as "checkpoints!", queue_lag
  from absurd.kit_claim_task(:queueName!, :workerId!, :claimTimeout!, :quantity!);

/* @name ClaimTasksListening */
select run_id as "run_id!", task_id as "task_id!", attempt as "attempt!", task_name as "task_name!", params, retry_strategy, max_attempts,
       headers, wake_event, event_payload, checkpoints as "checkpoints!", queue_lag
  from absurd.kit_claim_task(:queueName!, :workerId!, :claimTimeout!, :quantity!, :listener!, :listenSeconds!::float8);

/* @name ClaimTasksStandard */
select run_id as "run_id!", task_id as "task_id!", attempt as "attempt!", task_name as "task_name!", params, retry_strategy, max_attempts,
       headers, wake_event, event_payload
  from absurd.claim_task(:queueName!, :workerId!, :claimTimeout!, :quantity!);

/* @name CompleteRun */
select absurd.complete_run(:queueName!, :runId!, :result::text::jsonb);

/* @name CompleteRuns */
select run_id as "run_id!", outcome as "outcome!"
  from absurd.kit_complete_runs(:queueName!, :runIds!::uuid[], :results!::text[]::jsonb[]);

/* @name FailRun */
select absurd.fail_run(:queueName!, :runId!, :reason::text::jsonb, :retryAt);

/* @name FailTask */
select absurd.kit_fail_task(:queueName!, :runId!, :reason::text::jsonb);

/* @name FailRunAndCancelTask */
with failed as (select absurd.fail_run(:queueName!, :runId!, :reason::text::jsonb, null))
select absurd.cancel_task(:queueName!, :taskId!) from failed;

/* @name ScheduleRunAfter */
SELECT absurd.schedule_run(:queueName!, :runId!, absurd.current_time() + make_interval(secs => :seconds!::double precision));

/* @name ExtendClaim */
select absurd.extend_claim(:queueName!, :runId!, :seconds!);

/* @name SecondsUntilNextRun */
select absurd.kit_seconds_until_next_run(:queueName!) as seconds;

/* @name WakeupsSettled */
select absurd.kit_wakeups_settled(:queueName!) as "settled!";

/* @name CurrentTime */
select absurd.current_time() as "now!";
