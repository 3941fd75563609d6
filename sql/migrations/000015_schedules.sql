-- absurd-kit engine, migration 000015: cron schedules.
--
-- A schedule spawns one task per tick of a cron expression, in an IANA time zone. The engine alone
-- decides when a tick fires, so that every worker of every SDK drives schedules the same way:
--
-- - absurd.kit_schedules holds one row per schedule, with the instant of its next tick
--   (next_fire_at, computed in the schedule's time zone).
-- - claim_task fires the due schedules of its queue before it claims (kit_fire_schedules): any
--   worker that claims on the queue, absurd-kit's or Absurd's own SDKs', spawns the ticks. A queue
--   on which nobody claims fires nothing; the first claim after that applies the catch-up policy.
-- - Exactly once per tick: the schedule row is taken FOR UPDATE SKIP LOCKED and advanced in the
--   same transaction as the spawn, and the spawn carries the idempotency key
--   '$schedule:<name>:<tick in UTC, ISO 8601>', so a second firing of a tick creates nothing even
--   if it got past the row lock (e.g. after an operator reset next_fire_at by hand).
--
-- Contract functions are unchanged except claim_task, which gains one statement at the start of
-- its body (its arguments, columns, locks and errors stay those of migration 000002; the statement
-- is added by migration 000016, which redefines claim_task); clients that never create a schedule
-- see no difference but one index probe per claim.
--
-- Cron syntax (kit_cron_parse): five fields, minute (0-59), hour (0-23), day of month (1-31),
-- month (1-12 or JAN-DEC) and day of week (0-7 or SUN-SAT; 0 and 7 are both Sunday). Each field is
-- a comma-separated list of `*`, `n`, `a-b`, each optionally followed by `/step` (`*/15`, `1-5/2`,
-- `10/20` = 10-max/20). Names are case-insensitive and allowed in ranges (`MON-FRI`). The macros
-- @yearly (@annually), @monthly, @weekly, @daily (@midnight) and @hourly stand for their usual
-- five fields. Days follow Vixie cron: when both day fields are restricted (neither starts with
-- `*`) a day matches if EITHER matches; otherwise both must (so the restricted one decides).
--
-- Time zones and DST (kit_cron_next): ticks are local wall-clock times in the schedule's zone.
-- - A local time that a spring-forward gap skips (02:30 on the night New York goes from 02:00 EST
--   to 03:00 EDT) fires once, at the first instant after the gap (03:00 EDT); several local times
--   in one gap fire once together.
-- - A local time that a fall-back repeats (01:30 on the night New York goes from 02:00 EDT back to
--   01:00 EST) fires once, at its first occurrence (01:30 EDT); the repeated hour fires nothing.
--
-- Catch-up (kit_fire_schedules), when claims come late (workers down, queue saturated): the
-- schedule's latest tick not after now is computed directly (a binary search over kit_cron_next,
-- never one step per missed tick); every earlier missed tick is dropped.
-- - 'latest': that latest tick fires once, however late.
-- - 'skip' (the default): that latest tick fires only when it is at most 60 seconds late; an older
--   one is dropped too, and the schedule waits for its next tick.
-- Either way next_fire_at moves to the first tick after now.

create table if not exists absurd.kit_schedules (
  schedule_name text primary key check (btrim(schedule_name) <> ''),
  queue_name text not null,
  task_name text not null check (btrim(task_name) <> ''),
  cron text not null,
  timezone text not null default 'UTC',
  params jsonb not null default 'null'::jsonb,
  options jsonb not null default '{}'::jsonb check (jsonb_typeof(options) = 'object'),
  catch_up text not null default 'skip' check (catch_up in ('skip', 'latest')),
  paused boolean not null default false,
  next_fire_at timestamptz,
  last_fired_at timestamptz,
  last_task_id uuid,
  last_error text,
  created_at timestamptz not null default absurd.current_time(),
  updated_at timestamptz not null default absurd.current_time()
);

-- The probe of kit_fire_schedules and kit_seconds_until_next_run: a queue's unpaused schedules by
-- next tick. A queue without schedules costs one descent of this (small) index per claim.
create index if not exists kit_schedules_due on absurd.kit_schedules (queue_name, next_fire_at) where not paused;

-- kit_cron_field(cron, field, text, min, max, names): the sorted values one cron field allows.
-- `names` spells the values from `min` on (months from JAN = 1, weekdays from SUN = 0).
-- Raises AB010 naming the field for any syntax error or value out of range. Locks: none.
create function absurd.kit_cron_field(p_cron text, p_field text, p_text text, p_min integer, p_max integer,
                                      p_names text[] default null)
