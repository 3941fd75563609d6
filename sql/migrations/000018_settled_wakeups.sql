-- absurd-kit engine, migration 000018: no spawn's wake-up is lost to a worker going idle.
--
-- Since 000013 a spawn notifies the queue's wake channel only while some worker of the queue is
-- idle and listening (a live row of kit_idle_listeners). The header of 000013 names the one order
-- in which that misses: a spawn S reads kit_idle_listeners before a worker's new idle mark
-- commits, and commits after that worker's claim C took its snapshot. C does not see S's run, S
-- does not see C's mark, and nothing is sent. The worker then finds the run at its next poll. That
-- was taken to be short; it is not always: a worker polling once an hour (it relies on wake-ups)
-- asks kit_seconds_until_next_run right after its empty claim, and when S has still not committed
-- by then — its commit waiting for the WAL flush, or S inside a caller's longer transaction — the
-- run waits for the whole poll interval.
--
-- Closed here with a lock every notifying writer holds from before it reads the marks until it
-- commits, and a probe a worker makes after its mark is committed:
--
-- - Every reader of the marks that would notify (spawn_task and kit_wake_idle_workers, which
--   kit_spawn_tasks, kit_complete_runs' announcements, emit_event, fired schedules and un-parked
--   limits call) first takes the queue's wake lock in SHARE mode:
--   pg_advisory_xact_lock_shared(1633843051, hashtext(q)), held until its transaction ends.
--   Shared holders never wait for each other.
-- - kit_wakeups_settled(q) is true when no transaction holds the queue's wake lock: it takes the
--   lock exclusively without waiting and lets it go at once. A worker whose claim came back empty
--   and whose mark is new asks it (after that claim committed), and claims again when it is true.
--   Suppose S read no mark, so that it read before the mark committed. If the probe finds the lock
--   free, S has committed before the probe, so the claim after it sees S's run. If S still holds
--   the lock, the probe is false and the worker asks again shortly (its back-off grows to a
--   second, never beyond its poll interval). A spawn that takes the lock after the probe reads the
--   mark, committed by then, and notifies.
-- - A worker whose mark already existed needs no probe: S reads the committed mark whatever the
--   order (000013, "a worker that stays idle").
--
-- What it costs: a spawn takes one more lock (shared, in the lock table; no WAL), and a worker
-- makes one probe and one claim more each time it goes from busy to idle. Hash collisions between
-- queue names only make a probe false more often. A spawn in a long transaction keeps the probe
-- false for that long: the idle workers of its queue ask at the back-off until it ends.
--
-- Workers of earlier releases never probe; they behave as before.
--
-- emit_event now wakes idle workers itself too, when it makes a run due: an event from any client
-- (absurd-sdk, the Python SDK, absurdctl) wakes idle absurd-kit workers, and the emitting client
-- sends no notification of its own.

-- kit_wake_idle_workers(q): as in 000013 (notifies the queue's wake channel at commit when a worker
-- of the queue is idle and listening; returns whether it did), holding the queue's wake lock.
-- Locks: the queue's wake lock, SHARE, until the transaction ends.
create or replace function absurd.kit_wake_idle_workers(p_queue_name text) returns boolean
language plpgsql
as $$
begin
  perform pg_advisory_xact_lock_shared(1633843051, hashtext(p_queue_name));
  if exists (select 1 from absurd.kit_idle_listeners l
              where l.queue_name = p_queue_name and l.idle_until > clock_timestamp()) then
    perform pg_notify('absurd_wake_' || md5(p_queue_name), '');
    return true;
  end if;
  return false;
end;
$$;

-- kit_wakeups_settled(q): true when no transaction that may have missed an idle worker's mark is
-- in flight on queue q (nobody holds its wake lock); false otherwise. Waits for nothing and holds
-- nothing when it returns. Locks: the queue's wake lock, EXCLUSIVE, for the duration of the call.
create function absurd.kit_wakeups_settled(p_queue_name text) returns boolean
language plpgsql
as $$
begin
  if pg_try_advisory_lock(1633843051, hashtext(p_queue_name)) then
    perform pg_advisory_unlock(1633843051, hashtext(p_queue_name));
    return true;
  end if;
  return false;
end;
$$;

