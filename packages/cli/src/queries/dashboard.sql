/*
  What `absurd dashboard` reads and changes (packages/cli/src/dashboard/). Retrying, cancelling and
  emitting go through the runtime's `Absurd` client; waking calls the engine's kit_wake_task.

  As in tasks.sql, a per-queue table name cannot be a statement parameter, so the queries that read
  them return the text of the statement to run: table names quoted by `format('%I', …)`, queue
  names and state names quoted as literals by `format('%L', …)`, here, in SQL. Everything a request
  carries travels as a parameter ($1, $2, …) of the returned statement.

  Every statement reads through an index, so that its cost does not grow with the tasks retained.
  A task's state is that of its run marked not superseded (migration 000028: one per task; a failed
  run that a retry followed, or whose task max_duration cancelled instead, is superseded), except
  for a cancelled task, found by its cancelled_at: r_<q>_lsi (state, task_id) where not superseded
  holds each state's tasks, t_<q>_cli (task_id) where cancelled_at is not null the cancelled ones.

  QueueSummaryStatement  one row per queue (all of them, by name): tasks per state, and runs that
                         completed or failed since $2 and since $3 (runs whose last claim,
                         available_at, falls in the window: r_<q>_sai), each count capped at $1 rows
                         read (a count equal to $1 means "at least"). Per state: a range of
                         r_<q>_lsi, and for cancelled t_<q>_cli, each read index-only; on a schema
                         installed by Absurd's own tools (no r_<q>.superseded), the tasks' state. The windows'
                         starts are parameters, not absurd.current_time() (volatile: no index
                         bound) nor a subquery of it (unknown when planned: the planner then guesses
                         a third of the runs and reads them all): see DatabaseNow. Null statement:
                         there is no queue.

  DatabaseNow            absurd.current_time(), the engine's clock.

  TaskPageStatement      one page of tasks of one queue or all of them (`queueName` null). Parameters
                         of the statement: $1 state, $2 task name, $3 / $4 created at or after / before
                         a time (as a task id range: task ids are UUIDv7s), $5 / $6 older / newer than
                         a task id (the keyset cursor), $7 page size, $8 / $9 a params field (a path
                         of keys) that must equal a text, $10 how many tasks each part reads at most.
                         A null parameter filters nothing. The statement is a union of parts, one per
                         queue, each an index range read in task id order (newest first, or oldest
                         first with `newer`):
                         - no state: the primary key, or with a task name t_<q>_nti (task_name,
                           task_id);
                         - cancelled: t_<q>_cli, the task name tested on the task row;
                         - an ended state (completed, failed) with a task name: t_<q>_nti, the
                           state tested on the task row (a name's tasks are mostly ended ones, and a
                           name may be rare among the failed: 59 against 2.6 ms in docs/dashboard.md's
                           measure);
                         - any other state: its range of r_<q>_lsi, each run joined to its task (a
                           primary-key probe, which also tests the task name); on a schema
                           installed by Absurd's own tools (no r_<q>.superseded), the primary key,
                           the state tested on the task row.
                         Each part returns the tasks that match ($7 + 1 at most), each with its last
                         run and whether that run is pending at infinity (`held`: parked by a limit,
                         see ParkedRuns), and also its last task read (`matched` false when it does
                         not match): with `scan_full`, the part stopped at its $10 budget there, so
                         that a params search pages on from that point. Null statement: there is no
                         queue.

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

  Schedules and limits come with engine migrations 000015 and 000016; a schema installed by Absurd's
  own tools, or not migrated yet, has neither. The queries below that name their functions or tables
  run only once EngineFeatures said they exist.

  EngineFeatures         whether the engine has schedules (kit_list_schedules, kit_set_schedule_paused)
                         and limits (kit_list_limits, kit_limit_waiters).

  ScheduleList           every schedule, or those of one queue, by name (kit_list_schedules), and
                         whether its queue exists. Schedules are definitions, not history: a few rows.

  TaskStatesStatement    `(queue_name, task_id, state)` of the tasks of $1 (a uuid array) in each
                         queue of `queueNames` that holds them (primary keys): the last task each
                         schedule spawned.

  LimitList              the limits of one queue or all of them (kit_list_limits), with the runs that
                         hold a slot and the runs parked now.

  ParkedRuns             the parked runs among (queue, run id) pairs: the limit and the bucket key
                         each waits under, read by kit_limit_waiters' primary key. A row there whose
                         run is no longer pending at infinity (un-parked, not claimed yet) is not
                         parked: callers pass only runs that are.

  ParkedTasksStatement   the tasks parked by limit $1 of queue `queueName`, in bucket $2 with `byKey`
                         (else $2 is null: every bucket), $3 at most, in the order of
                         kit_limit_waiters_fifo's leading columns (queue, limit, bucket): each waiter's
                         run (r_<q>'s primary key), still pending at infinity, and its task (t_<q>'s
                         primary key). The bucket is a condition of the statement only when given, so
                         that a generic plan seeks to it rather than filtering every bucket's waiters;
                         the lateral probes (`limit 1` keeps them from being flattened into a join the
                         planner could run as a merge over a whole r_<q> index) read one run and one
                         task per waiter. A waiter just un-parked and not claimed yet takes a place
                         of the $3 and is left out.
*/