returns integer[]
language plpgsql immutable
as $$
declare
  v_item text;
  v_base text;
  v_step integer;
  v_parts text[];
  v_from integer;
  v_to integer;
  v_bound text;
  v_value integer;
  v_values integer[] := '{}';
  v_m text[];
begin
  if p_text is null or p_text = '' then
    raise exception 'invalid cron expression "%": % field is empty', p_cron, p_field using errcode = 'AB010';
  end if;
  foreach v_item in array string_to_array(p_text, ',') loop
    v_m := regexp_match(v_item, '^([^/]*)(?:/([0-9]+))?$');
    if v_m is null or v_m[1] = '' then
      raise exception 'invalid cron expression "%": % field "%": "%" is not a value, range or step',
        p_cron, p_field, p_text, v_item using errcode = 'AB010';
    end if;
    v_base := v_m[1];
    v_step := case when v_m[2] is null then null else least(v_m[2]::numeric, 1000)::integer end;
    if v_step is not null and v_step < 1 then
      raise exception 'invalid cron expression "%": % field "%": step must be at least 1',
        p_cron, p_field, p_text using errcode = 'AB010';
    end if;
    if v_base = '*' then
      v_from := p_min;
      v_to := p_max;
    else
      v_parts := string_to_array(v_base, '-');
      if array_length(v_parts, 1) > 2 then
        raise exception 'invalid cron expression "%": % field "%": "%" is not a range',
          p_cron, p_field, p_text, v_base using errcode = 'AB010';
      end if;
      for i in 1 .. array_length(v_parts, 1) loop
        v_bound := lower(v_parts[i]);
        if v_bound ~ '^[0-9]{1,4}$' then
          v_value := v_bound::integer;
        elsif p_names is not null and v_bound = any (p_names) then
          v_value := array_position(p_names, v_bound) - 1 + p_min;
        else
          raise exception 'invalid cron expression "%": % field "%": "%" is not a number%',
            p_cron, p_field, p_text, v_parts[i],
            case when p_names is null then '' else ' or a name (' || upper(array_to_string(p_names, ', ')) || ')' end
            using errcode = 'AB010';
        end if;
        if v_value < p_min or v_value > p_max then
          raise exception 'invalid cron expression "%": % field "%": % is out of range %-%',
            p_cron, p_field, p_text, v_value, p_min, p_max using errcode = 'AB010';
        end if;
        if i = 1 then v_from := v_value; end if;
        v_to := v_value;
      end loop;
      if array_length(v_parts, 1) = 1 and v_step is not null then
        v_to := p_max;  -- `10/20`: from 10 to the field's maximum
      end if;
      if v_from > v_to then
        raise exception 'invalid cron expression "%": % field "%": range "%" goes backwards',
          p_cron, p_field, p_text, v_base using errcode = 'AB010';
      end if;
    end if;
    v_values := v_values || array(select generate_series(v_from, v_to, coalesce(v_step, 1)));
  end loop;
  return array(select distinct v from unnest(v_values) v order by v);
end;
$$;

