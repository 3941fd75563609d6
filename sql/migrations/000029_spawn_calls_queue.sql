-- absurd-kit engine, migration 000029: spawn_task calls the queue's _spawn itself.
--
-- Since migration 000025 a spawn went through three PL/pgSQL functions: spawn_task checked the
-- options, kit_route_spawn picked the queue's function by its name, and kit_q_<md5(q)>_spawn wrote
-- the task and its run. Each level is a call, a statement (`return query select * from …`) and a
-- result set copied into the level above. Measured with pgbench on PostgreSQL 18 (8 connections,
-- the extended protocol as node-postgres sends it, synchronous_commit off so that the figure is
-- CPU), six alternating rounds against Absurd's own schema on the same server: 0.92× of its spawns
-- a second with the router, 0.97× with spawn_task naming the queue's _spawn itself.
--
-- So kit_write_queue_routers now also writes spawn_task: the checks of its options as in migration
-- 000022 (same order, same errors), then the queues the routers name, each a static call of its
-- _spawn whose one row becomes spawn_task's, chosen by the same comparisons on the queue's name.
-- Both bodies come from kit_route_body (new: the grouping of the queues into kit_route_tree's
-- leaves, which the routers' writer did inline). A queue it does not name goes on to kit_route_spawn as before (which does not
-- name it either, and EXECUTEs: the queue's functions written on first use, or 42P01 for a queue
-- that does not exist). spawn_task keeps its arguments, defaults, result, errors and locks, and is
-- rewritten whenever the routers are (create_queue, drop_queue, a queue's first call that writes
-- its functions), by the role that ran the migrations; `create or replace` keeps its owner and
-- grants. The writer changes nothing when spawn_task belongs to another role, as for a router.

-- kit_route_body(names, part, leaf): the PL/pgSQL text that picks, among the queues `names` (in
-- byte order, collate "C"), the one p_queue_name is and runs `leaf` for it: `leaf` is a format()
-- string of the queue's name (%1$L) and its function `part` (%2$I). The queues are grouped in
-- leaves of four, each keyed by its first name, for kit_route_tree. The routers' bodies and
-- spawn_task's (kit_write_queue_routers) are made by it. Pure.
create function absurd.kit_route_body(p_names text[], p_part text, p_leaf text) returns text
language sql
immutable
as $$
  select absurd.kit_route_tree(g.keys, g.leaves, 1, coalesce(cardinality(g.keys), 0), '  ')
    from (select array_agg(l.first_name order by l.leaf) as keys, array_agg(l.body order by l.leaf) as leaves
            from (select (n.ord - 1) / 4 as leaf,
                         (array_agg(n.name order by n.ord))[1] as first_name,
                         string_agg(format(p_leaf, n.name, absurd.kit_limits_function_name(n.name, p_part)),
                                    '' order by n.ord) as body
                    from unnest(p_names) with ordinality as n(name, ord)
                   group by 1) l) g
$$;

-- kit_write_queue_routers(): as in migration 000025, and then spawn_task (see the header); returns
-- false, and changes nothing, when spawn_task or a router belongs to another role. Locks: those of
-- 000025.
create or replace function absurd.kit_write_queue_routers() returns boolean
language plpgsql
security definer
set search_path = pg_catalog, pg_temp
set check_function_bodies = off
as $$
declare
  v_parts text[] := array['claim_task', 'kit_claim', 'complete', 'set_checkpoints', 'spawn'];
  v_names text[];
  v_part record;
  v_cap_text text := nullif(btrim(current_setting('absurd.kit_router_queues', true)), '');
  v_cap integer;
begin
  if not has_schema_privilege('absurd', 'CREATE')
     or exists (select 1
                  from pg_proc p
                 where p.pronamespace = 'absurd'::regnamespace
                   and (p.proname like 'kit\_route\_%' and p.proname <> 'kit_route_tree'
                        or p.proname = 'spawn_task')
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
      absurd.kit_route_body(v_names, v_part.part,
                            format(E'if p_queue_name = %%1$L then\n  return query select * from absurd.%%2$I(%s);\n'
                                   '  return;\nend if;\n', v_part.args)),
      (select string_agg('$' || i, ', ' order by i) from generate_series(1, v_part.arity) as i),
      v_part.part, v_part.args);
  end loop;

  -- spawn_task itself, each routed queue's _spawn called in its body (see the header). The
  -- options are checked as in migration 000022, in the same order, with the same errors; a queue
  -- its body does not name goes on to kit_route_spawn, which names none either and EXECUTEs.
  execute format(
    $g$create or replace function absurd.spawn_task(p_queue_name text, p_task_name text, p_params jsonb,
                                  p_options jsonb default '{}')
returns table(task_id uuid, run_id uuid, attempt integer, created boolean)
language plpgsql
as $body$
declare
  v_options jsonb := coalesce(p_options, '{}'::jsonb);
  v_params jsonb := coalesce(p_params, 'null'::jsonb);
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
        raise exception 'cancellation.%% must be a whole number of seconds, got %%',
          v_option_key, v_cancellation -> v_option_key;
      end if;
    end loop;
  end if;
  if jsonb_typeof(v_retry_strategy) = 'object' then
    foreach v_option_key in array array['base_seconds', 'factor', 'max_seconds'] loop
      if (v_retry_strategy ->> v_option_key) !~ '^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$' then
        raise exception 'retry_strategy.%% must be a number, got %%',
          v_option_key, v_retry_strategy -> v_option_key;
      end if;
    end loop;
  end if;

%1$s
  return query select * from absurd.kit_route_spawn(p_queue_name, p_task_name, v_params, v_headers, v_retry_strategy,
                                                    v_max_attempts, v_cancellation, v_key, v_priority);
end;
$body$
$g$,
    absurd.kit_route_body(v_names, 'spawn',
                          E'if p_queue_name = %1$L then\n'
                          '  select s.o_task_id, s.o_run_id, s.o_attempt, s.o_created\n'
                          '    into task_id, run_id, attempt, created\n'
                          '    from absurd.%2$I(p_task_name, v_params, v_headers, v_retry_strategy, v_max_attempts,\n'
                          '                   v_cancellation, v_key, v_priority) s;\n'
                          '  return next;\n'
                          '  return;\n'
                          'end if;\n'));
  return true;
end;
$$;

select absurd.kit_write_queue_routers();
