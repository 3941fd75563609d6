-- absurd-kit engine, migration 000027: what a claim reads. Its candidates start at the first live
-- entry of the claim index, and its cancellation sweep reads only the tasks it cancels.
--
-- 1. The claim index's dead front, walked once. A claim finds its runs in two reads of r_<q>_cai
--    (priority desc, available_at, run_id, over the pending and sleeping runs): `top`, the first
--    entry, for the highest priority that has any, then the candidates, the due runs of that
--    priority in order. Both reads started at the front of that priority's range. A claimed run
--    leaves its entry there, dead, and only VACUUM removes dead entries from the index (no insert
--    ever lands on those pages, so PostgreSQL never prunes them); on a large queue VACUUM may even
--    skip the index (PostgreSQL 14+ does when under 2% of the table's pages have dead rows). Until
--    then both reads walked every such entry: 10,000 runs claimed and no VACUUM since, and each
--    read went through 62 index pages of entries already marked dead, so a claim of 16 read 124
--    pages of the index.
--
--    The candidates now start where `top` stopped: at or after top's (available_at, run_id) in its
--    priority, a row comparison that the index takes as the start of its range. Nothing is missed:
--    top and the candidates run in one statement, under one snapshot, and top's entry is the first
--    of all pending and sleeping runs of that priority that the snapshot sees, so every candidate (a
--    due pending or sleeping run of that priority, visible in the same snapshot) sorts at or after
--    it. Same runs claimed, in the same order, with the same locks: only the index pages read
--    change (64 instead of 124 in that case). This applies to the claim of a queue without limits
--    (kit_create_queue_statements: _claim_task) and with (kit_limits_create_functions: _fetch and
--    _claim_limited).
--
-- 2. The cancellation sweep, by deadline. Phase A of every claim looks for live tasks whose
--    cancellation policy has ended them (max_delay seconds after enqueue_at while never started,
--    max_duration seconds after first_started_at once started). It read them through t_<q>_cpi,
--    (task_id) over every live task that has a policy, and tested each: a claim read all of them,
--    due or not (5,000 queued tasks with a `max_delay` of an hour: 5,000 tasks read per claim).
--    t_<q>_cpi is now keyed by that deadline, kit_cancel_deadline(cancellation, enqueue_at,
--    first_started_at), over the same rows, and the sweep reads the range up to now: only the tasks
--    it cancels, each tested with the contract's condition as before. Same tasks cancelled, in the
--    same order (task_id: one lock order for every claimer), and the same errors: a policy value
--    that is not a whole number (Absurd's spawn_task stores `60.5`; absurd-kit's refuses it) has
--    the deadline '-infinity', so the sweep reads that task at every claim and its cast raises
--    22P02 as the contract says.
--
-- kit_create_queue_statements, kit_limits_create_functions and ensure_queue_tables are redefined
-- with these changes, otherwise as in migrations 000022, 000024 and 000020. The queues' t_<q>_cpi of
-- the old kind are built again, and every queue's functions written again. A schema being adopted
-- has no t_<q>_cpi here; adoption builds the new one (listKitQueueIndexes). Building the index
-- takes a SHARE lock on t_<q> for as long as it reads the table. test/sql/claim-reads.test.ts counts
-- the index pages a claim reads after a drain, and the tasks its sweep reads.

-- kit_cancel_deadline(cancellation, enqueue_at, first_started_at): the instant a task's
-- cancellation policy ends it: enqueue_at + max_delay seconds while it has never started,
-- first_started_at + max_duration seconds once it has; null when that policy is not set. A value
-- that is not a whole number of at most 12 digits (some 31,000 years) gives '-infinity': the sweep
-- then reads the task and casts the value itself, raising what Absurd's sweep raises for it (22P02
-- for `60.5`), never the insert or update that stored it. Immutable: it adds a number of seconds,
-- which no time zone setting changes. The key of t_<q>_cpi: never change what it returns for a
-- given input (build the index again if it must).
create function absurd.kit_cancel_deadline(p_cancellation jsonb, p_enqueue_at timestamptz,
                                           p_first_started_at timestamptz) returns timestamptz
