-- absurd-kit engine, migration 000030: the queue's functions read the clock and make ids inline.
--
-- absurd.current_time() and absurd.portable_uuidv7() are PL/pgSQL functions by the contract, so
-- every call is a function call of its own: 1.9 and 7.7 µs each inside a spawn, which takes two ids
-- and the time (track_functions, PostgreSQL 18, one connection), and the kit claim called
-- current_time() once per claimed run for its queue lag. kit_now() and kit_uuidv7() give the same
-- values as SQL functions of one expression, which PostgreSQL inlines into the statement that
-- calls them: no call at all. The queue's functions (kit_create_queue_statements) call them instead.
-- Measured with pgbench on PostgreSQL 18 (8 connections, the extended protocol, synchronous_commit
-- off), the queue's _spawn calling them: 0.985× of Absurd's spawns a second against 0.952× (six
-- alternating rounds each, migration 000029 in both).
--
-- Both read absurd.fake_now as the contract's functions do. kit_uuidv7() is written for the server
-- it is installed on: on PostgreSQL 18 and later, the built-in uuidv7() when no fake time is set,
-- as portable_uuidv7 does; before 18, portable_uuidv7() itself (the inlining leaves that call). A
-- database moved to PostgreSQL 18 by pg_upgrade keeps the second form, correct and as fast as
-- before this migration.

-- kit_now(): absurd.current_time() as one expression: absurd.fake_now when it is set to something
-- other than blanks, otherwise clock_timestamp(). Volatile; takes no locks.
create function absurd.kit_now() returns timestamptz
language sql
volatile
as $$
  select case when btrim(coalesce(current_setting('absurd.fake_now', true), '')) <> ''
              then current_setting('absurd.fake_now', true)::timestamptz
              else clock_timestamp() end
$$;

-- current_time(): as in migration 000001 (the same values, a PL/pgSQL function as the contract
-- has it), its rule now kit_now()'s alone. Takes no locks.
create or replace function absurd.current_time() returns timestamptz
language plpgsql
volatile
as $$
begin
  return absurd.kit_now();
end;
$$;

-- kit_uuidv7(): absurd.portable_uuidv7() as one expression (see the header): that call itself
-- before PostgreSQL 18, replaced below on 18 and later. Volatile; takes no locks.
create function absurd.kit_uuidv7() returns uuid
language sql
volatile
as $$
  select absurd.portable_uuidv7()
$$;

-- On PostgreSQL 18 and later: the built-in uuidv7() unless absurd.fake_now is set (a function a
-- server before 18 could not create: it names uuidv7()).
do $$
begin
  if current_setting('server_version_num')::integer >= 180000 then
    execute $f$
      create or replace function absurd.kit_uuidv7() returns uuid
      language sql
      volatile
      as $body$
        select case when btrim(coalesce(current_setting('absurd.fake_now', true), '')) = ''
                    then pg_catalog.uuidv7()
                    else absurd.portable_uuidv7() end
      $body$
    $f$;
  end if;
end;
$$;

-- kit_create_queue_statements(q): as in migration 000028, the queue's functions calling kit_now()
-- and kit_uuidv7() where they called current_time() and portable_uuidv7(). Raises 42P01 when the
-- queue has no tables. Locks: those of 000028.
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
  v_now timestamptz := absurd.kit_now();
  v_timeout integer := greatest(coalesce(p_claim_timeout, 30), 0);
  v_worker text := coalesce(nullif(p_worker_id, ''), 'worker');
  v_qty integer := greatest(coalesce(p_qty, 1), 1);
  v_claim_until timestamptz;
  v_id uuid;
  v_due uuid[];
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

  -- A. Cancellation policies: the live runs whose task's policy has ended it, read off r_<q>_cdi by
  -- their deadline (migration 000028), then their tasks, tested with the contract's own condition
  -- (which casts the values, and raises as Absurd's sweep does for one that is not a whole number),
  -- cancelled in task_id order (one lock order for every claimer). Two reads, so that no plan can
  -- walk the tasks instead of the index; the second, and the sort of the few ids found (with
  -- enable_sort off, an `order by` in a read could be planned as a walk of the primary key), only
  -- when a deadline has passed.
  v_due := array(
    select r.task_id
      from absurd.%4$I r
     where r.cancel_deadline <= v_now
       and r.state in ('pending', 'sleeping', 'running'));
  if cardinality(v_due) > 0 then
    v_due := array(
      select t.task_id
        from absurd.%3$I t
       where t.task_id = any(v_due)
         and t.cancellation is not null
         and t.state in ('pending', 'sleeping', 'running')
         and ((t.cancellation ->> 'max_delay') is not null
               and t.first_started_at is null
               and extract(epoch from v_now - t.enqueue_at) >= (t.cancellation ->> 'max_delay')::bigint
           or (t.cancellation ->> 'max_duration') is not null
               and t.first_started_at is not null
               and extract(epoch from v_now - t.first_started_at) >= (t.cancellation ->> 'max_duration')::bigint));
  end if;
  if cardinality(v_due) > 0 then
    foreach v_id in array array(select d.id from unnest(v_due) as d(id) order by d.id) loop
      perform absurd.cancel_task(%2$L, v_id);
    end loop;
  end if;

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
         select r.priority, r.available_at, r.run_id,
                set_config('absurd.kit_claim_level', r.priority::text, true) as noted
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
            and (r.available_at, r.run_id) >= (select top.available_at, top.run_id from top)
            and r.available_at <= v_now
            and t.state in ('pending', 'sleeping', 'running')
          order by r.available_at, r.run_id
          limit v_left
            for update of r, t skip locked
       ),
       claimed as (
         update absurd.%4$I r
            set state = 'running', claimed_by = v_worker, claim_expires_at = v_claim_until, started_at = v_now,
                available_at = v_now,
                cancel_deadline = case when r.cancel_deadline is null or r.started_at is not null
                                       then r.cancel_deadline
                                       else (select absurd.kit_cancel_deadline(t.cancellation, t.enqueue_at,
                                                                               coalesce(t.first_started_at, v_now))
                                               from absurd.%3$I t where t.task_id = r.task_id) end
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
           extract(epoch from absurd.kit_now()
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
  v_task_id uuid := absurd.kit_uuidv7();
  v_run_id uuid := absurd.kit_uuidv7();
  v_now timestamptz := absurd.kit_now();
begin%6$s
  -- The run carries its task's cancellation deadline (kit_cancel_deadline; the case spares the
  -- call to a spawn without a policy).
  insert into absurd.%3$I (run_id, task_id, attempt, state, available_at, priority, cancel_deadline)
  values (v_run_id, v_task_id, 1, 'pending', v_now, p_priority,
          case when p_cancellation is not null then absurd.kit_cancel_deadline(p_cancellation, v_now, null) end);

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


-- Every queue's functions, written again.
select absurd.kit_create_queue_statements(q.queue_name)
  from absurd.queues q
 where to_regclass(format('absurd.%I', 't_' || q.queue_name)) is not null
   and to_regclass(format('absurd.%I', 'r_' || q.queue_name)) is not null
 order by q.queue_name;
