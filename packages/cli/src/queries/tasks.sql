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
                        $8 limit, $9 offset; a null parameter filters nothing. `state` and `byName`
                        (the $1 and whether $2 will be given) choose what each queue reads, one
                        index range in task id order, newest first, up to limit + offset tasks
                        before the merge (see the header of dashboard.sql for why these indexes
                        hold each state's tasks exactly):
                        - no state: the primary key, or with a task name t_<q>_nti (task_name,
                          task_id);
                        - cancelled: t_<q>_cli, the task name tested on the task row;
                        - an ended state (completed, failed) with a task name: t_<q>_nti, the
                          state tested on the task row;
                        - any other state: its range of r_<q>_lsi (state, task_id) where not
                          superseded, each run joined to its task, which also tests the name; on
                          a schema installed by Absurd's own tools (no r_<q>.superseded), the
                          primary key, the state tested on the task row.
                        The creation-time filters are tested on the task rows they read. Null
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
            '(select %1$L::text as queue_name, s.task_id, s.task_name, s.state, s.attempts, s.max_attempts, s.enqueue_at,
                     r.started_at, coalesce(r.completed_at, r.failed_at, s.cancelled_at) as ended_at
                from (%2$s) s
                left join absurd.%3$I r on r.run_id = s.last_attempt_run)',
            q.queue_name,
            case when :state::text is null or :state::text = 'cancelled'
                      or (:byName!::boolean and :state::text in ('completed', 'failed')) or not k.marked
                 then part.task_range else part.run_range end,
            'r_' || q.queue_name), ' union all ' order by q.queue_name)
       || ') listed order by task_id desc limit $8::bigint offset $9::bigint' as statement
  from absurd.queues q
 -- Whether the queue's runs are marked (r_<q>.superseded, migration 000028): a schema installed by
 -- Absurd's own tools has no such column, and its lists read the tasks' state.
 cross join lateral (select exists (select 1 from pg_attribute a
                                     where a.attrelid = to_regclass(format('absurd.%I', 'r_' || q.queue_name))
                                       and a.attname = 'superseded' and not a.attisdropped) as marked) k
 cross join lateral (
   -- The range of r_<q>_lsi of state $1 newest first, each run joined to its task by a primary-key
   -- probe (the `limit 1` keeps it from being flattened into a join the planner could run over a
   -- whole index); the cursor compares (state, task_id) so that only r_<q>_lsi can take it as a bound.
   select format(
            '(select r.task_id, t.task_name, t.state, t.attempts, t.max_attempts, t.enqueue_at,
                     t.cancelled_at, t.last_attempt_run
                from absurd.%1$I r
               cross join lateral (select t.task_name, t.state, t.attempts, t.max_attempts, t.enqueue_at,
                                          t.cancelled_at, t.last_attempt_run
                                     from absurd.%2$I t
                                    where t.task_id = r.task_id and t.state = $1::text
                                      and ($2::text is null or t.task_name = $2::text)
                                      and ($3::timestamptz is null or t.enqueue_at >= $3::timestamptz)
                                      and ($4::interval is null or t.enqueue_at >= absurd.current_time() - $4::interval)
                                      and ($5::timestamptz is null or t.enqueue_at < $5::timestamptz)
                                      and ($6::interval is null or t.enqueue_at < absurd.current_time() - $6::interval)
                                    limit 1) t
               where r.state = $1::text and not r.superseded
                 and ($7::uuid is null or (r.state, r.task_id) < ($1::text, $7::uuid))
               order by r.task_id desc
               limit $8::bigint + $9::bigint)',
            'r_' || q.queue_name, 't_' || q.queue_name) as run_range,
          -- A range of the tasks' primary key, t_<q>_nti (a task name) or t_<q>_cli (cancelled).
          format(
            'select t.task_id, t.task_name, t.state, t.attempts, t.max_attempts, t.enqueue_at,
                    t.cancelled_at, t.last_attempt_run
               from absurd.%1$I t
              where %2$s
                and ($2::text is null or t.task_name = $2::text)
                and ($3::timestamptz is null or t.enqueue_at >= $3::timestamptz)
                and ($4::interval is null or t.enqueue_at >= absurd.current_time() - $4::interval)
                and ($5::timestamptz is null or t.enqueue_at < $5::timestamptz)
                and ($6::interval is null or t.enqueue_at < absurd.current_time() - $6::interval)
                and ($7::uuid is null or t.task_id < $7::uuid)
              order by t.task_id desc
              limit $8::bigint + $9::bigint',
            't_' || q.queue_name,
            -- Cancelled: only cancelled_at (set exactly on the cancelled tasks), not the state as well,
            -- which would make the planner expect almost none and sort them all.
            case when :state::text = 'cancelled' then 't.cancelled_at is not null and $1::text is not null'
                 else '($1::text is null or t.state = $1::text)' end) as task_range) part
 where :queueName::text is null or q.queue_name = :queueName;
