-- absurd-kit engine, migration 000025: the queue's statement functions reached in static SQL.
--
-- Since migration 000020 every claim, completion, checkpoint write and (000022) spawn runs in
-- functions of its queue, kit_q_<md5(q)>_<part>, whose statements keep their plans. But the
-- function of the queue was still reached through EXECUTE of 'select * from absurd.<name>(…)',
-- and an EXECUTE is parsed, analysed and planned at every call. Measured with pgbench on
-- PostgreSQL 15 (one connection, synchronous_commit off so that the figure is CPU): spawn_task made
-- about 4,000 spawns/s, a call of the queue's _spawn 5,700/s, and the same call made in static SQL
-- from a PL/pgSQL function that picks it by the queue's name 5,750/s.
--
-- So each part now has a router, kit_route_<part>(q, …the part's arguments), whose body names the
-- function of every queue in static SQL, chosen by comparisons on the queue's name (a binary search
-- over the names in byte order, then equality on at most four), each call a statement that the
-- session plans once. A queue the router does not name — its functions missing and written on
-- first use (000020), or beyond the number of queues the routers name (below) — goes on through
-- the EXECUTE of 000020, unchanged; so does a queue that does not exist, which fails as before
-- (42P01). claim_task, kit_claim_task, kit_complete_runs, kit_set_checkpoints and spawn_task call
-- the routers and keep their arguments, results, errors and locks.
--
-- kit_write_queue_routers() rewrites the five routers from the queues that exist and have their
-- functions. create_queue calls it, and so do kit_drop_queue_functions (drop_queue) and the first
-- call that writes a queue's missing functions (kit_queue_statement), each in the transaction that
-- creates or drops the functions, so that a router never names a function that is gone. A queue whose tables were made by
-- ensure_queue_tables alone is named at the next of these. It runs with the rights of the role
-- that ran the migrations (SECURITY DEFINER), which owns the routers: a role that may create and
-- drop queues but does not own the routers still has its queues named in them. It writes nothing
-- but the routers, from the queues' names (quoted by format), and the routers run with their
-- caller's rights. The routers' text is generated, so it writes them without checking their
-- bodies (check_function_bodies off: a check would compile each router once more). Their cost
-- grows with the number of queues they name: with 500 (PostgreSQL 18), creating one more queue
-- took 130 ms, of which 45-115 ms rewrote the routers (6 ms with one queue), and each session
-- compiled a rewritten router (160 kB of PL/pgSQL) at its next call in about 15 ms. So they name
-- at most absurd.kit_router_queues queues (a setting, 256 by default; set it for the database,
-- `alter database … set absurd.kit_router_queues = …`, so that every session writes the same), the
-- busiest ones; the others go through the EXECUTE.

-- kit_route_tree(keys, leaves, lo, hi, indent): PL/pgSQL text that runs the leaf i in lo..hi whose
-- names p_queue_name falls among, indented by indent. Each leaf tests up to four names one by one
-- and falls through when none is p_queue_name; keys[i] is the first name of leaf i, the leaves in
-- byte order of their names (collate "C"). Leaves are split in two at the middle leaf's key, so a
-- router of n queues makes about log2(n / 4) + 4 comparisons. Pure.
create function absurd.kit_route_tree(p_keys text[], p_leaves text[], p_lo integer, p_hi integer, p_indent text)
returns text
language plpgsql
immutable
as $$
declare
  v_mid integer;
begin
  if p_lo > p_hi then
    return '';
  end if;
  if p_lo = p_hi then
    return regexp_replace(p_leaves[p_lo], '^(?=.)', p_indent, 'gn');
  end if;
  v_mid := (p_lo + p_hi + 1) / 2;
  return format(E'%1$sif p_queue_name collate "C" < %2$L then\n%3$s%1$selse\n%4$s%1$send if;\n',
                p_indent, p_keys[v_mid],
                absurd.kit_route_tree(p_keys, p_leaves, p_lo, v_mid - 1, p_indent || '  '),
                absurd.kit_route_tree(p_keys, p_leaves, v_mid, p_hi, p_indent || '  '));
end;
$$;

