-- absurd-kit engine, migration 000013: spawns that wake only idle workers, and spawns in bulk.
--
-- Additions only, as in 000006: no function of the contract changes, so Absurd's clients see the
-- same schema they saw before.
--
-- 1. Why spawns stopped notifying unconditionally. A transaction that calls pg_notify takes a
--    database-wide lock when it commits and holds it until its commit record is flushed, so
--    notifying transactions commit one after the other: with fsync on they cannot share a WAL flush
--    (group commit), and concurrent spawns ran at about half the rate of spawns that do not notify.
--    A notification is only of use to a worker that sits idle on its LISTEN connection; a busy
--    worker claims again as soon as a slot frees. So workers now say when they are idle, and a
--    spawn notifies only while some worker of its queue is:
--
--    - kit_idle_listeners (unlogged: nothing here needs to survive a crash, and its writes cost no
--      WAL) holds one row per idle listening worker: (queue, listener, idle_until). A worker writes
--      it through kit_claim_task's six-argument form: a claim that returns fewer runs than asked
--      for marks the worker idle until now + p_listen_seconds (the worker passes a span longer than
--      its poll interval, and every empty poll renews it); a claim that returns all it asked for
--      removes the row. A worker that dies leaves a row that expires by itself.
--    - kit_wake_idle_workers(q) notifies the queue's channel when an unexpired row exists.
--      kit_spawn_task and kit_spawn_tasks call it in the spawning transaction, so the notification
--      is delivered when (and only if) that transaction commits, as before.
--
--    Race analysis. Let S be a spawn's transaction and C an idle worker's claim (both READ
--    COMMITTED). S inserts its run, then reads kit_idle_listeners; C takes its snapshot, finds no
--    due run, then writes its row; each commits afterwards.
--    - If C committed before S read the table, S sees the row and notifies at its commit; the
--      worker is listening (it LISTENs before its first claim and never stops), so it wakes.
--    - If S committed before C took its snapshot, C claims S's run itself.
--    - Otherwise S read the table before C committed and committed after C's snapshot: C does not
--      see the run and S does not see the row, so no notification is sent. This needs the row to
--      be new (a worker going from busy to idle at that moment: a worker that stays idle has its
--      row already, and renewing it does not hide it from S). The worker then finds the run at its
--      next poll, at most one poll interval later (0.25 s by default); a worker with a poll
--      interval over a second also asks kit_seconds_until_next_run after the empty claim, in a new
--      snapshot that sees S's run, and claims at once. A wake-up is therefore never lost for longer
--      than the worker's poll interval. The same holds for a spawn inside a caller's longer
--      transaction, whose read may be older: it is bounded by the same poll.
--    test/sql/idle-wakeups.test.ts plays each of these orders with two sessions.
--
--    Workers of absurd-kit releases before this migration never write kit_idle_listeners: spawns
--    through kit_spawn_task do not wake them, and they find new work at their poll interval.
--
-- 2. kit_spawn_tasks: many spawns in one statement, one round trip and one commit.

create unlogged table if not exists absurd.kit_idle_listeners (
  queue_name text not null,
  listener text not null,
  idle_until timestamptz not null,
  primary key (queue_name, listener)
);

-- kit_wake_idle_workers(q): notifies the queue's wake channel ('absurd_wake_' || md5(q)) when a
-- worker of the queue is idle and listening (a row of kit_idle_listeners not yet expired, by the
-- server's real clock: liveness is about processes, not about the tasks' possibly fake time).
-- Returns whether it notified. The notification goes out when the calling transaction commits.
-- Locks: none (reads kit_idle_listeners).
create function absurd.kit_wake_idle_workers(p_queue_name text) returns boolean
language plpgsql
as $$
begin
  if exists (select 1 from absurd.kit_idle_listeners l
              where l.queue_name = p_queue_name and l.idle_until > clock_timestamp()) then
    perform pg_notify('absurd_wake_' || md5(p_queue_name), '');
    return true;
  end if;
  return false;
end;
$$;

