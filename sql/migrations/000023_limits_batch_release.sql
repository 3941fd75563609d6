-- absurd-kit engine, migration 000023: a batch of completions releases its limits' slots in one go.
--
-- On a queue with limits, every run that leaves 'running' fires the row trigger kit_limits_release
-- (000016, 000021): a PL/pgSQL call per run that deletes the run's slots, takes their buckets'
-- locks and looks for waiters. For the runs absurd-kit's workers complete in batches
-- (kit_complete_runs, 16 at a time and more) the trigger was the largest part of what a limit
-- costs: measured on PostgreSQL 15 with pg_stat_statements, a loop that claims 16 runs of a queue
-- with a per-key limit that never binds and completes them in one call spent 0.53 ms per 16 runs
-- in the trigger, and the completion statement took 1.66 ms against 1.13 ms on the same queue
-- without the limit.
--
-- kit_complete_runs now completes the runs of a queue with limits with the trigger held back and
-- releases their slots itself afterwards, set-based (kit_limits_release_runs: about 0.2 ms per 16
-- runs). The trigger's WHEN condition holds it back while the transaction-local setting
-- absurd.kit_batch_release is 'on'; kit_complete_runs sets it around its own update only, so every
-- other statement — complete_run, fail_run, cancellations, sleeps, lease expiry, every SDK's
-- calls — still fires the trigger run by run, as before. The release keeps the trigger's order
-- (slots deleted and the buckets' locks taken SHARED in one statement, the look for waiters in a
-- later one), so the race analysis of kit_claim_limited (000021) holds unchanged.
--
-- The trigger's own release of a run leaving 'running' now calls kit_limits_release_runs for that
-- run: one implementation of the release for both.
--
-- kit_set_limit gives a queue the trigger through kit_limits_ensure_trigger, which also rewrites a
-- trigger of the earlier definition; this migration rewrites those of every queue with limits.
-- Nothing changes for clients: same functions, arguments, results, rows, locks and wake-ups.

-- kit_limits_release_runs(q, runs): what kit_limits_release does for each of the given runs that
-- left 'running', for all of them at once: deletes their slots and, in the same statement, takes
-- each bucket's advisory lock SHARED (waited for); then, in a later statement (its snapshot taken
-- after the locks are held), un-parks the next waiters of every bucket that has any
-- (kit_limit_unpark, by limit and key). The caller has already moved the
-- runs out of 'running' in an earlier statement of its transaction.
-- Locks: the slot rows it deletes, then the buckets' advisory locks SHARED (in any order: shared
-- locks do not exclude one another, and a claim, which holds one exclusively, never waits), then as
-- kit_limit_unpark.
create function absurd.kit_limits_release_runs(p_queue_name text, p_run_ids uuid[]) returns void
language plpgsql
as $$
declare
  v_limits text[];
  v_keys text[];
  v_i integer;
begin
  with d as (
    delete from absurd.kit_limit_slots s where s.run_id = any(p_run_ids)
    returning s.limit_name, s.key
  ),
  b as (
    select distinct d.limit_name, d.key from d
  )
  select array_agg(b.limit_name order by b.limit_name, b.key), array_agg(b.key order by b.limit_name, b.key)
    into v_limits, v_keys
    from b
   where pg_advisory_xact_lock_shared(1633841252, absurd.kit_limit_lock_key(p_queue_name, b.limit_name, b.key))
         is not null;
  if v_limits is null then
    return;
  end if;
  -- Under the locks: a bucket nobody waits for (the common case) costs one index probe.
  for v_i in
    select u.ord from unnest(v_limits, v_keys) with ordinality as u(l, k, ord)
     where exists (select 1 from absurd.kit_limit_waiters w
                    where w.queue_name = p_queue_name and w.limit_name = u.l and w.key = u.k and not w.woken)
     order by u.ord
  loop
    perform absurd.kit_limit_unpark(p_queue_name, v_limits[v_i], v_keys[v_i]);
  end loop;
end;
$$;

