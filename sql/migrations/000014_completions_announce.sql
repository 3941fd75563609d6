-- absurd-kit engine, migration 000014: a child's completion tells its parent in the same commit.
--
-- A task spawned by a parent task (header "absurd.parent": {"queue", "taskId"}) announces its end
-- with the event "$taskResult:<task>" on the parent's queue, which answers (and, the last of its
-- group, wakes) the waiting parent. The worker used to send that event itself after the completion
-- had committed: a second transaction, and a second WAL flush, for every child of a fan-out.
-- kit_complete_runs now emits it in the completion's own transaction, through kit_announce_end,
-- whose presence tells a worker that it need not send the event again. complete_run (Absurd's
-- contract) is unchanged: workers that complete through it announce as before.

-- kit_announce_end(q, task): emits "$taskResult:<task>" with the task's final snapshot
-- ({"state": "completed", "result": …}, {"state": "failed", "failure": …} or {"state": …}) on the
-- queue of the parent its "absurd.parent" header names, and notifies that queue's idle listening
-- workers (kit_wake_idle_workers). Nothing for a task without such a header, or not yet ended.
-- Best effort: if the parent's queue is gone or the header malformed, nothing is sent and nothing
-- is raised (the parent also looks on its own). The first emission of the event wins, so calling
-- it twice sends nothing new. Locks: those of emit_event on the parent's queue.
create function absurd.kit_announce_end(p_queue_name text, p_task_id uuid) returns void
language plpgsql
as $$
declare
  v_parent jsonb;
  v_state text;
  v_snapshot jsonb;
begin
  execute format(
    'select t.headers -> ''absurd.parent'', t.state,
            case t.state
              when ''completed'' then jsonb_build_object(''state'', ''completed'', ''result'', coalesce(t.completed_payload, ''null''::jsonb))
              when ''failed'' then jsonb_build_object(''state'', ''failed'', ''failure'', coalesce(r.failure_reason, ''null''::jsonb))
              else jsonb_build_object(''state'', t.state)
            end
       from absurd.%I t
       left join absurd.%I r on r.run_id = t.last_attempt_run
      where t.task_id = $1',
    't_' || p_queue_name, 'r_' || p_queue_name)
    into v_parent, v_state, v_snapshot using p_task_id;
  if v_state is null or v_state not in ('completed', 'failed', 'cancelled') then
    return;
  end if;
  if jsonb_typeof(v_parent) <> 'object' or jsonb_typeof(v_parent -> 'queue') <> 'string' then
    return;
  end if;
  begin
    perform absurd.emit_event(v_parent ->> 'queue', '$taskResult:' || p_task_id, v_snapshot);
    perform absurd.kit_wake_idle_workers(v_parent ->> 'queue');
  exception when others then
    null;  -- best effort, see above: the completion stands
  end;
end;
$$;

-- kit_complete_runs(q, runs, results): as in migration 000006 (complete_run for many runs in one
-- call; one row per run, in order: 'completed', or why it was refused), then kit_announce_end for
-- every task this call completed that has a parent (an "absurd.parent" header; no other task costs
-- anything more). Locks: those of 000006, then those of kit_announce_end for each
-- completed task that has a parent, in run order.
create or replace function absurd.kit_complete_runs(p_queue_name text, p_run_ids uuid[], p_results jsonb[])
returns table(run_id uuid, outcome text)
language plpgsql
as $$
declare
  v_now timestamptz := absurd.current_time();
  v_runs uuid[];
  v_outcomes text[];
  v_tasks uuid[];
  v_task uuid;
begin
  execute format(
    'with input as (
       select i.run_id, i.result, i.ord
         from unnest($1::uuid[], $2::jsonb[]) with ordinality as i(run_id, result, ord)
     ),
     locked as (
       select r.run_id, r.task_id, r.state
         from absurd.%1$I r
        where r.run_id in (select input.run_id from input)
        order by r.run_id
          for update
     ),
     done as (
       update absurd.%1$I r
          set state = ''completed'', completed_at = $3, result = i.result
         from locked l
         join input i on i.run_id = l.run_id
        where r.run_id = l.run_id and l.state = ''running'' and r.state = ''running''
       returning r.run_id, r.task_id, r.result
     ),
     tasks as (
       update absurd.%2$I t
          set state = ''completed'', completed_payload = d.result, last_attempt_run = d.run_id
         from done d
        where t.task_id = d.task_id
       returning t.task_id, t.headers ? ''absurd.parent'' as has_parent
     ),
     waits as (
       delete from absurd.%3$I w using done d where w.run_id = d.run_id
     )
     select array_agg(i.run_id order by i.ord),
            array_agg(case when d.run_id is not null then ''completed'' else coalesce(l.state, ''not_found'') end order by i.ord),
            array_agg(d.task_id order by i.ord) filter (where c.has_parent)
       from input i
       left join done d on d.run_id = i.run_id
       left join tasks c on c.task_id = d.task_id
       left join locked l on l.run_id = i.run_id
',
    'r_' || p_queue_name, 't_' || p_queue_name, 'w_' || p_queue_name)
    into v_runs, v_outcomes, v_tasks using p_run_ids, p_results, v_now;

  -- The tasks' rows are updated now (a later statement of this function sees them): announce.
  foreach v_task in array coalesce(v_tasks, '{}'::uuid[]) loop
    perform absurd.kit_announce_end(p_queue_name, v_task);
  end loop;

  return query select u.run_id, u.outcome from unnest(v_runs, v_outcomes) with ordinality as u(run_id, outcome, ord) order by u.ord;
end;
$$;
