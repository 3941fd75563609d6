-- absurd-kit engine, migration 000020: each queue's hot statements as functions of that queue,
-- so that a session plans them once and keeps the plans.
--
-- Every table of a queue is named after it (t_<q>, r_<q>, …), so the engine's functions reached
-- them through EXECUTE of a statement built with format(): parsed, analysed and planned again at
-- every call. For the statements a worker sends all the time that is a large part of their cost:
-- measured with pg_stat_statements (track_planning) on PostgreSQL 15, a loop of claims and
-- completions of 16 runs spent 1.8 ms planning; claim_task's claim statement alone took 0.5 ms to
-- plan. A statement written in a plpgsql function as static SQL is prepared once per session and
-- its plan is kept (a generic plan once it proves as good as a custom one).
--
-- kit_create_queue_statements(q) writes, for queue q, functions named kit_q_<md5(q)>_<part> whose
-- bodies name q's tables in static SQL (the naming of 000016's per-queue limit functions):
--   _claim_task(worker, claim_timeout, qty)  claim_task's whole body: schedules, the cancellation
--                                            policies, expired leases, the limited claim or the
--                                            walk over priorities;
--   _kit_claim(worker, claim_timeout, qty)   kit_claim_task's statement: the claimed runs with
--                                            their checkpoints and queue lag;
--   _complete(runs, results, now)            kit_complete_runs' statement;
--   _set_checkpoints(tasks, steps, states, owner runs, extend by, now)
--                                            kit_set_checkpoints' two statements.
-- claim_task, kit_claim_task, kit_complete_runs and kit_set_checkpoints keep their arguments,
-- results, errors and locks
-- and now call the queue's function (one EXECUTE of a function call: a trivial plan). The claim's
-- planner settings (000017: no sorts, no sequential scans, no JIT) are set on _claim_task, where
-- its statements are.
--
-- When they are written: with the queue's tables (ensure_queue_tables, so create_queue and
-- adoption), here for every queue that exists, and — for a queue whose functions are missing (its
-- tables were made by hand, or the functions dropped) — by the first call that needs them, under
-- an advisory lock (that call's role then needs CREATE on schema absurd; the error says to run
-- `absurd migrate` otherwise). drop_queue drops them (kit_drop_queue_functions, 000019). A queue
-- that does not exist still fails as before: relation "absurd.t_<q>" does not exist (42P01).

-- kit_create_queue_statements(q): (re)writes queue q's statement functions (see the header).
-- Raises 42P01 when the queue has no tables. Locks: advisory (1633841011, hashtext(q)) until the
-- transaction ends, so that two sessions never write them at once; those of create function.
create function absurd.kit_create_queue_statements(p_queue_name text) returns void
language plpgsql
as $$
declare
  v_claim text := absurd.kit_limits_function_name(p_queue_name, 'claim_task');
  v_kit_claim text := absurd.kit_limits_function_name(p_queue_name, 'kit_claim');
  v_complete text := absurd.kit_limits_function_name(p_queue_name, 'complete');
  v_set_checkpoints text := absurd.kit_limits_function_name(p_queue_name, 'set_checkpoints');
  v_t text := 't_' || p_queue_name;
  v_r text := 'r_' || p_queue_name;
  v_c text := 'c_' || p_queue_name;
  v_w text := 'w_' || p_queue_name;
