-- absurd-kit engine, migration 000009: what `absurd dashboard` needs from the engine.
--
-- Additions only, as in 000006: no function changes behaviour for any other client.
--
-- 1. The task list pages through t_<q> newest first (task ids are UUIDv7s, so their order is the
--    order of creation) and filters by state and task name. The primary key alone serves the
--    unfiltered list and time ranges; for a filter it would read every task that does not match
--    before a page is full (all of a million retained tasks, to find none). Two indexes make every
--    filtered page a range read of its own: t_<q>_sti (state, task_id) and t_<q>_nsi (task_name,
--    state, task_id). A task changes state a few times in its life; each change already writes new
--    index entries (t_<q>_cpi names state in its predicate, so these updates are never HOT), and
--    now writes two more.
-- 2. kit_wake_task: wakes a sleeping task now instead of at its wake time, which no function of
--    the contract does (schedule_run acts on a run that its worker holds).

-- kit_ensure_list_indexes(q): creates the task list's indexes of the queue if they are missing
-- (idempotent): t_<q>_sti on (state, task_id) and t_<q>_nsi on (task_name, state, task_id). On a
-- partitioned queue they are defined on the parent and so exist on every partition. Index names
-- stay within 63 bytes for every valid queue name (2 + 57 + 4). Takes the DDL lock of
-- `create index` on t_<q> (SHARE: writers wait while it builds).
create function absurd.kit_ensure_list_indexes(p_queue_name text) returns void
language plpgsql
as $$
declare
  v_t text := 't_' || p_queue_name;
begin
  execute format('create index if not exists %I on absurd.%I (state, task_id)', v_t || '_sti', v_t);
  execute format('create index if not exists %I on absurd.%I (task_name, state, task_id)', v_t || '_nsi', v_t);
end;
$$;

-- ensure_queue_tables(q): as in 000001, and the task list's indexes (kit_ensure_list_indexes).
-- Takes no row locks; DDL locks only on the queue's tables.
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
       created_at timestamptz not null default absurd.current_time()
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

  -- Our own index: the claim order (available_at, run_id) over claimable runs only, so that a claim
  -- reads the next qty runs straight off the index however many runs are queued, sleeping or finished.
  execute format(
    'create index if not exists %I on absurd.%I (available_at, run_id)
       where state in (''pending'', ''sleeping'')',
    v_r || '_cai', v_r);

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


-- The queues that exist get the indexes now; new queues get them from ensure_queue_tables.
select absurd.kit_ensure_list_indexes(q.queue_name) from absurd.queues q order by q.queue_name;

-- kit_wake_task(q, task): wakes a sleeping task now. Its sleeping run becomes claimable at once
-- (available_at = now) and the queue's wake channel is notified, so an idle worker claims it
-- within milliseconds. Returns what happened, and changes nothing unless it is 'woken':
--   'woken'              the task slept (ctx.sleepFor / sleepUntil) and now waits to be claimed;
--   'not_found'          no such task in the queue;
--   'not_sleeping'       the task is pending, running or ended;
--   'waiting_for_event'  the task sleeps in a wait for an event (awaitEvent, awaitTaskResult):
--                        waking it would end that wait as a timeout, so emit the event instead.
-- Every SDK keeps the wake time of a sleep as the step's checkpoint (an ISO-8601 text) and, on
-- resume, sleeps again until that time when it has not come yet. So the wake time is moved to now
-- as well: the checkpoint the task wrote last (a sleep writes its checkpoint just before it
-- suspends) when it is such a text and lies in the future. Written as the earlier of now and the
-- wall clock, in UTC with milliseconds (`…T10:00:00.000Z`, as JavaScript writes it).
-- Locks: the task's sleeping run FOR UPDATE, then the task FOR UPDATE (the order of cancel_task),
-- then the checkpoint rows it rewrites.
create function absurd.kit_wake_task(p_queue_name text, p_task_id uuid) returns text
language plpgsql
as $$
declare
  v_now timestamptz := absurd.current_time();
  v_run_id uuid;
  v_wake_event text;
  v_state text;
  v_woken_at text;
begin
  execute format(
    'select r.run_id, r.wake_event from absurd.%I r
      where r.task_id = $1 and r.state = ''sleeping''
      order by r.run_id desc
      limit 1
        for update',
    'r_' || p_queue_name)
    into v_run_id, v_wake_event using p_task_id;
  execute format('select t.state from absurd.%I t where t.task_id = $1 for update', 't_' || p_queue_name)
    into v_state using p_task_id;
  if v_state is null then
    return 'not_found';
  end if;
  if v_state <> 'sleeping' or v_run_id is null then
    return 'not_sleeping';
  end if;
  if v_wake_event is not null then
    return 'waiting_for_event';
  end if;

  execute format('update absurd.%I r set available_at = $2 where r.run_id = $1', 'r_' || p_queue_name)
    using v_run_id, v_now;

  v_woken_at := to_char(least(v_now, clock_timestamp()) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"');
  execute format(
    'update absurd.%1$I c
        set state = to_jsonb($2::text), updated_at = $3
      where c.task_id = $1
        and c.updated_at = (select max(l.updated_at) from absurd.%1$I l where l.task_id = $1)
        and jsonb_typeof(c.state) = ''string''
        and (c.state #>> ''{}'') ~ ''^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}(:?\d{2})?)$''
        and (c.state #>> ''{}'')::timestamptz > $3',
    'c_' || p_queue_name)
    using p_task_id, v_woken_at, v_now;

  perform pg_notify('absurd_wake_' || md5(p_queue_name), '');
  return 'woken';
end;
$$;
