-- absurd-kit engine, migration 000022: spawn_task's statements as a function of each queue, and
-- the claim's plan kept.
--
-- spawn_task (migration 000018) reached the queue's tables through EXECUTE of statements built
-- with format(): the task insert and the run insert were parsed, analysed and planned again at
-- every spawn, a large part of what a single spawn costs the server (it is CPU, not WAL: with
-- fsync off a spawn cost as much). As migration 000020 did for the claim and the completions,
-- kit_create_queue_statements(q) now also writes
--   kit_q_<md5(q)>_spawn(task_name, params, headers, retry_strategy, max_attempts, cancellation,
--                        idempotency_key, priority)
-- with spawn_task's table work in static SQL, so that each session plans it once and keeps the
-- plans: the idempotent insert (into t_<q> `on conflict (idempotency_key) do nothing` on an
-- unpartitioned queue; into the registry i_<q> first on a partitioned one), or the plain task
-- insert, then the run insert, then the wake-up of idle workers (the queue's wake lock, SHARE,
-- then kit_idle_listeners, then pg_notify: the order of migration 000018).
--
-- spawn_task keeps its arguments, results, errors, SQLSTATEs and locks. It still checks the task
-- name and the options itself, before it looks for the queue (so a bad option on a queue that
-- does not exist is refused as before, naming the option), and then calls the queue's function
-- through kit_queue_statement: one EXECUTE of a function call. A queue that does not exist still
-- fails with 42P01, relation "absurd.t_<q>" does not exist, raised now by
-- kit_create_queue_statements.
--
-- The function is written for the queue's storage mode (absurd.queues.storage_mode, no row:
-- unpartitioned), which spawn_task read at every spawn with a key. A queue's mode does not change
-- while it exists: create_queue refuses another mode for an existing queue, set_queue_policy does
-- not change it, and a queue created anew after drop_queue (which drops its functions) gets new
-- ones from ensure_queue_tables, as does any call of create_queue. The i_<q> registry exists
-- exactly when the mode is partitioned (ensure_queue_tables).
--
-- What it saves is small. Measured on PostgreSQL 15 with fsync off, one connection, backend CPU
-- per spawn in interleaved blocks: 3% less with the client's statement prepared, 6-7% less
-- without. The two inserts are no longer planned, but the EXECUTE that calls the queue's function
-- is itself parsed, analysed and planned at every call, which costs nearly as much. Of what is
-- left, the largest parts are the inserts into the queue's 9 indexes, the commit, and the two
-- portable_uuidv7() calls (about 20 us of 200: each enters plpgsql twice; computing the ids inline
-- saved 3%, not worth a second copy of portable_uuidv7); doing both inserts in one statement
-- saved about 1%.
--
-- The queue's _claim_task is written with one more setting, plan_cache_mode = force_generic_plan
-- (as kit_claim_limited since 000021): the claim statement's generic plan is estimated for a LIMIT
-- of unknown size, which the plan cache finds dearer than the custom plan for a LIMIT of 16 and so
-- never kept it: the statement was planned again at every claim, 0.43-0.61 ms of planning against
-- 0.7-1.1 ms to run it (PostgreSQL 15, pg_stat_statements with track_planning, a loop of claims of
-- 16 and their completions). A generic plan must not guess the claim's size, though: planned for
-- a LIMIT of unknown size (a tenth of the queue's runs), the claim's updates found their runs and
-- tasks through hash joins over an index scan of the whole tables, 26 ms a claim with 40,000 runs
-- queued. The function also sets enable_hashjoin and enable_mergejoin off, which leaves nested
-- loops over the primary keys, whatever the planner guesses: with them the generic plan runs in
-- what the custom one did (0.6-0.9 ms) and saves the planning. test/sql/claim-reads.test.ts counts
-- what a claim reads, with a burst its statistics have not seen and with a large backlog.
--
-- The queue's _complete (kit_complete_runs' statement), and likewise its _set_checkpoints, is written to find every row by key and
-- runs with plan_cache_mode = force_generic_plan: a worker completes a few runs at a time, and for
-- those the plan cache kept planning the statement anew (0.3 ms of planning against 0.16 ms to run
-- it, completions of 2 runs); and the plan it made drove the run update from the index on state,
-- reading every running run of the queue, dead ones included, instead of the runs at hand. The
-- runs, tasks and waits it writes are now found by `= any(array)` of their keys, which is an index
-- scan whatever the plan guesses of their number.
--
-- The queue's _kit_claim, _complete, _set_checkpoints and _spawn are written with enable_seqscan =
-- off, as _claim_task is since 000017: a session keeps their plans, and a plan made while a table
-- was analysed empty reads it whole. A queue's checkpoint table c_<q> is empty when a queue is new
-- and an (auto)vacuum analyses it so: _kit_claim then read every checkpoint of the queue for each
-- run it claimed (10 ms a run with 120,000 checkpoints), until c_<q> was analysed again.
--
-- On a queue with limits, _claim_task calls the queue's kit_q_<md5(q)>_claim_limited (written by
-- kit_limits_create_functions since migration 000024) in static SQL when it exists, and
-- kit_claim_limited (every round in kit_claim_limited_rounds) otherwise: the claim of a limited
-- queue plans nothing per call either.
--
-- kit_spawn_tasks (bulk) is unchanged: on an unpartitioned queue its two set-based statements are
-- planned once per call, whatever the number of tasks; on a partitioned queue it calls spawn_task
-- for each element, which now runs the queue's function.