begin
  perform pg_advisory_xact_lock(1633841011, hashtext(p_queue_name));
  if to_regclass(format('absurd.%I', v_t)) is null or to_regclass(format('absurd.%I', v_r)) is null then
    raise exception 'relation "absurd.%" does not exist', v_t using errcode = '42P01';
  end if;

  -- claim_task(q, worker, claim_timeout, qty), as migration 000016 defines it.
  execute format($g$
create or replace function absurd.%1$I(p_worker_id text, p_claim_timeout integer, p_qty integer)
returns table(run_id uuid, task_id uuid, attempt integer, task_name text, params jsonb,
              retry_strategy jsonb, max_attempts integer, headers jsonb, wake_event text,
              event_payload jsonb)
language plpgsql
set enable_sort = off
set enable_seqscan = off
set jit = off
as $body$
#variable_conflict use_column
declare
  v_now timestamptz := absurd.current_time();
  v_timeout integer := greatest(coalesce(p_claim_timeout, 30), 0);
  v_worker text := coalesce(nullif(p_worker_id, ''), 'worker');
  v_qty integer := greatest(coalesce(p_qty, 1), 1);
  v_claim_until timestamptz;
  v_id uuid;
  v_expired record;
  v_bound bigint := 2147483648;  -- above every priority
  v_level_text text;
  v_left integer;
  v_n integer;
begin
  perform absurd.kit_fire_schedules(%2$L);
  if v_timeout > 0 then
    v_claim_until := v_now + v_timeout * interval '1 second';
  end if;

  -- A. Cancellation policies.
  for v_id in
    select t.task_id
      from absurd.%3$I t
     where t.cancellation is not null
       and t.state in ('pending', 'sleeping', 'running')
       and ((t.cancellation ->> 'max_delay') is not null
             and t.first_started_at is null
             and extract(epoch from v_now - t.enqueue_at) >= (t.cancellation ->> 'max_delay')::bigint
         or (t.cancellation ->> 'max_duration') is not null
             and t.first_started_at is not null
             and extract(epoch from v_now - t.first_started_at) >= (t.cancellation ->> 'max_duration')::bigint)
     order by t.task_id
  loop
    perform absurd.cancel_task(%2$L, v_id);
  end loop;

  -- B. Expired leases.
  for v_expired in
    select r.run_id, r.claimed_by, r.claim_expires_at, r.attempt
      from absurd.%4$I r
     where r.state = 'running' and r.claim_expires_at is not null and r.claim_expires_at <= v_now
     order by r.claim_expires_at, r.run_id
     limit v_qty
       for update skip locked
  loop
    perform absurd.fail_run(
      %2$L,
      v_expired.run_id,
      jsonb_strip_nulls(jsonb_build_object(
        'name', '$ClaimTimeout',
        'message', 'worker did not finish task within claim interval',
        'workerId', v_expired.claimed_by,
        'claimExpiredAt', v_expired.claim_expires_at,
        'attempt', v_expired.attempt)),
      null);
  end loop;

  -- C. Claim.
  if exists (select 1 from absurd.kit_limits l where l.queue_name = %2$L) then
    return query select * from absurd.kit_claim_limited(%2$L, v_worker, v_claim_until, v_now, v_qty);
    return;
  end if;

  -- One priority at a time, from the highest with claimable runs down (see claim_task in 000016).
  v_left := v_qty;
  loop
    return query
      with top as (
         select r.priority, set_config('absurd.kit_claim_level', r.priority::text, true) as noted
           from absurd.%4$I r
          where r.state in ('pending', 'sleeping') and r.priority < v_bound
          order by r.priority desc, r.available_at, r.run_id
          limit 1
       ),
       candidates as (
         select r.run_id, r.available_at
           from absurd.%4$I r
           join absurd.%3$I t on t.task_id = r.task_id
          where r.state in ('pending', 'sleeping')
            and r.priority = (select top.priority from top)
            and r.available_at <= v_now
            and t.state in ('pending', 'sleeping', 'running')
          order by r.available_at, r.run_id
          limit v_left
            for update of r, t skip locked
       ),
       claimed as (
         update absurd.%4$I r
            set state = 'running', claimed_by = v_worker, claim_expires_at = v_claim_until, started_at = v_now,
                available_at = v_now
           from candidates c
          where r.run_id = c.run_id
         returning r.run_id, r.task_id, r.attempt, r.wake_event, r.event_payload, c.available_at as claimed_from
       ),
       tasks as (
         update absurd.%3$I t
            set state = 'running', attempts = greatest(t.attempts, c.attempt),
                first_started_at = coalesce(t.first_started_at, v_now), last_attempt_run = c.run_id
           from claimed c
          where t.task_id = c.task_id
         returning t.task_id, t.task_name, t.params, t.retry_strategy, t.max_attempts, t.headers
       ),
       expired_waits as (
         delete from absurd.%5$I w
          using claimed c
          where w.run_id = c.run_id and w.timeout_at is not null and w.timeout_at <= v_now
       )
       select c.run_id, c.task_id, c.attempt, t.task_name, t.params, t.retry_strategy, t.max_attempts,
              t.headers, c.wake_event, c.event_payload
         from claimed c
         join tasks t on t.task_id = c.task_id
        order by c.claimed_from, c.run_id;
    get diagnostics v_n = row_count;
    v_left := v_left - v_n;
    exit when v_left <= 0;
    v_level_text := current_setting('absurd.kit_claim_level', true);
    exit when v_level_text is null or v_level_text = '' or v_level_text::bigint >= v_bound;
    v_bound := v_level_text::bigint;
  end loop;
end;
$body$
$g$, v_claim, p_queue_name, v_t, v_r, v_w);

  -- kit_claim_task(q, worker, claim_timeout, qty)'s statement, as migration 000017 defines it.
  execute format($g$
create or replace function absurd.%1$I(p_worker_id text, p_claim_timeout integer, p_qty integer)
returns table(run_id uuid, task_id uuid, attempt integer, task_name text, params jsonb,
              retry_strategy jsonb, max_attempts integer, headers jsonb, wake_event text,
              event_payload jsonb, checkpoints jsonb, queue_lag double precision)
language plpgsql
as $body$
#variable_conflict use_column
begin
  -- The scalar subquery on r_<q> is one primary-key lookup per claimed run. It reads the version
  -- of the statement's snapshot, from before the claim overwrote available_at (see 000010).
  return query
    select c.run_id, c.task_id, c.attempt, c.task_name, c.params, c.retry_strategy, c.max_attempts,
           c.headers, c.wake_event, c.event_payload,
           (select coalesce(jsonb_object_agg(cp.checkpoint_name, cp.state), '{}'::jsonb)
              from absurd.%2$I cp
              left join absurd.%3$I owner on owner.run_id = cp.owner_run_id
             where cp.task_id = c.task_id and cp.status = 'committed'
               and (owner.attempt is null or owner.attempt <= c.attempt)),
           extract(epoch from absurd.current_time()
                   - (select due.available_at from absurd.%3$I due where due.run_id = c.run_id))::double precision
      from absurd.%4$I(p_worker_id, p_claim_timeout, p_qty) with ordinality as c
     order by c.ordinality;
end;
$body$
$g$, v_kit_claim, v_c, v_r, v_claim);

  -- kit_complete_runs(q, runs, results)'s statement, as migration 000014 defines it.
  execute format($g$
create or replace function absurd.%1$I(p_run_ids uuid[], p_results jsonb[], p_now timestamptz,
                                       out o_runs uuid[], out o_outcomes text[], out o_tasks uuid[])
language plpgsql
as $body$
#variable_conflict use_column
begin
  with input as (
     select i.run_id, i.result, i.ord
       from unnest(p_run_ids, p_results) with ordinality as i(run_id, result, ord)
   ),
   locked as (
     select r.run_id, r.task_id, r.state
       from absurd.%2$I r
      where r.run_id in (select input.run_id from input)
      order by r.run_id
        for update
   ),
   done as (
     update absurd.%2$I r
        set state = 'completed', completed_at = p_now, result = i.result
       from locked l
       join input i on i.run_id = l.run_id
      where r.run_id = l.run_id and l.state = 'running' and r.state = 'running'
     returning r.run_id, r.task_id, r.result
   ),
   tasks as (
     update absurd.%3$I t
        set state = 'completed', completed_payload = d.result, last_attempt_run = d.run_id
       from done d
      where t.task_id = d.task_id
     returning t.task_id, t.headers ? 'absurd.parent' as has_parent
   ),
   waits as (
     delete from absurd.%4$I w using done d where w.run_id = d.run_id
   )
   select array_agg(i.run_id order by i.ord),
          array_agg(case when d.run_id is not null then 'completed' else coalesce(l.state, 'not_found') end order by i.ord),
          array_agg(d.task_id order by i.ord) filter (where c.has_parent)
     into o_runs, o_outcomes, o_tasks
     from input i
     left join done d on d.run_id = i.run_id
     left join tasks c on c.task_id = d.task_id
     left join locked l on l.run_id = i.run_id;
end;
$body$
$g$, v_complete, v_r, v_t, v_w);

  -- kit_set_checkpoints(q, …)'s two statements, as migration 000008 defines them.
  execute format($g$
create or replace function absurd.%1$I(p_task_ids uuid[], p_step_names text[], p_states jsonb[],
                                       p_owner_runs uuid[], p_extend_by integer[], p_now timestamptz)
returns table(ord bigint, outcome text)
language plpgsql
as $body$
#variable_conflict use_column
begin
  -- The owner runs first, in run_id order (see 000008), so that the state read below is final.
  perform 1 from absurd.%2$I r where r.run_id = any(p_owner_runs) order by r.run_id for no key update;
  return query
    with input as (
       select i.task_id, i.step_name, i.state, i.owner_run, i.extend_by, i.ord
         from unnest(p_task_ids, p_step_names, p_states, p_owner_runs, p_extend_by)
              with ordinality as i(task_id, step_name, state, owner_run, extend_by, ord)
     ),
     checked as (
       select i.*, r.attempt,
              case when r.run_id is null then 'not_found'
                   when t.state = 'cancelled' then 'cancelled'
                   when r.state = 'failed' then 'failed'
                   else 'ok' end as outcome
         from input i
         left join absurd.%2$I r on r.run_id = i.owner_run
         left join absurd.%3$I t on t.task_id = r.task_id
     ),
     extended as (
       update absurd.%2$I r
          set claim_expires_at = p_now + e.extend_by * interval '1 second'
         from (select c.owner_run, max(c.extend_by) as extend_by
                 from checked c
                where c.outcome = 'ok' and c.extend_by > 0
                group by c.owner_run) e
        where r.run_id = e.owner_run and r.state = 'running' and r.claim_expires_at is not null
     ),
     written as (
       insert into absurd.%4$I as cp (task_id, checkpoint_name, state, status, owner_run_id, updated_at)
       select c.task_id, c.step_name, c.state, 'committed', c.owner_run, p_now
         from checked c
        where c.outcome = 'ok'
       on conflict (task_id, checkpoint_name) do update
          set state = excluded.state, status = 'committed', owner_run_id = excluded.owner_run_id,
              updated_at = excluded.updated_at
        where coalesce((select r.attempt from absurd.%2$I r where r.run_id = cp.owner_run_id), 0)
              <= coalesce((select r.attempt from absurd.%2$I r where r.run_id = excluded.owner_run_id), 0)
     )
     select c.ord, c.outcome from checked c order by c.ord;
end;
$body$
$g$, v_set_checkpoints, v_r, v_t, 'c_' || p_queue_name);
end;
$$;

