-- absurd-kit engine, migration 000028: task rows updated in place. No index of t_<q> names a
-- column that a claim or a completion changes, so PostgreSQL can make those updates of t_<q> HOT
-- (heap-only: a new version of the row on the same page, and no new entry in any of its indexes).
--
-- Before, every update of a task row wrote an entry into every index of t_<q>: three of them named
-- its `state` (the cancellation sweep's t_<q>_cpi in its predicate, the task list's t_<q>_sti and
-- t_<q>_nsi in their keys), and t_<q>_cpi's key named first_started_at. A claim and a completion
-- each change `state`, so neither could be HOT. Measured with those three indexes gone: 7 % more
-- no-op tasks a second, 12 % less Postgres CPU per task (bench/README.md).
--
-- 1. The cancellation sweep reads the runs. Each live run of a task that carries a cancellation
--    policy holds the instant that policy ends the task, in the new column r_<q>.cancel_deadline
--    (absurd.kit_cancel_deadline, computed when the run is written), and r_<q>_cdi indexes it over
--    the live runs (pending, sleeping, running) that have one. r_<q> is never updated in place
--    anyway (its claim index names `state`), so the deadline costs no HOT update there. Who writes
--    it:
--    - a spawn (spawn_task, kit_spawn_tasks): max_delay's deadline, or 'infinity' when the policy
--      has none (max_duration alone: nothing ends the task before its first start);
--    - the claim that starts the task for the first time (a run with a deadline and no started_at):
--      max_duration's deadline from that instant, or null when the policy has none;
--    - a retry's new run (fail_run, a lease that expired, retry_task in place): max_duration's.
--    A run that sleeps, waits or wakes keeps its own; a run that ends leaves the index. The sweep
--    reads the range up to now, joins each run to its task and tests the task with the contract's
--    own condition as before: same tasks cancelled, in the same order, with the same errors (a value
--    that is not a whole number has the deadline '-infinity', as in 000027). t_<q>_cpi is dropped.
-- 2. The task list reads its state filters off the runs. A task's state is that of its last run,
--    except after a failure that a retry follows (the failed run stays `failed`, the task goes on)
--    and after one whose task max_duration cancels instead (the run stays `failed`, the task is
--    `cancelled`). Such a run is now marked: the new column r_<q>.superseded (boolean, false) is set
--    by fail_run for both, and by retry_task for the failed run its new run follows. Every other run
--    carries its task's state, one per task, and r_<q>_lsi (state, task_id) where not superseded
--    gives each state's tasks in task_id order, exactly (a claim or a completion updates the run
--    anyway, and r_<q> is never HOT). The cancelled tasks come from t_<q>_cli (task_id) where
--    cancelled_at is not null (cancelled_at is set exactly when a task is cancelled, and is cleared
--    only by retry_task, which takes failed tasks only), the tasks of a name from t_<q>_nti
--    (task_name, task_id): neither key changes in a claim or a completion. t_<q>_sti and t_<q>_nsi
--    (migration 000009) are dropped. A task writes three entries into r_<q>_lsi (spawn, claim,
--    completion) instead of six into the two dropped indexes and, its updates now HOT, none into
--    t_<q>'s other indexes.
--
-- Neither changes anything Absurd's clients see: indexes are not part of the contract, and the new
-- column of r_<q> is left null by Absurd's own functions (which absurd-kit replaces) and ignored by
-- its tools, as `priority` is. ensure_queue_tables, kit_create_queue_statements,
-- kit_limits_create_functions, kit_spawn_tasks, kit_fail_run and retry_task are redefined with the
-- deadline, otherwise as in migrations 000027 (the first three) and 000016. Every existing queue
-- gets the column (filled for its live runs), its new indexes and new functions.

-- kit_cancel_deadline(cancellation, enqueue_at, first_started_at): as in migration 000027 (the
-- instant the task's policy ends it; '-infinity' for a value that is not a whole number of at most
-- 12 digits), and now the deadline a live run of the task carries in r_<q>.cancel_deadline:
-- 'infinity' for a task that has a policy but has not started and no max_delay (max_duration alone
-- ends it only once started), where 000027 gave null; null without a policy, or once started
-- without max_duration. Immutable. Replaced before the migration drops t_<q>_cpi, the index of
-- 000027 keyed by it (it changes no key a claim's sweep could reach: null and 'infinity' are both
-- beyond now).
create or replace function absurd.kit_cancel_deadline(p_cancellation jsonb, p_enqueue_at timestamptz,
                                                      p_first_started_at timestamptz) returns timestamptz
