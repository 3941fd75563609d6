-- absurd-kit engine, migration 000003: checkpoints, heartbeats and events.
--
-- Checkpoints (c_<q>) hold step results keyed by (task_id, checkpoint_name). Events (e_<q>) are keyed
-- by name and immutable once emitted: payload NULL is the "not emitted yet" sentinel that await_event
-- inserts so that it has a row to lock. Waits (w_<q>) register a sleeping run's interest in an event.
--
-- Lock order for events: the event row first, then runs, then tasks. await_event holds the event row
-- FOR SHARE while it decides to suspend; emit_event's upsert needs that row exclusively, so an emission
-- waits for an in-flight await_event and then sees its wait row: no wake-up is lost.

-- set_task_checkpoint_state(q, task, step, state, owner_run, extend_claim_by): stores a step result.
-- AB001 when the owner run's task was cancelled, AB002 when the owner run already failed. Extends the
-- owner run's lease to now + extend_claim_by seconds when positive and the run holds a lease. An older
-- attempt never overwrites a checkpoint written by a newer attempt (silently ignored).
-- Locks: the checkpoint row (upsert); the run row only when extending its lease.
create function absurd.set_task_checkpoint_state(p_queue_name text, p_task_id uuid, p_step_name text,
                                                 p_state jsonb, p_owner_run uuid,
                                                 p_extend_claim_by integer default null)
returns void
language plpgsql
as $$
declare
  v_now timestamptz := absurd.current_time();
  v_attempt integer;
  v_run_state text;
  v_task_state text;
begin
  if p_step_name is null or btrim(p_step_name) = '' then
    raise exception 'step_name must be provided';
  end if;
  execute format(
    'select r.attempt, r.state, t.state
       from absurd.%I r
       left join absurd.%I t on t.task_id = r.task_id
      where r.run_id = $1',
    'r_' || p_queue_name, 't_' || p_queue_name)
    into v_attempt, v_run_state, v_task_state using p_owner_run;
  if v_run_state is null then
    raise exception 'Run "%" not found for checkpoint', p_owner_run;
  end if;
  if v_task_state = 'cancelled' then
    raise exception 'Task has been cancelled' using errcode = 'AB001';
  end if;
  if v_run_state = 'failed' then
    raise exception 'Run "%" has already failed in queue "%"', p_owner_run, p_queue_name using errcode = 'AB002';
  end if;

  if p_extend_claim_by > 0 then
    execute format(
      'update absurd.%I r set claim_expires_at = $2
        where r.run_id = $1 and r.state = ''running'' and r.claim_expires_at is not null',
      'r_' || p_queue_name)
      using p_owner_run, v_now + p_extend_claim_by * interval '1 second';
  end if;

  execute format(
    'insert into absurd.%1$I as c (task_id, checkpoint_name, state, status, owner_run_id, updated_at)
     values ($1, $2, $3, ''committed'', $4, $5)
     on conflict (task_id, checkpoint_name) do update
        set state = excluded.state, status = ''committed'', owner_run_id = excluded.owner_run_id,
            updated_at = excluded.updated_at
      where coalesce((select r.attempt from absurd.%2$I r where r.run_id = c.owner_run_id), 0) <= $6',
    'c_' || p_queue_name, 'r_' || p_queue_name)
    using p_task_id, p_step_name, p_state, p_owner_run, v_now, v_attempt;
end;
$$;

-- get_task_checkpoint_state(q, task, step, include_pending): the checkpoint, if committed (or any
-- status with include_pending). Reads only.
create function absurd.get_task_checkpoint_state(p_queue_name text, p_task_id uuid, p_step_name text,
                                                 p_include_pending boolean default false)
returns table(checkpoint_name text, state jsonb, status text, owner_run_id uuid, updated_at timestamptz)
language plpgsql
as $$
begin
  return query execute format(
    'select c.checkpoint_name, c.state, c.status, c.owner_run_id, c.updated_at
       from absurd.%I c
      where c.task_id = $1 and c.checkpoint_name = $2 and (c.status = ''committed'' or $3)',
    'c_' || p_queue_name)
    using p_task_id, p_step_name, coalesce(p_include_pending, false);
end;
$$;

-- get_task_checkpoint_states(q, task, run): every committed checkpoint of the task visible to the
-- run's attempt (checkpoints written by later attempts are hidden), oldest first. Reads only.
create function absurd.get_task_checkpoint_states(p_queue_name text, p_task_id uuid, p_run_id uuid)
returns table(checkpoint_name text, state jsonb, status text, owner_run_id uuid, updated_at timestamptz)
language plpgsql
as $$
declare
  v_task_id uuid;
  v_attempt integer;