-- kit_queue_statement(q, part): the name of queue q's statement function `part`, written first
-- when it is missing (see the header). Locks: none, or those of kit_create_queue_statements.
create function absurd.kit_queue_statement(p_queue_name text, p_part text) returns text
language plpgsql
as $$
declare
  v_name text := absurd.kit_limits_function_name(p_queue_name, p_part);
begin
  if to_regproc('absurd.' || v_name) is null then
    perform absurd.kit_create_queue_statements(p_queue_name);
  end if;
  return v_name;
end;
$$;

-- claim_task(q, worker, claim_timeout, qty): as in migration 000016 (same arguments, result,
-- errors and locks), run by the queue's _claim_task function. Locks: those of 000016.
create or replace function absurd.claim_task(p_queue_name text, p_worker_id text, p_claim_timeout integer default 30,
                                             p_qty integer default 1)
returns table(run_id uuid, task_id uuid, attempt integer, task_name text, params jsonb,
              retry_strategy jsonb, max_attempts integer, headers jsonb, wake_event text,
              event_payload jsonb)
language plpgsql
as $$
begin
  return query execute format('select * from absurd.%I($1, $2, $3)', absurd.kit_queue_statement(p_queue_name, 'claim_task'))
    using p_worker_id, p_claim_timeout, p_qty;