-- kit_write_queue_routers(): (re)writes kit_route_claim_task, kit_route_kit_claim,
-- kit_route_complete, kit_route_set_checkpoints and kit_route_spawn (see the header) to name every
-- queue that is registered, has its tables and has all five of its functions; of more than
-- absurd.kit_router_queues (256 unless set; 22023 when it is not a whole number) such queues, the
-- busiest (rows inserted and updated in r_<q>, as the statistics count them). Runs as its owner
-- (see the header); returns false, and changes nothing, when a router belongs to another role or
-- the owner lost CREATE on schema absurd. Locks: advisory (1633841014, 0) until the transaction
-- ends, so that the routers are written by one transaction at a time (two transactions replacing
-- one function at once would fail: tuple concurrently updated) and each writer reads the queues
-- after the one before it committed; those of create or replace function.
create function absurd.kit_write_queue_routers() returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set check_function_bodies = off
as $$
declare
  v_parts text[] := array['claim_task', 'kit_claim', 'complete', 'set_checkpoints', 'spawn'];
  v_names text[];
  v_part record;
  v_keys text[];
  v_leaves text[];
  v_cap_text text := nullif(btrim(current_setting('absurd.kit_router_queues', true)), '');
  v_cap integer;
begin
  if not has_schema_privilege('absurd', 'CREATE')
     or exists (select 1
                  from pg_proc p
                 where p.pronamespace = 'absurd'::regnamespace
                   and p.proname like 'kit\_route\_%'
                   and p.proname <> 'kit_route_tree'
                   and not pg_has_role(p.proowner, 'USAGE')) then
    return false;
  end if;
  if v_cap_text !~ '^[0-9]+$' then
    raise exception 'absurd.kit_router_queues must be a whole number of queues, got "%"', v_cap_text
      using errcode = '22023', hint = 'Reset it, or set it to the number of queues the routers may name (256 by default).';
  end if;
  v_cap := coalesce(v_cap_text::integer, 256);
  perform pg_advisory_xact_lock(1633841014, 0);

  -- The queues whose tables and five functions exist. In READ COMMITTED (the usual case) this
  -- statement's snapshot was taken after the lock above, so one read of the catalogue sees what
  -- every earlier writer committed; a transaction with an older snapshot looks each name up in the
  -- current catalogue instead (to_regclass, to_regproc), so that it never names a function that a
  -- transaction committed since has dropped.
  if current_setting('transaction_isolation') = 'read committed' then
    select coalesce(array_agg(q.queue_name order by q.queue_name collate "C"), '{}')
      into v_names
      from absurd.queues q
     where (select count(*) from pg_class c
             where c.relnamespace = 'absurd'::regnamespace
               and c.relname in ('t_' || q.queue_name, 'r_' || q.queue_name)) = 2
       and (select count(distinct p.proname) from pg_proc p
             where p.pronamespace = 'absurd'::regnamespace
               and p.proname in (select absurd.kit_limits_function_name(q.queue_name, part.name)
                                   from unnest(v_parts) as part(name))) = 5;
  else
    select coalesce(array_agg(q.queue_name order by q.queue_name collate "C"), '{}')
      into v_names
      from absurd.queues q
     where to_regclass(format('absurd.%I', 't_' || q.queue_name)) is not null
       and to_regclass(format('absurd.%I', 'r_' || q.queue_name)) is not null
       and not exists (select 1
                         from unnest(v_parts) as part(name)
                        where to_regproc('absurd.' || absurd.kit_limits_function_name(q.queue_name, part.name)) is null);
  end if;

  -- At most absurd.kit_router_queues queues (256 unless set), the busiest by the rows their runs
  -- table has had inserted and updated, so that a database of thousands of queues does not make
  -- every session compile routers of thousands of branches; the others go through the EXECUTE.
  if cardinality(v_names) > v_cap then
    select coalesce(array_agg(b.name order by b.name collate "C"), '{}')
      into v_names
      from (select n.name
              from unnest(v_names) as n(name)
              left join pg_stat_user_tables s
                on s.schemaname = 'absurd' and s.relname = 'r_' || n.name
             order by coalesce(s.n_tup_ins + s.n_tup_upd, 0) desc, n.name collate "C"
             limit v_cap) b;
  end if;

  for v_part in
    select *
      from (values
        ('claim_task',
         'p_worker_id text, p_claim_timeout integer, p_qty integer',
         'run_id uuid, task_id uuid, attempt integer, task_name text, params jsonb, retry_strategy jsonb, '
           || 'max_attempts integer, headers jsonb, wake_event text, event_payload jsonb',
         'p_worker_id, p_claim_timeout, p_qty', 3),
        ('kit_claim',
         'p_worker_id text, p_claim_timeout integer, p_qty integer',
         'run_id uuid, task_id uuid, attempt integer, task_name text, params jsonb, retry_strategy jsonb, '
           || 'max_attempts integer, headers jsonb, wake_event text, event_payload jsonb, checkpoints jsonb, '
           || 'queue_lag double precision',
         'p_worker_id, p_claim_timeout, p_qty', 3),
        ('complete',
         'p_run_ids uuid[], p_results jsonb[], p_now timestamptz',
         'o_runs uuid[], o_outcomes text[], o_tasks uuid[]',
         'p_run_ids, p_results, p_now', 3),
        ('set_checkpoints',
         'p_task_ids uuid[], p_step_names text[], p_states jsonb[], p_owner_runs uuid[], p_extend_by integer[], '
           || 'p_now timestamptz',
         'ord bigint, outcome text',
         'p_task_ids, p_step_names, p_states, p_owner_runs, p_extend_by, p_now', 6),
        ('spawn',
         'p_task_name text, p_params jsonb, p_headers jsonb, p_retry_strategy jsonb, p_max_attempts integer, '
           || 'p_cancellation jsonb, p_key text, p_priority integer',
         'o_task_id uuid, o_run_id uuid, o_attempt integer, o_created boolean',
         'p_task_name, p_params, p_headers, p_retry_strategy, p_max_attempts, p_cancellation, p_key, p_priority', 8)
      ) as p(part, params, result, args, arity)
  loop
    -- The leaves: four queues each, in the names' order.
    select array_agg(g.first_name order by g.leaf), array_agg(g.body order by g.leaf)
      into v_keys, v_leaves
      from (select (n.ord - 1) / 4 as leaf,
                   (array_agg(n.name order by n.ord))[1] as first_name,
                   string_agg(format(E'if p_queue_name = %L then\n  return query select * from absurd.%I(%s);\n  return;\nend if;\n',
                                     n.name, absurd.kit_limits_function_name(n.name, v_part.part), v_part.args),
                              '' order by n.ord) as body
              from unnest(v_names) with ordinality as n(name, ord)
             group by 1) g;
    execute format(
      $g$create or replace function absurd.%1$I(p_queue_name text, %2$s)
returns table(%3$s)
language plpgsql
as $body$
begin
%4$s
  return query execute format('select * from absurd.%%I(%5$s)', absurd.kit_queue_statement(p_queue_name, %6$L))
    using %7$s;
end;
$body$
$g$,
      'kit_route_' || v_part.part, v_part.params, v_part.result,
      absurd.kit_route_tree(v_keys, v_leaves, 1, coalesce(cardinality(v_keys), 0), '  '),
      (select string_agg('$' || i, ', ' order by i) from generate_series(1, v_part.arity) as i),
      v_part.part, v_part.args);
  end loop;
  return true;
