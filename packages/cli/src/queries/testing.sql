/*
  What `@absurd-kit/cli/testing` sends besides the runtime's own calls (spawning, claiming, running,
  emitting all go through the runtime's `Absurd` client): the test clock, the template database
  that test databases are cloned from, and what tests read back about runs, children and events.
  Task details (task, runs, checkpoints, waits) come from `TaskDetailStatements` in tasks.sql.

  Statements on per-queue tables are returned as text, their table names quoted by
  `format('%I', …)` here, in SQL; values travel as parameters ($1, …) of the returned statement
  (see tasks.sql).

  SetFakeNow                 sets `absurd.fake_now` for the session: every engine function reads
                             the time from absurd.current_time(), which returns it.
  LockTestTemplate           waits for the server-wide advisory lock under which one process
                             builds the template database (others wait, then find it built).
  UnlockTestTemplate         releases it.
  CloneDatabaseStatement     `create database <name> template <template>`: CREATE DATABASE takes
                             identifiers, which no parameter can carry.
  RenameDatabaseStatement    `alter database <name> rename to <new name>`: a template is built
                             under a temporary name and renamed when complete, so that a crashed
                             build never leaves a half-built template under the real name.
  RunOutcomeStatement        `(state, available_at, wake_event, result, failure_reason, task_state)`
                             of run $1 (a UUID), after a test executed it.
  ChildTasksStatement        tasks of any queue whose `absurd.parent` header (the wire format the
                             runtime writes on a child spawned with ctx.spawn, see
                             docs/api-conventions.md) names task $1, oldest first. Null
                             statement: there is no queue.
  EmittedEventsStatement     the emitted events of a queue (`payload is not null`; a null payload
                             marks an event only awaited so far), in emission order.
  NextWakeStatement          the earliest time after now at which something of the given queues
                             becomes due: a sleeping or pending run's `available_at`, or a running
                             run's lease end. Runs waiting for another task's result
                             (`$taskResult:<id>`) are left out: their wake-ups are only checks, the
                             awaited task's end wakes them. Null statement: no queue given.
*/

/* @name SetFakeNow */
select set_config('absurd.fake_now', :at!::text, false) as "setting!";

/* @name LockTestTemplate */
select pg_advisory_lock(hashtext('absurd-kit test template')) is null as "locked!";

/* @name UnlockTestTemplate */
select pg_advisory_unlock(hashtext('absurd-kit test template')) as "unlocked!";

/* @name CloneDatabaseStatement */
select format('create database %I template %I', :database!::text, :template!::text) as "statement!";

/* @name RenameDatabaseStatement */
select format('alter database %I rename to %I', :database!::text, :newName!::text) as "statement!";

/* @name RunOutcomeStatement */
select format('select r.state, r.available_at, r.wake_event, r.result, r.failure_reason, t.state as task_state
                 from absurd.%I r
                 join absurd.%I t on t.task_id = r.task_id
                where r.run_id = $1::uuid', 'r_' || :queueName!::text, 't_' || :queueName!::text) as "statement!";

/* @name ChildTasksStatement */
select 'select * from ('
       || string_agg(format(
            'select %L::text as queue_name, task_id, task_name, state, attempts
               from absurd.%I
              where headers -> ''absurd.parent'' ->> ''taskId'' = $1::text',
            q.queue_name, 't_' || q.queue_name), ' union all ' order by q.queue_name)
       || ') children order by task_id' as statement
  from absurd.queues q;

/* @name EmittedEventsStatement */
select format('select event_name, payload, emitted_at from absurd.%I
                where payload is not null
                order by emitted_at, event_name', 'e_' || :queueName!::text) as "statement!";

/* @name NextWakeStatement */
select 'select min(at) as at from ('
       || string_agg(format(
            'select available_at as at from absurd.%1$I
              where state in (''pending'', ''sleeping'') and available_at > absurd.current_time()
                and available_at < ''infinity'' and coalesce(wake_event, '''') not like ''$taskResult:%%''
             union all
             select claim_expires_at from absurd.%1$I
              where state = ''running'' and claim_expires_at > absurd.current_time()',
            'r_' || q), ' union all ')
       || ') due' as statement
  from unnest(:queueNames!::text[]) q;