language sql
immutable
parallel safe
as $$
  -- The policy that applies (max_delay before the first start, max_duration after) and its origin.
  select case when p.seconds is null then null
              when p.seconds ~ '^\s*[-+]?[0-9]{1,12}\s*$' then p.origin + p.seconds::bigint * interval '1 second'
              else '-infinity'::timestamptz end
    from (select case when p_first_started_at is null then p_cancellation ->> 'max_delay'
                      else p_cancellation ->> 'max_duration' end as seconds,
                 coalesce(p_first_started_at, p_enqueue_at) as origin) p
$$;

-- kit_ensure_cancel_index(q): makes t_<q>_cpi the sweep's index of migration 000027, (deadline)
-- over the live tasks that have a cancellation policy: builds it when missing, and builds it again
-- when it is the (task_id) index of migrations 000001-000026 (an index of that name with no
-- expression). On a partitioned queue it is defined on the parent. Locks: those of drop index and
-- create index on t_<q> (SHARE while it builds).
create function absurd.kit_ensure_cancel_index(p_queue_name text) returns void
language plpgsql
as $$
declare
  v_t text := 't_' || p_queue_name;
  v_cpi text := 't_' || p_queue_name || '_cpi';
begin
  if exists (select 1
               from pg_index i
               join pg_class c on c.oid = i.indexrelid
              where c.relnamespace = 'absurd'::regnamespace and c.relname = v_cpi and i.indexprs is null) then
    execute format('drop index absurd.%I', v_cpi);
  end if;
  execute format(
    'create index if not exists %I on absurd.%I
       (absurd.kit_cancel_deadline(cancellation, enqueue_at, first_started_at))
       where cancellation is not null and state in (''pending'', ''sleeping'', ''running'')',
    v_cpi, v_t);
end;
$$;

-- ensure_queue_tables(q): as in migration 000020, t_<q>_cpi by kit_ensure_cancel_index. Locks:
-- those of 000020.
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

  -- Our own index: live tasks that carry a cancellation policy, by the instant their policy ends
  -- them (kit_cancel_deadline), so that claim_task's policy sweep reads only the tasks it cancels.
  perform absurd.kit_ensure_cancel_index(p_queue_name);

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

-- kit_create_queue_statements(q): as in migration 000022, the claim's candidates starting at top's
-- entry and its cancellation sweep by deadline (see the header). Raises 42P01 when the queue has no tables. Locks: advisory (1633841011,
-- hashtext(q)) until the transaction ends; the queue's absurd.queues row is read (no lock); those
-- of create function.
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

  -- A. Cancellation policies: the tasks whose policy has ended them, read off t_<q>_cpi by their
  -- deadline (migration 000027) and tested with the contract's own condition (which casts the
  -- values, and raises as Absurd's sweep does for one that is not a whole number), then cancelled
  -- in task_id order (one lock order for every claimer). The order is a sort of the few ids found,
  -- not a condition on the read: with enable_sort off, an `order by` there could be planned as a
  -- walk of the primary key.
  v_due := array(
    select t.task_id
      from absurd.%3$I t
     where t.cancellation is not null
       and t.state in ('pending', 'sleeping', 'running')
       and absurd.kit_cancel_deadline(t.cancellation, t.enqueue_at, t.first_started_at) <= v_now
       and ((t.cancellation ->> 'max_delay') is not null
             and t.first_started_at is null
             and extract(epoch from v_now - t.enqueue_at) >= (t.cancellation ->> 'max_delay')::bigint
         or (t.cancellation ->> 'max_duration') is not null
             and t.first_started_at is not null
             and extract(epoch from v_now - t.first_started_at) >= (t.cancellation ->> 'max_duration')::bigint));
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

