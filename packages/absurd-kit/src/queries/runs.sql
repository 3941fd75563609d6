/*
  Runs: what a worker does with the runs it executes.

  ClaimTasks               claims up to `quantity` due runs of a queue for `claimTimeout` seconds
                           (also sweeps expired leases and queue policies), each with the
                           checkpoints visible to it, so a run starts without another round trip.
  CompleteRuns             completes many runs in one call (results[i] for runIds[i]); reports the
                           state of each run that was not running instead of raising.
  FailRun                  fails a run; `retryAt` null lets the task's retry strategy decide.
  FailTask                 fails the run and its task with no retry (absurd.kit_fail_task).
  ScheduleRunAfter         puts a run to sleep for `seconds` on the database's clock.
  ExtendClaim              extends the run's lease by `seconds`.
  SecondsUntilNextRun      seconds until the queue's earliest sleeping or pending run is due
                           (null: none), for idle workers.
  CurrentTime              the engine's clock (honours absurd.fake_now).
*/

/* @name ClaimTasks */
select run_id as "run_id!", task_id as "task_id!", attempt as "attempt!", task_name as "task_name!", params, retry_strategy, max_attempts,
       headers, wake_event, event_payload, checkpoints as "checkpoints!"
  from absurd.kit_claim_task(:queueName!, :workerId!, :claimTimeout!, :quantity!);

/* @name CompleteRuns */
select run_id as "run_id!", outcome as "outcome!"
  from absurd.kit_complete_runs(:queueName!, :runIds!::uuid[], :results!::text[]::jsonb[]);

/* @name FailRun */
select absurd.fail_run(:queueName!, :runId!, :reason::text::jsonb, :retryAt);

/* @name FailTask */
select absurd.kit_fail_task(:queueName!, :runId!, :reason::text::jsonb);

/* @name ScheduleRunAfter */
SELECT absurd.schedule_run(:queueName!, :runId!, absurd.current_time() + make_interval(secs => :seconds!::double precision));

/* @name ExtendClaim */
select absurd.extend_claim(:queueName!, :runId!, :seconds!);

/* @name SecondsUntilNextRun */
select absurd.kit_seconds_until_next_run(:queueName!) as seconds;

/* @name CurrentTime */
select absurd.current_time() as "now!";