begin
  execute format('select r.task_id, r.attempt from absurd.%I r where r.run_id = $1', 'r_' || p_queue_name)
    into v_task_id, v_attempt using p_run_id;
  if v_task_id is null then
    raise exception 'Run "%" not found in queue "%"', p_run_id, p_queue_name;
  end if;
  if v_task_id <> p_task_id then
    raise exception 'Run "%" does not belong to task "%" in queue "%"', p_run_id, p_task_id, p_queue_name;
  end if;
  return query execute format(
    'select c.checkpoint_name, c.state, c.status, c.owner_run_id, c.updated_at
       from absurd.%I c
       left join absurd.%I r on r.run_id = c.owner_run_id
      where c.task_id = $1 and c.status = ''committed'' and (r.attempt is null or r.attempt <= $2)
      order by c.updated_at, c.checkpoint_name',
    'c_' || p_queue_name, 'r_' || p_queue_name)
    using p_task_id, v_attempt;
end;
$$;

-- extend_claim(q, run, extend_by): heartbeat; the run's lease ends extend_by seconds from now.
-- AB001 when the task was cancelled (checked first), AB002 when the run already failed.
-- Locks: the run and its task FOR UPDATE, together.
create function absurd.extend_claim(p_queue_name text, p_run_id uuid, p_extend_by integer) returns void
language plpgsql
as $$
declare
  v_now timestamptz := absurd.current_time();
  v_run_state text;
  v_expires timestamptz;
  v_task_state text;
begin
  if p_extend_by is null or p_extend_by <= 0 then
    raise exception 'extend_by must be > 0';
  end if;
  execute format(
    'select r.state, r.claim_expires_at, t.state
       from absurd.%I r
       join absurd.%I t on t.task_id = r.task_id
      where r.run_id = $1
        for update of r, t',
    'r_' || p_queue_name, 't_' || p_queue_name)
    into v_run_state, v_expires, v_task_state using p_run_id;
  if v_run_state is null then
    raise exception 'Run "%" not found in queue "%"', p_run_id, p_queue_name;
  end if;
  if v_task_state = 'cancelled' then
    raise exception 'Task has been cancelled' using errcode = 'AB001';
  end if;
  if v_run_state <> 'running' then
    if v_run_state = 'failed' then
      raise exception 'Run "%" has already failed in queue "%"', p_run_id, p_queue_name using errcode = 'AB002';
    end if;
    raise exception 'Run "%" is not currently running in queue "%"', p_run_id, p_queue_name;
  end if;
  if v_expires is null then
    raise exception 'Run "%" does not have an active claim in queue "%"', p_run_id, p_queue_name;
  end if;
  execute format('update absurd.%I r set claim_expires_at = $2 where r.run_id = $1', 'r_' || p_queue_name)
    using p_run_id, v_now + p_extend_by * interval '1 second';
end;
$$;

-- await_event(q, task, run, step, event, timeout): resolves a step from an event or suspends the run.
-- Returns (false, payload) when the step's checkpoint exists or the event was already emitted (the
-- payload is then checkpointed); (false, NULL) when the run was resumed because its wait timed out;
-- otherwise registers a wait, puts the run and task to sleep until the timeout (or forever) and
-- returns (true, NULL). AB001 when the task was cancelled.
-- Locks: the event row (sentinel inserted if missing) FOR SHARE, then the run and task FOR UPDATE.
create function absurd.await_event(p_queue_name text, p_task_id uuid, p_run_id uuid, p_step_name text,
                                   p_event_name text, p_timeout integer default null)
returns table(should_suspend boolean, payload jsonb)
language plpgsql
as $$
declare
  v_now timestamptz := absurd.current_time();
  v_timeout_at timestamptz;
  v_checkpoint jsonb;
  v_event_payload jsonb;
  v_run_state text;
  v_run_payload jsonb;
  v_wake_event text;
  v_task_state text;
  v_resolved jsonb;
