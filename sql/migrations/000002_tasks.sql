-- absurd-kit engine, migration 000002: the task lifecycle.
--
-- spawn_task, claim_task, complete_run, schedule_run, fail_run, retry_task, cancel_task and
-- get_task_result. A task (t_<q>) has one row per logical task; every attempt is a run (r_<q>).
--
-- Lock order, everywhere: run rows before their task row. complete_run and fail_run lock the run and
-- then the task; cancel_task locks all live runs (by run_id) and then the task; claim_task skips
-- anything locked. That single order is what keeps concurrent cancel/complete/fail free of deadlocks.
--
-- These runtime functions neither validate the queue name nor consult absurd.queues: a missing queue
-- surfaces as undefined_table (42P01) from the dynamic SQL, as the contract specifies.

-- spawn_task(q, name, params, options): creates a pending task with its first run (attempt 1).
-- options: headers, max_attempts (>= 1; absent or null = unlimited), retry_strategy, cancellation,
-- idempotency_key. With an idempotency key already used in the queue it creates nothing and returns
-- the existing task's current run and attempt count with created = false.
-- Locks: inserts only; an idempotency conflict waits for the other inserting transaction.
create function absurd.spawn_task(p_queue_name text, p_task_name text, p_params jsonb,
                                  p_options jsonb default '{}')
returns table(task_id uuid, run_id uuid, attempt integer, created boolean)
language plpgsql
as $$
declare
  v_task_id uuid := absurd.portable_uuidv7();
  v_run_id uuid := absurd.portable_uuidv7();
  v_now timestamptz := absurd.current_time();
  v_options jsonb := coalesce(p_options, '{}'::jsonb);
  v_params jsonb := coalesce(p_params, 'null'::jsonb);
  v_headers jsonb;
  v_retry_strategy jsonb;
  v_max_attempts integer;
  v_cancellation jsonb;
  v_key text;
  v_option_key text;
  v_mode text;
  v_inserted uuid;
  v_existing_task uuid;
  v_existing_run uuid;
  v_existing_attempts integer;
begin
  if p_task_name is null or btrim(p_task_name) = '' then
    raise exception 'task_name must be provided';
  end if;
  if jsonb_typeof(v_options) = 'object' then
    v_headers := v_options -> 'headers';
    v_retry_strategy := v_options -> 'retry_strategy';
    v_cancellation := v_options -> 'cancellation';
    v_key := v_options ->> 'idempotency_key';
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

  if v_key is not null then
    select q.storage_mode into v_mode from absurd.queues q where q.queue_name = p_queue_name;
    if coalesce(v_mode, 'unpartitioned') = 'partitioned' then
      -- The registry row is the queue-wide uniqueness point for partitioned queues.
      execute format(
        'insert into absurd.%I (idempotency_key, task_id) values ($1, $2)
         on conflict (idempotency_key) do nothing returning task_id',
        'i_' || p_queue_name)
        into v_inserted using v_key, v_task_id;
      if v_inserted is null then
        execute format(
          'select i.task_id, t.last_attempt_run, t.attempts
             from absurd.%I i
             join absurd.%I t on t.task_id = i.task_id
            where i.idempotency_key = $1
              for key share of i',
          'i_' || p_queue_name, 't_' || p_queue_name)
          into v_existing_task, v_existing_run, v_existing_attempts using v_key;
        if v_existing_task is null then
          raise exception 'Idempotency key "%" in queue "%" is being released concurrently', v_key, p_queue_name
            using errcode = '40001', hint = 'Retry the spawn.';
        end if;
        if v_existing_run is null then
          raise exception 'Task "%" for idempotency key "%" has no run in queue "%"',
            v_existing_task, v_key, p_queue_name;
        end if;
        return query select v_existing_task, v_existing_run, v_existing_attempts, false;
        return;
      end if;
      v_inserted := null;  -- the key is registered; the task row itself is inserted below
    else
      execute format(
        'insert into absurd.%I (task_id, task_name, params, headers, retry_strategy, max_attempts,
                                cancellation, enqueue_at, first_started_at, state, attempts,
                                last_attempt_run, completed_payload, cancelled_at, idempotency_key)
         values ($1, $2, $3, $4, $5, $6, $7, $8, null, ''pending'', 1, $9, null, null, $10)
         on conflict (idempotency_key) do nothing
         returning task_id',
        't_' || p_queue_name)
        into v_inserted
        using v_task_id, p_task_name, v_params, v_headers, v_retry_strategy, v_max_attempts,
              v_cancellation, v_now, v_run_id, v_key;
      if v_inserted is null then
        execute format(
          'select t.task_id, t.last_attempt_run, t.attempts from absurd.%I t where t.idempotency_key = $1',
          't_' || p_queue_name)
          into v_existing_task, v_existing_run, v_existing_attempts using v_key;
        if v_existing_task is null then
          raise exception 'Idempotency key "%" in queue "%" is being released concurrently', v_key, p_queue_name
            using errcode = '40001', hint = 'Retry the spawn.';
        end if;
        return query select v_existing_task, v_existing_run, v_existing_attempts, false;
        return;
      end if;
    end if;
  end if;

  if v_inserted is null then
    execute format(
      'insert into absurd.%I (task_id, task_name, params, headers, retry_strategy, max_attempts,
                              cancellation, enqueue_at, first_started_at, state, attempts,
                              last_attempt_run, completed_payload, cancelled_at, idempotency_key)
       values ($1, $2, $3, $4, $5, $6, $7, $8, null, ''pending'', 1, $9, null, null, $10)',
      't_' || p_queue_name)
      using v_task_id, p_task_name, v_params, v_headers, v_retry_strategy, v_max_attempts,
            v_cancellation, v_now, v_run_id, v_key;
  end if;

  execute format(
    'insert into absurd.%I (run_id, task_id, attempt, state, available_at)
     values ($1, $2, 1, ''pending'', $3)',
    'r_' || p_queue_name)
    using v_run_id, v_task_id, v_now;

  return query select v_task_id, v_run_id, 1, true;
