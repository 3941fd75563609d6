-- Partitioned storage maintenance and pg_cron helpers.
--
-- Partitioned queues keep t_/r_/c_/w_ as range-partitioned parents keyed by a UUIDv7 column;
-- the functions here create the weekly children ahead of time, find old empty children that may
-- be detached, drop detached ones, and manage the pg_cron jobs that run all of this on a schedule.
--
-- pg_cron is optional: every access to the cron schema goes through dynamic SQL so that these
-- functions compile and load on a database without it. All DDL is transactional (no CONCURRENTLY
-- here; only the cron-scheduled detach command uses it, in its own job transaction).
--
-- Lock order shared by every function in this file (and by drop_queue, which calls
-- disable_cron before dropping tables): the pg_cron advisory lock, then absurd.queues rows, then
-- the per-queue ensure_partitions advisory lock, then tables (parents in the order t_, r_, c_, w_).


-- absurd.kit_require_pg_cron(p_need_schedule boolean) → void
--
-- Raises P0001 "pg_cron is not available (missing …)" unless relation cron.job exists, function
-- cron.schedule exists (checked only when p_need_schedule) and function cron.unschedule exists.
-- Checks names only, so a stand-in cron schema passes too. Takes no locks.
create function absurd.kit_require_pg_cron(p_need_schedule boolean)
returns void
language plpgsql
as $$
begin
  if to_regclass('cron.job') is null then
    raise exception 'pg_cron is not available (missing cron.job)';
  end if;
  if p_need_schedule and not exists (
    select 1
      from pg_proc p
      join pg_namespace n on n.oid = p.pronamespace
     where n.nspname = 'cron' and p.proname = 'schedule'
  ) then
    raise exception 'pg_cron is not available (missing cron.schedule)';
  end if;
  if not exists (
    select 1
      from pg_proc p
      join pg_namespace n on n.oid = p.pronamespace
     where n.nspname = 'cron' and p.proname = 'unschedule'
  ) then
    raise exception 'pg_cron is not available (missing cron.unschedule)';
  end if;
end;
$$;


-- absurd.kit_unschedule_cron_jobs(p_job_name text) → integer
--
-- Unschedules every pg_cron job named exactly p_job_name (oldest job id first) and returns how
-- many there were. The caller must have checked that pg_cron is available.
-- Locks: the pg_cron advisory lock (transaction-scoped; serialises all job management done by
-- this schema so two callers never unschedule the same job or schedule a name twice), then the
-- cron.job rows through cron.unschedule.
create function absurd.kit_unschedule_cron_jobs(p_job_name text)
returns integer
language plpgsql
as $$
declare
  v_job_id bigint;
  v_count integer := 0;
begin
  perform pg_advisory_xact_lock(hashtextextended('absurd.pg_cron_jobs', 0));
  for v_job_id in
    execute 'select j.jobid::bigint from cron.job j where j.jobname = $1 order by j.jobid'
      using p_job_name
  loop
    execute 'select cron.unschedule($1)' using v_job_id;
    v_count := v_count + 1;
  end loop;
  return v_count;
end;
$$;


-- absurd.ensure_partitions(p_queue_name text default null) → void
--
-- Guarantees, for every partitioned queue (or only p_queue_name, which is validated and must
-- exist): each of t_/r_/c_/w_ has a weekly partition <p>_<q>_<YWW> for every week from
-- week_bucket_utc(now - partition_lookback) through week_bucket_utc(now + partition_lookahead)
-- inclusive, bounded FROM uuidv7_floor(monday) TO uuidv7_floor(monday + 7 days) as plain uuid
-- literals; and, while default_partition = 'enabled', a DEFAULT partition <p>_<q>_d. Existing
-- tables are kept as they are, so re-running is safe. Unpartitioned queues are ignored.
-- Week arithmetic is done in hours so the session TimeZone (and its DST changes) cannot move a
-- bound away from Monday 00:00 UTC.
-- Locks, in order: each queue's absurd.queues row FOR SHARE (waits for a concurrent
-- set_queue_policy, so its default_partition change is seen, never undone); a per-queue
-- transaction advisory lock (serialises concurrent callers so "missing? then create" cannot
-- race); then, only when a partition is actually created, ACCESS EXCLUSIVE on its parent
-- (t_, r_, c_, w_ in that order) which also validates the parent's DEFAULT partition.
create function absurd.ensure_partitions(p_queue_name text default null)
returns void
language plpgsql
as $$
declare
  v_now timestamptz := absurd.current_time();
  v_queue record;
  v_prefix text;
  v_parent text;
  v_first_week timestamptz;
  v_last_week timestamptz;
  v_week timestamptz;
  v_partition text;
