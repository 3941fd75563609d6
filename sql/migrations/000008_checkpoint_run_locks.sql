-- absurd-kit engine, migration 000008: a batched checkpoint write waits for a concurrent end of its run.
--
-- kit_set_checkpoints read each owner run's state without a lock. A write that reached the engine
-- while claim_task's lease sweep (or fail_run) was failing the same run saw the run still running,
-- and committed the step's result for a run that had just lost the task; the run that replaced it
-- may already have loaded its checkpoints, and would then run that step again. The function now
-- locks the owner runs before it reads their state.

-- kit_set_checkpoints(q, task_ids, step_names, states, owner_runs, extend_by): set_task_checkpoint_state
-- for many checkpoints in one call (element i of each array is one write). Each write behaves as
-- set_task_checkpoint_state, but a write it would refuse is reported instead of raising, so one
-- cancelled task does not fail the others: outcome 'ok', 'cancelled' (AB001), 'failed' (AB002) or
-- 'not_found' (the owner run does not exist). Step names must be non-blank and unique per task
-- within a call. Locks: the owner runs (FOR NO KEY UPDATE, in run_id order, before anything is
-- read), then the checkpoint rows written.
create or replace function absurd.kit_set_checkpoints(p_queue_name text, p_task_ids uuid[], p_step_names text[],
                                           p_states jsonb[], p_owner_runs uuid[], p_extend_by integer[])
returns table(ord bigint, outcome text)
language plpgsql
as $$
declare
  v_now timestamptz := absurd.current_time();
begin
  -- Lock the owner runs first (in run_id order, as cancel_task does), so that the state read below
  -- is final: a run that claim_task's lease sweep or fail_run is failing right now is seen failed
  -- once that commits, instead of as running, and its step cannot be committed for it.
  execute format(
    'select 1 from absurd.%I r where r.run_id = any($1) order by r.run_id for no key update',
    'r_' || p_queue_name)
    using p_owner_runs;
  return query execute format(
    'with input as (
       select i.task_id, i.step_name, i.state, i.owner_run, i.extend_by, i.ord
         from unnest($1::uuid[], $2::text[], $3::jsonb[], $4::uuid[], $5::integer[])
              with ordinality as i(task_id, step_name, state, owner_run, extend_by, ord)
     ),
     checked as (
       select i.*, r.attempt,
              case when r.run_id is null then ''not_found''
                   when t.state = ''cancelled'' then ''cancelled''
                   when r.state = ''failed'' then ''failed''
                   else ''ok'' end as outcome
         from input i
         left join absurd.%1$I r on r.run_id = i.owner_run
         left join absurd.%2$I t on t.task_id = r.task_id
     ),
     extended as (
       update absurd.%1$I r
          set claim_expires_at = $6 + e.extend_by * interval ''1 second''
         from (select c.owner_run, max(c.extend_by) as extend_by
                 from checked c
                where c.outcome = ''ok'' and c.extend_by > 0
                group by c.owner_run) e
        where r.run_id = e.owner_run and r.state = ''running'' and r.claim_expires_at is not null
     ),
     written as (
       insert into absurd.%3$I as cp (task_id, checkpoint_name, state, status, owner_run_id, updated_at)
       select c.task_id, c.step_name, c.state, ''committed'', c.owner_run, $6
         from checked c
        where c.outcome = ''ok''
       on conflict (task_id, checkpoint_name) do update
          set state = excluded.state, status = ''committed'', owner_run_id = excluded.owner_run_id,
              updated_at = excluded.updated_at
        where coalesce((select r.attempt from absurd.%1$I r where r.run_id = cp.owner_run_id), 0)
              <= coalesce((select r.attempt from absurd.%1$I r where r.run_id = excluded.owner_run_id), 0)
     )
     select c.ord, c.outcome from checked c order by c.ord',
    'r_' || p_queue_name, 't_' || p_queue_name, 'c_' || p_queue_name)
    using p_task_ids, p_step_names, p_states, p_owner_runs, p_extend_by, v_now;
end;
$$;