language sql
immutable
parallel safe
as $$
  -- The policy that applies (max_delay before the first start, max_duration after) and its origin.
  select case when p_cancellation is null then null
              when p.seconds is null then case when p_first_started_at is null then 'infinity'::timestamptz end
              when p.seconds ~ '^\s*[-+]?[0-9]{1,12}\s*$' then p.origin + p.seconds::bigint * interval '1 second'
              else '-infinity'::timestamptz end
    from (select case when p_first_started_at is null then p_cancellation ->> 'max_delay'
                      else p_cancellation ->> 'max_duration' end as seconds,
                 coalesce(p_first_started_at, p_enqueue_at) as origin) p
$$;

-- kit_ensure_cancel_index(q): makes the cancellation sweep's index that of migration 000028: adds
-- r_<q>.cancel_deadline when missing and fills it for the live runs of tasks that have a policy
-- (their deadline as the writers above would have written it), builds r_<q>_cdi (cancel_deadline)
-- over the live runs that have one, and drops t_<q>_cpi (migrations 000001-000027). Idempotent. On a
-- partitioned queue all of it is done on the parent. Locks: ACCESS EXCLUSIVE on r_<q> while the
-- column is added, and the fill's row locks; SHARE on r_<q> while the index builds; ACCESS EXCLUSIVE
-- on t_<q> while t_<q>_cpi is dropped.
create or replace function absurd.kit_ensure_cancel_index(p_queue_name text) returns void
language plpgsql
as $$
declare
  v_t text := 't_' || p_queue_name;
  v_r text := 'r_' || p_queue_name;
begin
  if not exists (select 1
                   from pg_attribute a
                  where a.attrelid = format('absurd.%I', v_r)::regclass
                    and a.attname = 'cancel_deadline' and not a.attisdropped) then
    execute format('alter table absurd.%I add column cancel_deadline timestamptz', v_r);
    execute format(
      'update absurd.%I r
          set cancel_deadline = absurd.kit_cancel_deadline(t.cancellation, t.enqueue_at, t.first_started_at)
         from absurd.%I t
        where t.task_id = r.task_id
          and t.cancellation is not null
          and r.state in (''pending'', ''sleeping'', ''running'')',
      v_r, v_t);
  end if;
  execute format('drop index if exists absurd.%I', v_t || '_cpi');
  execute format(
    'create index if not exists %I on absurd.%I (cancel_deadline)
       where cancel_deadline is not null and state in (''pending'', ''sleeping'', ''running'')',
    v_r || '_cdi', v_r);
end;
$$;

-- kit_ensure_list_indexes(q): makes the task list's indexes those of migration 000028: adds
-- r_<q>.superseded when missing, marking the failed runs that no longer carry their task's state
-- (those its task has gone on from, and the last run of a task cancelled while it was failed), and
-- builds r_<q>_lsi (state, task_id) over the other runs, t_<q>_cli (task_id) over the cancelled
-- tasks and t_<q>_nti (task_name, task_id) when missing; drops t_<q>_sti and t_<q>_nsi (migration
-- 000009). Idempotent; on a partitioned queue all of it is done on the parent. Index names stay
-- within 63 bytes for every valid queue name (2 + 57 + 4). Locks: ACCESS EXCLUSIVE on r_<q> while
-- the column is added, and the marking's row locks; SHARE on r_<q> and t_<q> while each index
-- builds; ACCESS EXCLUSIVE on t_<q> while the old ones are dropped.
create or replace function absurd.kit_ensure_list_indexes(p_queue_name text) returns void
language plpgsql
as $$
declare
  v_t text := 't_' || p_queue_name;
  v_r text := 'r_' || p_queue_name;