-- kit_limits_release(): the row trigger of migration 000021, its release of a run leaving
-- 'running' done by kit_limits_release_runs for that one run (the same statements in the same
-- order), so that the batch and the trigger share one implementation of the release. Locks: those
-- of 000021.
create or replace function absurd.kit_limits_release() returns trigger
language plpgsql
as $$
declare
  v_q text := tg_argv[0];
  v_row record;
begin
  if old.state = 'running' then
    perform absurd.kit_limits_release_runs(v_q, array[old.run_id]);
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

-- kit_limits_ensure_trigger(q): gives r_<q> the row trigger kit_limits_release of this migration's
-- definition (held back while absurd.kit_batch_release is 'on'), replacing one of the earlier
-- definition. Locks: r_<q> in SHARE ROW EXCLUSIVE mode when it creates or replaces the trigger.
create function absurd.kit_limits_ensure_trigger(p_queue_name text) returns void
language plpgsql
as $$
declare
  v_r text := 'r_' || p_queue_name;
  v_def text;
begin
  select pg_get_triggerdef(g.oid) into v_def
    from pg_trigger g
   where g.tgrelid = format('absurd.%I', v_r)::regclass and g.tgname = 'kit_limits_release';
  if v_def is not null and v_def like '%absurd.kit_batch_release%' then
    return;
  end if;
  if v_def is not null then
    execute format('drop trigger kit_limits_release on absurd.%I', v_r);
  end if;
  execute format(
    $f$create trigger kit_limits_release
         after update of state on absurd.%I
         for each row
         when (old.state is distinct from new.state
               and (old.state = 'running' or new.state in ('completed', 'failed', 'cancelled'))
               and current_setting('absurd.kit_batch_release', true) is distinct from 'on')
         execute function absurd.kit_limits_release(%L)$f$,
    v_r, p_queue_name);
end;
$$;

-- kit_set_limit(q, name, task, key_path, max_running, rate_count, rate_period_seconds): as in
-- migration 000016; the queue's trigger comes from kit_limits_ensure_trigger. Errors and locks:
-- those of 000016, then those of kit_limits_ensure_trigger.
create or replace function absurd.kit_set_limit(p_queue_name text, p_limit_name text, p_task_name text, p_key_path text[],
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

  perform absurd.kit_limits_ensure_trigger(p_queue_name);
  perform absurd.kit_limits_create_functions(p_queue_name);
  return true;
end;
$$;

-- kit_complete_runs(q, runs, results): as in migration 000020 (same result, outcomes, locks and
-- announcements). On a queue with limits, its update runs with the release trigger held back
-- (absurd.kit_batch_release 'on' for that statement only) and the completed runs' slots are then
-- released together (kit_limits_release_runs). Locks: those of 000020, then those of
-- kit_limits_release_runs.
create or replace function absurd.kit_complete_runs(p_queue_name text, p_run_ids uuid[], p_results jsonb[])
returns table(run_id uuid, outcome text)
language plpgsql
as $$
declare
  v_runs uuid[];
  v_outcomes text[];
  v_tasks uuid[];
  v_task uuid;
  -- A limit set or removed meanwhile waits for this transaction's update (kit_set_limit locks
  -- r_<q> in EXCLUSIVE mode) and the other way round: with no limit seen here, the trigger (if one
  -- appears) fires as usual; with one seen, releasing slots that are gone already does nothing.
  v_limited boolean := exists (select 1 from absurd.kit_limits l where l.queue_name = p_queue_name);
begin
  if v_limited then
    perform set_config('absurd.kit_batch_release', 'on', true);
  end if;
  execute format('select * from absurd.%I($1, $2, $3)', absurd.kit_queue_statement(p_queue_name, 'complete'))
    into v_runs, v_outcomes, v_tasks using p_run_ids, p_results, absurd.current_time();
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

-- The queues that have limits get the trigger of this definition now.
select absurd.kit_limits_ensure_trigger(q.queue_name)
  from (select distinct l.queue_name from absurd.kit_limits l) q
 where to_regclass(format('absurd.%I', 'r_' || q.queue_name)) is not null
 order by q.queue_name;