end;
$$;

-- kit_claim_task(q, worker, claim_timeout, qty): as in migration 000017, run by the queue's
-- _kit_claim function. Locks: those of claim_task.
create or replace function absurd.kit_claim_task(p_queue_name text, p_worker_id text, p_claim_timeout integer default 30,
                                                 p_qty integer default 1)
returns table(run_id uuid, task_id uuid, attempt integer, task_name text, params jsonb,
              retry_strategy jsonb, max_attempts integer, headers jsonb, wake_event text,
              event_payload jsonb, checkpoints jsonb, queue_lag double precision)
language plpgsql
as $$
begin
  return query execute format('select * from absurd.%I($1, $2, $3)', absurd.kit_queue_statement(p_queue_name, 'kit_claim'))
    using p_worker_id, p_claim_timeout, p_qty;
end;
$$;

-- kit_complete_runs(q, runs, results): as in migration 000014 (same result, outcomes, locks and
-- announcements), its statement run by the queue's _complete function.
create or replace function absurd.kit_complete_runs(p_queue_name text, p_run_ids uuid[], p_results jsonb[])
returns table(run_id uuid, outcome text)
language plpgsql
as $$
declare
  v_runs uuid[];
  v_outcomes text[];
  v_tasks uuid[];
  v_task uuid;