-- kit_limits_create_functions(q): as in migration 000024, the candidates of _fetch and
-- _claim_limited starting at top's entry (see the header). Created by kit_set_limit, dropped with
-- the queue's last limit or its flow-control rows. Locks: those of create or replace function.
create or replace function absurd.kit_limits_create_functions(p_queue_name text) returns void
language plpgsql
as $$
begin
  perform absurd.kit_limits_drop_functions(p_queue_name);  -- their result types may have changed
  execute format(
    $g$create or replace function absurd.%1$I(p_now timestamptz, p_n integer, p_seen uuid[], p_bound bigint)
       returns table(o_runs uuid[], o_available_at timestamptz[], o_fresh boolean[], o_limits text[],
                     o_keys text[], o_max_running integer[], o_rate_count integer[], o_rate_period interval[],
                     o_waiter_limits text[], o_waiter_keys text[], o_woken boolean[], o_got boolean[],
                     o_waiter_got boolean[], o_level integer, o_simple boolean)
       language plpgsql
       as $body$
       #variable_conflict use_column
       begin
         return query
           with top as (
             select r.priority, r.available_at, r.run_id
               from absurd.%2$I r
              where r.state in ('pending', 'sleeping') and r.priority < p_bound
              order by r.priority desc, r.available_at, r.run_id
              limit 1
           ),
           cand as (
             select r.run_id, r.available_at, r.started_at is null as fresh, t.task_name, t.params
               from absurd.%2$I r
               join absurd.%3$I t on t.task_id = r.task_id
              where r.state in ('pending', 'sleeping')
                and r.priority = (select top.priority from top)
                and (r.available_at, r.run_id) >= (select top.available_at, top.run_id from top)
                and r.available_at <= p_now
                and t.state in ('pending', 'sleeping', 'running')
                and r.run_id <> all(p_seen)
              order by r.available_at, r.run_id
              limit p_n
                for update of r, t skip locked
           )
           ,
           per_limit as (
             select c.run_id, c.available_at, c.fresh, l.limit_name,
                    case when l.key_path is null then ''
                         else coalesce(c.params #> l.key_path, 'null'::jsonb)::text end as key,
                    l.max_running, l.rate_count, l.rate_period,
                    w.limit_name as w_limit, w.key as w_key, w.woken as w_woken
               from cand c
               left join absurd.kit_limits l
                 on l.queue_name = %4$L and (l.task_name is null or l.task_name = c.task_name)
               left join absurd.kit_limit_waiters w on w.queue_name = %4$L and w.run_id = c.run_id
           ),
           buckets as (
             select p.limit_name, p.key from per_limit p where p.limit_name is not null
             union
             select p.w_limit, p.w_key from per_limit p where p.w_woken
           ),
           locks as materialized (
             select b.limit_name, b.key,
                    pg_try_advisory_xact_lock(1633841252, absurd.kit_limit_lock_key(%4$L, b.limit_name, b.key)) as got
               from buckets b
           )
           ,
           ordered as (
             select p.run_id, p.available_at, p.fresh, p.limit_name, p.key, p.max_running, p.rate_count,
                    p.rate_period, p.w_limit, p.w_key, p.w_woken, k.got, wk.got as w_got
               from per_limit p
               left join locks k on k.limit_name = p.limit_name and k.key = p.key
               left join locks wk on p.w_woken and wk.limit_name = p.w_limit and wk.key = p.w_key
              order by p.available_at, p.run_id, p.limit_name
           )
           select coalesce(array_agg(o.run_id), '{}'), coalesce(array_agg(o.available_at), '{}'),
                  coalesce(array_agg(o.fresh), '{}'), coalesce(array_agg(o.limit_name), '{}'),
                  coalesce(array_agg(o.key), '{}'), coalesce(array_agg(o.max_running), '{}'),
                  coalesce(array_agg(o.rate_count), '{}'), coalesce(array_agg(o.rate_period), '{}'),
                  coalesce(array_agg(o.w_limit), '{}'), coalesce(array_agg(o.w_key), '{}'),
                  coalesce(array_agg(o.w_woken), '{}'), coalesce(array_agg(o.got), '{}'),
                  coalesce(array_agg(o.w_got), '{}'), (select top.priority from top),
                  coalesce(bool_and(o.rate_count is null and o.w_limit is null), true)
                    and count(*) = count(distinct o.run_id)
             from ordered o;
       end
       $body$
    $g$,
    absurd.kit_limits_function_name(p_queue_name, 'fetch'), 'r_' || p_queue_name, 't_' || p_queue_name,
    p_queue_name);
  execute format(
    $g$create or replace function absurd.%1$I(p_now timestamptz, p_worker text, p_claim_until timestamptz,
                                             p_runs uuid[], p_slot_limits text[], p_slot_keys text[],
                                             p_slot_runs uuid[], p_start_limits text[], p_start_keys text[],
                                             p_unwaited uuid[])
       returns table(run_id uuid, task_id uuid, attempt integer, task_name text, params jsonb,
                     retry_strategy jsonb, max_attempts integer, headers jsonb, wake_event text,
                     event_payload jsonb)
       language plpgsql
       as $body$
       #variable_conflict use_column
       begin
         -- run_id = any(array), not a join with unnest(): the plan is generic (kept), and this form
         -- is an index scan whatever the planner guesses of the array's length.
         return query
           with claimed as (
             update absurd.%2$I r
                set state = 'running', claimed_by = p_worker, claim_expires_at = p_claim_until,
                    started_at = p_now, available_at = p_now
              where r.run_id = any(p_runs)
             returning r.run_id, r.task_id, r.attempt, r.wake_event, r.event_payload,
                       array_position(p_runs, r.run_id) as ord
           ),
           tasks as (
             update absurd.%3$I t
                set state = 'running', attempts = greatest(t.attempts, c.attempt),
                    first_started_at = coalesce(t.first_started_at, p_now), last_attempt_run = c.run_id
               from claimed c
              where t.task_id = c.task_id
             returning t.task_id, t.task_name, t.params, t.retry_strategy, t.max_attempts, t.headers
           ),
           expired_waits as (
             delete from absurd.%4$I w
              using claimed c
              where w.run_id = c.run_id and w.timeout_at is not null and w.timeout_at <= p_now
           ),
           slots as (
             insert into absurd.kit_limit_slots (queue_name, limit_name, key, run_id)
             select %5$L, u.l, u.k, u.r from unnest(p_slot_limits, p_slot_keys, p_slot_runs) as u(l, k, r)
             on conflict do nothing
           ),
           starts as (
             insert into absurd.kit_limit_starts (queue_name, limit_name, key, started_at)
             select %5$L, u.l, u.k, p_now from unnest(p_start_limits, p_start_keys) as u(l, k)
           ),
           unwaited as (
             delete from absurd.kit_limit_waiters x
              where x.queue_name = %5$L and x.run_id = any(p_unwaited)
           )
           select c.run_id, c.task_id, c.attempt, t.task_name, t.params, t.retry_strategy, t.max_attempts,
                  t.headers, c.wake_event, c.event_payload
             from claimed c
             join tasks t on t.task_id = c.task_id
            order by c.ord;
       end
       $body$
    $g$,
    absurd.kit_limits_function_name(p_queue_name, 'claim'), 'r_' || p_queue_name, 't_' || p_queue_name,
    'w_' || p_queue_name, p_queue_name);
  execute format(
    $g$create or replace function absurd.%1$I(p_now timestamptz, p_worker text, p_claim_until timestamptz,
                                             p_runs uuid[], p_available_at timestamptz[], p_limits text[],
                                             p_keys text[], p_max_running integer[], p_got boolean[])
       returns table(run_id uuid, task_id uuid, attempt integer, task_name text, params jsonb,
                     retry_strategy jsonb, max_attempts integer, headers jsonb, wake_event text,
                     event_payload jsonb)
       language plpgsql
       as $body$
       #variable_conflict use_column
       begin
         -- The runs are found by run_id = any(an array computed once), never by a join with the
         -- decisions: an index scan whatever the planner guesses of their number (see _claim).
         return query
           with decided as materialized (
             select c.run_id, c.available_at, c.lim, c.key,
                    case when c.lim is null then 'take'
                         when not coalesce(c.got, false) then 'skip'
                         when c.used + row_number() over (partition by c.lim, c.key order by c.ord) <= c.max then 'take'
                         else 'park' end as verdict
               from (select u.*,
                            case when u.lim is not null and u.got then
                              (select count(*) from absurd.kit_limit_slots s
                                where s.queue_name = %5$L and s.limit_name = u.lim and s.key = u.key)
                            else 0 end as used
                       from unnest(p_runs, p_available_at, p_limits, p_keys, p_max_running, p_got)
                            with ordinality as u(run_id, available_at, lim, key, max, got, ord)) c
           ),
           claimed as (
             update absurd.%2$I r
                set state = 'running', claimed_by = p_worker, claim_expires_at = p_claim_until,
                    started_at = p_now, available_at = p_now
              where r.run_id = any(array(select d.run_id from decided d where d.verdict = 'take'))
             returning r.run_id, r.task_id, r.attempt, r.wake_event, r.event_payload,
                       array_position(p_runs, r.run_id) as ord
           ),
           tasks as (
             update absurd.%3$I t
                set state = 'running', attempts = greatest(t.attempts, c.attempt),
                    first_started_at = coalesce(t.first_started_at, p_now), last_attempt_run = c.run_id
               from claimed c
              where t.task_id = c.task_id
             returning t.task_id, t.task_name, t.params, t.retry_strategy, t.max_attempts, t.headers
           ),
           expired_waits as (
             delete from absurd.%4$I w
              using claimed c
              where w.run_id = c.run_id and w.timeout_at is not null and w.timeout_at <= p_now
           ),
           slots as (
             insert into absurd.kit_limit_slots (queue_name, limit_name, key, run_id)
             select %5$L, d.lim, d.key, d.run_id from decided d where d.verdict = 'take' and d.lim is not null
             on conflict do nothing
           ),
           parked as (
             update absurd.%2$I r set available_at = 'infinity'
              where r.run_id = any(array(select d.run_id from decided d where d.verdict = 'park'))
           ),
           waiters as (
             insert into absurd.kit_limit_waiters as w (queue_name, run_id, limit_name, key, available_at, woken)
             select %5$L, d.run_id, d.lim, d.key, d.available_at, false from decided d where d.verdict = 'park'
             on conflict (queue_name, run_id) do update
                set limit_name = excluded.limit_name, key = excluded.key, available_at = excluded.available_at,
                    woken = false
           )
           select c.run_id, c.task_id, c.attempt, t.task_name, t.params, t.retry_strategy, t.max_attempts,
                  t.headers, c.wake_event, c.event_payload
             from claimed c
             join tasks t on t.task_id = c.task_id
            order by c.ord;
       end
       $body$
    $g$,
    absurd.kit_limits_function_name(p_queue_name, 'take'), 'r_' || p_queue_name, 't_' || p_queue_name,
    'w_' || p_queue_name, p_queue_name);
  execute format(
    $g$create or replace function absurd.%1$I(p_worker text, p_claim_until timestamptz, p_now timestamptz,
                                             p_qty integer)
       returns table(run_id uuid, task_id uuid, attempt integer, task_name text, params jsonb,
                     retry_strategy jsonb, max_attempts integer, headers jsonb, wake_event text,
                     event_payload jsonb)
       language plpgsql
       set plan_cache_mode = force_generic_plan
       as $body$
       #variable_conflict use_column
       declare
         c_run uuid[];
         c_at timestamptz[];
         c_fresh boolean[];
         c_lim text[];
         c_key text[];
         c_max integer[];
         c_rate integer[];
         c_period interval[];
         c_wlim text[];
         c_wkey text[];
         c_woken boolean[];
         c_got boolean[];
         c_wgot boolean[];
         v_level integer;
         v_simple boolean;
         v_n integer;
       begin
         -- The first round of kit_claim_limited_rounds, as _fetch would find it: up to qty due runs of
         -- the highest priority with claimable runs, their limits, keys and buckets' locks tried.
           with top as (
             select r.priority, r.available_at, r.run_id
               from absurd.%2$I r
              where r.state in ('pending', 'sleeping') and r.priority < 2147483648
              order by r.priority desc, r.available_at, r.run_id
              limit 1
           ),
           cand as (
             select r.run_id, r.available_at, r.started_at is null as fresh, t.task_name, t.params
               from absurd.%2$I r
               join absurd.%3$I t on t.task_id = r.task_id
              where r.state in ('pending', 'sleeping')
                and r.priority = (select top.priority from top)
                and (r.available_at, r.run_id) >= (select top.available_at, top.run_id from top)
                and r.available_at <= p_now
                and t.state in ('pending', 'sleeping', 'running')
                and true
              order by r.available_at, r.run_id
              limit p_qty
                for update of r, t skip locked
           )
           ,
           per_limit as (
             select c.run_id, c.available_at, c.fresh, l.limit_name,
                    case when l.key_path is null then ''
                         else coalesce(c.params #> l.key_path, 'null'::jsonb)::text end as key,
                    l.max_running, l.rate_count, l.rate_period,
                    w.limit_name as w_limit, w.key as w_key, w.woken as w_woken
               from cand c
               left join absurd.kit_limits l
                 on l.queue_name = %5$L and (l.task_name is null or l.task_name = c.task_name)
               left join absurd.kit_limit_waiters w on w.queue_name = %5$L and w.run_id = c.run_id
           ),
           buckets as (
             select p.limit_name, p.key from per_limit p where p.limit_name is not null
             union
             select p.w_limit, p.w_key from per_limit p where p.w_woken
           ),
           locks as materialized (
             select b.limit_name, b.key,
                    pg_try_advisory_xact_lock(1633841252, absurd.kit_limit_lock_key(%5$L, b.limit_name, b.key)) as got
               from buckets b
           )
           ,
           ordered as (
             select p.run_id, p.available_at, p.fresh, p.limit_name, p.key, p.max_running, p.rate_count,
                    p.rate_period, p.w_limit, p.w_key, p.w_woken, k.got, wk.got as w_got
               from per_limit p
               left join locks k on k.limit_name = p.limit_name and k.key = p.key
               left join locks wk on p.w_woken and wk.limit_name = p.w_limit and wk.key = p.w_key
              order by p.available_at, p.run_id, p.limit_name
           )
           select coalesce(array_agg(o.run_id), '{}'), coalesce(array_agg(o.available_at), '{}'),
                  coalesce(array_agg(o.fresh), '{}'), coalesce(array_agg(o.limit_name), '{}'),
                  coalesce(array_agg(o.key), '{}'), coalesce(array_agg(o.max_running), '{}'),
                  coalesce(array_agg(o.rate_count), '{}'), coalesce(array_agg(o.rate_period), '{}'),
                  coalesce(array_agg(o.w_limit), '{}'), coalesce(array_agg(o.w_key), '{}'),
                  coalesce(array_agg(o.w_woken), '{}'), coalesce(array_agg(o.got), '{}'),
                  coalesce(array_agg(o.w_got), '{}'), (select top.priority from top),
                  coalesce(bool_and(o.rate_count is null and o.w_limit is null), true)
                    and count(*) = count(distinct o.run_id)
             into c_run, c_at, c_fresh, c_lim, c_key, c_max, c_rate, c_period, c_wlim, c_wkey, c_woken, c_got,
                  c_wgot, v_level, v_simple
             from ordered o;
         if v_level is null then
           return;  -- no pending or sleeping run at all
         end if;
         if cardinality(c_run) = 0 or not v_simple then
           -- Nothing due at that priority, or a round of the other kind: the general rounds, from
           -- the next priority down or from this round again.
           return query select * from absurd.kit_claim_limited_rounds(
             %5$L, p_worker, p_claim_until, p_now, p_qty, '{}', greatest(p_qty * 4, 16), false,
             case when cardinality(c_run) = 0 then v_level::bigint else 2147483648 end);
           return;
         end if;
         -- The common round, as _take decides and claims it (see kit_claim_limited_rounds).
         return query
           with decided as materialized (
             select c.run_id, c.available_at, c.lim, c.key,
                    case when c.lim is null then 'take'
                         when not coalesce(c.got, false) then 'skip'
                         when c.used + row_number() over (partition by c.lim, c.key order by c.ord) <= c.max then 'take'
                         else 'park' end as verdict
               from (select u.*,
                            case when u.lim is not null and u.got then
                              (select count(*) from absurd.kit_limit_slots s
                                where s.queue_name = %5$L and s.limit_name = u.lim and s.key = u.key)
                            else 0 end as used
                       from unnest(c_run, c_at, c_lim, c_key, c_max, c_got)
                            with ordinality as u(run_id, available_at, lim, key, max, got, ord)) c
           ),
           claimed as (
             update absurd.%2$I r
                set state = 'running', claimed_by = p_worker, claim_expires_at = p_claim_until,
                    started_at = p_now, available_at = p_now
              where r.run_id = any(array(select d.run_id from decided d where d.verdict = 'take'))
             returning r.run_id, r.task_id, r.attempt, r.wake_event, r.event_payload,
                       array_position(c_run, r.run_id) as ord
           ),
           tasks as (
             update absurd.%3$I t
                set state = 'running', attempts = greatest(t.attempts, c.attempt),
                    first_started_at = coalesce(t.first_started_at, p_now), last_attempt_run = c.run_id
               from claimed c
              where t.task_id = c.task_id
             returning t.task_id, t.task_name, t.params, t.retry_strategy, t.max_attempts, t.headers
           ),
           expired_waits as (
             delete from absurd.%4$I w
              using claimed c
              where w.run_id = c.run_id and w.timeout_at is not null and w.timeout_at <= p_now
           ),
           slots as (
             insert into absurd.kit_limit_slots (queue_name, limit_name, key, run_id)
             select %5$L, d.lim, d.key, d.run_id from decided d where d.verdict = 'take' and d.lim is not null
             on conflict do nothing
           ),
           parked as (
             update absurd.%2$I r set available_at = 'infinity'
              where r.run_id = any(array(select d.run_id from decided d where d.verdict = 'park'))
           ),
           waiters as (
             insert into absurd.kit_limit_waiters as w (queue_name, run_id, limit_name, key, available_at, woken)
             select %5$L, d.run_id, d.lim, d.key, d.available_at, false from decided d where d.verdict = 'park'
             on conflict (queue_name, run_id) do update
                set limit_name = excluded.limit_name, key = excluded.key, available_at = excluded.available_at,
                    woken = false
           )
           select c.run_id, c.task_id, c.attempt, t.task_name, t.params, t.retry_strategy, t.max_attempts,
                  t.headers, c.wake_event, c.event_payload
             from claimed c
             join tasks t on t.task_id = c.task_id
            order by c.ord;
         get diagnostics v_n = row_count;
         if v_n < p_qty and greatest(p_qty * 4, 16) > cardinality(c_run) then
           -- Short (runs parked, or left to the transaction that holds their bucket): the rounds go
           -- on, past the runs this one looked at.
           return query select * from absurd.kit_claim_limited_rounds(
             %5$L, p_worker, p_claim_until, p_now, p_qty - v_n, c_run, greatest(p_qty * 4, 16) - cardinality(c_run),
             coalesce(false = any(c_got), false), 2147483648);
         elsif v_n < p_qty and coalesce(false = any(c_got), false) then
           perform pg_notify('absurd_wake_' || md5(%5$L), '');
         end if;
       end
       $body$
    $g$,
    absurd.kit_limits_function_name(p_queue_name, 'claim_limited'), 'r_' || p_queue_name, 't_' || p_queue_name,
    'w_' || p_queue_name, p_queue_name);
end;
$$;

-- The queues' t_<q>_cpi, built again by deadline where it is of the old kind (a queue without one,
-- as on a schema being adopted, gets it from adoption).
select absurd.kit_ensure_cancel_index(q.queue_name)
  from absurd.queues q
 where to_regclass(format('absurd.%I', 't_' || q.queue_name || '_cpi')) is not null
 order by q.queue_name;

-- Every queue's functions, written again with the new claim.
select absurd.kit_create_queue_statements(q.queue_name)
  from absurd.queues q
 where to_regclass(format('absurd.%I', 't_' || q.queue_name)) is not null
   and to_regclass(format('absurd.%I', 'r_' || q.queue_name)) is not null
 order by q.queue_name;

select absurd.kit_limits_create_functions(q.queue_name)
  from (select distinct l.queue_name from absurd.kit_limits l) q
 where to_regclass(format('absurd.%I', 'r_' || q.queue_name)) is not null
 order by q.queue_name;
