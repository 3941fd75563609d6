/*
  `absurd cleanup`: deleting ended tasks and old events of a queue, or counting them.

  CleanupBatch           one call of cleanup_tasks and cleanup_events: up to `limit` rows each,
                         ended (tasks) or emitted (events) more than `ttlSeconds` ago.
  CleanupCountStatement  `(tasks, events)`: how many rows cleanup would delete with a TTL of $1
                         seconds, selecting as cleanup_tasks does (the terminal time comes from the
                         task's last run, or from cancelled_at for cancelled tasks). The tables
                         depend on the queue, so the query returns the statement to run, its table
                         names quoted by `format('%I', …)` (see tasks.sql).
*/

/* @name CleanupBatch */
select absurd.cleanup_tasks(:queueName!, :ttlSeconds!, :limit!) as "tasks!",
       absurd.cleanup_events(:queueName!, :ttlSeconds!, :limit!) as "events!";

/* @name CleanupCountStatement */
select format('with cutoff as (select absurd.current_time() - make_interval(secs => $1) as at)
               select (select count(*)::int
                         from absurd.%I t
                         left join absurd.%I r on r.run_id = t.last_attempt_run
                        where case t.state when ''completed'' then r.completed_at
                                           when ''failed'' then r.failed_at
                                           when ''cancelled'' then t.cancelled_at end < (select at from cutoff)) as tasks,
                      (select count(*)::int from absurd.%I e
                        where e.emitted_at < (select at from cutoff)) as events',
              't_' || q, 'r_' || q, 'e_' || q) as "statement!"
  from (select :queueName!::text as q) queue;