-- kit_create_queue_statements(q): (re)writes queue q's statement functions: those of migration
-- 000020 (claim_task's body, kit_claim_task's, kit_complete_runs' and kit_set_checkpoints'
-- statements), copied unchanged, and _spawn (see the header). Raises 42P01 when the queue has no
-- tables. Locks: advisory (1633841011, hashtext(q)) until the transaction ends, so that two
-- sessions never write them at once; the queue's absurd.queues row is read (no lock); those of
-- create function.
create or replace function absurd.kit_create_queue_statements(p_queue_name text) returns void
language plpgsql
as $$
declare
  v_claim text := absurd.kit_limits_function_name(p_queue_name, 'claim_task');
  v_kit_claim text := absurd.kit_limits_function_name(p_queue_name, 'kit_claim');
  v_complete text := absurd.kit_limits_function_name(p_queue_name, 'complete');
  v_set_checkpoints text := absurd.kit_limits_function_name(p_queue_name, 'set_checkpoints');
  v_spawn text := absurd.kit_limits_function_name(p_queue_name, 'spawn');
  v_t text := 't_' || p_queue_name;
  v_r text := 'r_' || p_queue_name;
  v_c text := 'c_' || p_queue_name;
  v_w text := 'w_' || p_queue_name;
  v_i text := 'i_' || p_queue_name;
  v_mode text;
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
set enable_hashjoin = off
set enable_mergejoin = off
set plan_cache_mode = force_generic_plan
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
    -- The queue's kit_q_<md5(q)>_claim_limited (migration 000024), called in static SQL (planned
    -- once per session); kit_claim_limited, the general rounds, when it is missing.
    if to_regproc('absurd.%6$I') is not null then
      return query select * from absurd.%6$I(v_worker, v_claim_until, v_now, v_qty);
    else
      return query select * from absurd.kit_claim_limited(%2$L, v_worker, v_claim_until, v_now, v_qty);
    end if;
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
$g$, v_claim, p_queue_name, v_t, v_r, v_w, absurd.kit_limits_function_name(p_queue_name, 'claim_limited'));

  -- kit_claim_task(q, worker, claim_timeout, qty)'s statement, as migration 000017 defines it.
  execute format($g$
create or replace function absurd.%1$I(p_worker_id text, p_claim_timeout integer, p_qty integer)
returns table(run_id uuid, task_id uuid, attempt integer, task_name text, params jsonb,
              retry_strategy jsonb, max_attempts integer, headers jsonb, wake_event text,
              event_payload jsonb, checkpoints jsonb, queue_lag double precision)
language plpgsql
set enable_seqscan = off
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

  -- kit_complete_runs(q, runs, results)'s statement, as migration 000014 defines it, written so
  -- that its one plan, generic and kept, finds every row by key (see the header).
  execute format($g$
create or replace function absurd.%1$I(p_run_ids uuid[], p_results jsonb[], p_now timestamptz,
                                       out o_runs uuid[], out o_outcomes text[], out o_tasks uuid[])
language plpgsql
set enable_seqscan = off
set plan_cache_mode = force_generic_plan
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
      where r.run_id = any(p_run_ids)
      order by r.run_id
        for update
   ),
   done as (
     update absurd.%2$I r
        set state = 'completed', completed_at = p_now,
            result = (select i.result from input i where i.run_id = r.run_id order by i.ord limit 1)
      -- The runs locked above, by key: no condition on state here, which a plan made with
      -- statistics that count few running runs would read off the state index instead (every
      -- running run of the queue, dead versions included). Their state cannot have changed since
      -- they were locked.
      where r.run_id = any(array(select l.run_id from locked l where l.state = 'running'))
     returning r.run_id, r.task_id, r.result
   ),
   tasks as (
     update absurd.%3$I t
        set state = 'completed',
            completed_payload = (select d.result from done d where d.task_id = t.task_id limit 1),
            last_attempt_run = (select d.run_id from done d where d.task_id = t.task_id limit 1)
      where t.task_id = any(array(select d.task_id from done d))
     returning t.task_id, t.headers ? 'absurd.parent' as has_parent
   ),
   waits as (
     delete from absurd.%4$I w where w.run_id = any(array(select d.run_id from done d))
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
set enable_seqscan = off
set plan_cache_mode = force_generic_plan
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
                   else 'ok' end as outcome,
              r.state = 'running' and r.claim_expires_at is not null as leased
         from input i
         left join absurd.%2$I r on r.run_id = i.owner_run
         left join absurd.%3$I t on t.task_id = r.task_id
     ),
     -- The runs to extend, found by key (their rows are locked above, so what checked read of their
     -- state and lease holds): a condition on state or lease here could be read off those indexes.
     extended as (
       update absurd.%2$I r
          set claim_expires_at = p_now + (select max(c.extend_by) from checked c
                                           where c.owner_run = r.run_id and c.outcome = 'ok')
                                         * interval '1 second'
        where r.run_id = any(array(select c.owner_run from checked c
                                    where c.outcome = 'ok' and c.extend_by > 0 and c.leased))
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

  -- spawn_task(q, …)'s table work, as migration 000018 defines it, for the queue's storage mode
  -- (see the header of migration 000022). The arguments are spawn_task's checked options; the
  -- ids and the time are taken in 000018's order (task id, run id, now).
  select q.storage_mode into v_mode from absurd.queues q where q.queue_name = p_queue_name;
  execute format($g$
create or replace function absurd.%1$I(p_task_name text, p_params jsonb, p_headers jsonb, p_retry_strategy jsonb,
                                       p_max_attempts integer, p_cancellation jsonb, p_key text, p_priority integer,
                                       out o_task_id uuid, out o_run_id uuid, out o_attempt integer, out o_created boolean)
language plpgsql
set enable_seqscan = off
as $body$
declare
  v_task_id uuid := absurd.portable_uuidv7();
  v_run_id uuid := absurd.portable_uuidv7();
  v_now timestamptz := absurd.current_time();
begin%6$s
  insert into absurd.%3$I (run_id, task_id, attempt, state, available_at, priority)
  values (v_run_id, v_task_id, 1, 'pending', v_now, p_priority);

  -- Wake-ups: only a spawn that created a task, and only while a worker of the queue is idle and
  -- listening; delivered when the spawning transaction commits. The wake lock comes first, held
  -- until commit (see the header of migration 000018).
  perform pg_advisory_xact_lock_shared(1633843051, hashtext(%4$L));
  if exists (select 1 from absurd.kit_idle_listeners l
              where l.queue_name = %4$L and l.idle_until > clock_timestamp()) then
    perform pg_notify(%5$L, '');
  end if;

  o_task_id := v_task_id;
  o_run_id := v_run_id;
  o_attempt := 1;
  o_created := true;
end;
$body$
$g$, v_spawn, v_t, v_r, p_queue_name, 'absurd_wake_' || md5(p_queue_name),
    case when coalesce(v_mode, 'unpartitioned') = 'partitioned' then format($p$
  if p_key is not null then
    -- The registry row is the queue-wide uniqueness point for partitioned queues.
    insert into absurd.%1$I (idempotency_key, task_id) values (p_key, v_task_id)
    on conflict (idempotency_key) do nothing;
    if not found then
      select i.task_id, t.last_attempt_run, t.attempts
        into o_task_id, o_run_id, o_attempt
        from absurd.%1$I i
        join absurd.%2$I t on t.task_id = i.task_id
       where i.idempotency_key = p_key
         for key share of i;
      if o_task_id is null then
        raise exception 'Idempotency key "%%" in queue "%%" is being released concurrently', p_key, %3$L
          using errcode = '40001', hint = 'Retry the spawn.';
      end if;
      if o_run_id is null then
        raise exception 'Task "%%" for idempotency key "%%" has no run in queue "%%"', o_task_id, p_key, %3$L;
      end if;
      o_created := false;
      return;
    end if;
  end if;
  insert into absurd.%2$I (task_id, task_name, params, headers, retry_strategy, max_attempts,
                           cancellation, enqueue_at, first_started_at, state, attempts,
                           last_attempt_run, completed_payload, cancelled_at, idempotency_key)
  values (v_task_id, p_task_name, p_params, p_headers, p_retry_strategy, p_max_attempts,
          p_cancellation, v_now, null, 'pending', 1, v_run_id, null, null, p_key);
$p$, v_i, v_t, p_queue_name)
    else format($p$
  if p_key is null then
    insert into absurd.%1$I (task_id, task_name, params, headers, retry_strategy, max_attempts,
                             cancellation, enqueue_at, first_started_at, state, attempts,
                             last_attempt_run, completed_payload, cancelled_at, idempotency_key)
    values (v_task_id, p_task_name, p_params, p_headers, p_retry_strategy, p_max_attempts,
            p_cancellation, v_now, null, 'pending', 1, v_run_id, null, null, null);
  else
    insert into absurd.%1$I (task_id, task_name, params, headers, retry_strategy, max_attempts,
                             cancellation, enqueue_at, first_started_at, state, attempts,
                             last_attempt_run, completed_payload, cancelled_at, idempotency_key)
    values (v_task_id, p_task_name, p_params, p_headers, p_retry_strategy, p_max_attempts,
            p_cancellation, v_now, null, 'pending', 1, v_run_id, null, null, p_key)
    on conflict (idempotency_key) do nothing;
    if not found then
      select t.task_id, t.last_attempt_run, t.attempts
        into o_task_id, o_run_id, o_attempt
        from absurd.%1$I t
       where t.idempotency_key = p_key;
      if o_task_id is null then
        raise exception 'Idempotency key "%%" in queue "%%" is being released concurrently', p_key, %2$L
          using errcode = '40001', hint = 'Retry the spawn.';
      end if;
      o_created := false;
      return;
    end if;
  end if;
$p$, v_t, p_queue_name)
    end);
end;
$$;

-- spawn_task(q, name, params, options): as in migration 000018 (same arguments, result, errors,
-- SQLSTATEs and locks); the options are checked here, in 000018's order, and the inserts and the
-- wake-up run by the queue's _spawn function. Locks: those of 000018 (the inserted rows; on a key
-- taken by another transaction, its row or registry entry; the queue's wake lock, SHARE, until the
-- transaction ends, only when a task was created); those of kit_queue_statement.
create or replace function absurd.spawn_task(p_queue_name text, p_task_name text, p_params jsonb,
                                  p_options jsonb default '{}')
returns table(task_id uuid, run_id uuid, attempt integer, created boolean)
language plpgsql
as $$
declare
  v_options jsonb := coalesce(p_options, '{}'::jsonb);
  v_headers jsonb;
  v_retry_strategy jsonb;
  v_max_attempts integer;
  v_cancellation jsonb;
  v_key text;
  v_option_key text;
  v_priority integer := 0;
begin
  if p_task_name is null or btrim(p_task_name) = '' then
    raise exception 'task_name must be provided';
  end if;
  if jsonb_typeof(v_options) = 'object' then
    v_headers := v_options -> 'headers';
    v_retry_strategy := v_options -> 'retry_strategy';
    v_cancellation := v_options -> 'cancellation';
    v_key := v_options ->> 'idempotency_key';
    if v_options ? 'priority' then
      v_priority := absurd.kit_spawn_priority(v_options -> 'priority', '');
    end if;
    if v_options ? 'max_attempts' then
      v_max_attempts := (v_options ->> 'max_attempts')::integer;
      if v_max_attempts is not null and v_max_attempts < 1 then
        raise exception 'max_attempts must be >= 1';
      end if;
    end if;
  end if;

  -- These values are read later by claim_task and fail_run, where a value that does not cast would
  -- make every claim on the queue fail. Refuse them here instead, naming the offending key.
  if jsonb_typeof(v_cancellation) = 'object' then
    foreach v_option_key in array array['max_delay', 'max_duration'] loop
      if (v_cancellation ->> v_option_key) !~ '^\s*[-+]?[0-9]+\s*$' then
        raise exception 'cancellation.% must be a whole number of seconds, got %',
          v_option_key, v_cancellation -> v_option_key;
      end if;
    end loop;
  end if;
  if jsonb_typeof(v_retry_strategy) = 'object' then
    foreach v_option_key in array array['base_seconds', 'factor', 'max_seconds'] loop
      if (v_retry_strategy ->> v_option_key) !~ '^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$' then
        raise exception 'retry_strategy.% must be a number, got %',
          v_option_key, v_retry_strategy -> v_option_key;
      end if;
    end loop;
  end if;

  return query execute format('select * from absurd.%I($1, $2, $3, $4, $5, $6, $7, $8)',
                              absurd.kit_queue_statement(p_queue_name, 'spawn'))
    using p_task_name, coalesce(p_params, 'null'::jsonb), v_headers, v_retry_strategy, v_max_attempts,
          v_cancellation, v_key, v_priority;
end;
$$;

-- The queues that exist get their _spawn now (and the functions of 000020 again, unchanged).
select absurd.kit_create_queue_statements(q.queue_name)
  from absurd.queues q
 where to_regclass(format('absurd.%I', 't_' || q.queue_name)) is not null
   and to_regclass(format('absurd.%I', 'r_' || q.queue_name)) is not null
 order by q.queue_name;