end;
$$;

-- cancel_task(q, task): cancels a task that is not yet terminal: the task becomes cancelled, its live
-- runs cancelled (claim cleared) and its event waits removed. A no-op on completed, failed or
-- cancelled tasks. Locks: the task's live runs FOR UPDATE in run_id order, then the task FOR UPDATE.
-- A concurrent complete_run/fail_run that got the run first wins; this call then sees a terminal task.
create function absurd.cancel_task(p_queue_name text, p_task_id uuid) returns void
language plpgsql
as $$
declare
  v_now timestamptz := absurd.current_time();
  v_state text;
begin
  execute format(
    'select count(*) from (
       select 1 from absurd.%I r
        where r.task_id = $1 and r.state not in (''completed'', ''failed'', ''cancelled'')
        order by r.run_id
          for update) as locked',
    'r_' || p_queue_name)
    using p_task_id;

  execute format('select t.state from absurd.%I t where t.task_id = $1 for update', 't_' || p_queue_name)
    into v_state using p_task_id;
  if v_state is null then
    raise exception 'Task "%" not found in queue "%"', p_task_id, p_queue_name;
  end if;
  if v_state in ('completed', 'failed', 'cancelled') then
    return;
  end if;

  execute format(
    'with runs as (
       update absurd.%I r
          set state = ''cancelled'', claimed_by = null, claim_expires_at = null
        where r.task_id = $1 and r.state not in (''completed'', ''failed'', ''cancelled'')
     ),
     waits as (
       delete from absurd.%I w where w.task_id = $1
     )
     update absurd.%I t
        set state = ''cancelled'', cancelled_at = coalesce(t.cancelled_at, $2)
      where t.task_id = $1',
    'r_' || p_queue_name, 'w_' || p_queue_name, 't_' || p_queue_name)
    using p_task_id, v_now;
end;
$$;

-- fail_run(q, run, reason, retry_at): records a failed attempt and decides what follows.
-- Retries while attempts remain (max_attempts NULL = unlimited): at retry_at when given, otherwise
-- after the task's retry_strategy delay (fixed: base_seconds, default 60; exponential: base_seconds
-- (30) * factor (2) ^ (attempt - 1), capped by max_seconds; none/unknown: immediately), never earlier
-- than now. The retry is a new run (attempt + 1), pending when due now and sleeping otherwise. If the
-- task's cancellation.max_duration would be exceeded by the retry time, the task is cancelled instead.
-- Accepts running and sleeping runs. AB001 when the run was cancelled, AB002 when it already failed.
-- Locks: the run FOR UPDATE, then the task FOR UPDATE.
create function absurd.fail_run(p_queue_name text, p_run_id uuid, p_reason jsonb,
                                p_retry_at timestamptz default null)
