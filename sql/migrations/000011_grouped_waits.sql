-- absurd-kit engine, migration 000011: one suspension for waits that start together.
--
-- A handler that awaits several events at once (`Promise.all` over `ctx.awaitEvent` or
-- `ctx.awaitTaskResult`, `ctx.awaitAll`) used to reach await_event once per wait: the first call
-- suspended the run and every later one was refused ("must be running to await events"), so the
-- run resumed at the first event and suspended again for the next, once per event.
--
-- 1. kit_await_events registers a group of waits in one call and suspends the run once. In mode
--    'all' the run resumes when every event of the group has been emitted (or the group's timeout
--    passes); in mode 'any' when the first one is.
-- 2. emit_event learns mode 'all': an emission answering one wait of such a group while others are
--    still open writes that wait's checkpoint and removes the wait, without waking the run; the
--    emission answering the last open wait wakes it as before. Runs waiting any other way (every
--    wait made by await_event, hence every run of Absurd's own SDKs) are woken exactly as before.
--
-- A run waiting in a group carries wake_event '$awaitEvents:all' or '$awaitEvents:any' (no event
-- name starts with '$awaitEvents:' in practice; await_event's timeout detection compares with the
-- awaited event's own name and so never matches it).

-- kit_await_events(q, task, run, waits, timeout, wake) → one row per wait, in the order given:
--   step_name, payload (the wait's value when resolved), resolved, and the group's outcome (the same
--   on every row): 'ready' (mode 'all': every wait resolved; mode 'any': at least one), 'timed_out'
--   (the run was woken by the group's timeout: the waits not resolved are not waited for again by
--   this call), or 'suspended' (the run now sleeps; the caller ends the execution).
-- p_waits: a JSON array of {"step": <checkpoint name>, "event": <event name>}, step names unique.
-- A wait is resolved by its checkpoint (a replay), else by its event when emitted: its payload is
-- then written as the step's checkpoint, as await_event does. Suspending replaces every wait the
-- run had registered. p_timeout: seconds until the group's timeout (null: none).
-- Errors as await_event's (AB001 for a cancelled task; a run not running is refused).
-- Locks: every event row FOR SHARE, in event name order, then the run and its task FOR UPDATE (the
-- order of await_event and emit_event, so that no emission is lost between the look and the wait).
create function absurd.kit_await_events(p_queue_name text, p_task_id uuid, p_run_id uuid, p_waits jsonb,
                                        p_timeout integer default null, p_wake text default 'all')
returns table(step_name text, payload jsonb, resolved boolean, outcome text)
language plpgsql
as $$
declare
  v_now timestamptz := absurd.current_time();
  v_timeout_at timestamptz;
  v_marker text;
  v_steps text[];
  v_events text[];
  v_run_state text;
  v_run_payload jsonb;
  v_wake_event text;
  v_task_state text;
  v_payloads jsonb[];
  v_from_event boolean[];
  v_resolved integer;
  v_outcome text;
begin
  if p_wake is null or p_wake not in ('all', 'any') then
    raise exception 'wake must be ''all'' or ''any'' (got %)', coalesce(p_wake, 'null');
  end if;
  if p_waits is null or jsonb_typeof(p_waits) <> 'array' or jsonb_array_length(p_waits) = 0 then
    raise exception 'waits must be a non-empty JSON array of {"step", "event"}';
  end if;
  if p_timeout < 0 then
    raise exception 'timeout must be non-negative';
  end if;
  if p_timeout is not null then
    v_timeout_at := v_now + p_timeout * interval '1 second';
  end if;
  v_marker := '$awaitEvents:' || p_wake;

  select array_agg(w.value ->> 'step' order by w.ordinality), array_agg(w.value ->> 'event' order by w.ordinality)
    into v_steps, v_events
    from jsonb_array_elements(p_waits) with ordinality as w;
  if exists (select 1 from unnest(v_events) as e(name) where e.name is null or btrim(e.name) = '') then
    raise exception 'event_name must be provided';
  end if;
  if exists (select 1 from unnest(v_steps) as s(name) where s.name is null or btrim(s.name) = '') then
    raise exception 'every wait needs a step name';
  end if;
  if (select count(distinct s.name) from unnest(v_steps) as s(name)) <> cardinality(v_steps) then
    raise exception 'the step names of a group of waits must be unique';
  end if;

  execute format(
    'insert into absurd.%I (event_name, payload, emitted_at)
     select distinct e.name, null::jsonb, ''epoch''::timestamptz from unnest($1::text[]) as e(name) order by 1
     on conflict (event_name) do nothing',
    'e_' || p_queue_name)
    using v_events;
  execute format(
    'select 1 from absurd.%I e where e.event_name = any($1) order by e.event_name for share',
    'e_' || p_queue_name)
    using v_events;

  execute format(
    'select r.state, r.event_payload, r.wake_event, t.state
       from absurd.%I r
       join absurd.%I t on t.task_id = r.task_id
      where r.run_id = $1
        for update of r, t',
    'r_' || p_queue_name, 't_' || p_queue_name)
    into v_run_state, v_run_payload, v_wake_event, v_task_state using p_run_id;
  if v_run_state is null then
    raise exception 'Run "%" not found while awaiting event', p_run_id;
  end if;
  if v_task_state = 'cancelled' then
    raise exception 'Task has been cancelled' using errcode = 'AB001';
  end if;
  if v_run_payload is not null then
    execute format('update absurd.%I r set event_payload = null where r.run_id = $1', 'r_' || p_queue_name)
      using p_run_id;
  end if;
  if v_run_state <> 'running' then
    raise exception 'Run "%" must be running to await events', p_run_id;
  end if;

  -- Each wait's value: its checkpoint, else its event's payload once emitted.
  execute format(
    'select array_agg(coalesce(c.state, e.payload) order by w.ordinality),
            array_agg(c.state is null and e.payload is not null order by w.ordinality)
       from unnest($1::text[], $2::text[]) with ordinality as w(step, event, ordinality)
       left join absurd.%I c on c.task_id = $3 and c.checkpoint_name = w.step
       left join absurd.%I e on e.event_name = w.event',
    'c_' || p_queue_name, 'e_' || p_queue_name)
    into v_payloads, v_from_event using v_steps, v_events, p_task_id;

  execute format(
    'insert into absurd.%I (task_id, checkpoint_name, state, status, owner_run_id, updated_at)
     select $1, g.step, g.payload, ''committed'', $2, $3
       from unnest($4::text[], $5::jsonb[], $6::boolean[]) as g(step, payload, from_event)
      where g.from_event
     on conflict (task_id, checkpoint_name) do update
        set state = excluded.state, status = ''committed'', owner_run_id = excluded.owner_run_id,
            updated_at = excluded.updated_at',
    'c_' || p_queue_name)
    using p_task_id, p_run_id, v_now, v_steps, v_payloads, v_from_event;

  select count(*) filter (where g.payload is not null) into v_resolved from unnest(v_payloads) as g(payload);
  if v_resolved = cardinality(v_steps) or (p_wake = 'any' and v_resolved > 0) then
    v_outcome := 'ready';
  elsif v_wake_event like '$awaitEvents:%' and v_run_payload is null then
    -- Claimed again because the group's timeout passed: report it, do not wait again.
    execute format('update absurd.%I r set wake_event = null where r.run_id = $1', 'r_' || p_queue_name)
      using p_run_id;
    v_outcome := 'timed_out';
  else
    execute format(
      'with cleared as (
         delete from absurd.%1$I w where w.run_id = $2
       ),
       waits as (
         insert into absurd.%1$I (task_id, run_id, step_name, event_name, timeout_at, created_at)
         select $1, $2, g.step, g.event, $3, $4
           from unnest($6::text[], $7::text[], $8::jsonb[]) as g(step, event, payload)
          where g.payload is null
         on conflict (run_id, step_name) do update
            set event_name = excluded.event_name, timeout_at = excluded.timeout_at,
                created_at = excluded.created_at
       ),
       run as (
         update absurd.%2$I r
            set state = ''sleeping'', claimed_by = null, claim_expires_at = null,
                available_at = coalesce($3, ''infinity''), wake_event = $5, event_payload = null
          where r.run_id = $2
       )
       update absurd.%3$I t set state = ''sleeping'' where t.task_id = $1',
      'w_' || p_queue_name, 'r_' || p_queue_name, 't_' || p_queue_name)
      using p_task_id, p_run_id, v_timeout_at, v_now, v_marker, v_steps, v_events, v_payloads;
    v_outcome := 'suspended';
  end if;

  return query
    select g.step, g.payload, g.payload is not null, v_outcome
      from unnest(v_steps, v_payloads) with ordinality as g(step, payload, ordinality)
     order by g.ordinality;
end;
$$;

-- emit_event: as in migration 000003, except for runs waiting in a group of mode 'all' (see above)
-- that still have another open wait: this emission checkpoints its own wait and removes it, and
-- leaves the run asleep. Such runs are locked first, so that of two emissions answering the last
-- two waits of a group, the later one sees the earlier one's removal and wakes the run.
create or replace function absurd.emit_event(p_queue_name text, p_event_name text, p_payload jsonb default null)
returns void
language plpgsql
as $$
declare
  v_now timestamptz := absurd.current_time();
  v_payload jsonb := coalesce(p_payload, 'null'::jsonb);
  v_emitted boolean;
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
     )
     delete from absurd.%1$I w using answered a where w.run_id = a.run_id and w.event_name = $1',
    'w_' || p_queue_name, 'r_' || p_queue_name, 'c_' || p_queue_name, 't_' || p_queue_name)
    using p_event_name, v_payload, v_now;
end;
$$;