/* @name QueueSummaryStatement */
select 'select * from ('
       || string_agg(format(
            'select %1$L::text as queue_name, %4$s,
                    (select count(*) from (select 1 from absurd.%3$I r where r.state = ''completed''
                        and r.available_at >= $2::timestamptz limit $1::integer) x) as completed_5m,
                    (select count(*) from (select 1 from absurd.%3$I r where r.state = ''completed''
                        and r.available_at >= $3::timestamptz limit $1::integer) x) as completed_60m,
                    (select count(*) from (select 1 from absurd.%3$I r where r.state = ''failed''
                        and r.available_at >= $2::timestamptz limit $1::integer) x) as failed_5m,
                    (select count(*) from (select 1 from absurd.%3$I r where r.state = ''failed''
                        and r.available_at >= $3::timestamptz limit $1::integer) x) as failed_60m',
            q.queue_name, 't_' || q.queue_name, 'r_' || q.queue_name,
            (select string_agg(
                      case when k.marked and s.state <> 'cancelled'
                           then format('(select count(*) from (select 1 from absurd.%1$I r where r.state = %2$L and not r.superseded limit $1::integer) x) as %3$I',
                                       'r_' || q.queue_name, s.state, s.state)
                           when s.state = 'cancelled'
                           then format('(select count(*) from (select 1 from absurd.%1$I t where t.cancelled_at is not null limit $1::integer) x) as %2$I',
                                       't_' || q.queue_name, s.state)
                           else format('(select count(*) from (select 1 from absurd.%1$I t where t.state = %2$L limit $1::integer) x) as %3$I',
                                       't_' || q.queue_name, s.state, s.state)
                      end, ', ' order by s.ord)
               from unnest(array['pending', 'running', 'sleeping', 'completed', 'failed', 'cancelled']) with ordinality as s(state, ord))),
          ' union all ' order by q.queue_name)
       || ') summary order by queue_name' as statement
  from absurd.queues q
 -- Whether the queue's runs are marked (r_<q>.superseded, migration 000028): a schema installed by
 -- Absurd's own tools has no such column, and its counts read the tasks' state.
 cross join lateral (select exists (select 1 from pg_attribute a
                                     where a.attrelid = to_regclass(format('absurd.%I', 'r_' || q.queue_name))
                                       and a.attname = 'superseded' and not a.attisdropped) as marked) k;

/* @name DatabaseNow */
select absurd.current_time() as "now!";

/* @name TaskPageStatement */
select 'select * from ('
       || string_agg(format(
            '(select %1$L::text as queue_name, s.task_id, s.task_name, s.state, s.attempts, s.max_attempts, s.enqueue_at,
                     r.started_at, coalesce(r.completed_at, r.failed_at, s.cancelled_at) as ended_at,
                     s.last_attempt_run, (r.state = ''pending'' and r.available_at = ''infinity'') as held,
                     s.matched, s.scan_full
                from (select w.*,
                             ($8::text[] is null or w.params #>> $8::text[] = $9::text) as matched,
                             row_number() over (order by w.task_id %2$s) as n,
                             count(*) over () as scanned,
                             count(*) over () >= $10::integer as scan_full
                        from (%3$s) w) s
                left join absurd.%4$I r on r.run_id = s.last_attempt_run
               where s.matched or s.n = s.scanned
               order by s.task_id %2$s
               limit $7::integer + 2)',
            q.queue_name, d.dir,
            case when :state::text is null or :state::text = 'cancelled'
                      or (:byName!::boolean and :state::text in ('completed', 'failed')) or not k.marked
                 then part.task_range else part.run_range end,
            'r_' || q.queue_name),
          ' union all ' order by q.queue_name)
       || ') page order by task_id ' || case when :newer!::boolean then 'asc' else 'desc' end as statement
  from absurd.queues q
 cross join lateral (select case when :newer!::boolean then 'asc' else 'desc' end as dir) d
 -- Whether the queue's runs are marked (see QueueSummaryStatement).
 cross join lateral (select exists (select 1 from pg_attribute a
                                     where a.attrelid = to_regclass(format('absurd.%I', 'r_' || q.queue_name))
                                       and a.attname = 'superseded' and not a.attisdropped) as marked) k
 cross join lateral (
   -- The range of r_<q>_lsi of state $1 in task id order, each run joined to its task by a primary-
   -- key probe (the `limit 1` keeps it from being flattened into a join the planner could run over
   -- a whole index), which also tests the task name. The task id bounds compare (state, task_id) so
   -- that only r_<q>_lsi can take them as index bounds: r_<q>_ti, whose order follows the heap,
   -- would otherwise tempt the planner into reading every run of the span.
   select format(
            '(select r.task_id, t.task_name, t.state, t.attempts, t.max_attempts, t.enqueue_at,
                     t.params, t.cancelled_at, t.last_attempt_run
                from absurd.%1$I r
               cross join lateral (select t.task_name, t.state, t.attempts, t.max_attempts, t.enqueue_at,
                                          t.params, t.cancelled_at, t.last_attempt_run
                                     from absurd.%2$I t
                                    where t.task_id = r.task_id and t.state = $1::text
                                      and ($2::text is null or t.task_name = $2::text)
                                    limit 1) t
               where r.state = $1::text and not r.superseded
                 and ($3::timestamptz is null or (r.state, r.task_id) >= ($1::text, absurd.uuidv7_floor($3::timestamptz)))
                 and ($4::timestamptz is null or (r.state, r.task_id) < ($1::text, absurd.uuidv7_floor($4::timestamptz)))
                 and ($5::uuid is null or (r.state, r.task_id) < ($1::text, $5::uuid))
                 and ($6::uuid is null or (r.state, r.task_id) > ($1::text, $6::uuid))
               order by r.task_id %3$s
               limit $10::integer)',
            'r_' || q.queue_name, 't_' || q.queue_name, d.dir) as run_range,
          -- A range of the tasks' primary key, t_<q>_nti (a task name) or t_<q>_cli (cancelled).
          format(
            'select t.task_id, t.task_name, t.state, t.attempts, t.max_attempts, t.enqueue_at,
                    t.params, t.cancelled_at, t.last_attempt_run
               from absurd.%1$I t
              where %2$s
                and ($2::text is null or t.task_name = $2::text)
                and ($3::timestamptz is null or t.task_id >= absurd.uuidv7_floor($3::timestamptz))
                and ($4::timestamptz is null or t.task_id < absurd.uuidv7_floor($4::timestamptz))
                and ($5::uuid is null or t.task_id < $5::uuid)
                and ($6::uuid is null or t.task_id > $6::uuid)
              order by t.task_id %3$s
              limit $10::integer',
            't_' || q.queue_name,
            -- Cancelled: only cancelled_at (set exactly on the cancelled tasks), not the state as well,
            -- which would make the planner expect almost none and sort them all.
            case when :state::text = 'cancelled' then 't.cancelled_at is not null and $1::text is not null'
                 else '($1::text is null or t.state = $1::text)' end,
            d.dir) as task_range) part
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

