/*
  `absurd cron` and `absurd partitions …`: the engine's ensure_partitions, list_detach_candidates,
  drop_detached_partition, enable_cron and disable_cron, and what the catalogue says about the
  partitions of schema absurd.

  Statements that name a table are returned as text, each name always double-quoted (embedded
  quotes doubled) — the form `partitions candidates --show-sql` prints and an operator may paste
  into psql; `alter table … detach partition` takes identifiers, which no parameter can carry.

  EnableCronStatement       `(job_name, job_id)` of the jobs enable_cron schedules for the queue
                            (null: all queues); a schedule left null is not passed, so that the
                            engine's default applies. Every value is a quoted literal.
  DisableCron               removes the jobs of the queue (null: those for all queues).
  PartitionNames            every attached partition of schema absurd.
  EnsurePartitions          creates the partitions the policy of the queue (null: of every
                            partitioned queue) asks for.
  DetachCandidates          the engine's detach candidates with the upper bound of each partition's
                            UUIDv7 range as a time, whether its parent has a DEFAULT partition, and
                            the statement that detaches it (`concurrently` only without a DEFAULT
                            partition: Postgres refuses a concurrent detach then, and the engine's
                            schedule_detach_jobs writes it the same way).
  TableState                kind of a table of schema absurd and, when it is attached, its parent.
  DetachPartitionStatement  the statement that detaches a partition from its parent: `finalize` for
                            one whose concurrent detach was interrupted, else as in DetachCandidates.
  DropDetachedPartition     drops a detached partition; false when it is still attached or gone.
*/

/* @name EnableCronStatement */
select format('select job_name, job_id::text as job_id from absurd.enable_cron(%L::text', :queueName::text)
       || case when :partitionSchedule::text is null then ''
               else format(', p_partition_schedule => %L::text', :partitionSchedule::text) end
       || case when :cleanupSchedule::text is null then ''
               else format(', p_cleanup_schedule => %L::text', :cleanupSchedule::text) end
       || case when :detachSchedule::text is null then ''
               else format(', p_detach_schedule => %L::text', :detachSchedule::text) end
       || ')' as "statement!";

/* @name DisableCron */
select job_name as "job_name!", job_id::text as "job_id!" from absurd.disable_cron(:queueName::text);

/* @name PartitionNames */
select c.relname::text as "relname!"
  from pg_class c
 where c.relnamespace = 'absurd'::regnamespace and c.relispartition and c.relkind = 'r';

/* @name EnsurePartitions */
select absurd.ensure_partitions(:queueName::text);

/* @name DetachCandidates */
select d.queue_name as "queue_name!", d.parent_table as "parent_table!", d.partition_table as "partition_table!",
       absurd.uuidv7_timestamp(substring(pg_get_expr(c.relpartbound, c.oid)
         from 'TO \(''([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})''')::uuid) as upper_bound,
       coalesce(pt.partdefid <> 0, false) as "parent_has_default!",
       format('alter table absurd."%s" detach partition absurd."%s"',
              replace(d.parent_table, '"', '""'), replace(d.partition_table, '"', '""'))
         || case when coalesce(pt.partdefid <> 0, false) then '' else ' concurrently' end as "detach_sql!"
  from absurd.list_detach_candidates(:queueName::text) d
  join pg_class c on c.relnamespace = 'absurd'::regnamespace and c.relname = d.partition_table
  left join pg_partitioned_table pt on pt.partrelid = format('absurd.%I', d.parent_table)::regclass
 order by d.queue_name, d.parent_table, upper_bound, d.partition_table;

/* @name TableState */
select c.relkind::text as "relkind!", p.relname::text as "parent_table?", i.inhdetachpending as "detach_pending?",
       (select pt.partdefid <> 0 from pg_partitioned_table pt where pt.partrelid = p.oid) as parent_has_default
  from pg_class c
  left join pg_inherits i on i.inhrelid = c.oid
  left join pg_class p on p.oid = i.inhparent
 where c.relnamespace = 'absurd'::regnamespace and c.relname = :tableName!;

/* @name DetachPartitionStatement */
select format('alter table absurd."%s" detach partition absurd."%s"',
              replace(:parentTable!::text, '"', '""'), replace(:partitionTable!::text, '"', '""'))
       || case when :pending!::boolean then ' finalize'
               when :parentHasDefault!::boolean then ''
               else ' concurrently' end as "statement!";

/* @name DropDetachedPartition */
select absurd.drop_detached_partition(:partitionTable!) as "dropped!";