returns void
language plpgsql
as $$
begin
  perform absurd.kit_fail_run(p_queue_name, p_run_id, p_reason, p_retry_at, true);
end;
$$;

-- kit_fail_run(q, run, reason, retry_at, retry): fail_run's implementation. With retry = false the
-- task fails for good whatever attempts remain (kit_fail_task: failures a retry cannot fix).
create function absurd.kit_fail_run(p_queue_name text, p_run_id uuid, p_reason jsonb,
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
  v_next_attempt integer;
  v_next_available timestamptz;
  v_kind text;
  v_delay double precision;
  v_max_duration bigint;
  v_new_run uuid;
  v_new_state text;
begin
  execute format('select r.task_id, r.attempt, r.state from absurd.%I r where r.run_id = $1 for update', v_r)
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
    'select t.retry_strategy, t.max_attempts, t.first_started_at, t.cancellation
       from absurd.%I t where t.task_id = $1 for update', v_t)
    into v_retry_strategy, v_max_attempts, v_first_started_at, v_cancellation using v_task_id;

  execute format(
    'with run as (
       update absurd.%I r
          set state = ''failed'', wake_event = null, failed_at = $2, failure_reason = $3
        where r.run_id = $1
     )
     delete from absurd.%I w where w.run_id = $1',
    v_r, 'w_' || p_queue_name)
    using p_run_id, v_now, p_reason;

  v_next_attempt := v_attempt + 1;
  if not p_retry or (v_max_attempts is not null and v_next_attempt > v_max_attempts) then
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
       insert into absurd.%I (run_id, task_id, attempt, state, available_at)
       values ($2, $1, $3, $4, $5)
     )
     update absurd.%I t set state = $4, attempts = greatest(t.attempts, $3), last_attempt_run = $2
      where t.task_id = $1',
    v_r, v_t)
    using v_task_id, v_new_run, v_next_attempt, v_new_state, v_next_available;
end;
$$;

-- claim_task(q, worker, claim_timeout, qty): hands up to qty due runs to a worker under a lease of
-- claim_timeout seconds (0 = no lease). Before claiming it applies the queue's upkeep:
--   A. cancellation policies: tasks never started within cancellation.max_delay seconds of enqueue, or
--      running longer than cancellation.max_duration seconds since first start, are cancelled;
--   B. expired leases: up to qty running runs whose lease ended are failed with a $ClaimTimeout reason
--      (normal retry rules apply, so the replacement run may be claimed right away in C);
--   C. claim: due pending/sleeping runs of live tasks, oldest available_at first.
-- Phase A reads live tasks with a policy (t_<q>_cpi), B expired leases (r_<q>_cei) and C due runs
-- (r_<q>_cai), so none of them reads completed history.
-- Locks: A as cancel_task; B the expired runs FOR UPDATE SKIP LOCKED, then as fail_run; C the
-- claimed runs and their tasks FOR UPDATE SKIP LOCKED, so concurrent workers never wait on each other.
create function absurd.claim_task(p_queue_name text, p_worker_id text, p_claim_timeout integer default 30,
                                  p_qty integer default 1)
returns table(run_id uuid, task_id uuid, attempt integer, task_name text, params jsonb,
              retry_strategy jsonb, max_attempts integer, headers jsonb, wake_event text,
              event_payload jsonb)
language plpgsql
as $$
declare
  v_now timestamptz := absurd.current_time();
  v_timeout integer := greatest(coalesce(p_claim_timeout, 30), 0);
  v_worker text := coalesce(nullif(p_worker_id, ''), 'worker');
  v_qty integer := greatest(coalesce(p_qty, 1), 1);
  v_claim_until timestamptz;
  v_t text := 't_' || p_queue_name;
  v_r text := 'r_' || p_queue_name;
  v_id uuid;
  v_expired record;
