-- absurd-kit engine, migration 000001: foundation.
--
-- Schema, time source, UUIDv7 helpers, queue names, the queue registry and the per-queue tables.
-- Everything lives in schema "absurd" and follows the Absurd stored-procedure contract: no foreign
-- keys, triggers, sequences, roles or search_path settings; every per-queue identifier is built with
-- format('%I', ...) because queue names may contain quotes, spaces and upper case.

create schema if not exists absurd;

-- current_time(): the single time source of the engine.
-- Returns absurd.fake_now when that setting is present and not blank (tests move time with it),
-- otherwise clock_timestamp(), which advances inside a transaction (unlike now()).
create function absurd.current_time() returns timestamptz
language plpgsql volatile
as $$
declare
  v_fake text := current_setting('absurd.fake_now', true);
begin
  if v_fake is not null and btrim(v_fake) <> '' then
    return v_fake::timestamptz;
  end if;
  return clock_timestamp();
end;
$$;

-- get_schema_version(): the Absurd contract level this schema implements. 'main' tells Absurd's own
-- tooling (absurdctl migrate) that nothing of its migrations is missing. Replaceable on purpose.
create or replace function absurd.get_schema_version() returns text
language sql
as $$ select 'main'::text $$;

-- portable_uuidv7(): a time-ordered UUID (RFC 9562 version 7).
-- Follows absurd.fake_now when it is set (bytes 0-5 = milliseconds of absurd.current_time()); with real
-- time on PostgreSQL 18+ it uses the built-in uuidv7(), which is also monotonic within a session.
create function absurd.portable_uuidv7() returns uuid
language plpgsql volatile
as $$
declare
  v_fake text := current_setting('absurd.fake_now', true);
  v_ms bigint;
  v_bytes bytea;
begin
  if (v_fake is null or btrim(v_fake) = '')
     and current_setting('server_version_num')::integer >= 180000 then
    return pg_catalog.uuidv7();
  end if;
  v_ms := floor(extract(epoch from absurd.current_time()) * 1000)::bigint;
  v_bytes := decode(lpad(to_hex(v_ms), 12, '0'), 'hex')
             || substring(uuid_send(gen_random_uuid()) from 7 for 10);
  v_bytes := set_byte(v_bytes, 6, (get_byte(v_bytes, 6) & 15) | 112);  -- version 7
  v_bytes := set_byte(v_bytes, 8, (get_byte(v_bytes, 8) & 63) | 128);  -- variant 10
  return encode(v_bytes, 'hex')::uuid;
end;
$$;

-- uuidv7_timestamp(id): the millisecond timestamp embedded in a version-7 UUID; NULL for other versions.
create function absurd.uuidv7_timestamp(p_id uuid) returns timestamptz
language sql immutable strict
as $$
  select case
    when get_byte(uuid_send(p_id), 6) >> 4 = 7 then
      timestamptz 'epoch'
        + ('x' || substr(replace(p_id::text, '-', ''), 1, 12))::bit(48)::bigint * interval '1 millisecond'
  end
$$;

-- uuidv7_floor(ts): the smallest version-7 UUID of the millisecond containing ts (partition bounds).
create function absurd.uuidv7_floor(p_ts timestamptz) returns uuid
language plpgsql immutable strict
as $$
declare
  v_ms numeric := floor(extract(epoch from p_ts) * 1000);
begin
  if v_ms < 0 or v_ms > 281474976710655 then
    raise exception 'Timestamp % is outside the UUIDv7 range', p_ts;
  end if;
  return (lpad(to_hex(v_ms::bigint), 12, '0') || '7000' || '8000' || '000000000000')::uuid;
end;
$$;

-- week_bucket_utc(ts): Monday 00:00 UTC of the ISO week containing ts.
create function absurd.week_bucket_utc(p_ts timestamptz) returns timestamptz
language sql immutable strict
as $$ select date_trunc('week', p_ts at time zone 'UTC') at time zone 'UTC' $$;

