-- absurd-kit engine, migration 000016: flow control — priorities, concurrency limits, rate limits.
--
-- Nothing changes for a queue that uses none of it, nor for a client that knows nothing of it
-- (Absurd's SDKs, absurdctl, habitat): claim_task keeps its arguments, columns and order of
-- results; every new spawn option and function is an addition.
--
-- 1. Priorities. Every run has `priority integer not null default 0` (r_<q>, added here to every
--    queue: a column with a constant default is a change of the catalogue only). spawn_task and
--    kit_spawn_tasks take it from the spawn option "priority" (an integer; AB003 otherwise); a retry
--    (fail_run, retry_task) keeps the priority of the run before it. Claims take due runs by
--    priority, highest first, then by available_at and run_id. The claim index r_<q>_cai becomes
--    (priority desc, available_at, run_id) over pending and sleeping runs — one entry per run, as
--    before, so spawns cost what they did. A range on available_at can use that index only within
--    one priority, so the claim walks the priorities that have claimable runs from the highest
--    down, one index probe per priority (kit_ensure_claim_order). Runs of a higher priority that
--    are not due yet (sleeping, retrying later, waiting for an event) are never read one by one.
--
-- 2. Concurrency and rate limits (absurd.kit_limits, set with kit_set_limit). A limit applies to
--    the runs of a queue, or of one task name of it, and divides them into buckets by a key read
--    from the task's params (key_path, e.g. {customerId}) or not at all. At most max_running runs
--    of one bucket are running at any time, and at most rate_count runs of a bucket start in any
--    window of rate_period. Both are enforced by claim_task itself, so that workers of every SDK
--    respect them, at no extra round trip. A queue without limits pays one primary-key probe of
--    kit_limits per claim and nothing else: no trigger, no bookkeeping.
--
--    A run holds a slot of its buckets while it is running (a row of kit_limit_slots, written by
--    the claim). Sleeping, waiting for an event, completing, failing, being cancelled or losing its
--    lease all take the run out of 'running', and a row trigger on r_<q> (created on queues with a
--    limit only) then releases its slots. A run that resumes is claimed again and checked again.
--    A due run whose bucket is full is parked: available_at = 'infinity' (it leaves the claim's
--    index range) and a row in kit_limit_waiters keeps its place (its available_at). Releasing a
--    slot un-parks the oldest waiters of the bucket, as many as it has free slots, so buckets are
--    served first come, first served. A run over a rate limit is not parked but put back until the
--    instant its bucket's window admits it (available_at = that instant).
--
--    Race analysis (why a park and a release never miss each other) is in the header of
--    kit_claim_limited; every lock each function takes is in its own header.
--
-- 3. Spawns wake idle workers inside spawn_task. Since 000013 absurd-kit's clients spawned through
--    kit_spawn_task, a plpgsql wrapper that called spawn_task and then kit_wake_idle_workers: two
--    nested calls that cost about a quarter of a spawn on PostgreSQL 15 (measured with
--    track_functions: 0.04 ms and 0.035 ms of 0.22 ms). spawn_task now looks for an idle listener
--    itself (one probe of the unlogged kit_idle_listeners, as before) and kit_spawn_task is a plain
--    SQL call of it. A spawn by any client — absurd-sdk, the Python SDK, absurdctl — now wakes idle
--    absurd-kit workers too; nothing else changes for them (a notification is invisible to a client
--    that does not LISTEN). The race analysis of 000013 holds unchanged: the probe and the insert
--    happen in the same order in the same transaction.

-- The limits: one row per named limit of a queue. task_name null: every task of the queue.
-- key_path null: one bucket for all the runs it applies to; otherwise the bucket of a run is the
-- JSON value at that path of its params (its text, e.g. "cust-1" with the quotes, or 42), and a
-- run whose params lack the path (or hold null there) falls in the bucket `null`.
create table if not exists absurd.kit_limits (
  queue_name text not null,
  limit_name text not null,
  task_name text,
  key_path text[],
  max_running integer check (max_running > 0),
  rate_count integer check (rate_count > 0),
  rate_period interval check (rate_period > interval '0'),
  updated_at timestamptz not null default absurd.current_time(),
  primary key (queue_name, limit_name),
  check (max_running is not null or rate_count is not null),
  check ((rate_count is null) = (rate_period is null))
);

-- The slots held by running runs: one row per limit the run counts in, under its bucket. The
-- release deletes by run (the primary key leads with it, so that no plan ever reads a bucket's
-- entries, live or dead, to find one run's); claims count by bucket (kit_limit_slots_bucket).
create table if not exists absurd.kit_limit_slots (
  queue_name text not null,
  limit_name text not null,
  key text not null,
  run_id uuid not null,
  primary key (run_id, limit_name)
);
create index if not exists kit_limit_slots_bucket on absurd.kit_limit_slots (queue_name, limit_name, key);

-- The parked runs: one row per run, under the (limit, bucket) that was full when it was claimed.
-- available_at: the run's own before it was parked (restored when it is un-parked: its place).
-- woken: un-parked and not claimed yet (it counts against the bucket's free slots, so that one
-- freed slot un-parks one run, not every waiter at each release).
create table if not exists absurd.kit_limit_waiters (
  queue_name text not null,
  run_id uuid not null,
  limit_name text not null,
  key text not null,
  available_at timestamptz not null,
  woken boolean not null default false,
  primary key (queue_name, run_id)
);
create index if not exists kit_limit_waiters_fifo
  on absurd.kit_limit_waiters (queue_name, limit_name, key, woken, available_at, run_id);

-- The starts of runs counted by rate limits, pruned as they leave their window.
create table if not exists absurd.kit_limit_starts (
  queue_name text not null,
  limit_name text not null,
  key text not null,
  started_at timestamptz not null
);
create index if not exists kit_limit_starts_window
  on absurd.kit_limit_starts (queue_name, limit_name, key, started_at);

-- kit_spawn_priority(value, label): the priority a spawn option "priority" asks for: 0 when absent
-- or null, the integer otherwise. Raises AB003 ('<label>priority must be an integer …') for any
-- other JSON (a fraction, a string, a number outside integer range). Takes no locks.
create function absurd.kit_spawn_priority(p_value jsonb, p_label text) returns integer
language plpgsql immutable
as $$
begin
  if p_value is null or jsonb_typeof(p_value) = 'null' then
    return 0;
  end if;
  if jsonb_typeof(p_value) = 'number' and (p_value #>> '{}') ~ '^-?[0-9]{1,10}$' then
    if (p_value #>> '{}')::bigint between -2147483648 and 2147483647 then
      return (p_value #>> '{}')::integer;
    end if;
  end if;
  raise exception '%priority must be an integer from -2147483648 to 2147483647, got %', coalesce(p_label, ''), p_value
    using errcode = 'AB003';
end;
$$;

-- kit_ensure_claim_order(q): gives the queue's runs table the column `priority` (integer not null
-- default 0: a catalogue change only, no table rewrite) when it lacks it, and the claim index
-- r_<q>_cai its definition (priority desc, available_at, run_id) where state in ('pending',
-- 'sleeping'), rebuilding an index of that name that has another one. Idempotent.
-- Locks: ACCESS EXCLUSIVE on r_<q> for the column (brief), SHARE while the index builds.
create function absurd.kit_ensure_claim_order(p_queue_name text) returns void
language plpgsql
as $$
declare
  v_r text := 'r_' || p_queue_name;
  v_definition text;
begin
  execute format('alter table absurd.%I add column if not exists priority integer not null default 0', v_r);
  select pg_get_indexdef(i.indexrelid) into v_definition
    from pg_index i
    join pg_class c on c.oid = i.indexrelid
   where c.relnamespace = 'absurd'::regnamespace and c.relname = v_r || '_cai';
  if v_definition is not null and v_definition !~ '\(priority DESC, available_at, run_id\)' then
    execute format('drop index absurd.%I', v_r || '_cai');
  end if;
  execute format(
    'create index if not exists %I on absurd.%I (priority desc, available_at, run_id)
       where state in (''pending'', ''sleeping'')',
    v_r || '_cai', v_r);
end;
$$;

-- kit_forget_queue_limits(q): deletes every flow-control row of the queue (limits, slots, waiters,
-- starts). For a queue whose tables do not exist (yet, or any longer): ensure_queue_tables calls it
-- before it creates them, so a queue created again after drop_queue does not inherit the limits of
-- the dropped one without the trigger that releases their slots. Locks: the rows deleted.
create function absurd.kit_forget_queue_limits(p_queue_name text) returns void
language plpgsql
as $$
begin
  delete from absurd.kit_limit_slots s where s.queue_name = p_queue_name;
  delete from absurd.kit_limit_waiters w where w.queue_name = p_queue_name;
  delete from absurd.kit_limit_starts s where s.queue_name = p_queue_name;
  delete from absurd.kit_limits l where l.queue_name = p_queue_name;
  perform absurd.kit_limits_drop_functions(p_queue_name);
end;
$$;

-- kit_limit_lock_key(q, limit, key): the advisory lock (second key; the first is 1633841252,
-- 'absd') that guards one bucket of one limit. Two buckets may share a lock (a hash): they are
-- then only served one after the other, never wrongly.
create function absurd.kit_limit_lock_key(p_queue_name text, p_limit_name text, p_key text) returns integer
language sql immutable
as $$ select hashtext(p_queue_name || E'\x1f' || p_limit_name || E'\x1f' || p_key) $$;

-- ensure_queue_tables(q): as in migration 000009 (the queue's tables and indexes, idempotent), with
-- the runs' `priority` column and the claim index on (priority desc, available_at, run_id); a queue
-- created anew forgets the flow-control rows a dropped queue of that name left behind.
-- Takes no row locks; DDL locks only on the queue's tables (and the rows it forgets).
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
end;
$$;

-- spawn_task(q, name, params, options): as in migration 000002 (same result, errors and locks:
-- inserts only; an idempotency conflict waits for the other inserting transaction), plus the option
-- "priority" (an integer, default 0) given to the first run; any other value raises AB003; and a
-- spawn that created a task notifies the queue's idle listening workers (3. in the header).
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

  -- Wake-ups (see 3. in the header): only a spawn that created a task, and only while a worker of
  -- the queue is idle and listening; delivered when the spawning transaction commits.
  if exists (select 1 from absurd.kit_idle_listeners l
              where l.queue_name = p_queue_name and l.idle_until > clock_timestamp()) then
    perform pg_notify('absurd_wake_' || md5(p_queue_name), '');
  end if;

  return query select v_task_id, v_run_id, 1, true;
end;
$$;

-- kit_spawn_task(q, name, params, options): spawn_task under the name absurd-kit's clients call
-- since migration 000013; spawn_task wakes idle workers itself now, so this is a plain SQL call
-- (the plpgsql loop that wrapped it cost a quarter of a spawn's time). Same arguments, result,
-- errors and locks as spawn_task.
create or replace function absurd.kit_spawn_task(p_queue_name text, p_task_name text, p_params jsonb, p_options jsonb)
returns table(task_id uuid, run_id uuid, attempt integer, created boolean)
language sql
as $f$
  select s.task_id, s.run_id, s.attempt, s.created
    from absurd.spawn_task(p_queue_name, p_task_name, p_params, p_options) s
$f$;

-- kit_spawn_tasks(q, tasks): as in migration 000013 (same result, errors and locks), plus each
-- element's option "priority", checked with the others before anything is written ('tasks[2]:
-- priority must be an integer …', AB003) and given to the element's first run.
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
        insert into absurd.%2$I (run_id, task_id, attempt, state, available_at, priority)
        select t.last_attempt_run, t.task_id, 1, 'pending', $2, i.priority
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
-- keeps the priority of the failed run.
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
  v_next_attempt integer;
  v_next_available timestamptz;
  v_kind text;
  v_delay double precision;
  v_max_duration bigint;
  v_new_run uuid;
  v_new_state text;
  v_priority integer;
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
       insert into absurd.%I (run_id, task_id, attempt, state, available_at, priority)
       values ($2, $1, $3, $4, $5, $6)
     )
     update absurd.%I t set state = $4, attempts = greatest(t.attempts, $3), last_attempt_run = $2
      where t.task_id = $1',
    v_r, v_t)
    using v_task_id, v_new_run, v_next_attempt, v_new_state, v_next_available, v_priority;
end;
$$;

-- retry_task(q, task, options): as in migration 000002 (same result, errors and locks: the task FOR
-- UPDATE, then inserts); the new run (or, with spawn_new, the new task's first run) keeps the
-- priority of the task's last run.
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
            t.state, t.attempts, t.last_attempt_run
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
       insert into absurd.%I (run_id, task_id, attempt, state, available_at, priority)
       values ($2, $1, $3, ''pending'', $4, $6)
     )
     update absurd.%I t
        set state = ''pending'', attempts = greatest(t.attempts, $3), max_attempts = $5,
            last_attempt_run = $2, cancelled_at = null
      where t.task_id = $1',
    'r_' || p_queue_name, 't_' || p_queue_name)
    using p_task_id, v_run_id, v_attempt, v_now, v_requested, coalesce(v_priority, 0);
  return query select p_task_id, v_run_id, v_attempt, false;
end;
$$;

-- claim_task(q, worker, claim_timeout, qty): hands up to qty due runs to a worker under a lease of
-- claim_timeout seconds (0 = no lease). Before claiming it applies the queue's upkeep:
--   A. cancellation policies: tasks never started within cancellation.max_delay seconds of enqueue, or
--      running longer than cancellation.max_duration seconds since first start, are cancelled;
--   B. expired leases: up to qty running runs whose lease ended are failed with a $ClaimTimeout reason
--      (normal retry rules apply, so the replacement run may be claimed right away in C);
--   C. claim: due pending/sleeping runs of live tasks, highest priority first, then oldest
--      available_at, then run_id. The priorities are walked from the highest down: one statement
--      per priority finds the next lower priority with claimable runs (the first entry of
--      r_<q>_cai below the last one) and claims its due runs in (available_at, run_id) order, until
--      qty runs are claimed or no priority is left. With every run at priority 0 (every queue that
--      does not use priorities) a claim that fills qty is one statement, as before this migration;
--      one that does not costs one more statement (one more index probe). The priority a statement
--      claimed from is passed back through the transaction-local setting absurd.kit_claim_level. A queue with limits (a row of
--      kit_limits) claims through kit_claim_limited instead, which checks every run against them.
-- Results come in claim order (priority desc, available_at, run_id).
-- Phase A reads live tasks with a policy (t_<q>_cpi), B expired leases (r_<q>_cei) and C due runs
-- (r_<q>_cai), so none of them reads completed history.
-- Locks: A as cancel_task; B the expired runs FOR UPDATE SKIP LOCKED, then as fail_run (and, on a
-- queue with limits, the release trigger's); C the claimed runs and their tasks FOR UPDATE SKIP
-- LOCKED, so concurrent workers never wait on each other (kit_claim_limited: also the limits'
-- advisory locks, tried, never waited for).
-- Schedules (migration 000015): the body starts by firing the queue's due schedules
-- (kit_fire_schedules), so that every worker of every SDK drives them.
create or replace function absurd.claim_task(p_queue_name text, p_worker_id text, p_claim_timeout integer default 30,
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
  v_bound bigint := 2147483648;  -- above every priority
  v_level_text text;
  v_left integer;
  v_n integer;
begin
  perform absurd.kit_fire_schedules(p_queue_name);
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
  if exists (select 1 from absurd.kit_limits l where l.queue_name = p_queue_name) then
    return query select * from absurd.kit_claim_limited(p_queue_name, v_worker, v_claim_until, v_now, v_qty);
    return;
  end if;

  v_left := v_qty;
  loop
    -- One priority: `top` is the highest priority below v_bound with claimable runs (one index
    -- probe); its due runs are claimed, straight into the result (return query: no cursor). `top`
    -- notes that priority in the transaction's setting absurd.kit_claim_level, read only when the
    -- claim wants more runs than this priority gave. When no priority is left, `top` notes nothing
    -- and the setting keeps an earlier value: the last priority walked (not below v_bound: the
    -- walk ends), or one noted by an earlier claim of the transaction (then at worst one more probe
    -- finds nothing below it).
    return query execute format(
      $f$with top as (
         select r.priority, set_config('absurd.kit_claim_level', r.priority::text, true) as noted
           from absurd.%1$I r
          where r.state in ('pending', 'sleeping') and r.priority < $5
          order by r.priority desc, r.available_at, r.run_id
          limit 1
       ),
       candidates as (
         select r.run_id, r.available_at
           from absurd.%1$I r
           join absurd.%2$I t on t.task_id = r.task_id
          where r.state in ('pending', 'sleeping')
            and r.priority = (select top.priority from top)
            and r.available_at <= $1
            and t.state in ('pending', 'sleeping', 'running')
          order by r.available_at, r.run_id
          limit $2
            for update of r, t skip locked
       ),
       claimed as (
         update absurd.%1$I r
            set state = 'running', claimed_by = $3, claim_expires_at = $4, started_at = $1,
                available_at = $1
           from candidates c
          where r.run_id = c.run_id
         returning r.run_id, r.task_id, r.attempt, r.wake_event, r.event_payload, c.available_at as claimed_from
       ),
       tasks as (
         update absurd.%2$I t
            set state = 'running', attempts = greatest(t.attempts, c.attempt),
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
        order by c.claimed_from, c.run_id$f$,
      v_r, v_t, 'w_' || p_queue_name)
      using v_now, v_left, v_worker, v_claim_until, v_bound;
    get diagnostics v_n = row_count;
    v_left := v_left - v_n;
    exit when v_left <= 0;
    v_level_text := current_setting('absurd.kit_claim_level', true);
    exit when v_level_text is null or v_level_text = '' or v_level_text::bigint >= v_bound;
    v_bound := v_level_text::bigint;
  end loop;
end;
$$;

-- kit_seconds_until_next_run(q): as in migration 000006 (seconds until the queue next has work for
-- claim_task; NULL when nothing waits for time), and also the earliest next tick of the queue's
-- unpaused schedules (migration 000015), so that an idle worker with a long poll interval wakes for
-- a tick. Runs of every priority count: the earliest due time
-- is the least of the first entries of each priority in r_<q>_cai, found one index probe per
-- priority. Parked runs (available_at 'infinity') wait for a slot, not for time, and do not count.
-- Reads the first entries of r_<q>_cai per priority, of r_<q>_cei and of kit_schedules_due only.
create or replace function absurd.kit_seconds_until_next_run(p_queue_name text) returns double precision
language plpgsql stable
as $$
declare
  v_next_run timestamptz;
  v_next_expiry timestamptz;
  v_next_tick timestamptz;
  v_next timestamptz;
begin
  execute format(
    $f$with recursive levels(priority, available_at) as (
       (select r.priority, r.available_at from absurd.%1$I r
         where r.state in ('pending', 'sleeping')
         order by r.priority desc, r.available_at, r.run_id
         limit 1)
       union all
       select nx.priority, nx.available_at
         from levels l
        cross join lateral (
          select r.priority, r.available_at from absurd.%1$I r
           where r.state in ('pending', 'sleeping') and r.priority < l.priority
           order by r.priority desc, r.available_at, r.run_id
           limit 1) nx
     )
     select (select min(l.available_at) from levels l where l.available_at < 'infinity'),
            (select r.claim_expires_at from absurd.%1$I r
              where r.state = 'running' and r.claim_expires_at is not null
              order by r.claim_expires_at
              limit 1)$f$,
    'r_' || p_queue_name)
    into v_next_run, v_next_expiry;
  select s.next_fire_at into v_next_tick
    from absurd.kit_schedules s
   where s.queue_name = p_queue_name and not s.paused and s.next_fire_at is not null
   order by s.next_fire_at
   limit 1;
  v_next := least(v_next_run, v_next_expiry, v_next_tick);
  if v_next is null then
    return null;
  end if;
  return extract(epoch from v_next - absurd.current_time())::double precision;
end;
$$;

-- kit_limits_function_name(q, part): the name of one of the two functions kit_limits_create_functions
-- writes for queue q: 'kit_q_<md5(q)>_fetch' or 'kit_q_<md5(q)>_claim' (44 bytes, whatever q).
create function absurd.kit_limits_function_name(p_queue_name text, p_part text) returns text
language sql immutable
as $$ select 'kit_q_' || md5(p_queue_name) || '_' || p_part $$;

-- kit_limits_create_functions(q): (re)writes the two statements of kit_claim_limited that read
-- and write the queue's own tables as functions of that queue, with those tables named in static
-- SQL, so that each session plans them once and keeps the plan (a statement run by EXECUTE is
-- planned at every call, which made a claim on a queue with limits cost a second planning).
--   kit_q_<md5(q)>_fetch(now, n, seen, bound): up to n due runs of the highest priority below bound
--     with claimable runs (not in seen), FOR UPDATE SKIP LOCKED with their tasks, in claim order:
--     one row of parallel arrays, one element per candidate and limit that applies to it (one with
--     null limit for a candidate under none): the bucket's key, the limit's numbers, the candidate's
--     waiter row, and whether this transaction got the bucket's lock (pg_try_advisory_xact_lock,
--     tried once per bucket); then that priority (null when there is none) and whether the round
--     is simple (one concurrency limit at most per candidate, none with a rate, none parked before);
--   kit_q_<md5(q)>_claim(now, worker, claim_until, runs, slot limits/keys/runs, start limits/keys,
--     unwaited runs): claims the given runs (locked by the caller) as claim_task does, writes their
--     slots and starts and deletes their waiter rows, returning claim_task's columns in run order.
-- Created by kit_set_limit, dropped with the queue's last limit (kit_remove_limit) or with its
-- flow-control rows (kit_forget_queue_limits). Locks: those of create or replace function.
create function absurd.kit_limits_create_functions(p_queue_name text) returns void
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
             select r.priority
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
end;
$$;

-- kit_limits_drop_functions(q): drops the functions kit_limits_create_functions wrote for q, if any.
create function absurd.kit_limits_drop_functions(p_queue_name text) returns void
language plpgsql
as $$
begin
  execute format('drop function if exists absurd.%I(timestamptz, integer, uuid[], bigint)',
                 absurd.kit_limits_function_name(p_queue_name, 'fetch'));
  execute format('drop function if exists absurd.%I(timestamptz, text, timestamptz, uuid[], text[], text[], uuid[],
                                                   text[], text[], uuid[])',
                 absurd.kit_limits_function_name(p_queue_name, 'claim'));
end;
$$;

-- kit_limit_unpark(q, limit, bucket): un-parks the oldest parked runs of one bucket of a
-- concurrency limit, as many as the bucket has free slots: max_running, less the slots held, less
-- the runs already un-parked and not yet claimed (woken). An un-parked run gets its own
-- available_at back (its place in the claim order: first come, first served) and its waiter row is
-- marked woken; a waiter row whose run is no longer parked (it was woken up early, or ended) is
-- deleted. Notifies idle workers (kit_wake_idle_workers) when it un-parked any. Returns how many.
-- The caller holds the bucket's advisory lock (shared or exclusive; see kit_claim_limited).
-- Locks: the waiter rows it picks FOR UPDATE SKIP LOCKED (two releasers of one bucket, both under
-- the shared lock, un-park different runs), then their runs' rows.
create function absurd.kit_limit_unpark(p_queue_name text, p_limit_name text, p_key text) returns integer
language plpgsql
as $$
declare
  v_max integer;
  v_free bigint;
  v_picked uuid[];
  v_at timestamptz[];
  v_done uuid[];
  v_total integer := 0;
begin
  select l.max_running into v_max from absurd.kit_limits l
   where l.queue_name = p_queue_name and l.limit_name = p_limit_name;
  if v_max is null then
    return 0;
  end if;
  loop
    v_free := v_max
      - (select count(*) from absurd.kit_limit_slots s
          where s.queue_name = p_queue_name and s.limit_name = p_limit_name and s.key = p_key)
      - (select count(*) from absurd.kit_limit_waiters w
          where w.queue_name = p_queue_name and w.limit_name = p_limit_name and w.key = p_key and w.woken);
    exit when v_free <= 0;
    select array_agg(p.run_id order by p.available_at, p.run_id), array_agg(p.available_at order by p.available_at, p.run_id)
      into v_picked, v_at
      from (select w.run_id, w.available_at from absurd.kit_limit_waiters w
             where w.queue_name = p_queue_name and w.limit_name = p_limit_name and w.key = p_key and not w.woken
             order by w.available_at, w.run_id
             limit v_free
               for update skip locked) p;
    exit when v_picked is null;
    execute format(
      $f$with unparked as (
         update absurd.%I r set available_at = p.available_at
           from unnest($1::uuid[], $2::timestamptz[]) as p(run_id, available_at)
          where r.run_id = p.run_id and r.state in ('pending', 'sleeping') and r.available_at = 'infinity'
         returning r.run_id
       )
       select coalesce(array_agg(u.run_id), '{}') from unparked u$f$,
      'r_' || p_queue_name)
      into v_done using v_picked, v_at;
    update absurd.kit_limit_waiters w set woken = true
     where w.queue_name = p_queue_name and w.run_id = any(v_done);
    delete from absurd.kit_limit_waiters w
     where w.queue_name = p_queue_name and w.run_id = any(v_picked) and not (w.run_id = any(v_done));
    v_total := v_total + cardinality(v_done);
    exit when cardinality(v_done) = cardinality(v_picked);
  end loop;
  if v_total > 0 then
    perform absurd.kit_wake_idle_workers(p_queue_name);
  end if;
  return v_total;
end;
$$;

-- kit_limits_release(): the row trigger kit_limits_release of r_<q> (argument: the queue name),
-- created by kit_set_limit on queues that have limits, for updates that change a run's state:
-- - a run that leaves 'running' (completes, fails, is cancelled, sleeps, waits for an event, loses
--   its lease) releases its slots: for each, under the bucket's advisory lock taken SHARED and
--   waited for, it deletes the slot and un-parks the bucket's next waiters (kit_limit_unpark);
-- - a pending or sleeping run that ends (cancelled) drops its waiter row; when that run had been
--   un-parked (woken) and not claimed, its turn passes to the next waiter (kit_limit_unpark).
-- Why shared: releases never exclude each other (a statement that completes many runs takes the
-- locks of all their buckets in any order, and shared locks cannot deadlock among themselves);
-- they exclude only a claim checking the bucket (which holds it exclusively and never waits: see
-- kit_claim_limited).
-- Locks: the slot/waiter rows it deletes, then per bucket (in limit, key order) the advisory lock
-- SHARED, then as kit_limit_unpark.
create function absurd.kit_limits_release() returns trigger
language plpgsql
as $$
declare
  v_q text := tg_argv[0];
  v_row record;
  v_limits text[];
  v_keys text[];
begin
  if old.state = 'running' then
    with d as (
      delete from absurd.kit_limit_slots s where s.run_id = old.run_id
      returning s.limit_name, s.key
    )
    select array_agg(d.limit_name order by d.limit_name, d.key), array_agg(d.key order by d.limit_name, d.key)
      into v_limits, v_keys
      from d;
    for v_i in 1 .. coalesce(cardinality(v_limits), 0) loop
      perform pg_advisory_xact_lock_shared(1633841252, absurd.kit_limit_lock_key(v_q, v_limits[v_i], v_keys[v_i]));
      -- Under the lock: a bucket nobody waits for (the common case) costs one index probe.
      if exists (select 1 from absurd.kit_limit_waiters w
                  where w.queue_name = v_q and w.limit_name = v_limits[v_i] and w.key = v_keys[v_i] and not w.woken) then
        perform absurd.kit_limit_unpark(v_q, v_limits[v_i], v_keys[v_i]);
      end if;
    end loop;
  elsif new.state in ('completed', 'failed', 'cancelled') then
    for v_row in
      with d as (
        delete from absurd.kit_limit_waiters w where w.queue_name = v_q and w.run_id = old.run_id
        returning w.limit_name, w.key, w.woken
      )
      select d.limit_name, d.key from d where d.woken
    loop
      perform pg_advisory_xact_lock_shared(1633841252, absurd.kit_limit_lock_key(v_q, v_row.limit_name, v_row.key));
      perform absurd.kit_limit_unpark(v_q, v_row.limit_name, v_row.key);
    end loop;
  end if;
  return null;
end;
$$;

-- kit_claim_limited(q, worker, claim_until, now, qty): phase C of claim_task on a queue with limits
-- (same rows, same order: priority desc, available_at, run_id). It walks the priorities as
-- claim_task does and, within one, looks at due runs in claim order (FOR UPDATE SKIP LOCKED, at
-- most max(4 qty, 16) per claim, so that a large backlog of one full bucket costs a claim little):
-- for each, the bucket of every limit that applies (the limit's task, or all; the key at key_path
-- of its params, `null` when missing) is locked with pg_try_advisory_xact_lock and its slots and
-- starts counted, then
--   - a bucket locked by another transaction: the run is left as it is, due, for a later claim (and
--     when the claim comes back short, the queue's wake channel is notified at its commit, so that
--     listening workers claim again at once);
--   - a concurrency limit full (slots held, plus runs this claim already took): parked
--     (available_at = 'infinity', a row in kit_limit_waiters with its available_at);
--   - a rate limit full (starts in the last rate_period, plus this claim's): put back until the
--     window admits it (available_at = the oldest start that must leave the window + rate_period);
--     only a run that has never started counts as a start (a first attempt or a retry; a sleeping
--     or waiting run that resumes does not start again);
--   - otherwise claimed: a slot per concurrency limit, a start per rate limit, and its waiter row
--     (if it was parked before) deleted.
-- Statements per round: the queue's function kit_q_<md5(q)>_fetch finds the candidates, their
-- limits and bucket keys and tries the buckets' locks; a round where every run has at most one
-- limit, a concurrency limit, and was never parked (the common case) is then decided by one
-- statement (counts, and a running count per bucket in claim order); any other round counts its
-- buckets in one statement and decides run by run. kit_q_<md5(q)>_claim claims what was taken and
-- writes its slots and starts. A run's limits are judged together: over any concurrency limit it
-- parks under the first (by limit name) that is full.
-- Race analysis: a park and a release of the same bucket never miss each other. A claim parks
-- only while it holds the bucket's lock exclusively, and counts the slots in a statement that
-- starts after it took the lock. The release trigger deletes its slot, then takes the same lock
-- shared (waiting for it), then, in statements that start after, counts and un-parks.
--   * Claim first: the release waits until the claim commits; its later statements then see the
--     new waiter row and un-park it (the slot it freed counts as free).
--   * Release first (it holds the lock shared until it commits): the claim's try fails and it
--     leaves the bucket's runs alone; a later claim counts after the release has committed.
--   * Release committed before the claim's try: the claim's count, a later statement, sees the
--     slot gone.
-- So every waiter row is written while the bucket is full, and every slot freed afterwards looks at
-- the waiters; a woken run that ends before it is claimed (cancelled) or is parked again under
-- another bucket hands its turn on (kit_limits_release, and below). This holds in READ COMMITTED,
-- where each statement of a function takes a new snapshot (workers and every SDK use it).
-- Claims never wait for an advisory lock, so claims cannot deadlock on them; releases wait only for
-- claims, which wait for nothing.
-- Locks: runs and their tasks FOR UPDATE SKIP LOCKED; the buckets' advisory locks, tried
-- (exclusive, transaction-scoped); the waiter, slot and start rows it writes; parked runs' rows.
create function absurd.kit_claim_limited(p_queue_name text, p_worker text, p_claim_until timestamptz,
                                         p_now timestamptz, p_qty integer)
returns table(run_id uuid, task_id uuid, attempt integer, task_name text, params jsonb,
              retry_strategy jsonb, max_attempts integer, headers jsonb, wake_event text,
              event_payload jsonb)
language plpgsql
as $$
#variable_conflict use_column
declare
  v_r text := 'r_' || p_queue_name;
  v_fetch text := absurd.kit_limits_function_name(p_queue_name, 'fetch');
  v_claim text := absurd.kit_limits_function_name(p_queue_name, 'claim');
  v_budget integer := greatest(p_qty * 4, 16);
  v_left integer := p_qty;
  v_bound bigint := 2147483648;
  v_level integer;
  v_round_bound bigint;
  v_row record;
  v_n integer;
  v_i integer;
  v_j integer;
  v_k integer;
  v_b integer;
  v_skip boolean;
  v_got boolean;
  v_simple boolean;
  v_take uuid[];
  v_take_lim text[];
  v_take_key text[];
  v_take_run uuid[];
  v_park_runs uuid[];
  v_park_lim text[];
  v_park_key text[];
  v_park_at timestamptz[];
  v_skipped bigint;
  v_park integer;
  v_rate_at timestamptz;
  v_at timestamptz;
  v_offset integer;
  v_seen uuid[] := '{}';        -- runs this claim looked at and left or took (not fetched again)
  v_busy boolean := false;      -- a run was left because another transaction held its bucket
  -- the rows of one round: one per (candidate, limit that applies)
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
  c_bucket integer[];
  c_got boolean[];
  c_wgot boolean[];

  -- the buckets this claim looked at
  b_id text[] := '{}';          -- limit || x'1f' || key, for array_position
  b_lim text[] := '{}';
  b_key text[] := '{}';
  b_locked boolean[] := '{}';
  b_used integer[] := '{}';      -- slots held, plus runs taken by this claim
  b_db_starts integer[] := '{}'; -- starts in the window, as counted
  b_starts integer[] := '{}';    -- plus starts of runs taken by this claim
  -- the buckets a round looks at first
  n_id text[];
  n_lim text[];
  n_key text[];
  n_rate boolean[];
  n_period interval[];
  n_got boolean[];
  n_used integer[];
  n_starts integer[];
  v_lim text;
  v_key text;
  v_id text;
  v_m integer;
  -- what this priority's runs take
  a_run uuid[];
  s_lim text[];
  s_key text[];
  s_run uuid[];
  st_lim text[];
  st_key text[];
  w_run uuid[];
begin
  loop  -- priorities, highest first
    v_level := null;
    a_run := '{}'; s_lim := '{}'; s_key := '{}'; s_run := '{}'; st_lim := '{}'; st_key := '{}'; w_run := '{}';
    v_round_bound := v_bound;
    loop  -- rounds within one priority, until qty runs are taken or nothing is left to look at
      c_run := '{}'; c_at := '{}'; c_fresh := '{}'; c_lim := '{}'; c_key := '{}'; c_max := '{}';
      c_rate := '{}'; c_period := '{}'; c_wlim := '{}'; c_wkey := '{}'; c_woken := '{}'; c_bucket := '{}';
      c_got := '{}'; c_wgot := '{}';
      v_n := least(v_left - cardinality(a_run), v_budget);
      exit when v_n <= 0;
      -- The candidates with the limits that apply to each, its bucket keys, its waiter row, and a
      -- try of every bucket's lock (kit_q_<md5(q)>_fetch); the buckets are counted in a later
      -- statement (see the race analysis).
      execute format('select * from absurd.%I($1, $2, $3, $4)', v_fetch)
        into c_run, c_at, c_fresh, c_lim, c_key, c_max, c_rate, c_period, c_wlim, c_wkey, c_woken, c_got, c_wgot,
             v_level, v_simple
        using p_now, v_n, v_seen, v_round_bound;
      exit when cardinality(c_run) = 0;
      v_round_bound := v_level::bigint + 1;  -- later rounds stay at this priority
      c_bucket := array_fill(null::integer, array[cardinality(c_run)]);

      if v_simple then
        -- The common case: each run under at most one limit, a concurrency limit, and never parked
        -- before. One statement decides them all, in claim order: a run fits while its bucket's slots
        -- (counted here, after the locks; plus those this claim took in earlier rounds) and the runs
        -- before it in this round stay within max_running; a run whose bucket is full is parked; a
        -- run whose bucket another transaction holds is left.
        select coalesce(array_agg(d.run_id) filter (where d.verdict = 'take'), '{}'),
               coalesce(array_agg(d.lim) filter (where d.verdict = 'take' and d.lim is not null), '{}'),
               coalesce(array_agg(d.key) filter (where d.verdict = 'take' and d.lim is not null), '{}'),
               coalesce(array_agg(d.run_id) filter (where d.verdict = 'take' and d.lim is not null), '{}'),
               coalesce(array_agg(d.run_id) filter (where d.verdict = 'park'), '{}'),
               coalesce(array_agg(d.lim) filter (where d.verdict = 'park'), '{}'),
               coalesce(array_agg(d.key) filter (where d.verdict = 'park'), '{}'),
               coalesce(array_agg(d.available_at) filter (where d.verdict = 'park'), '{}'),
               count(*) filter (where d.verdict = 'skip')
          into v_take, v_take_lim, v_take_key, v_take_run, v_park_runs, v_park_lim, v_park_key, v_park_at, v_skipped
          from (select c.*,
                       case when c.lim is null then 'take'
                            when not coalesce(c.got, false) then 'skip'
                            when c.used + row_number() over (partition by c.lim, c.key order by c.ord) <= c.max then 'take'
                            else 'park' end as verdict
                  from (select u.*,
                               case when u.lim is not null and u.got then
                                 (select count(*) from absurd.kit_limit_slots s
                                   where s.queue_name = p_queue_name and s.limit_name = u.lim and s.key = u.key)
                                 + (select count(*) from unnest(s_lim, s_key) as x(l, k) where x.l = u.lim and x.k = u.key)
                               else 0 end as used
                          from unnest(c_run, c_at, c_lim, c_key, c_max, c_got)
                               with ordinality as u(run_id, available_at, lim, key, max, got, ord)) c
                 order by c.ord) d;
        v_budget := v_budget - cardinality(c_run);
        v_seen := v_seen || c_run;
        v_busy := v_busy or v_skipped > 0;
        if cardinality(v_park_runs) > 0 then
          execute format($f$update absurd.%I r set available_at = 'infinity' where r.run_id = any($1)$f$, v_r)
            using v_park_runs;
          insert into absurd.kit_limit_waiters as w (queue_name, run_id, limit_name, key, available_at, woken)
          select p_queue_name, u.r, u.l, u.k, u.a, false
            from unnest(v_park_runs, v_park_lim, v_park_key, v_park_at) as u(r, l, k, a)
          on conflict (queue_name, run_id) do update
             set limit_name = excluded.limit_name, key = excluded.key, available_at = excluded.available_at,
                 woken = false;
        end if;
        a_run := a_run || v_take;
        s_lim := s_lim || v_take_lim;
        s_key := s_key || v_take_key;
        s_run := s_run || v_take_run;
        exit when cardinality(a_run) >= v_left or v_budget <= 0;
        continue;
      end if;

      -- The buckets of this round not looked at yet (those of its runs, and those that woke the
      -- runs un-parked earlier: their turn may have to be handed on), tried by the statement above;
      -- their slots and starts are counted below, in statements that start after the locks.
      n_id := '{}'; n_lim := '{}'; n_key := '{}'; n_rate := '{}'; n_period := '{}'; n_got := '{}';
      for v_k in 1 .. cardinality(c_run) loop
        for v_m in 1 .. 2 loop
          if v_m = 1 then
            v_lim := c_lim[v_k];
            v_key := c_key[v_k];
            v_got := c_got[v_k];
          elsif coalesce(c_woken[v_k], false) then
            v_lim := c_wlim[v_k];
            v_key := c_wkey[v_k];
            v_got := c_wgot[v_k];
          else
            v_lim := null;
          end if;
          continue when v_lim is null;
          v_id := v_lim || E'\x1f' || v_key;
          continue when array_position(b_id, v_id) is not null;
          v_b := array_position(n_id, v_id);
          if v_b is null then
            n_id := n_id || v_id;
            n_lim := n_lim || v_lim;
            n_key := n_key || v_key;
            n_rate := n_rate || false;
            n_period := n_period || null::interval;
            n_got := n_got || coalesce(v_got, false);
            v_b := cardinality(n_id);
          end if;
          if v_m = 1 and c_rate[v_k] is not null then
            n_rate[v_b] := true;
            n_period[v_b] := c_period[v_k];
          end if;
        end loop;
      end loop;
      if cardinality(n_id) > 0 then
        if true = any(n_rate) then
          delete from absurd.kit_limit_starts s
           using unnest(n_lim, n_key, n_period, n_got, n_rate) as u(l, k, p, g, r)
           where u.g and u.r and s.queue_name = p_queue_name and s.limit_name = u.l and s.key = u.k
             and s.started_at <= p_now - u.p;
        end if;
        select array_agg(case when u.g then (select count(*)::integer from absurd.kit_limit_slots s
                                              where s.queue_name = p_queue_name and s.limit_name = u.l and s.key = u.k)
                                            -- plus what earlier rounds of this claim took, not written yet
                                            + (select count(*)::integer from unnest(s_lim, s_key) as x(l, k)
                                                where x.l = u.l and x.k = u.k)
                              else 0 end order by u.ord),
               array_agg(case when u.g and u.r then (select count(*)::integer from absurd.kit_limit_starts s
                                                      where s.queue_name = p_queue_name and s.limit_name = u.l and s.key = u.k)
                              else 0 end order by u.ord)
          into n_used, n_starts
          from unnest(n_lim, n_key, n_got, n_rate) with ordinality as u(l, k, g, r, ord);
        b_id := b_id || n_id;
        b_lim := b_lim || n_lim;
        b_key := b_key || n_key;
        b_locked := b_locked || n_got;
        b_used := b_used || n_used;
        b_db_starts := b_db_starts || n_starts;
        b_starts := b_starts || n_starts;
      end if;

      v_i := 1;
      while v_i <= cardinality(c_run) loop
        v_j := v_i;  -- the rows v_i .. v_j belong to one run
        while v_j < cardinality(c_run) and c_run[v_j + 1] = c_run[v_i] loop
          v_j := v_j + 1;
        end loop;
        v_budget := v_budget - 1;
        v_seen := v_seen || c_run[v_i];

        -- A bucket of the run (or the one that woke it) taken by another transaction: skip it.
        v_skip := coalesce(c_woken[v_i], false)
                  and not b_locked[array_position(b_id, c_wlim[v_i] || E'\x1f' || c_wkey[v_i])];
        for v_k in v_i .. v_j loop
          continue when c_lim[v_k] is null;
          v_b := array_position(b_id, c_lim[v_k] || E'\x1f' || c_key[v_k]);
          c_bucket[v_k] := v_b;
          if not b_locked[v_b] then
            v_skip := true;
          end if;
        end loop;

        if v_skip then
          v_busy := true;
          v_i := v_j + 1;
          continue;
        end if;

        v_park := null;
        v_rate_at := null;
        for v_k in v_i .. v_j loop
          continue when c_lim[v_k] is null;
          v_b := c_bucket[v_k];
          if c_max[v_k] is not null and b_used[v_b] >= c_max[v_k] and v_park is null then
            v_park := v_k;
          end if;
          if c_rate[v_k] is not null and c_fresh[v_k] and b_starts[v_b] >= c_rate[v_k] then
            -- The window admits one more start once the (starts - rate_count + 1)-th oldest has left it.
            v_offset := b_starts[v_b] - c_rate[v_k];
            if v_offset < b_db_starts[v_b] then
              select s.started_at into v_at from absurd.kit_limit_starts s
               where s.queue_name = p_queue_name and s.limit_name = c_lim[v_k] and s.key = c_key[v_k]
               order by s.started_at
               offset v_offset limit 1;
            else
              v_at := p_now;
            end if;
            v_rate_at := greatest(v_rate_at, coalesce(v_at, p_now) + c_period[v_k]);
          end if;
        end loop;

        if v_park is not null then
          execute format($f$update absurd.%I r set available_at = 'infinity' where r.run_id = $1$f$, v_r)
            using c_run[v_i];
          insert into absurd.kit_limit_waiters as w (queue_name, run_id, limit_name, key, available_at, woken)
          values (p_queue_name, c_run[v_i], c_lim[v_park], c_key[v_park], c_at[v_i], false)
          on conflict (queue_name, run_id) do update
             set limit_name = excluded.limit_name, key = excluded.key, available_at = excluded.available_at,
                 woken = false;
          -- Un-parked for a bucket and parked again for another: that bucket's turn goes on.
          if c_woken[v_i] and (c_wlim[v_i], c_wkey[v_i]) is distinct from (c_lim[v_park], c_key[v_park]) then
            perform absurd.kit_limit_unpark(p_queue_name, c_wlim[v_i], c_wkey[v_i]);
          end if;
        elsif v_rate_at is not null then
          execute format('update absurd.%I r set available_at = $2 where r.run_id = $1', v_r)
            using c_run[v_i], v_rate_at;
        else
          a_run := a_run || c_run[v_i];
          if c_wlim[v_i] is not null then
            w_run := w_run || c_run[v_i];
          end if;
          for v_k in v_i .. v_j loop
            continue when c_lim[v_k] is null;
            v_b := c_bucket[v_k];
            if c_max[v_k] is not null then
              b_used[v_b] := b_used[v_b] + 1;
              s_lim := s_lim || c_lim[v_k];
              s_key := s_key || c_key[v_k];
              s_run := s_run || c_run[v_i];
            end if;
            if c_rate[v_k] is not null and c_fresh[v_k] then
              b_starts[v_b] := b_starts[v_b] + 1;
              st_lim := st_lim || c_lim[v_k];
              st_key := st_key || c_key[v_k];
            end if;
          end loop;
        end if;
        exit when cardinality(a_run) >= v_left;
        v_i := v_j + 1;
      end loop;
      exit when cardinality(a_run) >= v_left or v_budget <= 0;
    end loop;

    if cardinality(a_run) > 0 then
      -- One statement: the runs claimed, their slots and starts, their waiter rows gone.
      return query execute format('select * from absurd.%I($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)', v_claim)
        using p_now, p_worker, p_claim_until, a_run, s_lim, s_key, s_run, st_lim, st_key, w_run;
      v_left := v_left - cardinality(a_run);
    end if;
    exit when v_left <= 0 or v_level is null or v_budget <= 0;
    v_bound := v_level;
  end loop;
  -- Runs left because their bucket was busy are due now: the claim that held it commits within
  -- moments. Wake the queue's listening workers (this one too) when this claim commits, rather than
  -- let them wait for their next poll because this claim came back short.
  if v_busy and v_left > 0 then
    perform pg_notify('absurd_wake_' || md5(p_queue_name), '');
  end if;
end;
$$;

-- kit_limits_unpark_all(q, limit): un-parks every run parked under the limit (each gets its own
-- available_at back; a later claim checks it again against the limits then in force) and deletes
-- the limit's waiter and slot rows. For kit_set_limit (a limit whose definition changes) and
-- kit_remove_limit, which hold r_<q> in EXCLUSIVE mode: no claim or release runs meanwhile.
-- Locks: the parked runs' rows, the waiter and slot rows deleted.
create function absurd.kit_limits_unpark_all(p_queue_name text, p_limit_name text) returns void
language plpgsql
as $$
begin
  execute format(
    $f$update absurd.%I r set available_at = w.available_at
         from absurd.kit_limit_waiters w
        where w.queue_name = $1 and w.limit_name = $2 and r.run_id = w.run_id
          and r.state in ('pending', 'sleeping') and r.available_at = 'infinity'$f$,
    'r_' || p_queue_name)
    using p_queue_name, p_limit_name;
  delete from absurd.kit_limit_waiters w where w.queue_name = p_queue_name and w.limit_name = p_limit_name;
  delete from absurd.kit_limit_slots s where s.queue_name = p_queue_name and s.limit_name = p_limit_name;
  perform absurd.kit_wake_idle_workers(p_queue_name);
end;
$$;

-- kit_set_limit(q, limit, task, key_path, max_running, rate_count, rate_period_seconds): creates or
-- replaces the limit named `limit` of queue q (see absurd.kit_limits): on the runs of task `task`
-- (null: every task of the queue), one bucket per value at key_path of the params (null: one
-- bucket), at most max_running running at once and/or at most rate_count starts per
-- rate_period_seconds. Returns false when the limit already had exactly this definition (nothing
-- is done, nothing locked: a worker sets the limits of its tasks each time it starts), true
-- otherwise. A new or changed limit counts the runs already running (they hold slots from now on),
-- frees every run the old definition had parked (claims check them again) and, when the bucket
-- key or the task changes, forgets the starts counted so far. The queue gets the release trigger
-- kit_limits_release on r_<q> with its first limit.
-- Errors: AB005 when the queue does not exist; AB004 for an invalid definition (blank name, blank
-- task name or key part, a number below 1, a period of 0 or less, rate_count without
-- rate_period_seconds or the reverse, neither a concurrency nor a rate).
-- Locks: r_<q> in EXCLUSIVE mode (it waits for the claims and the releases of the queue in
-- progress and holds off new ones until it commits: a claim never sees half a limit), then the
-- limit's row, the runs parked under it, its slot, waiter and start rows.
create function absurd.kit_set_limit(p_queue_name text, p_limit_name text, p_task_name text, p_key_path text[],
                                     p_max_running integer, p_rate_count integer,
                                     p_rate_period_seconds double precision)
returns boolean
language plpgsql
as $$
declare
  v_r text := 'r_' || p_queue_name;
  v_period interval;
  v_old absurd.kit_limits%rowtype;
begin
  if p_limit_name is null or btrim(p_limit_name) = '' then
    raise exception 'limit name must be provided' using errcode = 'AB004';
  end if;
  if p_task_name is not null and btrim(p_task_name) = '' then
    raise exception 'limit "%": task name must be null (every task) or not blank', p_limit_name using errcode = 'AB004';
  end if;
  if p_key_path is not null and (cardinality(p_key_path) = 0
     or exists (select 1 from unnest(p_key_path) as k(part) where k.part is null or k.part = '')) then
    raise exception 'limit "%": key path must be null (one bucket) or a list of non-empty names, got %',
      p_limit_name, p_key_path using errcode = 'AB004';
  end if;
  if p_max_running is not null and p_max_running < 1 then
    raise exception 'limit "%": max_running must be >= 1, got %', p_limit_name, p_max_running using errcode = 'AB004';
  end if;
  if p_rate_count is not null and p_rate_count < 1 then
    raise exception 'limit "%": rate_count must be >= 1, got %', p_limit_name, p_rate_count using errcode = 'AB004';
  end if;
  if (p_rate_count is null) <> (p_rate_period_seconds is null) then
    raise exception 'limit "%": rate_count and rate_period_seconds go together', p_limit_name using errcode = 'AB004';
  end if;
  if p_rate_period_seconds is not null and not (p_rate_period_seconds > 0 and p_rate_period_seconds < 3153600000) then
    raise exception 'limit "%": rate_period_seconds must be more than 0, got %', p_limit_name, p_rate_period_seconds
      using errcode = 'AB004';
  end if;
  if p_max_running is null and p_rate_count is null then
    raise exception 'limit "%": give max_running, or rate_count with rate_period_seconds, or both', p_limit_name
      using errcode = 'AB004';
  end if;
  v_period := p_rate_period_seconds * interval '1 second';
  if not exists (select 1 from absurd.queues q where q.queue_name = p_queue_name)
     or to_regclass(format('absurd.%I', v_r)) is null then
    raise exception 'queue "%" does not exist — run `absurd queue create %`', p_queue_name, p_queue_name
      using errcode = 'AB005';
  end if;

  select * into v_old from absurd.kit_limits l where l.queue_name = p_queue_name and l.limit_name = p_limit_name;
  if found and v_old.task_name is not distinct from p_task_name and v_old.key_path is not distinct from p_key_path
     and v_old.max_running is not distinct from p_max_running and v_old.rate_count is not distinct from p_rate_count
     and v_old.rate_period is not distinct from v_period then
    return false;
  end if;

  execute format('lock table absurd.%I in exclusive mode', v_r);
  select * into v_old from absurd.kit_limits l
   where l.queue_name = p_queue_name and l.limit_name = p_limit_name for update;
  if found then
    perform absurd.kit_limits_unpark_all(p_queue_name, p_limit_name);
    if v_old.task_name is distinct from p_task_name or v_old.key_path is distinct from p_key_path
       or p_rate_count is null then
      delete from absurd.kit_limit_starts s where s.queue_name = p_queue_name and s.limit_name = p_limit_name;
    end if;
  end if;
  insert into absurd.kit_limits as l (queue_name, limit_name, task_name, key_path, max_running, rate_count,
                                      rate_period, updated_at)
  values (p_queue_name, p_limit_name, p_task_name, p_key_path, p_max_running, p_rate_count, v_period,
          absurd.current_time())
  on conflict (queue_name, limit_name) do update
     set task_name = excluded.task_name, key_path = excluded.key_path, max_running = excluded.max_running,
         rate_count = excluded.rate_count, rate_period = excluded.rate_period, updated_at = excluded.updated_at;

  if p_max_running is not null then
    execute format(
      $f$insert into absurd.kit_limit_slots (queue_name, limit_name, key, run_id)
         select $1, $2,
                case when $4::text[] is null then '' else coalesce(t.params #> $4::text[], 'null'::jsonb)::text end,
                r.run_id
           from absurd.%I r
           join absurd.%I t on t.task_id = r.task_id
          where r.state = 'running' and ($3::text is null or t.task_name = $3::text)
         on conflict do nothing$f$,
      v_r, 't_' || p_queue_name)
      using p_queue_name, p_limit_name, p_task_name, p_key_path;
  end if;

  if not exists (select 1 from pg_trigger g
                  where g.tgrelid = format('absurd.%I', v_r)::regclass and g.tgname = 'kit_limits_release') then
    execute format(
      $f$create trigger kit_limits_release
           after update of state on absurd.%I
           for each row
           when (old.state is distinct from new.state
                 and (old.state = 'running' or new.state in ('completed', 'failed', 'cancelled')))
           execute function absurd.kit_limits_release(%L)$f$,
      v_r, p_queue_name);
  end if;
  perform absurd.kit_limits_create_functions(p_queue_name);
  return true;
end;
$$;

-- kit_remove_limit(q, limit): removes a limit. Every run it had parked becomes claimable again (at
-- its own available_at), its slots, waiters and starts are deleted; removing the queue's last limit
-- drops the trigger kit_limits_release, so the queue costs again exactly what a queue without
-- limits costs. Returns false (and does nothing) when there is no such limit.
-- Locks: r_<q> in EXCLUSIVE mode (as kit_set_limit), then the limit's row and the rows it frees.
create function absurd.kit_remove_limit(p_queue_name text, p_limit_name text) returns boolean
language plpgsql
as $$
declare
  v_r text := 'r_' || p_queue_name;
begin
  if not exists (select 1 from absurd.kit_limits l where l.queue_name = p_queue_name and l.limit_name = p_limit_name) then
    return false;
  end if;
  if to_regclass(format('absurd.%I', v_r)) is null then
    perform absurd.kit_forget_queue_limits(p_queue_name);
    return true;
  end if;
  execute format('lock table absurd.%I in exclusive mode', v_r);
  perform 1 from absurd.kit_limits l where l.queue_name = p_queue_name and l.limit_name = p_limit_name for update;
  if not found then
    return false;
  end if;
  perform absurd.kit_limits_unpark_all(p_queue_name, p_limit_name);
  delete from absurd.kit_limit_starts s where s.queue_name = p_queue_name and s.limit_name = p_limit_name;
  delete from absurd.kit_limits l where l.queue_name = p_queue_name and l.limit_name = p_limit_name;
  if not exists (select 1 from absurd.kit_limits l where l.queue_name = p_queue_name) then
    execute format('drop trigger if exists kit_limits_release on absurd.%I', v_r);
    perform absurd.kit_limits_drop_functions(p_queue_name);
  end if;
  return true;
end;
$$;

-- kit_list_limits(q): the limits of queue q (of every queue when q is null), by queue and name,
-- with how many runs hold a slot now (`running`) and how many are parked (`parked`). Reads only.
create function absurd.kit_list_limits(p_queue_name text)
returns table(queue_name text, limit_name text, task_name text, key_path text[], max_running integer,
              rate_count integer, rate_period_seconds double precision, running bigint, parked bigint)
language sql stable
as $$
  select l.queue_name, l.limit_name, l.task_name, l.key_path, l.max_running, l.rate_count,
         extract(epoch from l.rate_period)::double precision,
         (select count(*) from absurd.kit_limit_slots s
           where s.queue_name = l.queue_name and s.limit_name = l.limit_name),
         (select count(*) from absurd.kit_limit_waiters w
           where w.queue_name = l.queue_name and w.limit_name = l.limit_name and not w.woken)
    from absurd.kit_limits l
   where p_queue_name is null or l.queue_name = p_queue_name
   order by l.queue_name, l.limit_name
$$;

-- The queues that exist get the column and the claim index now; new queues get them from
-- ensure_queue_tables.
select absurd.kit_ensure_claim_order(q.queue_name)
  from absurd.queues q
 where to_regclass(format('absurd.%I', 'r_' || q.queue_name)) is not null
 order by q.queue_name;