begin
  if v_timeout > 0 then
    v_claim_until := v_now + v_timeout * interval '1 second';
  end if;

  -- A. Cancellation policies.
  for v_id in execute format(
    'select t.task_id
       from absurd.%I t
      where t.cancellation is not null
        and t.state in (''pending'', ''sleeping'', ''running'')
        and ((t.cancellation ->> ''max_delay'') is not null
              and t.first_started_at is null
              and extract(epoch from $1 - t.enqueue_at) >= (t.cancellation ->> ''max_delay'')::bigint
          or (t.cancellation ->> ''max_duration'') is not null
              and t.first_started_at is not null
              and extract(epoch from $1 - t.first_started_at) >= (t.cancellation ->> ''max_duration'')::bigint)
      order by t.task_id',
    v_t) using v_now
  loop
    perform absurd.cancel_task(p_queue_name, v_id);
  end loop;

  -- B. Expired leases.
  for v_expired in execute format(
    'select r.run_id, r.claimed_by, r.claim_expires_at, r.attempt
       from absurd.%I r
      where r.state = ''running'' and r.claim_expires_at is not null and r.claim_expires_at <= $1
      order by r.claim_expires_at, r.run_id
      limit $2
        for update skip locked',
    v_r) using v_now, v_qty
  loop
    perform absurd.fail_run(
      p_queue_name,
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
  return query execute format(
    'with candidates as (
       select r.run_id, r.available_at
         from absurd.%1$I r
         join absurd.%2$I t on t.task_id = r.task_id
        where r.state in (''pending'', ''sleeping'')
          and r.available_at <= $1
          and t.state in (''pending'', ''sleeping'', ''running'')
        order by r.available_at, r.run_id
        limit $2
          for update of r, t skip locked
     ),
     claimed as (
       update absurd.%1$I r
          set state = ''running'', claimed_by = $3, claim_expires_at = $4, started_at = $1,
              available_at = $1
         from candidates c
        where r.run_id = c.run_id
       returning r.run_id, r.task_id, r.attempt, r.wake_event, r.event_payload, c.available_at as claimed_from
     ),
     tasks as (
       update absurd.%2$I t
          set state = ''running'', attempts = greatest(t.attempts, c.attempt),
              first_started_at = coalesce(t.first_started_at, $1), last_attempt_run = c.run_id
         from claimed c
        where t.task_id = c.task_id
       returning t.task_id, t.task_name, t.params, t.retry_strategy, t.max_attempts, t.headers
     ),
     expired_waits as (
       delete from absurd.%3$I w
        using claimed c
        where w.run_id = c.run_id and w.timeout_at is not null and w.timeout_at <= $1
     )
     select c.run_id, c.task_id, c.attempt, t.task_name, t.params, t.retry_strategy, t.max_attempts,
            t.headers, c.wake_event, c.event_payload
       from claimed c
       join tasks t on t.task_id = c.task_id
      order by c.claimed_from, c.run_id',
    v_r, v_t, 'w_' || p_queue_name)
    using v_now, v_qty, v_worker, v_claim_until;
end;
$$;

-- complete_run(q, run, result): finishes a running run and its task with the given result. The run
-- keeps claimed_by/claim_expires_at. AB001 when the run was cancelled, AB002 when it already failed
-- (e.g. its lease expired and was swept). Locks: the run FOR UPDATE, then the task.
create function absurd.complete_run(p_queue_name text, p_run_id uuid, p_state jsonb default null)
returns void
language plpgsql
as $$
declare
  v_now timestamptz := absurd.current_time();
  v_task_id uuid;
  v_state text;
begin
  execute format('select r.task_id, r.state from absurd.%I r where r.run_id = $1 for update', 'r_' || p_queue_name)
    into v_task_id, v_state using p_run_id;
  if v_state is null then
    raise exception 'Run "%" not found in queue "%"', p_run_id, p_queue_name;
  end if;
  if v_state <> 'running' then
    if v_state = 'cancelled' then
      raise exception 'Task has been cancelled' using errcode = 'AB001';
    elsif v_state = 'failed' then
      raise exception 'Run "%" has already failed in queue "%"', p_run_id, p_queue_name using errcode = 'AB002';
    end if;
    raise exception 'Run "%" is not currently running in queue "%"', p_run_id, p_queue_name;
  end if;

  execute format(
    'with run as (
       update absurd.%I r set state = ''completed'', completed_at = $3, result = $4 where r.run_id = $1
     ),
     waits as (
       delete from absurd.%I w where w.run_id = $1
     )
     update absurd.%I t set state = ''completed'', completed_payload = $4, last_attempt_run = $1
      where t.task_id = $2',
    'r_' || p_queue_name, 'w_' || p_queue_name, 't_' || p_queue_name)
    using p_run_id, v_task_id, v_now, p_state;