-- partition_week_tag(ts): last digit of the ISO year and the two-digit ISO week of ts's week, e.g. '501'.
create function absurd.partition_week_tag(p_ts timestamptz) returns text
language sql immutable strict
as $$
  select (extract(isoyear from w)::integer % 10)::text || lpad(extract(week from w)::integer::text, 2, '0')
    from (select absurd.week_bucket_utc(p_ts) at time zone 'UTC' as w) as bucket
$$;

-- validate_queue_name(name): 1 to 57 UTF-8 bytes, nothing else restricted. 57 keeps every derived
-- relation name ("r_<q>_sai", weekly partitions "t_<q>_<YWW>") within Postgres's 63-byte limit.
create function absurd.validate_queue_name(p_queue_name text) returns text
language plpgsql
as $$
begin
  if p_queue_name is null or p_queue_name = '' then
    raise exception 'Queue name must be provided';
  end if;
  if octet_length(p_queue_name) > 57 then
    raise exception 'Queue name "%" is too long (max 57 bytes).', p_queue_name;
  end if;
  return p_queue_name;
end;
$$;

-- The queue registry and each queue's storage policy.
create table if not exists absurd.queues (
  queue_name text primary key,
  created_at timestamptz not null default absurd.current_time(),
  storage_mode text not null default 'unpartitioned'
    check (storage_mode in ('unpartitioned', 'partitioned')),
  default_partition text not null default 'enabled'
    check (default_partition in ('enabled', 'disabled')),
  partition_lookahead interval not null default interval '28 days'
    check (partition_lookahead >= interval '0'),
  partition_lookback interval not null default interval '1 day'
    check (partition_lookback >= interval '0'),
  cleanup_ttl interval not null default interval '30 days'
    check (cleanup_ttl >= interval '0'),
  cleanup_limit integer not null default 1000
    check (cleanup_limit >= 1),
  detach_mode text not null default 'none'
    check (detach_mode in ('none', 'empty')),
  detach_min_age interval not null default interval '30 days'
    check (detach_min_age >= interval '0')
);

-- ensure_queue_tables(q): creates whatever is missing of the queue's tables and indexes (idempotent).
-- The storage mode comes from absurd.queues (no row: unpartitioned). Partitioned queues get range-
-- partitioned parents keyed by their UUIDv7 column, the idempotency registry i_<q>, and their
-- partitions through ensure_partitions(q). Takes no row locks; DDL locks only on the queue's tables.
create function absurd.ensure_queue_tables(p_queue_name text) returns void
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

-- create_queue(q, mode): registers the queue (mode 'unpartitioned' or 'partitioned', case and
-- surrounding blanks ignored) and creates its tables. Re-creating with the same mode is a no-op; a
-- different mode is an error. Takes the absurd.queues row (insert, or reads the existing one).
create function absurd.create_queue(p_queue_name text, p_storage_mode text) returns void
language plpgsql
as $$
declare
  v_mode text := lower(btrim(coalesce(p_storage_mode, '')));
  v_existing text;
begin
  perform absurd.validate_queue_name(p_queue_name);
  if v_mode not in ('unpartitioned', 'partitioned') then
    raise exception 'Unsupported queue storage mode "%"', p_storage_mode;
  end if;
  insert into absurd.queues (queue_name, storage_mode)
  values (p_queue_name, v_mode)
  on conflict (queue_name) do nothing;
  select q.storage_mode into v_existing from absurd.queues q where q.queue_name = p_queue_name;
  if v_existing <> v_mode then
    raise exception 'Queue "%" already exists with storage mode "%"', p_queue_name, v_existing;
  end if;
  perform absurd.ensure_queue_tables(p_queue_name);
end;
$$;

-- create_queue(q): an unpartitioned queue.
create or replace function absurd.create_queue(p_queue_name text) returns void
language plpgsql
as $$
begin
  perform absurd.create_queue(p_queue_name, 'unpartitioned'::text);
end;
$$;

