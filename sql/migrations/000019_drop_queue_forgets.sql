-- absurd-kit engine, migration 000019: dropping a queue drops what absurd-kit keeps about it.
--
-- drop_queue dropped the queue's tables and its registry row, and left behind the rows absurd-kit
-- keeps about the queue elsewhere: its limits (with their slots, waiters, starts and the per-queue
-- claim functions kit_q_<md5>_*), its schedules, and the idle marks of its workers. A queue
-- created again under the same name forgot the limits (000016), but its schedules came back to
-- life and fired into it. drop_queue now removes all of them in its own transaction.

-- kit_drop_queue_functions(q): drops every function absurd-kit wrote for queue q alone (named
-- kit_q_<md5(q)>_<part>, with the queue's tables in static SQL). Locks: those of drop function.
create function absurd.kit_drop_queue_functions(p_queue_name text) returns void
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
end;
$$;

-- drop_queue(q): as in migration 000001, and then the queue's flow-control rows and functions
-- (kit_forget_queue_limits), its schedules, its workers' idle marks and the functions written for it.
-- Locks: those of 000001; then the rows deleted, and those of drop function for kit_q_<md5>_*.
create or replace function absurd.drop_queue(p_queue_name text) returns void
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
  -- What absurd-kit keeps about the queue outside its tables.
  perform absurd.kit_forget_queue_limits(p_queue_name);
  delete from absurd.kit_schedules s where s.queue_name = p_queue_name;
  delete from absurd.kit_idle_listeners l where l.queue_name = p_queue_name;
  perform absurd.kit_drop_queue_functions(p_queue_name);
end;
$$;

-- The leftovers of queues dropped before this migration.
delete from absurd.kit_schedules s
 where not exists (select 1 from absurd.queues q where q.queue_name = s.queue_name);
select absurd.kit_forget_queue_limits(o.queue_name)
  from (select queue_name from absurd.kit_limits
        union select queue_name from absurd.kit_limit_slots
        union select queue_name from absurd.kit_limit_waiters
        union select queue_name from absurd.kit_limit_starts) o
 where not exists (select 1 from absurd.queues q where q.queue_name = o.queue_name);
delete from absurd.kit_idle_listeners l
 where not exists (select 1 from absurd.queues q where q.queue_name = l.queue_name);
