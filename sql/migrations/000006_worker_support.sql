-- absurd-kit engine, migration 000006: functions for absurd-kit's workers.
--
-- Additions only (the kit_ prefix marks functions that are not part of the Absurd contract); no
-- existing function changes behaviour, so every other client keeps working unchanged.

-- kit_seconds_until_next_run(q): seconds from now (absurd.current_time()) until the queue's earliest
-- pending or sleeping run becomes claimable; 0 or less when one is due already; NULL when no run is
-- waiting for time (runs waiting for an event without timeout wait for 'infinity' and do not count).
-- Idle workers sleep until then instead of polling. Reads the first entry of r_<q>_cai only.
create function absurd.kit_seconds_until_next_run(p_queue_name text) returns double precision
language plpgsql stable
as $$
declare
  v_next timestamptz;
begin
  execute format(
    'select r.available_at from absurd.%I r
      where r.state in (''pending'', ''sleeping'') and r.available_at < ''infinity''
      order by r.available_at, r.run_id
      limit 1',
    'r_' || p_queue_name)
    into v_next;
  if v_next is null then
    return null;
  end if;
  return extract(epoch from v_next - absurd.current_time())::double precision;
end;
$$;

-- kit_fail_task(q, run, reason): fails the run AND its task, with no retry whatever the retry
-- strategy or attempts left. For failures that a retry cannot fix: params that do not match the
-- task's schema, a stored checkpoint or event payload that today's code cannot read, an invalid
-- result. Same errors as fail_run: AB001 when the run was cancelled, AB002 when it already failed,
-- P0001 for a missing run or one that is neither running nor sleeping.
-- Locks: the run FOR UPDATE, then the task (the order of fail_run).
create function absurd.kit_fail_task(p_queue_name text, p_run_id uuid, p_reason jsonb) returns void
language plpgsql
as $$
declare
  v_now timestamptz := absurd.current_time();
  v_task_id uuid;
  v_attempt integer;
  v_state text;
begin
  execute format('select r.task_id, r.attempt, r.state from absurd.%I r where r.run_id = $1 for update',
                 'r_' || p_queue_name)
    into v_task_id, v_attempt, v_state using p_run_id;
  if v_state is null then
    raise exception 'Run "%" cannot be failed in queue "%"', p_run_id, p_queue_name;
  end if;
  if v_state = 'cancelled' then
    raise exception 'Task has been cancelled' using errcode = 'AB001';
  end if;
  if v_state = 'failed' then
    raise exception 'Run "%" has already failed in queue "%"', p_run_id, p_queue_name using errcode = 'AB002';
  end if;
  if v_state not in ('running', 'sleeping') then
    raise exception 'Run "%" cannot be failed in queue "%"', p_run_id, p_queue_name;
  end if;
  execute format(
    'with run as (
       update absurd.%1$I r
          set state = ''failed'', wake_event = null, failed_at = $3, failure_reason = $4
        where r.run_id = $1
     ),
     waits as (
       delete from absurd.%2$I w where w.run_id = $1
     )
     update absurd.%3$I t
        set state = ''failed'', attempts = greatest(t.attempts, $5), last_attempt_run = $1
      where t.task_id = $2',
    'r_' || p_queue_name, 'w_' || p_queue_name, 't_' || p_queue_name)
    using p_run_id, v_task_id, v_now, p_reason, v_attempt;
end;
$$;

-- kit_claim_task(q, worker, claim_timeout, qty): claim_task, plus each claimed run's checkpoints.
-- Returns claim_task's ten columns in claim_task's order and `checkpoints`: an object of every
-- committed checkpoint visible to the run's attempt (as get_task_checkpoint_states returns them;
-- checkpoints of later attempts are hidden), so that a worker needs no second round trip to start
-- a run. Locks: those of claim_task; the checkpoints are only read.
create function absurd.kit_claim_task(p_queue_name text, p_worker_id text, p_claim_timeout integer default 30,
                                      p_qty integer default 1)
returns table(run_id uuid, task_id uuid, attempt integer, task_name text, params jsonb,
              retry_strategy jsonb, max_attempts integer, headers jsonb, wake_event text,
              event_payload jsonb, checkpoints jsonb)
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
                and (owner.attempt is null or owner.attempt <= c.attempt))
       from absurd.claim_task($1, $2, $3, $4) with ordinality as c
      order by c.ordinality',
    'c_' || p_queue_name, 'r_' || p_queue_name)
    using p_queue_name, p_worker_id, p_claim_timeout, p_qty;
end;
$$;