begin
  execute format('select * from absurd.%I($1, $2, $3)', absurd.kit_queue_statement(p_queue_name, 'complete'))
    into v_runs, v_outcomes, v_tasks using p_run_ids, p_results, absurd.current_time();

  -- The tasks' rows are updated now (a later statement of this function sees them): announce.
  foreach v_task in array coalesce(v_tasks, '{}'::uuid[]) loop
    perform absurd.kit_announce_end(p_queue_name, v_task);
  end loop;

  return query select u.run_id, u.outcome from unnest(v_runs, v_outcomes) with ordinality as u(run_id, outcome, ord) order by u.ord;
end;
$$;

-- kit_set_checkpoints(q, tasks, steps, states, owner runs, extend by): as in migration 000008 (same
-- result, outcomes and locks), its statements run by the queue's _set_checkpoints function.
create or replace function absurd.kit_set_checkpoints(p_queue_name text, p_task_ids uuid[], p_step_names text[],
                                           p_states jsonb[], p_owner_runs uuid[], p_extend_by integer[])
returns table(ord bigint, outcome text)
language plpgsql
as $$
begin
  return query execute format('select * from absurd.%I($1, $2, $3, $4, $5, $6)', absurd.kit_queue_statement(p_queue_name, 'set_checkpoints'))
    using p_task_ids, p_step_names, p_states, p_owner_runs, p_extend_by, absurd.current_time();
end;
$$;

-- ensure_queue_tables(q): as in migration 000016, and then the queue's statement functions
-- (kit_create_queue_statements). Locks: those of 000016, then those of kit_create_queue_statements.
create or replace function absurd.ensure_queue_tables(p_queue_name text) returns void
language plpgsql
as $$
declare
  v_mode text;
  v_partitioned boolean;
  v_t text := 't_' || p_queue_name;
  v_r text := 'r_' || p_queue_name;
  v_c text := 'c_' || p_queue_name;
  v_e text := 'e_' || p_queue_name;
  v_w text := 'w_' || p_queue_name;
  v_i text := 'i_' || p_queue_name;
  v_states text := $s$('pending', 'running', 'sleeping', 'completed', 'failed', 'cancelled')$s$;