begin
  if p_queue_name is not null then
    perform absurd.validate_queue_name(p_queue_name);
    if not exists (select 1 from absurd.queues q where q.queue_name = p_queue_name) then
      raise exception 'Queue "%" does not exist', p_queue_name;
    end if;
  end if;

  for v_queue in
    select q.queue_name, q.default_partition, q.partition_lookahead, q.partition_lookback
      from absurd.queues q
     where q.storage_mode = 'partitioned'
       and (p_queue_name is null or q.queue_name = p_queue_name)
     order by q.queue_name
       for share
  loop
    perform pg_advisory_xact_lock(
      hashtextextended('absurd.ensure_partitions:' || v_queue.queue_name, 0));

    v_first_week := absurd.week_bucket_utc(v_now - v_queue.partition_lookback);
    v_last_week := absurd.week_bucket_utc(v_now + v_queue.partition_lookahead);

    foreach v_prefix in array array['t', 'r', 'c', 'w'] loop
      v_parent := v_prefix || '_' || v_queue.queue_name;

      if v_queue.default_partition = 'enabled' and not exists (
        select 1
          from pg_partitioned_table pt
         where pt.partrelid = format('absurd.%I', v_parent)::regclass
           and pt.partdefid <> 0
      ) then
        execute format('create table absurd.%I partition of absurd.%I default',
                       v_parent || '_d', v_parent);
      end if;

      v_week := v_first_week;
      while v_week <= v_last_week loop
        v_partition := v_parent || '_' || absurd.partition_week_tag(v_week);
        if to_regclass(format('absurd.%I', v_partition)) is null then
          execute format(
            'create table absurd.%I partition of absurd.%I for values from (%L) to (%L)',
            v_partition, v_parent,
            absurd.uuidv7_floor(v_week)::text,
            absurd.uuidv7_floor(v_week + interval '168 hours')::text);
        end if;
        v_week := v_week + interval '168 hours';
      end loop;
    end loop;
  end loop;
end;
$$;


-- absurd.list_detach_candidates(p_queue_name text default null)
--   → table(queue_name text, parent_table text, partition_table text)
--
-- Lists, for partitioned queues whose detach_mode is 'empty' (or only p_queue_name, which is
-- validated and must exist), the attached non-DEFAULT children of t_/r_/c_/w_ whose upper bound
-- (a v7 uuid parsed from the partition bound) lies before now - detach_min_age and which hold no
-- rows. DEFAULT partitions are never listed. Rows come in no guaranteed order. Changes nothing.
-- Locks: ACCESS SHARE on each old child it probes for rows (the emptiness check reads it).
create function absurd.list_detach_candidates(p_queue_name text default null)
returns table(queue_name text, parent_table text, partition_table text)
language plpgsql
as $$
declare
  v_now timestamptz := absurd.current_time();
  v_queue record;
  v_prefix text;
  v_parent text;
  v_child record;
  v_has_rows boolean;
begin
  if p_queue_name is not null then
    perform absurd.validate_queue_name(p_queue_name);
    if not exists (select 1 from absurd.queues q where q.queue_name = p_queue_name) then
      raise exception 'Queue "%" does not exist', p_queue_name;
    end if;
  end if;

  for v_queue in
    select q.queue_name, q.detach_min_age
      from absurd.queues q
     where q.storage_mode = 'partitioned'
       and q.detach_mode = 'empty'
       and (p_queue_name is null or q.queue_name = p_queue_name)
     order by q.queue_name
  loop
    foreach v_prefix in array array['t', 'r', 'c', 'w'] loop
      v_parent := v_prefix || '_' || v_queue.queue_name;
      for v_child in
        select c.relname::text as relname,
               absurd.uuidv7_timestamp(substring(
                 pg_get_expr(c.relpartbound, c.oid)
                 from 'TO \(''([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})''')::uuid
               ) as upper_at
          from pg_inherits i
          join pg_class c on c.oid = i.inhrelid
          join pg_class p on p.oid = i.inhparent
         where p.relnamespace = 'absurd'::regnamespace
           and p.relname = v_parent
           and pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
         order by c.relname
      loop
        continue when v_child.upper_at is null
                   or v_child.upper_at >= v_now - v_queue.detach_min_age;
        execute format('select exists (select 1 from absurd.%I)', v_child.relname)
          into v_has_rows;
        continue when v_has_rows;
        queue_name := v_queue.queue_name;
        parent_table := v_parent;
        partition_table := v_child.relname;
        return next;
      end loop;
    end loop;
  end loop;
