-- absurd-kit engine, migration 000006: functions for absurd-kit's workers.
--
-- Additions only (the kit_ prefix marks functions that are not part of the Absurd contract); no
-- existing function changes behaviour, so every other client keeps working unchanged.

-- kit_seconds_until_next_run(q): seconds from now (absurd.current_time()) until the queue next has
-- work for claim_task: the earliest pending or sleeping run becoming claimable, or the earliest
-- lease of a running run expiring (claim_task then fails it over to a new attempt). 0 or less when
-- that is already due; NULL when nothing waits for time (runs waiting for an event without timeout
-- wait for 'infinity' and do not count). Idle workers sleep until then instead of polling.
-- Reads the first entries of r_<q>_cai and r_<q>_cei only.
create function absurd.kit_seconds_until_next_run(p_queue_name text) returns double precision
language plpgsql stable
as $$
declare
  v_next_run timestamptz;
  v_next_expiry timestamptz;
  v_next timestamptz;
begin
  execute format(
    'select (select r.available_at from absurd.%1$I r
              where r.state in (''pending'', ''sleeping'') and r.available_at < ''infinity''
              order by r.available_at, r.run_id
              limit 1),
            (select r.claim_expires_at from absurd.%1$I r
              where r.state = ''running'' and r.claim_expires_at is not null
              order by r.claim_expires_at
              limit 1)',
    'r_' || p_queue_name)
    into v_next_run, v_next_expiry;
  v_next := least(v_next_run, v_next_expiry);
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
begin
  perform absurd.kit_fail_run(p_queue_name, p_run_id, p_reason, null, false);
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

-- kit_complete_runs(q, runs, results): complete_run for many runs in one call (results[i] is the
-- result of runs[i]). Runs that are not running are left as they are and reported instead of
-- raising, so one cancelled run does not fail the others: outcome 'completed', or the run's state
-- ('cancelled', 'failed', 'pending', 'sleeping', 'completed'), or 'not_found'.
-- Locks: the given runs FOR UPDATE in run_id order, then their tasks (runs before tasks, as
-- complete_run and cancel_task).
create function absurd.kit_complete_runs(p_queue_name text, p_run_ids uuid[], p_results jsonb[])
returns table(run_id uuid, outcome text)
language plpgsql
as $$
declare
  v_now timestamptz := absurd.current_time();
begin
  return query execute format(
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
     ),
     waits as (
       delete from absurd.%3$I w using done d where w.run_id = d.run_id
     )
     select i.run_id, case when d.run_id is not null then ''completed'' else coalesce(l.state, ''not_found'') end
       from input i
       left join locked l on l.run_id = i.run_id
       left join done d on d.run_id = i.run_id
      order by i.ord',
    'r_' || p_queue_name, 't_' || p_queue_name, 'w_' || p_queue_name)
    using p_run_ids, p_results, v_now;
end;
$$;

-- kit_set_checkpoints(q, task_ids, step_names, states, owner_runs, extend_by): set_task_checkpoint_state
-- for many checkpoints in one call (element i of each array is one write). Each write behaves as
-- set_task_checkpoint_state, but a write it would refuse is reported instead of raising, so one
-- cancelled task does not fail the others: outcome 'ok', 'cancelled' (AB001), 'failed' (AB002) or
-- 'not_found' (the owner run does not exist). Step names must be non-blank and unique per task
-- within a call. Locks: the owner runs whose lease is extended, and the checkpoint rows written.
create function absurd.kit_set_checkpoints(p_queue_name text, p_task_ids uuid[], p_step_names text[],
                                           p_states jsonb[], p_owner_runs uuid[], p_extend_by integer[])
returns table(ord bigint, outcome text)
language plpgsql
as $$
declare
  v_now timestamptz := absurd.current_time();
begin
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

-- kit_cancel_task(q, task): cancel_task, and when that cancels a task spawned by a parent task
-- (header "absurd.parent": {"queue", "taskId"}), announces the end to the waiting parent: emits
-- "$taskResult:<task>" with {"state": "cancelled"} on the parent's queue and notifies that queue.
-- A parent queue that no longer exists is skipped; the cancellation stands either way.
-- Locks: those of cancel_task, then those of emit_event on the parent's queue.
create function absurd.kit_cancel_task(p_queue_name text, p_task_id uuid) returns void
language plpgsql
as $$
declare
  v_state text;
  v_parent jsonb;
begin
  perform absurd.cancel_task(p_queue_name, p_task_id);
  execute format('select t.state, t.headers -> ''absurd.parent'' from absurd.%I t where t.task_id = $1',
                 't_' || p_queue_name)
    into v_state, v_parent using p_task_id;
  if v_state = 'cancelled' and jsonb_typeof(v_parent) = 'object' and jsonb_typeof(v_parent -> 'queue') = 'string' then
    begin
      perform absurd.emit_event(v_parent ->> 'queue', '$taskResult:' || p_task_id, '{"state": "cancelled"}'::jsonb);
      perform pg_notify('absurd_wake_' || md5(v_parent ->> 'queue'), '');
    exception when undefined_table then
      null;  -- the parent's queue is gone: nobody is waiting
    end;
  end if;
end;
$$;