end;
$$;

-- schedule_run(q, run, wake_at): puts a running run (and its task) to sleep until wake_at, releasing
-- its claim; the same run is claimed again once due. Plain P0001 when the run is not running.
-- Locks: the run FOR UPDATE, then the task.
create function absurd.schedule_run(p_queue_name text, p_run_id uuid, p_wake_at timestamptz)
returns void
language plpgsql
as $$
declare
  v_task_id uuid;
begin
  execute format(
    'select r.task_id from absurd.%I r where r.run_id = $1 and r.state = ''running'' for update',
    'r_' || p_queue_name)
    into v_task_id using p_run_id;
  if v_task_id is null then
    raise exception 'Run "%" is not currently running in queue "%"', p_run_id, p_queue_name;
  end if;
  execute format(
    'with run as (
       update absurd.%I r
          set state = ''sleeping'', claimed_by = null, claim_expires_at = null, available_at = $3,
              wake_event = null
        where r.run_id = $1
     )
     update absurd.%I t set state = ''sleeping'' where t.task_id = $2',
    'r_' || p_queue_name, 't_' || p_queue_name)
    using p_run_id, v_task_id, p_wake_at;
end;
$$;

-- retry_task(q, task, options): gives a failed task another go. In place (default): a new pending run
-- with attempt = attempts + 1 and max_attempts raised to options.max_attempts (default: one more than
-- before). With options.spawn_new: a new task with the same name, params, headers, retry strategy,
-- max_attempts (or the override) and cancellation policy, but no idempotency key or checkpoints.
-- Locks: the task FOR UPDATE, then inserts.
create function absurd.retry_task(p_queue_name text, p_task_id uuid, p_options jsonb default '{}')
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
            t.state, t.attempts
       from absurd.%I t where t.task_id = $1 for update',
    't_' || p_queue_name)
    into v_task using p_task_id;
  if v_task.state is null then
    raise exception 'Task "%" not found in queue "%"', p_task_id, p_queue_name;
  end if;
  if v_task.state <> 'failed' then
    raise exception 'Task "%" is not currently failed in queue "%"', p_task_id, p_queue_name;
  end if;

  if v_spawn_new then
    return query
      select s.task_id, s.run_id, s.attempt, s.created
        from absurd.spawn_task(
               p_queue_name, v_task.task_name, v_task.params,
               jsonb_strip_nulls(jsonb_build_object(
                 'headers', v_task.headers,
                 'retry_strategy', v_task.retry_strategy,
                 'max_attempts', coalesce(v_requested, v_task.max_attempts),
                 'cancellation', v_task.cancellation))) as s;
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
       insert into absurd.%I (run_id, task_id, attempt, state, available_at)
       values ($2, $1, $3, ''pending'', $4)
     )
     update absurd.%I t
        set state = ''pending'', attempts = greatest(t.attempts, $3), max_attempts = $5,
            last_attempt_run = $2, cancelled_at = null
      where t.task_id = $1',
    'r_' || p_queue_name, 't_' || p_queue_name)
    using p_task_id, v_run_id, v_attempt, v_now, v_requested;
  return query select p_task_id, v_run_id, v_attempt, false;
end;
$$;

-- get_task_result(q, task): the task's state with its result (completed) or the failure reason of its
-- last run (failed); no row for an unknown task. Reads only.
create function absurd.get_task_result(p_queue_name text, p_task_id uuid)
returns table(task_id uuid, state text, result jsonb, failure_reason jsonb)
language plpgsql
as $$
begin
  perform absurd.validate_queue_name(p_queue_name);
  return query execute format(
    'select t.task_id, t.state,
            case when t.state = ''completed'' then t.completed_payload end,
            case when t.state = ''failed'' then r.failure_reason end
       from absurd.%I t
       left join absurd.%I r on r.run_id = t.last_attempt_run
      where t.task_id = $1',
    't_' || p_queue_name, 'r_' || p_queue_name)
    using p_task_id;
end;
$$;