begin
  perform absurd.validate_queue_name(p_queue_name);
  -- A queue created anew (again, after drop_queue) starts without the flow-control rows a queue of
  -- the same name may have left behind: drop_queue removes the tables but not those rows.
  if to_regclass(format('absurd.%I', v_r)) is null then
    perform absurd.kit_forget_queue_limits(p_queue_name);
  end if;
  select q.storage_mode into v_mode from absurd.queues q where q.queue_name = p_queue_name;
  v_mode := coalesce(v_mode, 'unpartitioned');
  if v_mode not in ('unpartitioned', 'partitioned') then
    raise exception 'Unsupported queue storage mode "%"', v_mode;
  end if;
  v_partitioned := v_mode = 'partitioned';

  execute format(
    'create table if not exists absurd.%I (
       task_id uuid primary key,
       task_name text not null,
       params jsonb not null,
       headers jsonb,
       retry_strategy jsonb,
       max_attempts integer,
       cancellation jsonb,
       enqueue_at timestamptz not null default absurd.current_time(),
       first_started_at timestamptz,
       state text not null check (state in %s),
       attempts integer not null default 0,
       last_attempt_run uuid,
       completed_payload jsonb,
       cancelled_at timestamptz,
       idempotency_key text%s
     ) %s',
    v_t, v_states,
    case when v_partitioned then '' else ' unique' end,
    case when v_partitioned then 'partition by range (task_id)' else 'with (fillfactor = 70)' end);

  execute format(
    'create table if not exists absurd.%I (
       run_id uuid primary key,
       task_id uuid not null,
       attempt integer not null,
       state text not null check (state in %s),
       claimed_by text,
       claim_expires_at timestamptz,
       available_at timestamptz not null,
       wake_event text,
       event_payload jsonb,
       started_at timestamptz,
       completed_at timestamptz,
       failed_at timestamptz,
       result jsonb,
       failure_reason jsonb,
       created_at timestamptz not null default absurd.current_time(),
       priority integer not null default 0
     ) %s',
    v_r, v_states,
    case when v_partitioned then 'partition by range (run_id)' else 'with (fillfactor = 70)' end);

  execute format(
    'create table if not exists absurd.%I (
       task_id uuid not null,
       checkpoint_name text not null,
       state jsonb,
       status text not null default ''committed'',
       owner_run_id uuid,
       updated_at timestamptz not null default absurd.current_time(),
       primary key (task_id, checkpoint_name)
     ) %s',
    v_c,
    case when v_partitioned then 'partition by range (task_id)' else 'with (fillfactor = 70)' end);

  execute format(
    'create table if not exists absurd.%I (
       event_name text primary key,
       payload jsonb,
       emitted_at timestamptz not null default absurd.current_time()
     )',
    v_e);

  execute format(
    'create table if not exists absurd.%I (
       task_id uuid not null,
       run_id uuid not null,
       step_name text not null,
       event_name text not null,
       timeout_at timestamptz,
       created_at timestamptz not null default absurd.current_time(),
       primary key (run_id, step_name)
     ) %s',
    v_w,
    case when v_partitioned then 'partition by range (run_id)' else '' end);

  -- Indexes named by the contract.
  execute format('create index if not exists %I on absurd.%I (state, available_at)', v_r || '_sai', v_r);
  execute format('create index if not exists %I on absurd.%I (task_id)', v_r || '_ti', v_r);
  execute format(
    'create index if not exists %I on absurd.%I (claim_expires_at)
       where state = ''running'' and claim_expires_at is not null',
    v_r || '_cei', v_r);
  execute format('create index if not exists %I on absurd.%I (event_name)', v_w || '_eni', v_w);
  execute format('create index if not exists %I on absurd.%I (task_id)', v_w || '_ti', v_w);
  execute format('create index if not exists %I on absurd.%I (emitted_at)', v_e || '_eai', v_e);

  -- Our own index: the claim order (priority desc, available_at, run_id) over claimable runs only
  -- (kit_ensure_claim_order says why and what it costs); also adds `priority` to a runs table that
  -- existed before migration 000016 (an adopted queue).
  perform absurd.kit_ensure_claim_order(p_queue_name);

  -- Our own index: live tasks that carry a cancellation policy, the only ones claim_task's policy
  -- sweep has to look at, so that the sweep's cost does not grow with the queue's history.
  execute format(
    'create index if not exists %I on absurd.%I (task_id)
       where cancellation is not null and state in (''pending'', ''sleeping'', ''running'')',
    v_t || '_cpi', v_t);

  -- The task list's indexes (state, task name), as kit_ensure_list_indexes says.
  perform absurd.kit_ensure_list_indexes(p_queue_name);

  if v_partitioned then
    execute format(
      'create table if not exists absurd.%I (
         idempotency_key text primary key,
         task_id uuid not null
       )',
      v_i);
    execute format('create index if not exists %I on absurd.%I (task_id)', v_i || '_ti', v_i);
    perform absurd.ensure_partitions(p_queue_name);
  end if;

  -- The queue's statement functions (migration 000020).
  perform absurd.kit_create_queue_statements(p_queue_name);
end;
$$;

-- The queues that exist get theirs now.
select absurd.kit_create_queue_statements(q.queue_name)
  from absurd.queues q
 where to_regclass(format('absurd.%I', 't_' || q.queue_name)) is not null
   and to_regclass(format('absurd.%I', 'r_' || q.queue_name)) is not null
 order by q.queue_name;