end;
$$;


-- absurd.drop_detached_partition(p_partition_table text, p_unschedule_job_name text default null)
--   → boolean
--
-- Drops absurd.<p_partition_table> once it is no longer attached to a parent and returns true;
-- returns false (dropping nothing) when the table does not exist or is still attached. With a
-- job name (the cron "drop" job passes its own) and pg_cron present, it unschedules that job and,
-- for an absurd_drop_run_… name, the paired absurd_detach_run_… job whenever the table is gone
-- (already missing, or dropped by this call), so a finished pipeline removes itself.
-- Refuses (P0001) to drop a table that is not named like a queue partition (t_/r_/c_/w_ prefix),
-- that is a registered queue's own table, or that still holds rows, so a mistyped name or a
-- late write cannot lose data.
-- Locks, in order: the pg_cron advisory lock (when pg_cron is present), then ACCESS EXCLUSIVE on
-- the table, taken before re-checking that it is detached and empty.
create function absurd.drop_detached_partition(
  p_partition_table text,
  p_unschedule_job_name text default null
)
returns boolean
language plpgsql
as $$
declare
  v_table text := btrim(p_partition_table);
  v_detach_job text;
  v_cron boolean;
  v_oid oid;
  v_has_rows boolean;
begin
  if p_unschedule_job_name like 'absurd!_drop!_run!_%' escape '!' then
    v_detach_job := 'absurd_detach_run_'
                    || substr(p_unschedule_job_name, length('absurd_drop_run_') + 1);
  end if;

  if v_table is null or v_table = '' then
    raise exception 'partition table must be provided';
  end if;

  v_cron := to_regclass('cron.job') is not null and exists (
    select 1
      from pg_proc p
      join pg_namespace n on n.oid = p.pronamespace
     where n.nspname = 'cron' and p.proname = 'unschedule'
  );
  if v_cron then
    perform pg_advisory_xact_lock(hashtextextended('absurd.pg_cron_jobs', 0));
  end if;

  select c.oid into v_oid
    from pg_class c
   where c.relnamespace = 'absurd'::regnamespace
     and c.relname = v_table;

  if v_oid is null then
    if p_unschedule_job_name is not null and v_cron then
      perform absurd.kit_unschedule_cron_jobs(p_unschedule_job_name);
      if v_detach_job is not null then
        perform absurd.kit_unschedule_cron_jobs(v_detach_job);
      end if;
    end if;
    return false;
  end if;

  -- Checked before locking so that a live partition is never locked exclusively for nothing.
  if exists (select 1 from pg_inherits i where i.inhrelid = v_oid) then
    return false;
  end if;

  if v_table !~ '^[trcw]_' or v_table = 'queues' or exists (
    select 1
      from absurd.queues q
      cross join unnest(array['t', 'r', 'c', 'e', 'w', 'i']) as k(prefix)
     where k.prefix || '_' || q.queue_name = v_table
  ) then
    raise exception 'Table "%" is not a queue partition; refusing to drop it', v_table;
  end if;

  execute format('lock table absurd.%I in access exclusive mode', v_table);
  -- Attaching needs a lock on the table too, so from here on the answer cannot change.
  if exists (select 1 from pg_inherits i where i.inhrelid = v_oid) then
    return false;
  end if;
  execute format('select exists (select 1 from absurd.%I)', v_table) into v_has_rows;
  if v_has_rows then
    raise exception 'Partition table "%" is not empty; refusing to drop it', v_table;
  end if;

  if v_detach_job is not null and v_cron then
    perform absurd.kit_unschedule_cron_jobs(v_detach_job);
  end if;
  execute format('drop table if exists absurd.%I', v_table);
  if p_unschedule_job_name is not null and v_cron then
    perform absurd.kit_unschedule_cron_jobs(p_unschedule_job_name);
  end if;
  return true;
end;
$$;


