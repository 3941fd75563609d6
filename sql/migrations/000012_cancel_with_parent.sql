-- absurd-kit engine, migration 000012: children that end with their parent.
--
-- A task can spawn children that make no sense without it (the items of a fan-out). ctx.spawn
-- with `cancelWithParent: true` records it in the spawn's checkpoint on the parent, which holds
-- {"taskID", "queue", …, "cancelWithParent": true}; cancel_task now cancels, after the parent,
-- every child its checkpoints name that way and that has not ended, and their children in turn.
-- Every path that cancels goes through cancel_task (absurdctl, every SDK, kit_cancel_task, and
-- claim_task's cancellation-policy sweep), so all of them cascade. Tasks whose checkpoints name no
-- such child (every task another client spawns) are cancelled exactly as before.

-- kit_cancel_children(q, task): cancels, with cancel_task (so recursively), every child named by
-- the task's committed checkpoints that has not ended: a checkpoint {"queue": <text>, "taskID":
-- <text>, "cancelWithParent": true} (ctx.spawn) names one, and {"queue": <text>, "tasks": [{"taskID":
-- <text>, …}, …], "cancelWithParent": true} (ctx.spawnMany) names each of its tasks. A child that cannot be cancelled (its queue is gone, its id is malformed, it
-- was deleted) is passed over. cancel_task calls it once it has cancelled the task; its presence
-- also tells a client that the engine honours `cancelWithParent`.
-- Locks: the task's checkpoints are read; then those of cancel_task on each child, in checkpoint
-- name order (and list order within one).
create function absurd.kit_cancel_children(p_queue_name text, p_task_id uuid) returns void
language plpgsql
as $$
declare
  v_child record;
begin
  for v_child in execute format(
    'with flagged as (
       select c.checkpoint_name, c.state
         from absurd.%I c
        where c.task_id = $1 and c.status = ''committed'' and jsonb_typeof(c.state) = ''object''
          and c.state -> ''cancelWithParent'' = ''true''::jsonb and jsonb_typeof(c.state -> ''queue'') = ''string''
     )
     select f.state ->> ''queue'' as queue_name, f.state ->> ''taskID'' as task_id, f.checkpoint_name, 0::bigint as position
       from flagged f
      where jsonb_typeof(f.state -> ''taskID'') = ''string''
     union all
     select f.state ->> ''queue'', t.value ->> ''taskID'', f.checkpoint_name, t.ordinality
       from flagged f
       cross join lateral jsonb_array_elements(
         case when jsonb_typeof(f.state -> ''tasks'') = ''array'' then f.state -> ''tasks'' else ''[]''::jsonb end
       ) with ordinality as t
      where jsonb_typeof(t.value -> ''taskID'') = ''string''
      order by 3, 4',
    'c_' || p_queue_name)
    using p_task_id
  loop
    begin
      perform absurd.cancel_task(v_child.queue_name, v_child.task_id::uuid);
    exception when others then
      null;  -- the child is passed over; the parent's cancellation stands
    end;
  end loop;
end;
$$;

-- cancel_task(q, task): as in migration 000007 (cancels a task that is not yet terminal, its live
-- runs and its waits; announces the end to a waiting parent; a no-op on a terminal task), then
-- cancels its children to cancel with kit_cancel_children. The parent's cancellation stands
-- whatever happens to them.
-- Locks: those of 000007 on the task, then those of kit_cancel_children.
create or replace function absurd.cancel_task(p_queue_name text, p_task_id uuid) returns void
language plpgsql
as $$
declare
  v_now timestamptz := absurd.current_time();
  v_state text;
  v_parent jsonb;
begin
  execute format(
    'select count(*) from (
       select 1 from absurd.%I r
        where r.task_id = $1 and r.state not in (''completed'', ''failed'', ''cancelled'')
        order by r.run_id
          for update) as locked',
    'r_' || p_queue_name)
    using p_task_id;

  execute format('select t.state, t.headers -> ''absurd.parent'' from absurd.%I t where t.task_id = $1 for update',
                 't_' || p_queue_name)
    into v_state, v_parent using p_task_id;
  if v_state is null then
    raise exception 'Task "%" not found in queue "%"', p_task_id, p_queue_name;
  end if;
  if v_state in ('completed', 'failed', 'cancelled') then
    return;
  end if;

  execute format(
    'with runs as (
       update absurd.%I r
          set state = ''cancelled'', claimed_by = null, claim_expires_at = null
        where r.task_id = $1 and r.state not in (''completed'', ''failed'', ''cancelled'')
     ),
     waits as (
       delete from absurd.%I w where w.task_id = $1
     )
     update absurd.%I t
        set state = ''cancelled'', cancelled_at = coalesce(t.cancelled_at, $2)
      where t.task_id = $1',
    'r_' || p_queue_name, 'w_' || p_queue_name, 't_' || p_queue_name)
    using p_task_id, v_now;

  if jsonb_typeof(v_parent) = 'object' and jsonb_typeof(v_parent -> 'queue') = 'string' then
    begin
      perform absurd.emit_event(v_parent ->> 'queue', '$taskResult:' || p_task_id, '{"state": "cancelled"}'::jsonb);
      perform pg_notify('absurd_wake_' || md5(v_parent ->> 'queue'), '');
    exception when others then
      -- Best effort: the parent's queue may be gone or the header malformed, and the parent also
      -- re-checks on its own. The cancellation must stand whatever happens here (claim_task's
      -- policy sweep calls this, and a failure would block claims on the whole queue).
      null;
    end;
  end if;

  perform absurd.kit_cancel_children(p_queue_name, p_task_id);
end;
$$;