-- spawn_task(q, name, params, options): as in migration 000016, with the wake lock taken before the
-- idle marks are read. Locks: those of 000016; the queue's wake lock, SHARE, until the transaction
-- ends (only a spawn that created a task takes it).
create or replace function absurd.spawn_task(p_queue_name text, p_task_name text, p_params jsonb,
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
    'insert into absurd.%I (run_id, task_id, attempt, state, available_at, priority)
     values ($1, $2, 1, ''pending'', $3, $4)',
    'r_' || p_queue_name)
    using v_run_id, v_task_id, v_now, v_priority;

  -- Wake-ups: only a spawn that created a task, and only while a worker of the queue is idle and
  -- listening; delivered when the spawning transaction commits.
  -- The wake lock comes first, held until commit (see the header of migration 000018).
  perform pg_advisory_xact_lock_shared(1633843051, hashtext(p_queue_name));
  if exists (select 1 from absurd.kit_idle_listeners l
              where l.queue_name = p_queue_name and l.idle_until > clock_timestamp()) then
    perform pg_notify('absurd_wake_' || md5(p_queue_name), '');
  end if;

  return query select v_task_id, v_run_id, 1, true;
end;
$$;

-- emit_event(q, event, payload): as in migration 000011, and when it made runs due (woke them),
-- it wakes the queue's idle listening workers (kit_wake_idle_workers, under the wake lock), as a
-- spawn does: an event emitted by any client wakes absurd-kit's idle workers, and absurd-kit's
-- clients no longer notify on every emit (a notifying commit holds a database-wide lock).
-- Locks: those of 000011; then those of kit_wake_idle_workers when it woke a run.
create or replace function absurd.emit_event(p_queue_name text, p_event_name text, p_payload jsonb default null)
returns void
language plpgsql
as $$
declare
  v_now timestamptz := absurd.current_time();
  v_payload jsonb := coalesce(p_payload, 'null'::jsonb);
  v_emitted boolean;
  v_woken integer;
begin
  if p_event_name is null or btrim(p_event_name) = '' then
    raise exception 'event_name must be provided';
  end if;

  execute format(
    'insert into absurd.%I as e (event_name, payload, emitted_at) values ($1, $2, $3)
     on conflict (event_name) do update
        set payload = excluded.payload, emitted_at = excluded.emitted_at
      where e.payload is null
     returning true',
    'e_' || p_queue_name)
    into v_emitted using p_event_name, v_payload, v_now;
  if v_emitted is null then
    return;  -- already emitted: first write wins
  end if;

  execute format(
    'select 1 from absurd.%2$I r
      where r.wake_event = ''$awaitEvents:all'' and r.state = ''sleeping''
        and r.run_id in (select w.run_id from absurd.%1$I w where w.event_name = $1)
      order by r.run_id
        for update of r',
    'w_' || p_queue_name, 'r_' || p_queue_name)
    using p_event_name;

  execute format(
    'with expired as (
       delete from absurd.%1$I w
        where w.event_name = $1 and w.timeout_at is not null and w.timeout_at <= $3
     ),
     answered as (
       select w.task_id, w.run_id, w.step_name,
              r.wake_event = ''$awaitEvents:all'' and exists (
                select 1 from absurd.%1$I o
                 where o.run_id = w.run_id and o.event_name <> $1
                   and (o.timeout_at is null or o.timeout_at > $3)) as keeps_sleeping
         from absurd.%1$I w
         join absurd.%2$I r on r.run_id = w.run_id
        where w.event_name = $1 and (w.timeout_at is null or w.timeout_at > $3) and r.state = ''sleeping''
     ),
     woken as (
       update absurd.%2$I r
          set state = ''pending'', available_at = $3, wake_event = null, event_payload = $2,
              claimed_by = null, claim_expires_at = null
         from answered a
        where r.run_id = a.run_id and not a.keeps_sleeping
       returning r.run_id, r.task_id
     ),
     checkpoints as (
       insert into absurd.%3$I (task_id, checkpoint_name, state, status, owner_run_id, updated_at)
       select a.task_id, a.step_name, $2, ''committed'', a.run_id, $3 from answered a
       on conflict (task_id, checkpoint_name) do update
          set state = excluded.state, status = ''committed'', owner_run_id = excluded.owner_run_id,
              updated_at = excluded.updated_at
     ),
     tasks as (
       update absurd.%4$I t set state = ''pending'' from woken where t.task_id = woken.task_id
     ),
     answered_waits as (
       delete from absurd.%1$I w using answered a where w.run_id = a.run_id and w.event_name = $1
     )
     select count(*)::integer from woken',
    'w_' || p_queue_name, 'r_' || p_queue_name, 'c_' || p_queue_name, 't_' || p_queue_name)
    into v_woken using p_event_name, v_payload, v_now;
  -- Runs it made due wake the queue's idle listening workers, as a spawn does.
  if v_woken > 0 then
    perform absurd.kit_wake_idle_workers(p_queue_name);
  end if;
end;
$$;
