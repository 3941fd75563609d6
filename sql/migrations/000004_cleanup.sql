-- absurd-kit engine, migration 000004: retention.
--
-- There are no foreign keys, so deleting a task deletes its waits, checkpoints, runs and (for
-- partitioned queues) its idempotency key explicitly. All deletes are bounded by a limit so that a
-- cleanup job can run often, in short transactions, next to live traffic.

-- cleanup_tasks(q, ttl_seconds, limit): deletes up to limit terminal tasks (and everything that belongs
-- to them) whose terminal time is older than ttl_seconds: completed_at / failed_at of the task's last
-- run, or the task's cancelled_at. Oldest first. Returns the number of tasks deleted.
-- Locks: the chosen tasks FOR UPDATE SKIP LOCKED (a concurrent retry_task keeps its task), then deletes.
create function absurd.cleanup_tasks(p_queue_name text, p_ttl_seconds integer, p_limit integer default 1000)
returns integer
language plpgsql
as $$
declare
  v_now timestamptz := absurd.current_time();
  v_mode text;
  v_deleted integer;
begin
  if p_ttl_seconds is null or p_ttl_seconds < 0 then
    raise exception 'TTL must be a non-negative number of seconds';
  end if;
  select q.storage_mode into v_mode from absurd.queues q where q.queue_name = p_queue_name;

  execute format(
    'with victims as (
       select t.task_id
         from absurd.%1$I t
         left join absurd.%2$I r on r.run_id = t.last_attempt_run
        where t.state in (''completed'', ''failed'', ''cancelled'')
          and case t.state
                when ''completed'' then r.completed_at
                when ''failed'' then r.failed_at
                else t.cancelled_at
              end < $1
        order by case t.state
                   when ''completed'' then r.completed_at
                   when ''failed'' then r.failed_at
                   else t.cancelled_at
                 end, t.task_id
        limit $2
          for update of t skip locked
     ),
     waits as (delete from absurd.%3$I w using victims v where w.task_id = v.task_id),
     checkpoints as (delete from absurd.%4$I c using victims v where c.task_id = v.task_id),
     runs as (delete from absurd.%2$I r using victims v where r.task_id = v.task_id)
     %5$s,
     tasks as (delete from absurd.%1$I t using victims v where t.task_id = v.task_id returning 1)
     select count(*)::integer from tasks',
    't_' || p_queue_name, 'r_' || p_queue_name, 'w_' || p_queue_name, 'c_' || p_queue_name,
    case when v_mode = 'partitioned'
      then format(', keys as (delete from absurd.%I i using victims v where i.task_id = v.task_id)',
                  'i_' || p_queue_name)
      else '' end)
    into v_deleted
    using v_now - p_ttl_seconds * interval '1 second', p_limit;
  return v_deleted;
end;
$$;

-- cleanup_events(q, ttl_seconds, limit): deletes up to limit events emitted more than ttl_seconds ago,
-- oldest first (never-emitted sentinels carry emitted_at = epoch and always qualify). Returns the count.
-- Locks: the chosen event rows FOR UPDATE SKIP LOCKED, so an await_event holding one is left alone.
create function absurd.cleanup_events(p_queue_name text, p_ttl_seconds integer, p_limit integer default 1000)
returns integer
language plpgsql
as $$
declare
  v_now timestamptz := absurd.current_time();
  v_deleted integer;
begin
  if p_ttl_seconds is null or p_ttl_seconds < 0 then
    raise exception 'TTL must be a non-negative number of seconds';
  end if;
  execute format(
    'with victims as (
       select e.event_name from absurd.%1$I e
        where e.emitted_at < $1
        order by e.emitted_at, e.event_name
        limit $2
          for update skip locked
     ),
     deleted as (delete from absurd.%1$I e using victims v where e.event_name = v.event_name returning 1)
     select count(*)::integer from deleted',
    'e_' || p_queue_name)
    into v_deleted
    using v_now - p_ttl_seconds * interval '1 second', p_limit;
  return v_deleted;
end;
$$;

-- cleanup_all_queues(q): applies each queue's retention policy (cleanup_ttl, cleanup_limit) once: one
-- cleanup_tasks and one cleanup_events call per queue, in name order, reporting the counts.
create function absurd.cleanup_all_queues(p_queue_name text default null)
returns table(queue_name text, tasks_deleted integer, events_deleted integer)
language plpgsql
as $$
declare
  v_queue record;
  v_ttl integer;
begin
  if p_queue_name is not null then
    perform absurd.validate_queue_name(p_queue_name);
    if not exists (select 1 from absurd.queues q where q.queue_name = p_queue_name) then
      raise exception 'Queue "%" does not exist', p_queue_name;
    end if;
  end if;
  for v_queue in
    select q.queue_name as name, q.cleanup_ttl, q.cleanup_limit
      from absurd.queues q
     where p_queue_name is null or q.queue_name = p_queue_name
     order by q.queue_name
  loop
    v_ttl := greatest(floor(extract(epoch from v_queue.cleanup_ttl))::integer, 0);
    queue_name := v_queue.name;
    tasks_deleted := absurd.cleanup_tasks(v_queue.name, v_ttl, v_queue.cleanup_limit);
    events_deleted := absurd.cleanup_events(v_queue.name, v_ttl, v_queue.cleanup_limit);
    return next;
  end loop;
end;
$$;
