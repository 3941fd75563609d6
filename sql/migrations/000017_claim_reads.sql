-- absurd-kit engine, migration 000017: claims read a few index entries per claimed run, whatever
-- the queue's history and whatever the planner's statistics say.
--
-- Two plans made a claim's cost grow with the queue, both measured on PostgreSQL 15:
--
-- 1. kit_claim_task (000010) joined claim_task's rows to r_<q> to read each run's available_at
--    from before the claim (queue_lag). The planner takes a function's result for 1,000 rows, and
--    for 1,000 rows a hash join over a sequential scan of r_<q> is cheaper than 1,000 key lookups
--    until r_<q> holds a few hundred thousand runs: every claim read the queue's whole history
--    (15 ms per claim with 25,000 runs kept). The earlier available_at is now read by run_id, one
--    key lookup per claimed run, which no estimate can turn into a scan.
-- 2. claim_task's candidates: right after a burst of spawns the statistics still describe the
--    queue as it was (say, 1 % of its runs due), so the planner expected a few dozen due runs and
--    joined all of them to their tasks (a hash join, or a bitmap scan) and sorted them, instead of
--    reading the first qty off r_<q>_cai in order: every claim then read every due run (8,000 rows
--    read to claim 16 of 4,000 due runs; 6 ms per claim), so that draining a burst cost the square
--    of its size. claim_task now plans with sorts and sequential scans disabled (function-level
--    settings, restored when it returns). The only plan for the candidates that needs no sort is
--    r_<q>_cai read from its start, each run's task looked up by key (a nested loop keeps the
--    order), and it stops after qty runs, whatever the estimate. Every other statement it runs,
--    and those of the functions it calls (cancel_task, fail_run), has an index made for it
--    (t_<q>_cpi, r_<q>_cei, the primary keys); a sort that a statement cannot do without still
--    happens, as the settings only make such plans look expensive. JIT is off for the same
--    reason: the cost a disabled plan is given would otherwise make PostgreSQL compile the
--    statement (hundreds of milliseconds) to save microseconds.
--
-- Any later migration that redefines claim_task must set them again (create or replace
-- drops them); test/sql/claim-reads.test.ts fails when a claim reads the queue again.

drop function absurd.kit_claim_task(text, text, integer, integer);
-- kit_claim_task(q, worker, claim_timeout, qty): as in 000010 (claim_task's rows, each claimed
-- run's committed checkpoints and its queue_lag), with the earlier available_at read by key.
-- Locks: those of claim_task; the checkpoints and the runs' earlier versions are only read.
create function absurd.kit_claim_task(p_queue_name text, p_worker_id text, p_claim_timeout integer default 30,
                                      p_qty integer default 1)
returns table(run_id uuid, task_id uuid, attempt integer, task_name text, params jsonb,
              retry_strategy jsonb, max_attempts integer, headers jsonb, wake_event text,
              event_payload jsonb, checkpoints jsonb, queue_lag double precision)
language plpgsql
as $$
begin
  -- The scalar subquery on r_<q> is one primary-key lookup per claimed run. It reads the version
  -- of the statement's snapshot, from before claim_task overwrote available_at (see 000010).
  return query execute format(
    'select c.run_id, c.task_id, c.attempt, c.task_name, c.params, c.retry_strategy, c.max_attempts,
            c.headers, c.wake_event, c.event_payload,
            (select coalesce(jsonb_object_agg(cp.checkpoint_name, cp.state), ''{}''::jsonb)
               from absurd.%1$I cp
               left join absurd.%2$I owner on owner.run_id = cp.owner_run_id
              where cp.task_id = c.task_id and cp.status = ''committed''
                and (owner.attempt is null or owner.attempt <= c.attempt)),
            extract(epoch from absurd.current_time()
                    - (select due.available_at from absurd.%2$I due where due.run_id = c.run_id))::double precision
       from absurd.claim_task($1, $2, $3, $4) with ordinality as c
      order by c.ordinality',
    'c_' || p_queue_name, 'r_' || p_queue_name)
    using p_queue_name, p_worker_id, p_claim_timeout, p_qty;
end;
$$;

-- claim_task's plans: without sorts, sequential scans or JIT (see 2. above). Set on the function
-- as it stands, whatever its body; `create or replace` would drop these settings, hence the note
-- at the top.
alter function absurd.claim_task(text, text, integer, integer) set enable_sort = off;
alter function absurd.claim_task(text, text, integer, integer) set enable_seqscan = off;
alter function absurd.claim_task(text, text, integer, integer) set jit = off;