-- drop_queue(q): drops the queue's tables and registry row. Deliberately does not validate the name
-- (queues registered before the 57-byte rule must stay droppable) and ignores unknown queues.
-- Removes the queue's pg_cron jobs first when pg_cron is installed.
-- Locks: (pg_cron's advisory lock via disable_cron,) the absurd.queues row FOR UPDATE, then ACCESS
-- EXCLUSIVE on each table dropped.
create function absurd.drop_queue(p_queue_name text) returns void
language plpgsql
as $$
declare
  v_prefix text;
begin
  if not exists (select 1 from absurd.queues q where q.queue_name = p_queue_name) then
    return;
  end if;
  if to_regclass('cron.job') is not null
     and exists (select 1 from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                  where n.nspname = 'cron' and p.proname = 'unschedule') then
    perform 1 from absurd.disable_cron(p_queue_name);
  end if;
  -- The registry row before the tables, as ensure_partitions and set_queue_policy take them (and
  -- after disable_cron's pg_cron lock, as enable_cron takes them).
  perform 1 from absurd.queues q where q.queue_name = p_queue_name for update;
  if not found then
    return;
  end if;
  foreach v_prefix in array array['i', 'w', 'e', 'c', 'r', 't'] loop
    if to_regclass(format('absurd.%I', v_prefix || '_' || p_queue_name)) is not null then
      execute format('drop table if exists absurd.%I cascade', v_prefix || '_' || p_queue_name);
    end if;
  end loop;
  delete from absurd.queues q where q.queue_name = p_queue_name;
end;
$$;

-- list_queues(): every registered queue, by name.
create function absurd.list_queues() returns table(queue_name text)
language sql
as $$ select q.queue_name from absurd.queues q order by q.queue_name $$;

-- get_queue_policy(q): the queue's storage mode and policy; no row for an unknown queue.
create function absurd.get_queue_policy(p_queue_name text)
returns table(queue_name text, storage_mode text, default_partition text,
              partition_lookahead interval, partition_lookback interval, cleanup_ttl interval,
              cleanup_limit integer, detach_mode text, detach_min_age interval)
language sql
as $$
  select q.queue_name, q.storage_mode, q.default_partition, q.partition_lookahead,
         q.partition_lookback, q.cleanup_ttl, q.cleanup_limit, q.detach_mode, q.detach_min_age
    from absurd.queues q
   where q.queue_name = p_queue_name
$$;

-- set_queue_policy(q, policy): updates the keys present in the policy object; validates all of them
-- before writing anything. For partitioned queues, switching default_partition recreates the DEFAULT
-- partitions or detaches and drops them (refusing when one holds rows).
-- Locks: the absurd.queues row FOR UPDATE, then ACCESS EXCLUSIVE on each DEFAULT partition dropped.
create function absurd.set_queue_policy(p_queue_name text, p_policy jsonb) returns void
language plpgsql
as $$
declare
  v_policy jsonb := coalesce(p_policy, '{}'::jsonb);
  v_key text;
  v_row absurd.queues%rowtype;
  v_new absurd.queues%rowtype;
  v_prefix text;
  v_parent text;
  v_default text;
  v_has_rows boolean;
begin
  perform absurd.validate_queue_name(p_queue_name);
  if jsonb_typeof(v_policy) <> 'object' then
    raise exception 'Queue policy must be a JSON object, got %', jsonb_typeof(v_policy);
  end if;
  for v_key in select jsonb_object_keys(v_policy) loop
    if v_key not in ('partition_lookahead', 'partition_lookback', 'cleanup_ttl', 'cleanup_limit',
                     'detach_mode', 'detach_min_age', 'default_partition') then
      raise exception 'Unsupported queue policy key "%"', v_key;
    end if;
    if jsonb_typeof(v_policy -> v_key) = 'null' then
      raise exception 'Queue policy key "%" must not be null', v_key;
    end if;
  end loop;

  select * into v_row from absurd.queues q where q.queue_name = p_queue_name for update;
  if not found then
    raise exception 'Queue "%" does not exist', p_queue_name;
  end if;

  v_new := v_row;
  if v_policy ? 'partition_lookahead' then
    v_new.partition_lookahead := (v_policy ->> 'partition_lookahead')::interval;
  end if;
  if v_policy ? 'partition_lookback' then
    v_new.partition_lookback := (v_policy ->> 'partition_lookback')::interval;
  end if;
  if v_policy ? 'cleanup_ttl' then
    v_new.cleanup_ttl := (v_policy ->> 'cleanup_ttl')::interval;
  end if;
  if v_policy ? 'cleanup_limit' then
    v_new.cleanup_limit := (v_policy ->> 'cleanup_limit')::integer;
  end if;
  if v_policy ? 'detach_mode' then
    v_new.detach_mode := lower(btrim(v_policy ->> 'detach_mode'));
  end if;
  if v_policy ? 'detach_min_age' then
    v_new.detach_min_age := (v_policy ->> 'detach_min_age')::interval;
  end if;
  if v_policy ? 'default_partition' then
    v_new.default_partition := lower(btrim(v_policy ->> 'default_partition'));
  end if;

  if v_new.partition_lookahead < interval '0' then
    raise exception 'partition_lookahead must be >= 0';
  end if;
  if v_new.partition_lookback < interval '0' then
    raise exception 'partition_lookback must be >= 0';
  end if;
  if v_new.cleanup_ttl < interval '0' then
    raise exception 'cleanup_ttl must be >= 0';
  end if;
  if v_new.detach_min_age < interval '0' then
    raise exception 'detach_min_age must be >= 0';
  end if;
  if v_new.cleanup_limit < 1 then
    raise exception 'cleanup_limit must be >= 1';
  end if;
  if v_new.detach_mode not in ('none', 'empty') then
    raise exception 'Unsupported detach_mode "%" (expected none or empty)', v_new.detach_mode;
  end if;
  if v_new.default_partition not in ('enabled', 'disabled') then
    raise exception 'Unsupported default_partition "%" (expected enabled or disabled)', v_new.default_partition;
  end if;
  if v_row.storage_mode <> 'partitioned' and v_policy ? 'default_partition' then
    raise exception 'default_partition is only supported for partitioned queues (queue "%" is %)',
      p_queue_name, v_row.storage_mode;
  end if;

  update absurd.queues q
     set partition_lookahead = v_new.partition_lookahead,
         partition_lookback = v_new.partition_lookback,
         cleanup_ttl = v_new.cleanup_ttl,
         cleanup_limit = v_new.cleanup_limit,
         detach_mode = v_new.detach_mode,
         detach_min_age = v_new.detach_min_age,
         default_partition = v_new.default_partition
   where q.queue_name = p_queue_name;

  if v_row.storage_mode = 'partitioned' and v_new.default_partition <> v_row.default_partition then
    if v_new.default_partition = 'enabled' then
      perform absurd.ensure_partitions(p_queue_name);
    else
      foreach v_prefix in array array['t', 'r', 'c', 'w'] loop
        v_parent := v_prefix || '_' || p_queue_name;
        v_default := v_parent || '_d';
        if exists (select 1
                     from pg_inherits i
                     join pg_class child on child.oid = i.inhrelid
                     join pg_class parent on parent.oid = i.inhparent
                     join pg_namespace n on n.oid = child.relnamespace
                    where n.nspname = 'absurd' and child.relname = v_default
                      and parent.relname = v_parent) then
          execute format('lock table absurd.%I in access exclusive mode', v_default);
          execute format('select exists (select 1 from absurd.%I)', v_default) into v_has_rows;
          if v_has_rows then
            raise exception 'Default partition "%" of queue "%" still holds rows; cannot disable it',
              v_default, p_queue_name;
          end if;
          execute format('alter table absurd.%I detach partition absurd.%I', v_parent, v_default);
          execute format('drop table absurd.%I', v_default);
        end if;
      end loop;
    end if;
  end if;
end;
$$;