-- absurd.schedule_detach_jobs(p_queue_name text default null)
--   → table(job_name text, job_id bigint, queue_name text, partition_table text, job_kind text)
--
-- For each parent table with a detach candidate (list_detach_candidates(p_queue_name)), takes
-- only its oldest candidate (by upper bound, then name) and schedules two every-minute pg_cron
-- jobs: absurd_detach_run_<scope>_<parent key>_<candidate key> running
-- "alter table absurd.<parent> detach partition absurd.<partition>" (with " concurrently" only
-- when the parent has no DEFAULT partition, since a concurrent detach is not allowed then), and
-- absurd_drop_run_… running drop_detached_partition, which removes both jobs once the table is
-- gone. A parent that already has a detach or drop job of any scope is skipped: one pipeline per
-- parent, so re-running schedules nothing new. Returns one row per job created.
-- Locks, in order: the pg_cron advisory lock (so two planners cannot both schedule a parent),
-- then ACCESS SHARE on the old children probed by list_detach_candidates.
create function absurd.schedule_detach_jobs(p_queue_name text default null)
returns table(job_name text, job_id bigint, queue_name text, partition_table text, job_kind text)
language plpgsql
as $$
declare
  v_scope text;
  v_candidate record;
  v_parent_key text;
  v_candidate_key text;
  v_detach_job text;
  v_drop_job text;
  v_detach_sql text;
  v_busy boolean;
begin
  if p_queue_name is not null then
    perform absurd.validate_queue_name(p_queue_name);
  end if;
  perform absurd.kit_require_pg_cron(true);
  perform pg_advisory_xact_lock(hashtextextended('absurd.pg_cron_jobs', 0));

  v_scope := case when p_queue_name is null then 'all' else substr(md5(p_queue_name), 1, 12) end;

  for v_candidate in
    select distinct on (d.parent_table)
           d.queue_name, d.parent_table, d.partition_table
      from absurd.list_detach_candidates(p_queue_name) d
      join pg_class c
        on c.relnamespace = 'absurd'::regnamespace
       and c.relname = d.partition_table
     order by d.parent_table,
              absurd.uuidv7_timestamp(substring(
                pg_get_expr(c.relpartbound, c.oid)
                from 'TO \(''([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})''')::uuid),
              d.partition_table
  loop
    v_parent_key := substr(md5(v_candidate.parent_table), 1, 8);
    execute 'select exists (select 1 from cron.job j'
            ' where j.jobname like $1 escape ''!'' or j.jobname like $2 escape ''!'')'
      into v_busy
      using 'absurd!_detach!_run!_%!_' || v_parent_key || '!_%',
            'absurd!_drop!_run!_%!_' || v_parent_key || '!_%';
    continue when v_busy;

    v_candidate_key := substr(md5(v_candidate.parent_table || ':' || v_candidate.partition_table), 1, 12);
    v_detach_job := format('absurd_detach_run_%s_%s_%s', v_scope, v_parent_key, v_candidate_key);
    v_drop_job := format('absurd_drop_run_%s_%s_%s', v_scope, v_parent_key, v_candidate_key);

    v_detach_sql := format('alter table absurd.%I detach partition absurd.%I',
                           v_candidate.parent_table, v_candidate.partition_table);
    if not exists (
      select 1
        from pg_partitioned_table pt
       where pt.partrelid = format('absurd.%I', v_candidate.parent_table)::regclass
         and pt.partdefid <> 0
    ) then
      v_detach_sql := v_detach_sql || ' concurrently';
    end if;

    execute 'select cron.schedule($1, $2, $3)'
      into job_id
      using v_detach_job, '* * * * *', v_detach_sql;
    job_name := v_detach_job;
    queue_name := v_candidate.queue_name;
    partition_table := v_candidate.partition_table;
    job_kind := 'detach';
    return next;

    execute 'select cron.schedule($1, $2, $3)'
      into job_id
      using v_drop_job, '* * * * *',
            format('select absurd.drop_detached_partition(%L, %L);',
                   v_candidate.partition_table, v_drop_job);
    job_name := v_drop_job;
    job_kind := 'drop';
    return next;
  end loop;
end;
$$;


-- absurd.enable_cron(p_queue_name text default null, p_partition_schedule text default '5 * * * *',
--   p_cleanup_schedule text default '17 * * * *', p_detach_schedule text default '29 * * * *')
--   → table(job_name text, job_id bigint)
--
-- Schedules three pg_cron jobs for one queue (validated, must exist) or, without a queue, for
-- all queues: absurd_partitions_<scope> (ensure_partitions), absurd_cleanup_<scope>
-- (cleanup_all_queues) and absurd_detach_plan_<scope> (schedule_detach_jobs), where scope is
-- 'all' or the first 12 hex digits of md5(queue). Jobs already bearing those names are
-- unscheduled first, so enabling again replaces them. Returns the three new jobs in that order.
-- Locks: the pg_cron advisory lock, then cron.job rows through cron.unschedule/cron.schedule.
create function absurd.enable_cron(
  p_queue_name text default null,
  p_partition_schedule text default '5 * * * *',
  p_cleanup_schedule text default '17 * * * *',
  p_detach_schedule text default '29 * * * *'
)
returns table(job_name text, job_id bigint)
language plpgsql
as $$
declare
  v_scope text;
  v_queue_literal text;
  v_names text[];
  v_schedules text[];
  v_commands text[];
