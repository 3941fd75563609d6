/*
  Tasks: spawning, cancelling, retrying, reading results.

  SpawnTask        creates a task and its first run (absurd.spawn_task), then notifies the queue's
                   wake channel so that listening workers claim at once. For engines without
                   absurd.kit_spawn_task (Absurd's schema, absurd-kit before migration 000013).
  SpawnTaskWaking  the same where absurd.spawn_task notifies the queue's idle listening workers
                   itself (migration 000016): the statement every SDK sends.
  SpawnTaskWakingIdle
                   the same through absurd.kit_spawn_task, which notifies only while a worker of
                   the queue is idle and listening (a notifying commit holds a database-wide lock,
                   so unconditional notifications would serialise concurrent spawns); migrations
                   000013 to 000015.
  SpawnTasks       many tasks in one statement (absurd.kit_spawn_tasks): `tasks` is a JSON array
                   of {task_name, params, options}; one row per element, in order.
  SpawnTasksStandard
                   the same on engines without kit_spawn_tasks: spawn_task for each element in
                   one statement, then one notification.
  CancelTask       cancels a task that has not ended (a no-op on ended tasks). On absurd-kit's
                   engine a child task's waiting parent is told at once (cancel_task announces it
                   since migration 000007); Absurd's cancel_task does not.
  RetryTask        retries a failed task in place or as a new task, then notifies the wake channel.
  GetTaskResult    the task's state with its result or failure reason; no row for an unknown task.
  AwaitedTaskResult GetTaskResult's columns for the awaited task (all null when there is no such
                   task), and the state of the task that waits for it (`waiter_state`), in one
                   round trip: a task waiting by polling finds out at once that it was cancelled.
  TaskHeadersStatement
                   the statement reading a task's headers (its parent, `absurd.parent`), taking the
                   task id as $1. The table's name depends on the queue and no statement parameter
                   can carry an identifier, so Postgres builds it (`format('%I', …)`).

  JSON arguments are sent as text (`JSON.stringify`; SQL NULL for undefined), the way every Absurd
  SDK sends them: hence the `::text::jsonb` casts, which type them as strings.

  Parameters are numbered in order of first appearance, and callers' logs and tests see them in
  the engine functions' argument order ($1 queue, …, the wake channel last): hence the `with`.
*/

/* @name SpawnTask */
with s as (select * from absurd.spawn_task(:queueName!, :taskName!, :params::text::jsonb, :options::text::jsonb))
select s.task_id as "task_id!", s.run_id as "run_id!", s.attempt as "attempt!", s.created as "created!", pg_notify(:channel!, '')
  from s;

/* @name SpawnTaskWaking */
select task_id as "task_id!", run_id as "run_id!", attempt as "attempt!", created as "created!"
  from absurd.spawn_task(:queueName!, :taskName!, :params::text::jsonb, :options::text::jsonb);

/* @name SpawnTaskWakingIdle */
select task_id as "task_id!", run_id as "run_id!", attempt as "attempt!", created as "created!"
  from absurd.kit_spawn_task(:queueName!, :taskName!, :params::text::jsonb, :options::text::jsonb);

/* @name SpawnTasks */
select task_id as "task_id!", run_id as "run_id!", attempt as "attempt!", created as "created!"
  from absurd.kit_spawn_tasks(:queueName!, :tasks!::text::jsonb);

/* @name SpawnTasksStandard */
with input as (select :queueName!::text as queue_name, :tasks!::text::jsonb as tasks),
s as (
  select e.ordinality, x.*
    from input i
    cross join lateral jsonb_array_elements(i.tasks) with ordinality e
    cross join lateral absurd.spawn_task(i.queue_name, e.value ->> 'task_name', e.value -> 'params', e.value -> 'options') x
)
select s.task_id as "task_id!", s.run_id as "run_id!", s.attempt as "attempt!", s.created as "created!",
       pg_notify(:channel!, '') as notified
  from s
 order by s.ordinality;

/* @name CancelTask */
select absurd.cancel_task(:queueName!, :taskId!);

/* @name RetryTask */
with r as (select * from absurd.retry_task(:queueName!, :taskId!, :options::text::jsonb))
select r.task_id as "task_id!", r.run_id as "run_id!", r.attempt as "attempt!", r.created as "created!", pg_notify(:channel!, '')
  from r;

/* @name GetTaskResult */
select state as "state!", result, failure_reason from absurd.get_task_result(:queueName!, :taskId!);

/* @name AwaitedTaskResult */
select a.state, a.result, a.failure_reason, w.state as waiter_state
  from (values (1)) as one (x)
  left join absurd.get_task_result(:queueName!, :taskId!) a on true
  left join absurd.get_task_result(:waiterQueueName!, :waiterTaskId!) w on true;

/* @name TaskHeadersStatement */
select format('select headers from absurd.%I where task_id = $1::uuid', 't_' || :queueName!::text) as "statement!";