end;
$$;

-- claim_task(q, worker, claim_timeout, qty): as in migration 000020, the queue's _claim_task
-- reached through kit_route_claim_task. Locks: those of 000020.
create or replace function absurd.claim_task(p_queue_name text, p_worker_id text, p_claim_timeout integer default 30,
                                             p_qty integer default 1)
returns table(run_id uuid, task_id uuid, attempt integer, task_name text, params jsonb,
              retry_strategy jsonb, max_attempts integer, headers jsonb, wake_event text,
              event_payload jsonb)
language plpgsql
as $$
begin
  return query select * from absurd.kit_route_claim_task(p_queue_name, p_worker_id, p_claim_timeout, p_qty);
end;
$$;

-- kit_claim_task(q, worker, claim_timeout, qty): as in migration 000020, the queue's _kit_claim
-- reached through kit_route_kit_claim. Locks: those of claim_task.
create or replace function absurd.kit_claim_task(p_queue_name text, p_worker_id text, p_claim_timeout integer default 30,
                                                 p_qty integer default 1)
returns table(run_id uuid, task_id uuid, attempt integer, task_name text, params jsonb,
              retry_strategy jsonb, max_attempts integer, headers jsonb, wake_event text,
              event_payload jsonb, checkpoints jsonb, queue_lag double precision)
language plpgsql
as $$
begin
  return query select * from absurd.kit_route_kit_claim(p_queue_name, p_worker_id, p_claim_timeout, p_qty);
end;
$$;

-- kit_complete_runs(q, runs, results): as in migration 000023, the queue's _complete reached
-- through kit_route_complete. Locks: those of 000023.
create or replace function absurd.kit_complete_runs(p_queue_name text, p_run_ids uuid[], p_results jsonb[])
returns table(run_id uuid, outcome text)
language plpgsql
as $$
declare
  v_runs uuid[];
  v_outcomes text[];
  v_tasks uuid[];
  v_task uuid;
  -- As in 000023: a limit set or removed meanwhile waits for this transaction's update and the
  -- other way round, so the trigger is held back only where this function releases the slots.
  v_limited boolean := exists (select 1 from absurd.kit_limits l where l.queue_name = p_queue_name);