-- kit_cron_parse(cron): the parsed expression as JSON {"minute": [...], "hour": [...],
-- "dom": [...], "month": [...], "dow": [...], "dom_star": bool, "dow_star": bool} (sorted values;
-- dow 7 is folded into 0; *_star tells whether the day field starts with `*`, for the Vixie rule).
-- Accepts the macros @yearly, @annually, @monthly, @weekly, @daily, @midnight and @hourly.
-- Raises AB010 for anything else, naming the field ("invalid cron expression "…": hour field
-- "24": 24 is out of range 0-23"). Locks: none.
create function absurd.kit_cron_parse(p_cron text) returns jsonb
language plpgsql immutable
as $$
declare
  v_text text := btrim(coalesce(p_cron, ''));
  v_fields text[];
  v_dow integer[];
begin
  v_text := case lower(v_text)
    when '@yearly' then '0 0 1 1 *'
    when '@annually' then '0 0 1 1 *'
    when '@monthly' then '0 0 1 * *'
    when '@weekly' then '0 0 * * 0'
    when '@daily' then '0 0 * * *'
    when '@midnight' then '0 0 * * *'
    when '@hourly' then '0 * * * *'
    else v_text end;
  if v_text like '@%' then
    raise exception 'invalid cron expression "%": unknown macro (use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)',
      p_cron using errcode = 'AB010';
  end if;
  v_fields := regexp_split_to_array(v_text, '\s+');
  if v_text = '' or array_length(v_fields, 1) <> 5 then
    raise exception 'invalid cron expression "%": expected 5 fields (minute hour day-of-month month day-of-week), got %',
      p_cron, case when v_text = '' then 0 else array_length(v_fields, 1) end using errcode = 'AB010';
  end if;
  v_dow := absurd.kit_cron_field(p_cron, 'day-of-week', v_fields[5], 0, 7,
                                 array['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat']);
  return jsonb_build_object(
    'minute', to_jsonb(absurd.kit_cron_field(p_cron, 'minute', v_fields[1], 0, 59)),
    'hour', to_jsonb(absurd.kit_cron_field(p_cron, 'hour', v_fields[2], 0, 23)),
    'dom', to_jsonb(absurd.kit_cron_field(p_cron, 'day-of-month', v_fields[3], 1, 31)),
    'month', to_jsonb(absurd.kit_cron_field(p_cron, 'month', v_fields[4], 1, 12,
                      array['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'])),
    'dow', to_jsonb(array(select distinct d % 7 from unnest(v_dow) d order by 1)),
    'dom_star', v_fields[3] like '*%',
    'dow_star', v_fields[5] like '*%');
end;
$$;

-- kit_check_timezone(tz): returns tz when it names a zone of pg_timezone_names (IANA names such
-- as 'Europe/Berlin', and 'UTC'); raises AB011 otherwise. Abbreviations ('EST') and POSIX offsets
-- are refused: their meaning does not follow DST. Locks: none.
create function absurd.kit_check_timezone(p_timezone text) returns text
language plpgsql stable
as $$
begin
  if p_timezone is null or not exists (select 1 from pg_timezone_names z where z.name = p_timezone) then
    raise exception 'unknown time zone "%": use an IANA name such as "Europe/Berlin" or "UTC"', p_timezone
      using errcode = 'AB011';
  end if;
  return p_timezone;
end;
$$;

-- kit_local_instant(local, tz): the instant at which the wall-clock time `local` of zone `tz`
-- fires: the only instant showing it; the first of two when a fall-back repeats it; the first
-- instant after the gap when a spring-forward skips it. Locks: none.
create function absurd.kit_local_instant(p_local timestamp, p_timezone text) returns timestamptz
language plpgsql stable
as $$
declare
  v_utc timestamptz := p_local at time zone 'UTC';
  -- The zone's offsets a day before and after: the two sides of any transition near `local`.
  v_before interval := ((v_utc - interval '1 day') at time zone p_timezone) - ((v_utc - interval '1 day') at time zone 'UTC');
  v_after interval := ((v_utc + interval '1 day') at time zone p_timezone) - ((v_utc + interval '1 day') at time zone 'UTC');
  v_candidates timestamptz[] := array[v_utc - v_before, v_utc - v_after, p_local at time zone p_timezone];
  v_found timestamptz;
  v_low double precision;
  v_high double precision;
  v_mid double precision;
begin
  select min(c) into v_found from unnest(v_candidates) c where (c at time zone p_timezone) = p_local;
  if v_found is not null then
    return v_found;
  end if;
  -- In a gap: the first whole second whose local time is past `local` (transitions fall on whole
  -- seconds), between a candidate before the gap and one after it.
  select extract(epoch from max(c)) into v_low from unnest(v_candidates) c where (c at time zone p_timezone) < p_local;
  select extract(epoch from min(c)) into v_high from unnest(v_candidates) c where (c at time zone p_timezone) > p_local;
  if v_low is null or v_high is null then
    return p_local at time zone p_timezone;
  end if;
  while v_high - v_low > 1 loop
    v_mid := floor((v_low + v_high) / 2);
    if (to_timestamp(v_mid) at time zone p_timezone) > p_local then
      v_high := v_mid;
    else
      v_low := v_mid;
    end if;
  end loop;
  return to_timestamp(v_high);
end;
$$;

-- kit_cron_next(cron, tz, after): the first tick of `cron` in zone `tz` strictly after `after`,
-- by the DST rule of this file's header; NULL when none comes within 12 years (e.g. '0 0 30 2 *').
-- Walks days (skipping months the expression excludes), and only on a matching day its hours and
-- minutes: a few hundred steps at most, never one per minute. AB010 for an invalid expression.
-- Locks: none.
create function absurd.kit_cron_next(p_cron text, p_timezone text, p_after timestamptz) returns timestamptz
language plpgsql stable
as $$
declare
  v_spec jsonb := absurd.kit_cron_parse(p_cron);
  v_minutes integer[] := array(select jsonb_array_elements_text(v_spec -> 'minute')::integer);
  v_hours integer[] := array(select jsonb_array_elements_text(v_spec -> 'hour')::integer);
  v_doms integer[] := array(select jsonb_array_elements_text(v_spec -> 'dom')::integer);
  v_months integer[] := array(select jsonb_array_elements_text(v_spec -> 'month')::integer);
  v_dows integer[] := array(select jsonb_array_elements_text(v_spec -> 'dow')::integer);
  v_either boolean := not (v_spec ->> 'dom_star')::boolean and not (v_spec ->> 'dow_star')::boolean;
  -- Local minutes before this one cannot fire after `after` (the fire instant only ever moves a
  -- local time later, to the end of a gap).
  v_start timestamp := date_trunc('minute', p_after at time zone p_timezone);
  v_day date := v_start::date;
  v_last date := v_start::date + interval '12 years';
  v_dom_ok boolean;
  v_dow_ok boolean;
  v_hour integer;
  v_minute integer;
  v_local timestamp;
  v_at timestamptz;
begin
  while v_day <= v_last loop
    if not (extract(month from v_day)::integer = any (v_months)) then
      v_day := (date_trunc('month', v_day) + interval '1 month')::date;
      continue;
    end if;
    v_dom_ok := extract(day from v_day)::integer = any (v_doms);
    v_dow_ok := extract(dow from v_day)::integer = any (v_dows);
    if (v_either and (v_dom_ok or v_dow_ok)) or (not v_either and v_dom_ok and v_dow_ok) then
      foreach v_hour in array v_hours loop
        continue when v_day + make_interval(hours => v_hour, mins => 59) < v_start;
        foreach v_minute in array v_minutes loop
          v_local := v_day + make_interval(hours => v_hour, mins => v_minute);
          continue when v_local < v_start;
          v_at := absurd.kit_local_instant(v_local, p_timezone);
          if v_at > p_after then
            return v_at;
          end if;
        end loop;
      end loop;
    end if;
    v_day := v_day + 1;
  end loop;
  return null;
end;
$$;

-- kit_cron_latest(cron, tz, from, at): the latest tick of `cron` in zone `tz` in [from, at], where
-- `from` is itself a tick not after `at`. A binary search over whole seconds with kit_cron_next
-- (ticks fall on whole seconds): about log2(at - from) calls, so a year of missed ticks costs ~25
-- calls, not one per tick. Locks: none.
create function absurd.kit_cron_latest(p_cron text, p_timezone text, p_from timestamptz, p_at timestamptz)
returns timestamptz
language plpgsql stable
as $$
declare
  v_low double precision := extract(epoch from p_from);
  v_high double precision := floor(extract(epoch from p_at));
  v_mid double precision;
begin
  -- Invariant: the next tick after `low` is not after `at`; the next tick after `high` is.
  if absurd.kit_cron_next(p_cron, p_timezone, p_from) > p_at then
    return p_from;
  end if;
  while v_high - v_low > 1 loop
    v_mid := floor((v_low + v_high) / 2);
    if coalesce(absurd.kit_cron_next(p_cron, p_timezone, to_timestamp(v_mid)) > p_at, true) then
      v_high := v_mid;
    else
      v_low := v_mid;
    end if;
  end loop;
  return to_timestamp(v_high);
end;
$$;

-- kit_upsert_schedule(name, q, task, cron, tz, params, options, catch_up): creates the schedule, or
-- updates it in place. next_fire_at is the first tick after absurd.current_time() for a new
-- schedule and whenever cron or tz change; otherwise it is kept (re-declaring a schedule neither
-- skips nor repeats a tick). The paused flag of an existing schedule is kept.
-- options: spawn options (headers, max_attempts, retry_strategy, cancellation) for every task it
-- spawns; an idempotency_key is refused (each tick has its own).
-- Errors: AB010 invalid cron (or one that never fires), AB011 unknown time zone, AB013 unknown
-- queue, AB014 other invalid arguments. Returns the stored row.
-- Locks: the schedule row (insert, or update on conflict).
create function absurd.kit_upsert_schedule(p_schedule_name text, p_queue_name text, p_task_name text, p_cron text,
                                           p_timezone text, p_params jsonb, p_options jsonb, p_catch_up text)
returns setof absurd.kit_schedules
language plpgsql
as $$
declare
  v_now timestamptz := absurd.current_time();
  v_timezone text := absurd.kit_check_timezone(coalesce(p_timezone, 'UTC'));
  v_options jsonb := coalesce(p_options, '{}'::jsonb);
  v_catch_up text := coalesce(p_catch_up, 'skip');
  v_next timestamptz;
begin
  if p_schedule_name is null or btrim(p_schedule_name) = '' then
    raise exception 'schedule name must be a non-empty string' using errcode = 'AB014';
  end if;
  if p_task_name is null or btrim(p_task_name) = '' then
    raise exception 'schedule "%": task name must be a non-empty string', p_schedule_name using errcode = 'AB014';
  end if;
  if v_catch_up not in ('skip', 'latest') then
    raise exception 'schedule "%": catch_up must be ''skip'' or ''latest'', got "%"', p_schedule_name, v_catch_up
      using errcode = 'AB014';
  end if;
  if jsonb_typeof(v_options) <> 'object' then
    raise exception 'schedule "%": options must be a JSON object', p_schedule_name using errcode = 'AB014';
  end if;
  if v_options ? 'idempotency_key' then
    raise exception 'schedule "%": options.idempotency_key is not allowed (every tick has its own key)', p_schedule_name
      using errcode = 'AB014';
  end if;
  if v_options ? 'headers' and jsonb_typeof(v_options -> 'headers') not in ('object', 'null') then
    raise exception 'schedule "%": options.headers must be a JSON object', p_schedule_name using errcode = 'AB014';
  end if;
  if not exists (select 1 from absurd.queues q where q.queue_name = p_queue_name) then
    raise exception 'queue "%" does not exist — run `absurd queue create %`', p_queue_name, p_queue_name
      using errcode = 'AB013';
  end if;
  v_next := absurd.kit_cron_next(p_cron, v_timezone, v_now);
  if v_next is null then
    raise exception 'invalid cron expression "%": it never fires (no such day in the months it allows)', p_cron
      using errcode = 'AB010';
  end if;

  return query
  insert into absurd.kit_schedules as s
         (schedule_name, queue_name, task_name, cron, timezone, params, options, catch_up, paused,
          next_fire_at, created_at, updated_at)
  values (p_schedule_name, p_queue_name, p_task_name, p_cron, v_timezone, coalesce(p_params, 'null'::jsonb),
          v_options, v_catch_up, false, v_next, v_now, v_now)
  on conflict (schedule_name) do update
     set queue_name = excluded.queue_name,
         task_name = excluded.task_name,
         cron = excluded.cron,
         timezone = excluded.timezone,
         params = excluded.params,
         options = excluded.options,
         catch_up = excluded.catch_up,
         next_fire_at = case when s.cron is distinct from excluded.cron or s.timezone is distinct from excluded.timezone
                                  or s.next_fire_at is null
                             then excluded.next_fire_at else s.next_fire_at end,
         updated_at = excluded.updated_at
  returning s.*;
end;
$$;

-- kit_remove_schedule(name): deletes the schedule; returns whether it existed. Tasks it already
-- spawned are untouched. Locks: the schedule row.
create function absurd.kit_remove_schedule(p_schedule_name text) returns boolean
language plpgsql
as $$
begin
  delete from absurd.kit_schedules s where s.schedule_name = p_schedule_name;
  return found;
end;
$$;

-- kit_set_schedule_paused(name, paused): pauses or resumes the schedule and returns its row. A
-- paused schedule fires nothing. Resuming starts again from the first tick after now: ticks that
-- fell while it was paused are never fired, whatever its catch-up policy. Pausing or resuming twice
-- changes nothing. AB012 when there is no such schedule. Locks: the schedule row FOR UPDATE.
create function absurd.kit_set_schedule_paused(p_schedule_name text, p_paused boolean)
returns setof absurd.kit_schedules
language plpgsql
as $$
declare
  v_now timestamptz := absurd.current_time();
begin
  return query
  update absurd.kit_schedules s
     set paused = coalesce(p_paused, true),
         next_fire_at = case when s.paused and not coalesce(p_paused, true)
                             then absurd.kit_cron_next(s.cron, s.timezone, v_now) else s.next_fire_at end,
         updated_at = case when s.paused is distinct from coalesce(p_paused, true) then v_now else s.updated_at end
   where s.schedule_name = p_schedule_name
  returning s.*;
  if not found then
    raise exception 'schedule "%" does not exist', p_schedule_name using errcode = 'AB012';
  end if;
end;
$$;

-- kit_list_schedules(q): every schedule (of queue q when given), by name. Locks: none.
create function absurd.kit_list_schedules(p_queue_name text default null)
returns setof absurd.kit_schedules
language sql stable
as $$
  select s.* from absurd.kit_schedules s
   where p_queue_name is null or s.queue_name = p_queue_name
   order by s.schedule_name;
$$;

-- kit_fire_schedules(q): fires the due, unpaused schedules of queue q at absurd.current_time() and
-- returns how many tasks it created. For each schedule: the tick to fire by the catch-up policy of
-- this file's header is spawned through spawn_task with idempotency key
-- '$schedule:<name>:<tick UTC ISO>' and headers "absurd.schedule" (the name) and
-- "absurd.scheduled_at" (the tick, UTC ISO) on top of the schedule's own; then next_fire_at moves to
-- the first tick after now. A spawn that fails (a dropped queue table, say) is recorded in
-- last_error with a WARNING and the tick is dropped, so a broken schedule never blocks claims.
-- Idle listening workers are woken when a task was created (kit_wake_idle_workers).
-- Locks: the due schedule rows FOR UPDATE SKIP LOCKED (a concurrent caller skips them and never
-- waits), then those of spawn_task. With no schedule due it reads one entry of kit_schedules_due.
create function absurd.kit_fire_schedules(p_queue_name text) returns integer
language plpgsql
as $$
declare
  v_now timestamptz := absurd.current_time();
  v_grace constant interval := interval '60 seconds';
  v_schedule record;
  v_next timestamptz;
  v_tick timestamptz;
  v_tick_text text;
  v_options jsonb;
  v_task_id uuid;
  v_created boolean;
  v_error text;
  v_fired integer := 0;
begin
  for v_schedule in
    select s.schedule_name, s.task_name, s.cron, s.timezone, s.params, s.options, s.catch_up, s.next_fire_at
      from absurd.kit_schedules s
     where s.queue_name = p_queue_name and not s.paused and s.next_fire_at <= v_now
     order by s.next_fire_at, s.schedule_name
       for update skip locked
  loop
    v_tick := absurd.kit_cron_latest(v_schedule.cron, v_schedule.timezone, v_schedule.next_fire_at, v_now);
    v_next := absurd.kit_cron_next(v_schedule.cron, v_schedule.timezone, v_now);
    v_task_id := null;
    v_error := null;
    if v_schedule.catch_up = 'latest' or v_now - v_tick <= v_grace then
      v_tick_text := to_char(v_tick at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"');
      v_options := v_schedule.options - 'idempotency_key'
        || jsonb_build_object(
             'idempotency_key', '$schedule:' || v_schedule.schedule_name || ':' || v_tick_text,
             'headers', coalesce(nullif(v_schedule.options -> 'headers', 'null'::jsonb), '{}'::jsonb)
                        || jsonb_build_object('absurd.schedule', v_schedule.schedule_name,
                                              'absurd.scheduled_at', v_tick_text));
      begin
        select s.task_id, s.created into v_task_id, v_created
          from absurd.spawn_task(p_queue_name, v_schedule.task_name, v_schedule.params, v_options) s;
        if v_created then
          v_fired := v_fired + 1;
        end if;
      exception when others then
        get stacked diagnostics v_error = message_text;
        raise warning 'schedule "%" could not spawn task "%" on queue "%": %',
          v_schedule.schedule_name, v_schedule.task_name, p_queue_name, v_error;
      end;
    end if;
    update absurd.kit_schedules s
       set next_fire_at = v_next,
           last_fired_at = case when v_task_id is null then s.last_fired_at else v_tick end,
           last_task_id = coalesce(v_task_id, s.last_task_id),
           last_error = case when v_task_id is null and v_error is null then s.last_error else v_error end
     where s.schedule_name = v_schedule.schedule_name;
  end loop;
  if v_fired > 0 then
    perform absurd.kit_wake_idle_workers(p_queue_name);
  end if;
  return v_fired;
end;
$$;

-- The two hooks that make workers drive schedules — claim_task calling kit_fire_schedules before
-- it claims, and kit_seconds_until_next_run counting the queue's next tick — are in migration
-- 000016, which redefines both functions for priorities and limits too (the two migrations ship
-- together).