begin
  if not exists (select 1
                   from pg_attribute a
                  where a.attrelid = format('absurd.%I', v_r)::regclass
                    and a.attname = 'superseded' and not a.attisdropped) then
    execute format('alter table absurd.%I add column superseded boolean not null default false', v_r);
    execute format(
      'update absurd.%I r
          set superseded = true
         from absurd.%I t
        where t.task_id = r.task_id
          and r.state = ''failed''
          and (t.last_attempt_run is distinct from r.run_id or t.state = ''cancelled'')',
      v_r, v_t);
  end if;
  execute format('drop index if exists absurd.%I', v_t || '_sti');
  execute format('drop index if exists absurd.%I', v_t || '_nsi');
  execute format('create index if not exists %I on absurd.%I (state, task_id) where not superseded', v_r || '_lsi', v_r);
  execute format('create index if not exists %I on absurd.%I (task_id) where cancelled_at is not null', v_t || '_cli', v_t);
  execute format('create index if not exists %I on absurd.%I (task_name, task_id)', v_t || '_nti', v_t);
end;
$$;

-- ensure_queue_tables(q): as in migration 000027, plus the runs' columns cancel_deadline and
-- superseded, and the cancellation sweep's index and the task list's indexes as migration 000028
-- makes them (kit_ensure_cancel_index, kit_ensure_list_indexes). Locks: those of 000020.
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
       priority integer not null default 0,
       cancel_deadline timestamptz,
       superseded boolean not null default false
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

  -- Our own index: the live runs of tasks that carry a cancellation policy, by the instant their
  -- policy ends them (r_<q>.cancel_deadline), so that claim_task's sweep reads only the tasks it
  -- cancels, and no index of t_<q> names a column that a claim or a completion changes.
  perform absurd.kit_ensure_cancel_index(p_queue_name);

  -- The task list's indexes (runs by state, tasks by name), as kit_ensure_list_indexes says.
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

