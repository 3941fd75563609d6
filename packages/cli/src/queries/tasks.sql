/*
  What `tasks list`, `tasks show`, `cancel` and `retry` read from the per-queue tables, as the
  Absurd contract lets tools do (spawning, cancelling and retrying go through the runtime's
  `Absurd` client).

  A table name depends on the queue (`absurd."t_<queue>"`), and no statement parameter can carry
  an identifier, so each query below returns the text of the statement to run: table names are
  quoted by `format('%I', …)` and queue names quoted as literals by `format('%L', …)`, here, in SQL;
  every value the operator typed travels as a parameter ($1, $2, …) of the returned statement.

  FindTaskStatement     `(queue_name, task_id)` of task $1 (a UUID), searched in one queue or, when
                        `queueName` is null, in all of them; with `byRun`, $1 may be a run id too
                        (a task found by task id comes first). Null statement: there is no queue.
  TaskStateStatement    `(state, attempts, max_attempts)` of task $1 in the queue.
  TaskDetailStatements  the task row, its runs, its checkpoints and its open waits (with the emission
                        time of the awaited event), each statement taking the task id as $1.
  ListTasksStatement    tasks of one queue or all of them (`queueName` null), newest first:
                        $1 state, $2 task name, $3/$4 created at or after a time / within an age
                        (counted back from absurd.current_time()), $5/$6 created before a time /
                        more than an age ago, $7 a task id to start after (keyset paging on the
                        primary key: task ids are UUIDv7s, so their order is creation order),
                        $8 limit, $9 offset; a null parameter filters nothing. Each queue gives
                        at most limit + offset rows, already ordered, before the merge. Null
                        statement: there is no queue.
*/

/* @name FindTaskStatement */
select 'select queue_name, task_id from ('
       || string_agg(
            format('select %L::text as queue_name, task_id, 0 as via_run from absurd.%I where task_id = $1::uuid',
                   q.queue_name, 't_' || q.queue_name)
            || case when :byRun!::boolean
                    then format(' union all select %L::text, task_id, 1 from absurd.%I where run_id = $1::uuid',
                                q.queue_name, 'r_' || q.queue_name)
                    else '' end,
            ' union all ' order by q.queue_name)
       || ') found order by via_run, queue_name limit 1' as statement
  from absurd.queues q
 where :queueName::text is null or q.queue_name = :queueName;

/* @name TaskStateStatement */
select format('select state, attempts, max_attempts from absurd.%I where task_id = $1::uuid',
              't_' || :queueName!::text) as "statement!";

/* @name TaskDetailStatements */
select format('select task_id, task_name, params, headers, retry_strategy, max_attempts, cancellation, enqueue_at,
                      first_started_at, state, attempts, last_attempt_run, completed_payload, cancelled_at, idempotency_key
                 from absurd.%I where task_id = $1::uuid', 't_' || q) as "task!",
       format('select run_id, attempt, state, claimed_by, claim_expires_at, available_at, wake_event, event_payload,
                      started_at, completed_at, failed_at, result, failure_reason, created_at
                 from absurd.%I where task_id = $1::uuid order by attempt, run_id', 'r_' || q) as "runs!",
       format('select checkpoint_name, state, status, owner_run_id, updated_at
                 from absurd.%I where task_id = $1::uuid order by updated_at, checkpoint_name', 'c_' || q) as "checkpoints!",
       format('select w.run_id, w.step_name, w.event_name, w.timeout_at, w.created_at,
                      case when e.payload is not null then e.emitted_at end as emitted_at
                 from absurd.%I w
                 left join absurd.%I e on e.event_name = w.event_name
                where w.task_id = $1::uuid order by w.created_at, w.step_name', 'w_' || q, 'e_' || q) as "waits!"
  from (select :queueName!::text as q) queue;

/* @name ListTasksStatement */
select 'select * from ('
       || string_agg(format(
            '(select %L::text as queue_name, t.task_id, t.task_name, t.state, t.attempts, t.max_attempts, t.enqueue_at,
                     r.started_at, coalesce(r.completed_at, r.failed_at, t.cancelled_at) as ended_at
                from absurd.%I t
                left join absurd.%I r on r.run_id = t.last_attempt_run
               where ($1::text is null or t.state = $1::text)
                 and ($2::text is null or t.task_name = $2::text)
                 and ($3::timestamptz is null or t.enqueue_at >= $3::timestamptz)
                 and ($4::interval is null or t.enqueue_at >= absurd.current_time() - $4::interval)
                 and ($5::timestamptz is null or t.enqueue_at < $5::timestamptz)
                 and ($6::interval is null or t.enqueue_at < absurd.current_time() - $6::interval)
                 and ($7::uuid is null or t.task_id < $7::uuid)
               order by t.task_id desc
               limit $8::bigint + $9::bigint)',
            q.queue_name, 't_' || q.queue_name, 'r_' || q.queue_name), ' union all ' order by q.queue_name)
       || ') listed order by task_id desc limit $8::bigint offset $9::bigint' as statement
  from absurd.queues q
 where :queueName::text is null or q.queue_name = :queueName;
