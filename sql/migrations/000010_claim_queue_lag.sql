-- absurd-kit engine, migration 000010: the queue lag of every claimed run.
--
-- Additions only: kit_claim_task gains a last column, queue_lag; claim_task is unchanged. A worker
-- of an earlier absurd-kit selects kit_claim_task's columns by name and does not see the new one.

-- kit_claim_task(q, worker, claim_timeout, qty): claim_task, plus each claimed run's checkpoints
-- and queue lag. Returns claim_task's ten columns in claim_task's order, then `checkpoints`: an
-- object of every committed checkpoint visible to the run's attempt (as get_task_checkpoint_states
-- returns them; checkpoints of later attempts are hidden), so that a worker needs no second round
-- trip to start a run; then `queue_lag`: seconds from the moment the run became due (its
-- available_at before the claim) to the claim (absurd.current_time()), for the worker's metrics.
-- claim_task overwrites available_at with the claim time, so the earlier value is read from the
-- statement's own snapshot: the join on r_<q> is part of the statement that calls claim_task, and
-- a statement does not see the rows that functions it calls change (their commands come after its
-- snapshot). A run that claim_task itself created (a retry of an expired lease, claimed at once)
-- has no earlier version there: its queue_lag is NULL.
-- Locks: those of claim_task; the checkpoints and the runs' earlier versions are only read.
drop function absurd.kit_claim_task(text, text, integer, integer);
create function absurd.kit_claim_task(p_queue_name text, p_worker_id text, p_claim_timeout integer default 30,
                                      p_qty integer default 1)
returns table(run_id uuid, task_id uuid, attempt integer, task_name text, params jsonb,
              retry_strategy jsonb, max_attempts integer, headers jsonb, wake_event text,
              event_payload jsonb, checkpoints jsonb, queue_lag double precision)
language plpgsql
as $$
begin
  return query execute format(
    'select c.run_id, c.task_id, c.attempt, c.task_name, c.params, c.retry_strategy, c.max_attempts,
            c.headers, c.wake_event, c.event_payload,
            (select coalesce(jsonb_object_agg(cp.checkpoint_name, cp.state), ''{}''::jsonb)
               from absurd.%1$I cp
               left join absurd.%2$I owner on owner.run_id = cp.owner_run_id
              where cp.task_id = c.task_id and cp.status = ''committed''
                and (owner.attempt is null or owner.attempt <= c.attempt)),
            extract(epoch from absurd.current_time() - due.available_at)::double precision
       from absurd.claim_task($1, $2, $3, $4) with ordinality as c
       left join absurd.%2$I due on due.run_id = c.run_id
      order by c.ordinality',
    'c_' || p_queue_name, 'r_' || p_queue_name)
    using p_queue_name, p_worker_id, p_claim_timeout, p_qty;
end;
$$;