-- kit_create_queue_statements(q): as in migration 000027, the claim's cancellation sweep reading
-- r_<q>_cdi, the claim giving a first start's run its max_duration deadline, and the spawn its run's
-- deadline (see the header). Raises 42P01 when the queue has no tables. Locks: advisory (1633841011,
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

-- kit_limits_create_functions(q): as in migration 000027, the claims giving a first start's run its
-- max_duration deadline (see the header of migration 000028). Created by kit_set_limit, dropped with
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
                    started_at = p_now, available_at = p_now,
                    cancel_deadline = case when r.cancel_deadline is null or r.started_at is not null
                                           then r.cancel_deadline
                                           else (select absurd.kit_cancel_deadline(t.cancellation, t.enqueue_at,
                                                                                   coalesce(t.first_started_at, p_now))
                                                   from absurd.%3$I t where t.task_id = r.task_id) end
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
                    started_at = p_now, available_at = p_now,
                    cancel_deadline = case when r.cancel_deadline is null or r.started_at is not null
                                           then r.cancel_deadline
                                           else (select absurd.kit_cancel_deadline(t.cancellation, t.enqueue_at,
                                                                                   coalesce(t.first_started_at, p_now))
                                                   from absurd.%3$I t where t.task_id = r.task_id) end
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
                    started_at = p_now, available_at = p_now,
                    cancel_deadline = case when r.cancel_deadline is null or r.started_at is not null
                                           then r.cancel_deadline
                                           else (select absurd.kit_cancel_deadline(t.cancellation, t.enqueue_at,
                                                                                   coalesce(t.first_started_at, p_now))
                                                   from absurd.%3$I t where t.task_id = r.task_id) end
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

-- kit_spawn_tasks(q, tasks): as in migration 000016, each first run carrying its task's
-- cancellation deadline (see the header of migration 000028).
create or replace function absurd.kit_spawn_tasks(p_queue_name text, p_tasks jsonb)
returns table(task_id uuid, run_id uuid, attempt integer, created boolean)
language plpgsql
as $$
declare
  v_now timestamptz := absurd.current_time();
  v_item jsonb;
  v_index bigint;
  v_options jsonb;
  v_value jsonb;
  v_key text;
  v_mode text;
  v_any_created boolean := false;
  v_rec record;
  v_task_ids uuid[];
  v_run_ids uuid[];
  v_keys text[];
  v_created boolean[];
  v_i integer;
begin
  if jsonb_typeof(p_tasks) is distinct from 'array' then
    raise exception 'tasks must be a JSON array, got %', coalesce(jsonb_typeof(p_tasks), 'null');
  end if;

  -- The checks of spawn_task, made for every element before the first write.
  for v_item, v_index in select e.value, e.ordinality - 1 from jsonb_array_elements(p_tasks) with ordinality e loop
    if jsonb_typeof(v_item) is distinct from 'object' then
      raise exception 'tasks[%]: must be an object with task_name, params and options', v_index;
    end if;
    if jsonb_typeof(v_item -> 'task_name') is distinct from 'string' or btrim(v_item ->> 'task_name') = '' then
      raise exception 'tasks[%]: task_name must be provided', v_index;
    end if;
    v_options := v_item -> 'options';
    if jsonb_typeof(v_options) = 'object' then
      perform absurd.kit_spawn_priority(v_options -> 'priority', format('tasks[%s]: ', v_index));
      if v_options ? 'max_attempts' and jsonb_typeof(v_options -> 'max_attempts') <> 'null' then
        if jsonb_typeof(v_options -> 'max_attempts') <> 'number'
           or (v_options ->> 'max_attempts') !~ '^-?[0-9]+$' then
          raise exception 'tasks[%]: max_attempts must be an integer, got %', v_index, v_options -> 'max_attempts';
        end if;
        if (v_options ->> 'max_attempts')::numeric < 1 then
          raise exception 'tasks[%]: max_attempts must be >= 1', v_index;
        end if;
      end if;
      if jsonb_typeof(v_options -> 'cancellation') = 'object' then
        foreach v_key in array array['max_delay', 'max_duration'] loop
          v_value := v_options -> 'cancellation' -> v_key;
          if (v_value #>> '{}') !~ '^\s*[-+]?[0-9]+\s*$' then
            raise exception 'tasks[%]: cancellation.% must be a whole number of seconds, got %', v_index, v_key, v_value;
          end if;
        end loop;
      end if;
      if jsonb_typeof(v_options -> 'retry_strategy') = 'object' then
        foreach v_key in array array['base_seconds', 'factor', 'max_seconds'] loop
          v_value := v_options -> 'retry_strategy' -> v_key;
          if (v_value #>> '{}') !~ '^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$' then
            raise exception 'tasks[%]: retry_strategy.% must be a number, got %', v_index, v_key, v_value;
          end if;
        end loop;
      end if;
    end if;
  end loop;

  select q.storage_mode into v_mode from absurd.queues q where q.queue_name = p_queue_name;
  if coalesce(v_mode, 'unpartitioned') = 'partitioned' then
    for v_item in select e.value from jsonb_array_elements(p_tasks) with ordinality e order by e.ordinality loop
      for v_rec in
        select s.task_id, s.run_id, s.attempt, s.created
          from absurd.spawn_task(p_queue_name, v_item ->> 'task_name', v_item -> 'params', v_item -> 'options') s
      loop
        task_id := v_rec.task_id;
        run_id := v_rec.run_id;
        attempt := v_rec.attempt;
        created := v_rec.created;
        v_any_created := v_any_created or v_rec.created;
        return next;
      end loop;
    end loop;
  else
    -- 1. Insert every task (the first element with a key wins it; later ones and keys already
    --    taken are skipped by the unique index) and the first run of each task inserted.
    -- 2. In a new statement (whose snapshot sees tasks committed meanwhile by others), look up
    --    the task of each element that created nothing.
    execute format(
      $sql$
      with input as (
        select e.ordinality as ord,
               e.value ->> 'task_name' as task_name,
               coalesce(e.value -> 'params', 'null'::jsonb) as params,
               case when jsonb_typeof(e.value -> 'options') = 'object' then e.value -> 'options' end as o,
               absurd.portable_uuidv7() as task_id,
               absurd.portable_uuidv7() as run_id,
               case when jsonb_typeof(e.value -> 'options') = 'object'
                    then coalesce((e.value -> 'options' ->> 'priority')::integer, 0) else 0 end as priority
          from jsonb_array_elements($1) with ordinality e
      ),
      tasks as (
        insert into absurd.%1$I (task_id, task_name, params, headers, retry_strategy, max_attempts,
                                 cancellation, enqueue_at, first_started_at, state, attempts,
                                 last_attempt_run, completed_payload, cancelled_at, idempotency_key)
        select i.task_id, i.task_name, i.params, i.o -> 'headers', i.o -> 'retry_strategy',
               (i.o ->> 'max_attempts')::integer, i.o -> 'cancellation', $2, null, 'pending', 1,
               i.run_id, null, null, i.o ->> 'idempotency_key'
          from input i
         order by i.ord
        on conflict (idempotency_key) do nothing
        returning task_id, last_attempt_run
      ),
      runs as (
        insert into absurd.%2$I (run_id, task_id, attempt, state, available_at, priority, cancel_deadline)
        select t.last_attempt_run, t.task_id, 1, 'pending', $2, i.priority,
               case when i.o -> 'cancellation' is not null
                    then absurd.kit_cancel_deadline(i.o -> 'cancellation', $2, null) end
          from tasks t join input i on i.task_id = t.task_id
      )
      select array_agg(i.task_id order by i.ord), array_agg(i.run_id order by i.ord),
             array_agg(i.o ->> 'idempotency_key' order by i.ord), array_agg(t.task_id is not null order by i.ord)
        from input i
        left join tasks t on t.task_id = i.task_id
      $sql$, 't_' || p_queue_name, 'r_' || p_queue_name)
      into v_task_ids, v_run_ids, v_keys, v_created
      using p_tasks, v_now;
    for v_i in 1 .. coalesce(cardinality(v_task_ids), 0) loop
      if v_created[v_i] then
        task_id := v_task_ids[v_i];
        run_id := v_run_ids[v_i];
        attempt := 1;
        created := true;
        v_any_created := true;
      else
        execute format('select t.task_id, t.last_attempt_run, t.attempts from absurd.%I t where t.idempotency_key = $1',
                       't_' || p_queue_name)
          into task_id, run_id, attempt using v_keys[v_i];
        if task_id is null then
          raise exception 'Idempotency key "%" in queue "%" is being released concurrently', v_keys[v_i], p_queue_name
            using errcode = '40001', hint = 'Retry the spawn.';
        end if;
        created := false;
      end if;
      return next;
    end loop;
  end if;

  if v_any_created then
    perform absurd.kit_wake_idle_workers(p_queue_name);
  end if;
end;
$$;

-- kit_fail_run(q, run, reason, retry_at, retry): as in migration 000002 (fail_run's implementation;
-- same decisions, errors and locks: the run FOR UPDATE, then the task FOR UPDATE); the retry run
-- keeps the priority of the failed run (migration 000016) and carries its task's max_duration
-- deadline; a failed run followed by a retry, or by the task's cancellation by max_duration, is
-- marked superseded (migration 000028).
create or replace function absurd.kit_fail_run(p_queue_name text, p_run_id uuid, p_reason jsonb,
                                    p_retry_at timestamptz, p_retry boolean)
returns void
language plpgsql
as $$
declare
  v_now timestamptz := absurd.current_time();
  v_t text := 't_' || p_queue_name;
  v_r text := 'r_' || p_queue_name;
  v_task_id uuid;
  v_attempt integer;
  v_state text;
  v_retry_strategy jsonb;
  v_max_attempts integer;
  v_first_started_at timestamptz;
  v_cancellation jsonb;
  v_enqueue_at timestamptz;
  v_next_attempt integer;
  v_next_available timestamptz;
  v_kind text;
  v_delay double precision;
  v_max_duration bigint;
  v_new_run uuid;
  v_new_state text;
  v_priority integer;
  v_exhausted boolean;
begin
  execute format('select r.task_id, r.attempt, r.state, r.priority from absurd.%I r where r.run_id = $1 for update', v_r)
    into v_task_id, v_attempt, v_state, v_priority using p_run_id;
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
    'select t.retry_strategy, t.max_attempts, t.first_started_at, t.cancellation, t.enqueue_at
       from absurd.%I t where t.task_id = $1 for update', v_t)
    into v_retry_strategy, v_max_attempts, v_first_started_at, v_cancellation, v_enqueue_at using v_task_id;

  -- Whether the task fails with this run (no retry, or none left). Otherwise a retry follows it, or
  -- the task is cancelled by max_duration instead: either way the failed run no longer carries its
  -- task's state, and is marked superseded (migration 000028).
  v_next_attempt := v_attempt + 1;
  v_exhausted := coalesce(not p_retry or (v_max_attempts is not null and v_next_attempt > v_max_attempts), false);

  execute format(
    'with run as (
       update absurd.%I r
          set state = ''failed'', wake_event = null, failed_at = $2, failure_reason = $3, superseded = $4
        where r.run_id = $1
     )
     delete from absurd.%I w where w.run_id = $1',
    v_r, 'w_' || p_queue_name)
    using p_run_id, v_now, p_reason, not v_exhausted;

  if v_exhausted then
    execute format(
      'update absurd.%I t set state = ''failed'', attempts = greatest(t.attempts, $2), last_attempt_run = $3
        where t.task_id = $1', v_t)
      using v_task_id, v_attempt, p_run_id;
    return;
  end if;

  if p_retry_at is not null then
    v_next_available := p_retry_at;
  else
    v_kind := coalesce(v_retry_strategy ->> 'kind', 'none');
    if v_kind = 'fixed' then
      v_delay := coalesce((v_retry_strategy ->> 'base_seconds')::double precision, 60);
    elsif v_kind = 'exponential' then
      v_delay := coalesce((v_retry_strategy ->> 'base_seconds')::double precision, 30)
                 * power(coalesce((v_retry_strategy ->> 'factor')::double precision, 2),
                         least(greatest(v_attempt - 1, 0), 1000));
      if (v_retry_strategy ->> 'max_seconds') is not null then
        v_delay := least(v_delay, (v_retry_strategy ->> 'max_seconds')::double precision);
      end if;
    else
      v_delay := 0;
    end if;
    -- Keep absurd configurations (huge factors, no cap) representable: at most ~100 years.
    v_delay := least(coalesce(v_delay, 0), 3153600000);
    v_next_available := v_now + v_delay * interval '1 second';
  end if;
  v_next_available := greatest(v_next_available, v_now);

  v_max_duration := (v_cancellation ->> 'max_duration')::bigint;
  if v_max_duration is not null and v_first_started_at is not null
     and extract(epoch from v_next_available - v_first_started_at) >= v_max_duration then
    execute format(
      'update absurd.%I t set state = ''cancelled'', cancelled_at = coalesce(t.cancelled_at, $2),
                              last_attempt_run = $3
        where t.task_id = $1', v_t)
      using v_task_id, v_now, p_run_id;
    return;
  end if;

  v_new_run := absurd.portable_uuidv7();
  v_new_state := case when v_next_available > v_now then 'sleeping' else 'pending' end;
  execute format(
    'with run as (
       insert into absurd.%I (run_id, task_id, attempt, state, available_at, priority, cancel_deadline)
       values ($2, $1, $3, $4, $5, $6, $7)
     )
     update absurd.%I t set state = $4, attempts = greatest(t.attempts, $3), last_attempt_run = $2
      where t.task_id = $1',
    v_r, v_t)
    using v_task_id, v_new_run, v_next_attempt, v_new_state, v_next_available, v_priority,
          absurd.kit_cancel_deadline(v_cancellation, v_enqueue_at, v_first_started_at);
end;
$$;

-- retry_task(q, task, options): as in migration 000002 (same result, errors and locks: the task FOR
-- UPDATE, then inserts); the new run (or, with spawn_new, the new task's first run) keeps the
-- priority of the task's last run (migration 000016); the new run carries the task's cancellation
-- deadline, and the failed run it follows is marked superseded (migration 000028).
create or replace function absurd.retry_task(p_queue_name text, p_task_id uuid, p_options jsonb default '{}')
returns table(task_id uuid, run_id uuid, attempt integer, created boolean)
language plpgsql
as $$
declare
  v_now timestamptz := absurd.current_time();
  v_options jsonb := coalesce(p_options, '{}'::jsonb);
  v_spawn_new boolean := false;
  v_requested integer;
  v_task record;
  v_run_id uuid;
  v_attempt integer;
  v_priority integer;
begin
  if jsonb_typeof(v_options) = 'object' then
    v_spawn_new := coalesce((v_options ->> 'spawn_new')::boolean, false);
    if v_options ? 'max_attempts' then
      v_requested := (v_options ->> 'max_attempts')::integer;
      if v_requested is not null and v_requested < 1 then
        raise exception 'max_attempts must be >= 1';
      end if;
    end if;
  end if;

  execute format(
    'select t.task_name, t.params, t.headers, t.retry_strategy, t.max_attempts, t.cancellation,
            t.state, t.attempts, t.last_attempt_run, t.enqueue_at, t.first_started_at
       from absurd.%I t where t.task_id = $1 for update',
    't_' || p_queue_name)
    into v_task using p_task_id;
  if v_task.state is null then
    raise exception 'Task "%" not found in queue "%"', p_task_id, p_queue_name;
  end if;
  if v_task.state <> 'failed' then
    raise exception 'Task "%" is not currently failed in queue "%"', p_task_id, p_queue_name;
  end if;

  -- The new run keeps the priority of the task's last run.
  execute format('select r.priority from absurd.%I r where r.run_id = $1', 'r_' || p_queue_name)
    into v_priority using v_task.last_attempt_run;

  if v_spawn_new then
    return query
      select s.task_id, s.run_id, s.attempt, s.created
        from absurd.spawn_task(
               p_queue_name, v_task.task_name, v_task.params,
               jsonb_strip_nulls(jsonb_build_object(
                 'headers', v_task.headers,
                 'retry_strategy', v_task.retry_strategy,
                 'max_attempts', coalesce(v_requested, v_task.max_attempts),
                 'cancellation', v_task.cancellation,
                 'priority', nullif(v_priority, 0)))) as s;
    return;
  end if;

  v_requested := coalesce(v_requested, coalesce(v_task.max_attempts, v_task.attempts) + 1);
  if v_requested <= v_task.attempts then
    raise exception 'max_attempts (%) must be greater than current attempts (%)', v_requested, v_task.attempts;
  end if;
  v_run_id := absurd.portable_uuidv7();
  v_attempt := v_task.attempts + 1;
  execute format(
    'with run as (
       insert into absurd.%I (run_id, task_id, attempt, state, available_at, priority, cancel_deadline)
       values ($2, $1, $3, ''pending'', $4, $6, $7)
     ),
     superseded as (
       update absurd.%I r set superseded = true where r.run_id = $8
     )
     update absurd.%I t
        set state = ''pending'', attempts = greatest(t.attempts, $3), max_attempts = $5,
            last_attempt_run = $2, cancelled_at = null
      where t.task_id = $1',
    'r_' || p_queue_name, 'r_' || p_queue_name, 't_' || p_queue_name)
    using p_task_id, v_run_id, v_attempt, v_now, v_requested, coalesce(v_priority, 0),
          absurd.kit_cancel_deadline(v_task.cancellation, v_task.enqueue_at, v_task.first_started_at),
          v_task.last_attempt_run;
  return query select p_task_id, v_run_id, v_attempt, false;
end;
$$;

-- Every queue: the runs' deadlines and their index, then the task list's column and indexes (in
-- the order ensure_queue_tables adds them).
select absurd.kit_ensure_cancel_index(q.queue_name)
  from absurd.queues q
 where to_regclass(format('absurd.%I', 't_' || q.queue_name)) is not null
   and to_regclass(format('absurd.%I', 'r_' || q.queue_name)) is not null
 order by q.queue_name;

select absurd.kit_ensure_list_indexes(q.queue_name)
  from absurd.queues q
 where to_regclass(format('absurd.%I', 't_' || q.queue_name)) is not null
   and to_regclass(format('absurd.%I', 'r_' || q.queue_name)) is not null
 order by q.queue_name;

-- Every queue's functions, written again with the deadline.
select absurd.kit_create_queue_statements(q.queue_name)
  from absurd.queues q
 where to_regclass(format('absurd.%I', 't_' || q.queue_name)) is not null
   and to_regclass(format('absurd.%I', 'r_' || q.queue_name)) is not null
 order by q.queue_name;

select absurd.kit_limits_create_functions(q.queue_name)
  from (select distinct l.queue_name from absurd.kit_limits l) q
 where to_regclass(format('absurd.%I', 'r_' || q.queue_name)) is not null
 order by q.queue_name;