begin
  if p_event_name is null or btrim(p_event_name) = '' then
    raise exception 'event_name must be provided';
  end if;
  if p_timeout < 0 then
    raise exception 'timeout must be non-negative';
  end if;
  if p_timeout is not null then
    v_timeout_at := v_now + p_timeout * interval '1 second';
  end if;

  -- A step already resolved replays its value, whatever the task's state.
  execute format('select c.state from absurd.%I c where c.task_id = $1 and c.checkpoint_name = $2',
                 'c_' || p_queue_name)
    into v_checkpoint using p_task_id, p_step_name;
  if v_checkpoint is not null then
    return query select false, v_checkpoint;
    return;
  end if;

  execute format(
    'insert into absurd.%I (event_name, payload, emitted_at) values ($1, null, ''epoch'')
     on conflict (event_name) do nothing',
    'e_' || p_queue_name)
    using p_event_name;
  execute format('select e.payload from absurd.%I e where e.event_name = $1 for share', 'e_' || p_queue_name)
    into v_event_payload using p_event_name;

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
    if v_event_payload is not null and v_event_payload = v_run_payload then
      v_resolved := v_event_payload;
    end if;
  end if;

  if v_run_state <> 'running' then
    raise exception 'Run "%" must be running to await events', p_run_id;
  end if;

  if v_resolved is null and v_event_payload is not null then
    v_resolved := v_event_payload;
  end if;

  if v_resolved is not null then
    execute format(
      'insert into absurd.%I (task_id, checkpoint_name, state, status, owner_run_id, updated_at)
       values ($1, $2, $3, ''committed'', $4, $5)
       on conflict (task_id, checkpoint_name) do update
          set state = excluded.state, status = ''committed'', owner_run_id = excluded.owner_run_id,
              updated_at = excluded.updated_at',
      'c_' || p_queue_name)
      using p_task_id, p_step_name, v_resolved, p_run_id, v_now;
    return query select false, v_resolved;
    return;
  end if;

  -- Claimed again because this very wait timed out: report the timeout, do not wait again.
  if v_wake_event = p_event_name and v_run_payload is null then
    execute format('update absurd.%I r set wake_event = null where r.run_id = $1', 'r_' || p_queue_name)
      using p_run_id;
    return query select false, null::jsonb;
    return;
  end if;

  execute format(
    'with wait as (
       insert into absurd.%1$I (task_id, run_id, step_name, event_name, timeout_at, created_at)
       values ($1, $2, $3, $4, $5, $6)
       on conflict (run_id, step_name) do update
          set event_name = excluded.event_name, timeout_at = excluded.timeout_at,
              created_at = excluded.created_at
     ),
     run as (
       update absurd.%2$I r
          set state = ''sleeping'', claimed_by = null, claim_expires_at = null,
              available_at = coalesce($5, ''infinity''), wake_event = $4, event_payload = null
        where r.run_id = $2
     )
     update absurd.%3$I t set state = ''sleeping'' where t.task_id = $1',
    'w_' || p_queue_name, 'r_' || p_queue_name, 't_' || p_queue_name)
    using p_task_id, p_run_id, p_step_name, p_event_name, v_timeout_at, v_now;
  return query select true, null::jsonb;
end;
$$;

-- emit_event(q, event, payload): emits an event once. The first emission stores the payload (SQL NULL
-- becomes JSON null) and wakes every run sleeping on an unexpired wait for it: the run becomes pending
-- with the payload, the waiting step's checkpoint is written and the wait removed. Later emissions of
-- the same name change nothing and wake nobody.
-- Locks: the event row (upsert) first, then the waiting runs, their checkpoints and their tasks.
create function absurd.emit_event(p_queue_name text, p_event_name text, p_payload jsonb default null)
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
    'with expired as (
       delete from absurd.%1$I w
        where w.event_name = $1 and w.timeout_at is not null and w.timeout_at <= $3
     ),
     woken as (
       update absurd.%2$I r
          set state = ''pending'', available_at = $3, wake_event = null, event_payload = $2,
              claimed_by = null, claim_expires_at = null
         from absurd.%1$I w
        where w.event_name = $1 and (w.timeout_at is null or w.timeout_at > $3)
          and r.run_id = w.run_id and r.state = ''sleeping''
       returning r.run_id, r.task_id
     ),
     checkpoints as (
       insert into absurd.%3$I (task_id, checkpoint_name, state, status, owner_run_id, updated_at)
       select w.task_id, w.step_name, $2, ''committed'', w.run_id, $3
         from absurd.%1$I w
         join woken on woken.run_id = w.run_id
        where w.event_name = $1
       on conflict (task_id, checkpoint_name) do update
          set state = excluded.state, status = ''committed'', owner_run_id = excluded.owner_run_id,
              updated_at = excluded.updated_at
     ),
     tasks as (
       update absurd.%4$I t set state = ''pending'' from woken where t.task_id = woken.task_id
     )
     delete from absurd.%1$I w using woken where w.run_id = woken.run_id and w.event_name = $1',
    'w_' || p_queue_name, 'r_' || p_queue_name, 'c_' || p_queue_name, 't_' || p_queue_name)
    using p_event_name, v_payload, v_now;
end;
$$;
