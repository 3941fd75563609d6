/*
  Adopting a schema installed by Absurd (src/adopt.ts): reading what it holds, and building the
  statements that add absurd-kit's per-queue indexes. Run only on a database whose schema
  `absurd` exists. The migrations themselves come from src/engine/.

  ListAbsurdRelations      tables (and other non-index relations) of schema absurd, partitions left
                           out, with their columns and whether the current role may alter them.
  ListAbsurdFunctions      functions of schema absurd as `create or replace` compares them.
  ListAdoptedQueues        the rows of absurd.queues.
  ListKitQueueIndexes      per queue, absurd-kit's indexes (the definitions of ensure_queue_tables
                           as of migration 000028; migrations 000016 and 000028 also build them
                           while they add the runs' columns priority, cancel_deadline and
                           superseded), the
                           statement creating each and what already holds its name.
  LockQueueRegistry        SHARE lock on absurd.queues: no queue is created, dropped or re-configured
                           until the adoption commits.
  ListQueueTableLocks      per queue, the statements taking an ACCESS EXCLUSIVE lock on r_<q> (migrations
                           000016 and 000028 add the runs' columns priority, cancel_deadline and
                           superseded, which needs it), then an ACCESS EXCLUSIVE lock on t_<q> (migration 000028
                           drops the indexes that earlier migrations built on it, which needs it: a
                           SHARE lock would let a worker keep a row lock on the tasks and then wait
                           for the runs, a deadlock). Runs before tasks, as the engine's functions
                           lock them; taken here, with the others, they cannot deadlock with a
                           worker half-way. Existing tables only.
  ShowLockTimeout, SetLockTimeout
                           read, and set until the end of the transaction, `lock_timeout`.
  SavepointAdoptionLocks, RollbackToAdoptionLocks, ReleaseAdoptionLocks
                           around one attempt at taking the locks.
*/

/* @name ListAbsurdRelations */
select c.relname::text as "name!",
       c.relkind::text as "kind!",
       pg_get_userbyid(c.relowner)::text as "owner!",
       pg_has_role(c.relowner, 'USAGE') as "owned!",
       array(select a.attname::text
               from pg_attribute a
              where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
              order by a.attnum) as "columnNames!",
       array(select format_type(a.atttypid, a.atttypmod)
               from pg_attribute a
              where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
              order by a.attnum) as "columnTypes!"
  from pg_class c
 where c.relnamespace = 'absurd'::regnamespace
   and c.relkind not in ('i', 'I', 't', 'c')
   and not c.relispartition
 order by c.relname;

/* @name ListAbsurdFunctions */
select p.proname::text as "name!",
       pg_get_function_identity_arguments(p.oid) as "arguments!",
       oidvectortypes(p.proargtypes) as "types!",
       coalesce(pg_get_function_result(p.oid), '') as "result!",
       p.pronargdefaults::integer as "defaults!",
       p.prokind::text as "kind!",
       pg_get_userbyid(p.proowner)::text as "owner!",
       pg_has_role(p.proowner, 'USAGE') as "owned!"
  from pg_proc p
 where p.pronamespace = 'absurd'::regnamespace
 order by p.proname, oidvectortypes(p.proargtypes);

/* @name ListAdoptedQueues */
select q.queue_name as "name!", q.storage_mode as "storageMode!", octet_length(q.queue_name) as "bytes!"
  from absurd.queues q
 order by q.queue_name;

/* @name ListKitQueueIndexes */
select q.queue_name as "queue!",
       x.tbl as "table!",
       x.idx as "index!",
       format('create index if not exists %I on absurd.%I %s', x.idx, x.tbl, x.definition) as "statement!",
       exists (select 1
                 from pg_class c
                where c.relnamespace = 'absurd'::regnamespace and c.relname = x.idx) as "nameTaken!",
       exists (select 1
                 from pg_index i
                 join pg_class ci on ci.oid = i.indexrelid
                 join pg_class ct on ct.oid = i.indrelid
                where ci.relnamespace = 'absurd'::regnamespace
                  and ci.relname = x.idx
                  and ct.relname = x.tbl) as "exists!"
  from absurd.queues q
 cross join lateral (values
   ('r_' || q.queue_name, 'r_' || q.queue_name || '_cai',
    '(priority desc, available_at, run_id) where state in (''pending'', ''sleeping'')'),
   ('r_' || q.queue_name, 'r_' || q.queue_name || '_cdi',
    '(cancel_deadline) where cancel_deadline is not null and state in (''pending'', ''sleeping'', ''running'')'),
   ('r_' || q.queue_name, 'r_' || q.queue_name || '_lsi', '(state, task_id) where not superseded'),
   ('t_' || q.queue_name, 't_' || q.queue_name || '_cli', '(task_id) where cancelled_at is not null'),
   ('t_' || q.queue_name, 't_' || q.queue_name || '_nti', '(task_name, task_id)')
 ) as x(tbl, idx, definition)
 order by q.queue_name, x.tbl;

/* @name LockQueueRegistry */
lock table absurd.queues in share mode;

/* @name ListQueueTableLocks */
select x.relation as "relation!",
       format('lock table absurd.%I in %s mode', x.relation, x.mode) as "statement!"
  from absurd.queues q
 cross join lateral (values (1, 'r_' || q.queue_name, 'access exclusive'), (2, 't_' || q.queue_name, 'access exclusive'))
                 as x(ord, relation, mode)
 where to_regclass(format('absurd.%I', x.relation)) is not null
 order by q.queue_name, x.ord;

/* @name ShowLockTimeout */
select current_setting('lock_timeout') as "value!";

/* @name SetLockTimeout */
select set_config('lock_timeout', :timeout!, true) as "value!";

/* @name SavepointAdoptionLocks */
savepoint absurd_kit_adopt_locks;

/* @name RollbackToAdoptionLocks */
rollback to savepoint absurd_kit_adopt_locks;

/* @name ReleaseAdoptionLocks */
release savepoint absurd_kit_adopt_locks;