begin
  if p_queue_name is not null then
    perform absurd.validate_queue_name(p_queue_name);
    if not exists (select 1 from absurd.queues q where q.queue_name = p_queue_name) then
      raise exception 'Queue "%" does not exist', p_queue_name;
    end if;
  end if;
  if p_partition_schedule is null or btrim(p_partition_schedule) = '' then
    raise exception 'Partition schedule must be provided';
  end if;
  if p_cleanup_schedule is null or btrim(p_cleanup_schedule) = '' then
    raise exception 'Cleanup schedule must be provided';
  end if;
  if p_detach_schedule is null or btrim(p_detach_schedule) = '' then
    raise exception 'Detach schedule must be provided';
  end if;
  perform absurd.kit_require_pg_cron(true);
  perform pg_advisory_xact_lock(hashtextextended('absurd.pg_cron_jobs', 0));

  v_scope := case when p_queue_name is null then 'all' else substr(md5(p_queue_name), 1, 12) end;
  v_queue_literal := case when p_queue_name is null then 'null::text' else quote_literal(p_queue_name) end;
  v_names := array[
    'absurd_partitions_' || v_scope,
    'absurd_cleanup_' || v_scope,
    'absurd_detach_plan_' || v_scope
  ];
  v_schedules := array[p_partition_schedule, p_cleanup_schedule, p_detach_schedule];
  v_commands := array[
    format('select absurd.ensure_partitions(%s);', v_queue_literal),
    format('select * from absurd.cleanup_all_queues(%s);', v_queue_literal),
    format('select * from absurd.schedule_detach_jobs(%s);', v_queue_literal)
  ];

  for v_i in 1 .. 3 loop
    perform absurd.kit_unschedule_cron_jobs(v_names[v_i]);
    execute 'select cron.schedule($1, $2, $3)'
      into job_id
      using v_names[v_i], v_schedules[v_i], v_commands[v_i];
    job_name := v_names[v_i];
    return next;
  end loop;
end;
$$;


-- absurd.disable_cron(p_queue_name text default null) → table(job_name text, job_id bigint)
--
-- Unschedules the jobs of one scope ('all' without a queue, else md5-derived from the queue
-- name, which is validated but need not exist any more): the three jobs of enable_cron and every
-- absurd_detach_run_<scope>_… / absurd_drop_run_<scope>_… job of schedule_detach_jobs. Returns
-- each removed job ordered by name then id; calling it again returns nothing.
-- Locks: the pg_cron advisory lock, then cron.job rows through cron.unschedule.
create function absurd.disable_cron(p_queue_name text default null)
returns table(job_name text, job_id bigint)
language plpgsql
as $$
declare
  v_scope text;
  v_job record;
begin
  if p_queue_name is not null then
    perform absurd.validate_queue_name(p_queue_name);
  end if;
  perform absurd.kit_require_pg_cron(false);
  perform pg_advisory_xact_lock(hashtextextended('absurd.pg_cron_jobs', 0));

  v_scope := case when p_queue_name is null then 'all' else substr(md5(p_queue_name), 1, 12) end;

  for v_job in
    execute 'select j.jobid::bigint as jobid, j.jobname::text as jobname from cron.job j'
            ' where j.jobname = any($1)'
            '    or j.jobname like $2 escape ''!'''
            '    or j.jobname like $3 escape ''!'''
            ' order by j.jobname, j.jobid'
      using array['absurd_partitions_' || v_scope,
                  'absurd_cleanup_' || v_scope,
                  'absurd_detach_plan_' || v_scope],
            'absurd!_detach!_run!_' || v_scope || '!_%',
            'absurd!_drop!_run!_' || v_scope || '!_%'
  loop
    execute 'select cron.unschedule($1)' using v_job.jobid;
    job_name := v_job.jobname;
    job_id := v_job.jobid;
    return next;
  end loop;
end;
$$;
