/*
  What `absurd dashboard` reads and changes (packages/cli/src/dashboard/). Retrying, cancelling and
  emitting go through the runtime's `Absurd` client; waking calls the engine's kit_wake_task.

  As in tasks.sql, a per-queue table name cannot be a statement parameter, so the queries that read
  them return the text of the statement to run: table names quoted by `format('%I', …)`, queue
  names and state names quoted as literals by `format('%L', …)`, here, in SQL. Everything a request
  carries travels as a parameter ($1, $2, …) of the returned statement.

  Every statement reads through an index, so that its cost does not grow with the tasks retained:

  QueueSummaryStatement  one row per queue (all of them, by name): tasks per state, and runs that
                         completed or failed since $2 and since $3 (runs whose last claim,
                         available_at, falls in the window: r_<q>_sai), each count capped at $1 rows
                         read (a count equal to $1 means "at least"). Per state: t_<q>_sti. The
                         windows' starts are parameters, not absurd.current_time() (volatile: no
                         index bound) nor a subquery of it (unknown when planned: the planner then
                         guesses a third of the runs and reads them all): see DatabaseNow.
                         Null statement: there is no queue.

  DatabaseNow            absurd.current_time(), the engine's clock.

  TaskPageStatement      one page of tasks of one queue or all of them (`queueName` null). Parameters
                         of the statement: $1 state, $2 task name, $3 / $4 created at or after / before
                         a time (as a task id range: task ids are UUIDv7s), $5 / $6 older / newer than
                         a task id (the keyset cursor), $7 page size, $8 / $9 a params field (a path
                         of keys) that must equal a text, $10 how many tasks each part reads at most.
                         A null parameter filters nothing. The statement is a union of parts, each
                         one index range read in task id order (newest first, or oldest first with
                         `newer`): per queue, and with a task name per state (t_<q>_nsi), else
                         t_<q>_sti with a state and the primary key without. Each part returns the
                         tasks that match ($7 + 1 at most) and also its last task read (`matched`
                         false when it does not match): with `scan_full`, the part stopped at its
                         $10 budget there, so that a params search pages on from that point.
                         Null statement: there is no queue.

  EventPageStatement     one page of emitted events of one queue or all of them (`queueName` null),
                         newest first: $1 a prefix of the event name, $2 / $3 emitted at or after /
                         before a time, $4 / $5 / $6 the keyset cursor (emitted_at, event_name,
                         queue_name) of the last event shown, $7 page size. Per queue, a backward
                         range read of e_<q>_eai. Null statement: there is no queue.

  TaskEventsStatement    the events task $1 waits or waited for on its queue: the names in its open
                         waits (w_<q>_ti) and in its runs' wake_event (r_<q>_ti), with their payload
                         and emission time when emitted (e_<q>'s primary key).

  TaskLocationStatement  `(state)` of task $1 in each queue of `queueNames` that holds it (primary
                         keys), for the links to a task's parent and children.

  WakeTask               absurd.kit_wake_task: 'woken', 'not_found', 'not_sleeping' or
                         'waiting_for_event'.
*/

/* @name QueueSummaryStatement */
select 'select * from ('
       || string_agg(format(
            'select %1$L::text as queue_name,
                    (select count(*) from (select 1 from absurd.%2$I t where t.state = ''pending'' limit $1::integer) x) as pending,
                    (select count(*) from (select 1 from absurd.%2$I t where t.state = ''running'' limit $1::integer) x) as running,
                    (select count(*) from (select 1 from absurd.%2$I t where t.state = ''sleeping'' limit $1::integer) x) as sleeping,
                    (select count(*) from (select 1 from absurd.%2$I t where t.state = ''completed'' limit $1::integer) x) as completed,
                    (select count(*) from (select 1 from absurd.%2$I t where t.state = ''failed'' limit $1::integer) x) as failed,
                    (select count(*) from (select 1 from absurd.%2$I t where t.state = ''cancelled'' limit $1::integer) x) as cancelled,
                    (select count(*) from (select 1 from absurd.%3$I r where r.state = ''completed''
                        and r.available_at >= $2::timestamptz limit $1::integer) x) as completed_5m,
                    (select count(*) from (select 1 from absurd.%3$I r where r.state = ''completed''
                        and r.available_at >= $3::timestamptz limit $1::integer) x) as completed_60m,
                    (select count(*) from (select 1 from absurd.%3$I r where r.state = ''failed''
                        and r.available_at >= $2::timestamptz limit $1::integer) x) as failed_5m,
                    (select count(*) from (select 1 from absurd.%3$I r where r.state = ''failed''
                        and r.available_at >= $3::timestamptz limit $1::integer) x) as failed_60m',
            q.queue_name, 't_' || q.queue_name, 'r_' || q.queue_name),
          ' union all ' order by q.queue_name)
       || ') summary order by queue_name' as statement
  from absurd.queues q;