begin
  if v_limited then
    perform set_config('absurd.kit_batch_release', 'on', true);
  end if;
  select c.o_runs, c.o_outcomes, c.o_tasks
    into v_runs, v_outcomes, v_tasks
    from absurd.kit_route_complete(p_queue_name, p_run_ids, p_results, absurd.current_time()) c;
  if v_limited then
    perform set_config('absurd.kit_batch_release', '', true);
    perform absurd.kit_limits_release_runs(
      p_queue_name, array(select u.r from unnest(v_runs, v_outcomes) as u(r, o) where u.o = 'completed'));
  end if;

  -- The tasks' rows are updated now (a later statement of this function sees them): announce.
  foreach v_task in array coalesce(v_tasks, '{}'::uuid[]) loop
    perform absurd.kit_announce_end(p_queue_name, v_task);
  end loop;

  return query select u.run_id, u.outcome from unnest(v_runs, v_outcomes) with ordinality as u(run_id, outcome, ord) order by u.ord;
end;
$$;

-- kit_set_checkpoints(q, tasks, steps, states, owner runs, extend by): as in migration 000020, the
-- queue's _set_checkpoints reached through kit_route_set_checkpoints. Locks: those of 000020.
create or replace function absurd.kit_set_checkpoints(p_queue_name text, p_task_ids uuid[], p_step_names text[],
                                           p_states jsonb[], p_owner_runs uuid[], p_extend_by integer[])
returns table(ord bigint, outcome text)
language plpgsql
as $$
begin
  return query select * from absurd.kit_route_set_checkpoints(p_queue_name, p_task_ids, p_step_names, p_states,
                                                              p_owner_runs, p_extend_by, absurd.current_time());
end;
$$;

-- spawn_task(q, name, params, options): as in migration 000022 (the options checked in the same
-- order, the same errors), the queue's _spawn reached through kit_route_spawn. Locks: those of
-- 000022.
create or replace function absurd.spawn_task(p_queue_name text, p_task_name text, p_params jsonb,
                                  p_options jsonb default '{}')
returns table(task_id uuid, run_id uuid, attempt integer, created boolean)
language plpgsql
as $$
declare
  v_options jsonb := coalesce(p_options, '{}'::jsonb);
  v_headers jsonb;
  v_retry_strategy jsonb;
  v_max_attempts integer;
  v_cancellation jsonb;
  v_key text;
  v_option_key text;
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

  return query select * from absurd.kit_route_spawn(p_queue_name, p_task_name, coalesce(p_params, 'null'::jsonb),
                                                    v_headers, v_retry_strategy, v_max_attempts, v_cancellation,
                                                    v_key, v_priority);
end;
$$;

-- create_queue(q, mode): as in migration 000001, and then the routers name the queue
-- (kit_write_queue_routers). Locks: those of 000001, then those of kit_write_queue_routers.
create or replace function absurd.create_queue(p_queue_name text, p_storage_mode text) returns void
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
  perform absurd.kit_write_queue_routers();
end;
$$;

-- kit_drop_queue_functions(q): as in migration 000019, and then the routers no longer name the
-- queue (kit_write_queue_routers), in the same transaction as its functions are dropped; drop_queue
-- calls it. Locks: those of 000019, then those of kit_write_queue_routers.
create or replace function absurd.kit_drop_queue_functions(p_queue_name text) returns void
language plpgsql
as $$
declare
  v_signature regprocedure;
begin
  for v_signature in
    select p.oid::regprocedure
      from pg_proc p
     where p.pronamespace = 'absurd'::regnamespace
       and p.proname like 'kit\_q\_' || md5(p_queue_name) || '\_%'
     order by p.oid
  loop
    execute format('drop function if exists %s', v_signature);
  end loop;
  perform absurd.kit_write_queue_routers();
end;
$$;

-- kit_queue_statement(q, part): as in migration 000020 (the name of queue q's function `part`,
-- written first when it is missing), and when it had to write them, the routers are rewritten to
-- name the queue. Locks: none; or those of kit_create_queue_statements, then those of
-- kit_write_queue_routers.
create or replace function absurd.kit_queue_statement(p_queue_name text, p_part text) returns text
language plpgsql
as $$
declare
  v_name text := absurd.kit_limits_function_name(p_queue_name, p_part);
begin
  if to_regproc('absurd.' || v_name) is null then
    perform absurd.kit_create_queue_statements(p_queue_name);
    perform absurd.kit_write_queue_routers();
  end if;
  return v_name;
end;
$$;

-- The routers, naming the queues that exist.
select absurd.kit_write_queue_routers();
