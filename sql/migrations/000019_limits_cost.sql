-- absurd-kit engine, migration 000019: what a concurrency limit costs a claim and a release.
--
-- Measured on PostgreSQL 15 with pg_stat_statements (track = all, track_planning on), no-op runs
-- claimed eight at a time from a queue with a per-key limit of one that never binds, against the
-- same queue without the limit:
--
-- 1. Planning. The statements of kit_claim_limited and of the queue's kit_q_<md5(q)>_fetch were
--    planned again at every claim: their generic plans (kept per session) are estimated for a LIMIT
--    of unknown size, which the plan cache compares with custom plans made for a LIMIT of 8 and
--    finds dearer, so it never kept them. The fetch statement alone cost 0.5 ms of planning per
--    claim, against 0.17 ms to run it; the decision statement 0.15 ms against 0.06 ms. Their generic
--    plans are the ones wanted anyway: r_<q>_cai read in order, each run's task by key, no sort,
--    whatever the LIMIT (claim_task's planner settings, 000017, hold for them too). kit_claim_limited
--    now runs with plan_cache_mode = force_generic_plan (a setting of the function, restored when it
--    returns, as claim_task's own), which holds for the functions it calls. The plain claim of a
--    queue without limits is unchanged.
-- 2. The release trigger ran three statements per run leaving 'running' (delete the run's slots
--    and aggregate them; take each bucket's lock; look for waiters) and cost about 34 µs a run. It
--    now deletes the slots and takes their buckets' locks in one statement, then looks for waiters,
--    a statement that starts after the locks are held, as before: the race analysis of 000016
--    (kit_claim_limited's header) holds unchanged.
--
-- Nothing changes for clients: same functions, arguments, results, locks and rows.

-- kit_limits_release(): as in migration 000016 (the row trigger kit_limits_release of r_<q>, created
-- by kit_set_limit on queues that have limits): a run that leaves 'running' releases its slots and
-- un-parks the next waiters of each of its buckets; a pending or sleeping run that ends drops its
-- waiter row and, when it had been un-parked and not claimed, hands its turn on.
-- The slots are deleted and their buckets' advisory locks taken SHARED (waited for) in one
-- statement; the look for waiters is a later statement, so its snapshot is taken after the locks.
-- Locks: the slot/waiter rows it deletes, then per bucket the advisory lock SHARED (in any order:
-- shared locks do not exclude one another, and a claim, which holds one exclusively, never waits),
-- then as kit_limit_unpark.
create or replace function absurd.kit_limits_release() returns trigger
language plpgsql
as $$
declare
  v_q text := tg_argv[0];
  v_row record;
  v_limits text[];
  v_keys text[];
  v_locked bigint;
begin
  if old.state = 'running' then
    with d as (
      delete from absurd.kit_limit_slots s where s.run_id = old.run_id
      returning s.limit_name, s.key
    )
    select array_agg(d.limit_name), array_agg(d.key),
           count(pg_advisory_xact_lock_shared(1633841252, absurd.kit_limit_lock_key(v_q, d.limit_name, d.key)))
      into v_limits, v_keys, v_locked
      from d;
    for v_i in 1 .. coalesce(cardinality(v_limits), 0) loop
      -- Under the lock: a bucket nobody waits for (the common case) costs one index probe.
      if exists (select 1 from absurd.kit_limit_waiters w
                  where w.queue_name = v_q and w.limit_name = v_limits[v_i] and w.key = v_keys[v_i] and not w.woken) then
        perform absurd.kit_limit_unpark(v_q, v_limits[v_i], v_keys[v_i]);
      end if;
    end loop;
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

-- kit_claim_limited's plans: generic, kept per session (1. above).
alter function absurd.kit_claim_limited(text, text, timestamptz, timestamptz, integer)
  set plan_cache_mode = force_generic_plan;