/* @name DatabaseNow */
select absurd.current_time() as "now!";

/* @name TaskPageStatement */
select 'select * from ('
       || string_agg(format(
            '(select %1$L::text as queue_name, s.task_id, s.task_name, s.state, s.attempts, s.max_attempts, s.enqueue_at,
                     r.started_at, coalesce(r.completed_at, r.failed_at, s.cancelled_at) as ended_at,
                     s.matched, s.scan_full
                from (select w.*,
                             ($8::text[] is null or w.params #>> $8::text[] = $9::text) as matched,
                             row_number() over (order by w.task_id %4$s) as n,
                             count(*) over () as scanned,
                             count(*) over () >= $10::integer as scan_full
                        from (select t.task_id, t.task_name, t.state, t.attempts, t.max_attempts, t.enqueue_at,
                                     t.params, t.cancelled_at, t.last_attempt_run
                                from absurd.%2$I t
                               where %3$s
                                 and ($1::text is null or t.state = $1::text)
                                 and ($2::text is null or t.task_name = $2::text)
                                 and ($3::timestamptz is null or t.task_id >= absurd.uuidv7_floor($3::timestamptz))
                                 and ($4::timestamptz is null or t.task_id < absurd.uuidv7_floor($4::timestamptz))
                                 and ($5::uuid is null or t.task_id < $5::uuid)
                                 and ($6::uuid is null or t.task_id > $6::uuid)
                               order by t.task_id %4$s
                               limit $10::integer) w) s
                left join absurd.%5$I r on r.run_id = s.last_attempt_run
               where s.matched or s.n = s.scanned
               order by s.task_id %4$s
               limit $7::integer + 2)',
            q.queue_name,
            't_' || q.queue_name,
            case when part.state is null then 'true' else format('t.state = %L', part.state) end,
            case when :newer!::boolean then 'asc' else 'desc' end,
            'r_' || q.queue_name),
          ' union all ' order by q.queue_name, part.state)
       || ') page order by task_id ' || case when :newer!::boolean then 'asc' else 'desc' end as statement
  from absurd.queues q
 cross join lateral unnest(
         case when not :byName!::boolean then array[null::text]
              when :state::text is not null then array[:state::text]
              else array['pending', 'running', 'sleeping', 'completed', 'failed', 'cancelled'] end) as part(state)
 where :queueName::text is null or q.queue_name = :queueName;

/* @name EventPageStatement */
select 'select * from ('
       || string_agg(format(
            '(select %1$L::text as queue_name, e.event_name, e.payload, e.emitted_at, e.emitted_at::text as emitted_at_text
                from absurd.%2$I e
               where e.payload is not null
                 and ($1::text is null or starts_with(e.event_name, $1::text))
                 and ($2::timestamptz is null or e.emitted_at >= $2::timestamptz)
                 and ($3::timestamptz is null or e.emitted_at < $3::timestamptz)
                 and ($4::timestamptz is null or e.emitted_at <= $4::timestamptz)
                 and ($4::timestamptz is null
                      or (e.emitted_at, e.event_name, %1$L::text) < ($4::timestamptz, $5::text, $6::text))
               order by e.emitted_at desc, e.event_name desc
               limit $7::integer)',
            q.queue_name, 'e_' || q.queue_name),
          ' union all ' order by q.queue_name)
       || ') events order by emitted_at desc, event_name desc, queue_name desc limit $7::integer' as statement
  from absurd.queues q
 where :queueName::text is null or q.queue_name = :queueName;

/* @name TaskEventsStatement */
select format(
         'select e.event_name, e.payload, e.emitted_at
            from absurd.%1$I e
           where e.payload is not null
             and e.event_name in (select w.event_name from absurd.%2$I w where w.task_id = $1::uuid
                                  union
                                  select r.wake_event from absurd.%3$I r where r.task_id = $1::uuid and r.wake_event is not null)
           order by e.emitted_at, e.event_name',
         'e_' || :queueName!::text, 'w_' || :queueName!::text, 'r_' || :queueName!::text) as "statement!";

/* @name TaskLocationStatement */
select 'select * from ('
       || string_agg(format('select %L::text as queue_name, t.state from absurd.%I t where t.task_id = $1::uuid',
                            q.queue_name, 't_' || q.queue_name),
                     ' union all ' order by q.queue_name)
       || ') found' as statement
  from absurd.queues q
 where q.queue_name = any(:queueNames!::text[]);

/* @name WakeTask */
select absurd.kit_wake_task(:queueName!, :taskId!::uuid) as "outcome!";