/* @name EngineFeatures */
select to_regprocedure('absurd.kit_list_schedules(text)') is not null
       and to_regprocedure('absurd.kit_set_schedule_paused(text,boolean)') is not null as "schedules!",
       to_regprocedure('absurd.kit_list_limits(text)') is not null
       and to_regclass('absurd.kit_limit_waiters') is not null as "limits!";

/* @name ScheduleList */
select s.schedule_name as "schedule_name!", s.queue_name as "queue_name!", s.task_name as "task_name!", s.cron as "cron!",
       s.timezone as "timezone!", s.params as "params!", s.catch_up as "catch_up!", s.paused as "paused!",
       s.next_fire_at, s.last_fired_at, s.last_task_id, s.last_error,
       exists (select 1 from absurd.queues q where q.queue_name = s.queue_name) as "queue_exists!"
  from absurd.kit_list_schedules(:queueName::text) s;

/* @name TaskStatesStatement */
select 'select * from ('
       || string_agg(format('select %L::text as queue_name, t.task_id, t.state from absurd.%I t where t.task_id = any($1::uuid[])',
                            q.queue_name, 't_' || q.queue_name),
                     ' union all ' order by q.queue_name)
       || ') found' as statement
  from absurd.queues q
 where q.queue_name = any(:queueNames!::text[]);

/* @name LimitList */
select l.queue_name as "queue_name!", l.limit_name as "limit_name!", l.task_name, l.key_path, l.max_running, l.rate_count,
       l.rate_period_seconds, l.running::integer as "running!", l.parked::integer as "parked!"
  from absurd.kit_list_limits(:queueName::text) l;

/* @name ParkedRuns */
select w.queue_name as "queue_name!", w.run_id as "run_id!", w.limit_name as "limit_name!", w.key as "key!"
  from unnest(:queueNames!::text[], :runIds!::uuid[]) as x(queue_name, run_id)
  join absurd.kit_limit_waiters w on w.queue_name = x.queue_name and w.run_id = x.run_id;

/* @name ParkedTasksStatement */
select format(
         'select w.key, w.run_id, r.attempt, t.task_id, t.task_name, t.enqueue_at
            from (select w.key, w.run_id
                    from absurd.kit_limit_waiters w
                   where w.queue_name = %1$L and w.limit_name = $1::text and %4$s
                   order by w.key
                   limit $3::integer) w
           cross join lateral (select r.attempt, r.task_id from absurd.%2$I r
                                where r.run_id = w.run_id and r.state = ''pending'' and r.available_at = ''infinity''
                                limit 1) r
           cross join lateral (select t.task_id, t.task_name, t.enqueue_at from absurd.%3$I t
                                where t.task_id = r.task_id
                                limit 1) t
           order by w.key',
         q.queue_name, 'r_' || q.queue_name, 't_' || q.queue_name,
         case when :byKey!::boolean then 'w.key = $2::text' else '$2::text is null' end) as "statement!"
  from absurd.queues q
 where q.queue_name = :queueName!::text;
