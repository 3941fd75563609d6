-- absurd-kit engine, migration 000007: every cancellation announces itself to a waiting parent.
--
-- A task spawned by a parent task carries the header "absurd.parent": {"queue", "taskId"}; the
-- parent waits for the event "$taskResult:<task>" on its own queue. Until now only kit_cancel_task
-- sent that event, so a child cancelled by absurdctl, another SDK's cancel_task, or claim_task's
-- cancellation-policy sweep (which calls cancel_task) was noticed by its parent only at the parent's
-- next periodic re-check. cancel_task now sends it itself; for tasks without that header (every task
-- another client spawns) it behaves exactly as before.

-- cancel_task(q, task): cancels a task that is not yet terminal: the task becomes cancelled, its live
-- runs cancelled (claim cleared) and its event waits removed. A no-op on completed, failed or
-- cancelled tasks. When this call cancels a task spawned by a parent task, it also emits
-- "$taskResult:<task>" with {"state": "cancelled"} on the parent's queue and notifies that queue's
-- wake channel; if that fails (the parent's queue is gone, the header is malformed) the cancellation
-- stands without it.
-- Locks: the task's live runs FOR UPDATE in run_id order, then the task FOR UPDATE, then those of
-- emit_event on the parent's queue. A concurrent complete_run/fail_run that got the run first wins;
-- this call then sees a terminal task.
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
end;
$$;

-- kit_cancel_task(q, task): cancel_task (which now announces the end to a waiting parent itself).
-- Kept for workers that call it. Locks: those of cancel_task.
create or replace function absurd.kit_cancel_task(p_queue_name text, p_task_id uuid) returns void
language plpgsql
as $$
begin
  perform absurd.cancel_task(p_queue_name, p_task_id);
end;
$$;