-- kit_claim_task(q, worker, claim_timeout, qty, listener, listen_seconds): kit_claim_task (its
-- columns, queue_lag of migration 000010 included), and the
-- claiming worker's entry in kit_idle_listeners under `listener` (a key unique to one worker loop):
-- fewer runs than qty claimed marks it idle for listen_seconds from now; qty runs claimed removes
-- the mark. A null listener (a worker that does not listen) writes nothing. Expired marks of the
-- queue older than an hour are deleted on the way (workers that died).
-- Locks: those of claim_task; then the listener's row (its own: workers never wait on each other).
create function absurd.kit_claim_task(p_queue_name text, p_worker_id text, p_claim_timeout integer,
                                      p_qty integer, p_listener text, p_listen_seconds double precision)
returns table(run_id uuid, task_id uuid, attempt integer, task_name text, params jsonb,
              retry_strategy jsonb, max_attempts integer, headers jsonb, wake_event text,
              event_payload jsonb, checkpoints jsonb, queue_lag double precision)
language plpgsql
as $$
declare
  v_claimed integer;
begin
  return query select * from absurd.kit_claim_task(p_queue_name, p_worker_id, p_claim_timeout, p_qty);
  get diagnostics v_claimed = row_count;
  if p_listener is null then
    return;
  end if;
  if v_claimed < greatest(coalesce(p_qty, 1), 1) then
    insert into absurd.kit_idle_listeners as l (queue_name, listener, idle_until)
    values (p_queue_name, p_listener,
            clock_timestamp() + greatest(coalesce(p_listen_seconds, 1), 0) * interval '1 second')
    on conflict (queue_name, listener) do update set idle_until = excluded.idle_until;
    delete from absurd.kit_idle_listeners l
     where l.queue_name = p_queue_name and l.idle_until < clock_timestamp() - interval '1 hour';
  else
    delete from absurd.kit_idle_listeners l where l.queue_name = p_queue_name and l.listener = p_listener;
  end if;
end;
$$;

-- kit_spawn_task(q, name, params, options): spawn_task, then kit_wake_idle_workers when a task was
-- created (an idempotent spawn that returns an existing task wakes nobody). Same arguments, same
-- result, same errors as spawn_task. Locks: those of spawn_task.
create function absurd.kit_spawn_task(p_queue_name text, p_task_name text, p_params jsonb, p_options jsonb)
returns table(task_id uuid, run_id uuid, attempt integer, created boolean)
language plpgsql
as $$
declare
  v_created boolean := false;
begin
  for task_id, run_id, attempt, created in
    select s.task_id, s.run_id, s.attempt, s.created
      from absurd.spawn_task(p_queue_name, p_task_name, p_params, p_options) s
  loop
    v_created := v_created or created;
    return next;
  end loop;
  if v_created then
    perform absurd.kit_wake_idle_workers(p_queue_name);
  end if;
end;
$$;

-- kit_spawn_tasks(q, tasks): spawn_task for every element of the JSON array `tasks`, each an object
-- {"task_name": …, "params": …, "options": {…}} (options as spawn_task's), in one statement.
-- Returns one row per element, in the array's order, as spawn_task returns it: an element whose
-- idempotency key is already used in the queue (by an earlier task, or by an earlier element of the
-- same array) creates nothing and returns that task with created = false.
-- Every element is checked before anything is written; an invalid one raises P0001 naming it:
-- 'tasks[2]: max_attempts must be >= 1' (index from 0). Then, on an unpartitioned queue, the tasks
-- and their first runs are inserted by two set-based statements; on a partitioned queue (whose
-- keys live in the i_<q> registry) spawn_task is called for each element in order.
-- Wakes idle workers once (kit_wake_idle_workers) when any task was created.
-- Locks: inserts only; an idempotency conflict waits for the other inserting transaction, and a key
-- that the other transaction then releases raises 40001 as spawn_task does.
create function absurd.kit_spawn_tasks(p_queue_name text, p_tasks jsonb)
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
               absurd.portable_uuidv7() as run_id
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
        insert into absurd.%2$I (run_id, task_id, attempt, state, available_at)
        select t.last_attempt_run, t.task_id, 1, 'pending', $2 from tasks t
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
