-- absurd-kit engine, migration 000024: the common claim of a queue with limits in one function of
-- the queue, its two statements planned once per session.
--
-- A claim on a queue with limits went claim_task → kit_claim_limited (a general PL/pgSQL function
-- of some sixty variables, set up at every call) → EXECUTE of the queue's _fetch (planned at every
-- call) → a second function call returning its fifteen arrays → EXECUTE of the queue's _take →
-- a third function call. Measured on PostgreSQL 15 (pg_stat_statements, track = all), a claim of
-- 16 runs under a per-key limit that never binds: the fetch and take statements cost 0.30 and
-- 1.00 ms, the calls around them 0.60 ms more, against 0.79 ms for the whole claim statement of a
-- queue without limits.
--
-- kit_limits_create_functions now writes a fourth function of the queue, kit_q_<md5(q)>_claim_limited
-- (worker, claim_until, now, qty), with _fetch's and _take's statements in its body as static SQL:
-- the first round of a claim, and when it is of the common kind (each run under one concurrency
-- limit at most, none parked before) its decision and claim. Everything else — a round of another
-- kind, nothing due at the highest priority, a round that came back short — goes on in
-- kit_claim_limited_rounds, kit_claim_limited's rounds as in 000021, starting from where the first
-- round left them (the runs it looked at, the budget left, whether a bucket was busy, the
-- priority to look below). The queue's claim calls that function directly (migration 000022);
-- kit_claim_limited, for a queue whose function is missing, runs every round in
-- kit_claim_limited_rounds. Same runs claimed, parked and left, in the same order, with the same
-- locks taken in the same order: the race analysis of 000021 (kit_claim_limited's header there)
-- holds unchanged.

-- kit_limits_create_functions(q): as in migration 000021 (_fetch, _claim and _take), plus
--   kit_q_<md5(q)>_claim_limited(worker, claim_until, now, qty): kit_claim_limited for queue q:
--     _fetch's statement for the first round; when the round is simple, _take's statement; the
--     rest through kit_claim_limited_rounds (see the header). Runs with plan_cache_mode =
--     force_generic_plan, as kit_claim_limited did (000021).
-- Created by kit_set_limit, dropped with the queue's last limit (kit_remove_limit) or with its
-- flow-control rows (kit_forget_queue_limits). Locks: those of create or replace function.
create or replace function absurd.kit_limits_create_functions(p_queue_name text) returns void
language plpgsql
as $$
begin
  perform absurd.kit_limits_drop_functions(p_queue_name);  -- their result types may have changed
  execute format(
    $g$create or replace function absurd.%1$I(p_now timestamptz, p_n integer, p_seen uuid[], p_bound bigint)
       returns table(o_runs uuid[], o_available_at timestamptz[], o_fresh boolean[], o_limits text[],
                     o_keys text[], o_max_running integer[], o_rate_count integer[], o_rate_period interval[],
                     o_waiter_limits text[], o_waiter_keys text[], o_woken boolean[], o_got boolean[],
                     o_waiter_got boolean[], o_level integer, o_simple boolean)
       language plpgsql
       as $body$
       #variable_conflict use_column
       begin
         return query
           with top as (
             select r.priority
               from absurd.%2$I r
              where r.state in ('pending', 'sleeping') and r.priority < p_bound
              order by r.priority desc, r.available_at, r.run_id
              limit 1
           ),
           cand as (
             select r.run_id, r.available_at, r.started_at is null as fresh, t.task_name, t.params
               from absurd.%2$I r
               join absurd.%3$I t on t.task_id = r.task_id
              where r.state in ('pending', 'sleeping')
                and r.priority = (select top.priority from top)
                and r.available_at <= p_now
                and t.state in ('pending', 'sleeping', 'running')
                and r.run_id <> all(p_seen)
              order by r.available_at, r.run_id
              limit p_n
                for update of r, t skip locked
           )
           ,
           per_limit as (
             select c.run_id, c.available_at, c.fresh, l.limit_name,
                    case when l.key_path is null then ''
                         else coalesce(c.params #> l.key_path, 'null'::jsonb)::text end as key,
                    l.max_running, l.rate_count, l.rate_period,
                    w.limit_name as w_limit, w.key as w_key, w.woken as w_woken
               from cand c
               left join absurd.kit_limits l
                 on l.queue_name = %4$L and (l.task_name is null or l.task_name = c.task_name)
               left join absurd.kit_limit_waiters w on w.queue_name = %4$L and w.run_id = c.run_id
           ),
           buckets as (
             select p.limit_name, p.key from per_limit p where p.limit_name is not null
             union
             select p.w_limit, p.w_key from per_limit p where p.w_woken
           ),
           locks as materialized (
             select b.limit_name, b.key,
                    pg_try_advisory_xact_lock(1633841252, absurd.kit_limit_lock_key(%4$L, b.limit_name, b.key)) as got
               from buckets b
           )
           ,
           ordered as (
             select p.run_id, p.available_at, p.fresh, p.limit_name, p.key, p.max_running, p.rate_count,
                    p.rate_period, p.w_limit, p.w_key, p.w_woken, k.got, wk.got as w_got
               from per_limit p
               left join locks k on k.limit_name = p.limit_name and k.key = p.key
               left join locks wk on p.w_woken and wk.limit_name = p.w_limit and wk.key = p.w_key
              order by p.available_at, p.run_id, p.limit_name
           )
           select coalesce(array_agg(o.run_id), '{}'), coalesce(array_agg(o.available_at), '{}'),
                  coalesce(array_agg(o.fresh), '{}'), coalesce(array_agg(o.limit_name), '{}'),
                  coalesce(array_agg(o.key), '{}'), coalesce(array_agg(o.max_running), '{}'),
                  coalesce(array_agg(o.rate_count), '{}'), coalesce(array_agg(o.rate_period), '{}'),
                  coalesce(array_agg(o.w_limit), '{}'), coalesce(array_agg(o.w_key), '{}'),
                  coalesce(array_agg(o.w_woken), '{}'), coalesce(array_agg(o.got), '{}'),
                  coalesce(array_agg(o.w_got), '{}'), (select top.priority from top),
                  coalesce(bool_and(o.rate_count is null and o.w_limit is null), true)
                    and count(*) = count(distinct o.run_id)
             from ordered o;
       end
       $body$
    $g$,
    absurd.kit_limits_function_name(p_queue_name, 'fetch'), 'r_' || p_queue_name, 't_' || p_queue_name,
    p_queue_name);
  execute format(
    $g$create or replace function absurd.%1$I(p_now timestamptz, p_worker text, p_claim_until timestamptz,
                                             p_runs uuid[], p_slot_limits text[], p_slot_keys text[],
                                             p_slot_runs uuid[], p_start_limits text[], p_start_keys text[],
                                             p_unwaited uuid[])
       returns table(run_id uuid, task_id uuid, attempt integer, task_name text, params jsonb,
                     retry_strategy jsonb, max_attempts integer, headers jsonb, wake_event text,
                     event_payload jsonb)
       language plpgsql
       as $body$
       #variable_conflict use_column
       begin
         -- run_id = any(array), not a join with unnest(): the plan is generic (kept), and this form
         -- is an index scan whatever the planner guesses of the array's length.
         return query
           with claimed as (
             update absurd.%2$I r
                set state = 'running', claimed_by = p_worker, claim_expires_at = p_claim_until,
                    started_at = p_now, available_at = p_now
              where r.run_id = any(p_runs)
             returning r.run_id, r.task_id, r.attempt, r.wake_event, r.event_payload,
                       array_position(p_runs, r.run_id) as ord
           ),
           tasks as (
             update absurd.%3$I t
                set state = 'running', attempts = greatest(t.attempts, c.attempt),
                    first_started_at = coalesce(t.first_started_at, p_now), last_attempt_run = c.run_id
               from claimed c
              where t.task_id = c.task_id
             returning t.task_id, t.task_name, t.params, t.retry_strategy, t.max_attempts, t.headers
           ),
           expired_waits as (
             delete from absurd.%4$I w
              using claimed c
              where w.run_id = c.run_id and w.timeout_at is not null and w.timeout_at <= p_now
           ),
           slots as (
             insert into absurd.kit_limit_slots (queue_name, limit_name, key, run_id)
             select %5$L, u.l, u.k, u.r from unnest(p_slot_limits, p_slot_keys, p_slot_runs) as u(l, k, r)
             on conflict do nothing
           ),
           starts as (
             insert into absurd.kit_limit_starts (queue_name, limit_name, key, started_at)
             select %5$L, u.l, u.k, p_now from unnest(p_start_limits, p_start_keys) as u(l, k)
           ),
           unwaited as (
             delete from absurd.kit_limit_waiters x
              where x.queue_name = %5$L and x.run_id = any(p_unwaited)
           )
           select c.run_id, c.task_id, c.attempt, t.task_name, t.params, t.retry_strategy, t.max_attempts,
                  t.headers, c.wake_event, c.event_payload
             from claimed c
             join tasks t on t.task_id = c.task_id
            order by c.ord;
       end
       $body$
    $g$,
    absurd.kit_limits_function_name(p_queue_name, 'claim'), 'r_' || p_queue_name, 't_' || p_queue_name,
    'w_' || p_queue_name, p_queue_name);
  execute format(
    $g$create or replace function absurd.%1$I(p_now timestamptz, p_worker text, p_claim_until timestamptz,
                                             p_runs uuid[], p_available_at timestamptz[], p_limits text[],
                                             p_keys text[], p_max_running integer[], p_got boolean[])
       returns table(run_id uuid, task_id uuid, attempt integer, task_name text, params jsonb,
                     retry_strategy jsonb, max_attempts integer, headers jsonb, wake_event text,
                     event_payload jsonb)
       language plpgsql
       as $body$
       #variable_conflict use_column
       begin
         -- The runs are found by run_id = any(an array computed once), never by a join with the
         -- decisions: an index scan whatever the planner guesses of their number (see _claim).
         return query
           with decided as materialized (
             select c.run_id, c.available_at, c.lim, c.key,
                    case when c.lim is null then 'take'
                         when not coalesce(c.got, false) then 'skip'
                         when c.used + row_number() over (partition by c.lim, c.key order by c.ord) <= c.max then 'take'
                         else 'park' end as verdict
               from (select u.*,
                            case when u.lim is not null and u.got then
                              (select count(*) from absurd.kit_limit_slots s
                                where s.queue_name = %5$L and s.limit_name = u.lim and s.key = u.key)
                            else 0 end as used
                       from unnest(p_runs, p_available_at, p_limits, p_keys, p_max_running, p_got)
                            with ordinality as u(run_id, available_at, lim, key, max, got, ord)) c
           ),
           claimed as (
             update absurd.%2$I r
                set state = 'running', claimed_by = p_worker, claim_expires_at = p_claim_until,
                    started_at = p_now, available_at = p_now
              where r.run_id = any(array(select d.run_id from decided d where d.verdict = 'take'))
             returning r.run_id, r.task_id, r.attempt, r.wake_event, r.event_payload,
                       array_position(p_runs, r.run_id) as ord
           ),
           tasks as (
             update absurd.%3$I t
                set state = 'running', attempts = greatest(t.attempts, c.attempt),
                    first_started_at = coalesce(t.first_started_at, p_now), last_attempt_run = c.run_id
               from claimed c
              where t.task_id = c.task_id
             returning t.task_id, t.task_name, t.params, t.retry_strategy, t.max_attempts, t.headers
           ),
           expired_waits as (
             delete from absurd.%4$I w
              using claimed c
              where w.run_id = c.run_id and w.timeout_at is not null and w.timeout_at <= p_now
           ),
           slots as (
             insert into absurd.kit_limit_slots (queue_name, limit_name, key, run_id)
             select %5$L, d.lim, d.key, d.run_id from decided d where d.verdict = 'take' and d.lim is not null
             on conflict do nothing
           ),
           parked as (
             update absurd.%2$I r set available_at = 'infinity'
              where r.run_id = any(array(select d.run_id from decided d where d.verdict = 'park'))
           ),
           waiters as (
             insert into absurd.kit_limit_waiters as w (queue_name, run_id, limit_name, key, available_at, woken)
             select %5$L, d.run_id, d.lim, d.key, d.available_at, false from decided d where d.verdict = 'park'
             on conflict (queue_name, run_id) do update
                set limit_name = excluded.limit_name, key = excluded.key, available_at = excluded.available_at,
                    woken = false
           )
           select c.run_id, c.task_id, c.attempt, t.task_name, t.params, t.retry_strategy, t.max_attempts,
                  t.headers, c.wake_event, c.event_payload
             from claimed c
             join tasks t on t.task_id = c.task_id
            order by c.ord;
       end
       $body$
    $g$,
    absurd.kit_limits_function_name(p_queue_name, 'take'), 'r_' || p_queue_name, 't_' || p_queue_name,
    'w_' || p_queue_name, p_queue_name);
  execute format(
    $g$create or replace function absurd.%1$I(p_worker text, p_claim_until timestamptz, p_now timestamptz,
                                             p_qty integer)
       returns table(run_id uuid, task_id uuid, attempt integer, task_name text, params jsonb,
                     retry_strategy jsonb, max_attempts integer, headers jsonb, wake_event text,
                     event_payload jsonb)
       language plpgsql
       set plan_cache_mode = force_generic_plan
       as $body$
       #variable_conflict use_column
       declare
         c_run uuid[];
         c_at timestamptz[];
         c_fresh boolean[];
         c_lim text[];
         c_key text[];
         c_max integer[];
         c_rate integer[];
         c_period interval[];
         c_wlim text[];
         c_wkey text[];
         c_woken boolean[];
         c_got boolean[];
         c_wgot boolean[];
         v_level integer;
         v_simple boolean;
         v_n integer;
       begin
         -- The first round of kit_claim_limited_rounds, as _fetch would find it: up to qty due runs of
         -- the highest priority with claimable runs, their limits, keys and buckets' locks tried.
           with top as (
             select r.priority
               from absurd.%2$I r
              where r.state in ('pending', 'sleeping') and r.priority < 2147483648
              order by r.priority desc, r.available_at, r.run_id
              limit 1
           ),
           cand as (
             select r.run_id, r.available_at, r.started_at is null as fresh, t.task_name, t.params
               from absurd.%2$I r
               join absurd.%3$I t on t.task_id = r.task_id
              where r.state in ('pending', 'sleeping')
                and r.priority = (select top.priority from top)
                and r.available_at <= p_now
                and t.state in ('pending', 'sleeping', 'running')
                and true
              order by r.available_at, r.run_id
              limit p_qty
                for update of r, t skip locked
           )
           ,
           per_limit as (
             select c.run_id, c.available_at, c.fresh, l.limit_name,
                    case when l.key_path is null then ''
                         else coalesce(c.params #> l.key_path, 'null'::jsonb)::text end as key,
                    l.max_running, l.rate_count, l.rate_period,
                    w.limit_name as w_limit, w.key as w_key, w.woken as w_woken
               from cand c
               left join absurd.kit_limits l
                 on l.queue_name = %5$L and (l.task_name is null or l.task_name = c.task_name)
               left join absurd.kit_limit_waiters w on w.queue_name = %5$L and w.run_id = c.run_id
           ),
           buckets as (
             select p.limit_name, p.key from per_limit p where p.limit_name is not null
             union
             select p.w_limit, p.w_key from per_limit p where p.w_woken
           ),
           locks as materialized (
             select b.limit_name, b.key,
                    pg_try_advisory_xact_lock(1633841252, absurd.kit_limit_lock_key(%5$L, b.limit_name, b.key)) as got
               from buckets b
           )
           ,
           ordered as (
             select p.run_id, p.available_at, p.fresh, p.limit_name, p.key, p.max_running, p.rate_count,
                    p.rate_period, p.w_limit, p.w_key, p.w_woken, k.got, wk.got as w_got
               from per_limit p
               left join locks k on k.limit_name = p.limit_name and k.key = p.key
               left join locks wk on p.w_woken and wk.limit_name = p.w_limit and wk.key = p.w_key
              order by p.available_at, p.run_id, p.limit_name
           )
           select coalesce(array_agg(o.run_id), '{}'), coalesce(array_agg(o.available_at), '{}'),
                  coalesce(array_agg(o.fresh), '{}'), coalesce(array_agg(o.limit_name), '{}'),
                  coalesce(array_agg(o.key), '{}'), coalesce(array_agg(o.max_running), '{}'),
                  coalesce(array_agg(o.rate_count), '{}'), coalesce(array_agg(o.rate_period), '{}'),
                  coalesce(array_agg(o.w_limit), '{}'), coalesce(array_agg(o.w_key), '{}'),
                  coalesce(array_agg(o.w_woken), '{}'), coalesce(array_agg(o.got), '{}'),
                  coalesce(array_agg(o.w_got), '{}'), (select top.priority from top),
                  coalesce(bool_and(o.rate_count is null and o.w_limit is null), true)
                    and count(*) = count(distinct o.run_id)
             into c_run, c_at, c_fresh, c_lim, c_key, c_max, c_rate, c_period, c_wlim, c_wkey, c_woken, c_got,
                  c_wgot, v_level, v_simple
             from ordered o;
         if v_level is null then
           return;  -- no pending or sleeping run at all
         end if;
         if cardinality(c_run) = 0 or not v_simple then
           -- Nothing due at that priority, or a round of the other kind: the general rounds, from
           -- the next priority down or from this round again.
           return query select * from absurd.kit_claim_limited_rounds(
             %5$L, p_worker, p_claim_until, p_now, p_qty, '{}', greatest(p_qty * 4, 16), false,
             case when cardinality(c_run) = 0 then v_level::bigint else 2147483648 end);
           return;
         end if;
         -- The common round, as _take decides and claims it (see kit_claim_limited_rounds).
         return query
           with decided as materialized (
             select c.run_id, c.available_at, c.lim, c.key,
                    case when c.lim is null then 'take'
                         when not coalesce(c.got, false) then 'skip'
                         when c.used + row_number() over (partition by c.lim, c.key order by c.ord) <= c.max then 'take'
                         else 'park' end as verdict
               from (select u.*,
                            case when u.lim is not null and u.got then
                              (select count(*) from absurd.kit_limit_slots s
                                where s.queue_name = %5$L and s.limit_name = u.lim and s.key = u.key)
                            else 0 end as used
                       from unnest(c_run, c_at, c_lim, c_key, c_max, c_got)
                            with ordinality as u(run_id, available_at, lim, key, max, got, ord)) c
           ),
           claimed as (
             update absurd.%2$I r
                set state = 'running', claimed_by = p_worker, claim_expires_at = p_claim_until,
                    started_at = p_now, available_at = p_now
              where r.run_id = any(array(select d.run_id from decided d where d.verdict = 'take'))
             returning r.run_id, r.task_id, r.attempt, r.wake_event, r.event_payload,
                       array_position(c_run, r.run_id) as ord
           ),
           tasks as (
             update absurd.%3$I t
                set state = 'running', attempts = greatest(t.attempts, c.attempt),
                    first_started_at = coalesce(t.first_started_at, p_now), last_attempt_run = c.run_id
               from claimed c
              where t.task_id = c.task_id
             returning t.task_id, t.task_name, t.params, t.retry_strategy, t.max_attempts, t.headers
           ),
           expired_waits as (
             delete from absurd.%4$I w
              using claimed c
              where w.run_id = c.run_id and w.timeout_at is not null and w.timeout_at <= p_now
           ),
           slots as (
             insert into absurd.kit_limit_slots (queue_name, limit_name, key, run_id)
             select %5$L, d.lim, d.key, d.run_id from decided d where d.verdict = 'take' and d.lim is not null
             on conflict do nothing
           ),
           parked as (
             update absurd.%2$I r set available_at = 'infinity'
              where r.run_id = any(array(select d.run_id from decided d where d.verdict = 'park'))
           ),
           waiters as (
             insert into absurd.kit_limit_waiters as w (queue_name, run_id, limit_name, key, available_at, woken)
             select %5$L, d.run_id, d.lim, d.key, d.available_at, false from decided d where d.verdict = 'park'
             on conflict (queue_name, run_id) do update
                set limit_name = excluded.limit_name, key = excluded.key, available_at = excluded.available_at,
                    woken = false
           )
           select c.run_id, c.task_id, c.attempt, t.task_name, t.params, t.retry_strategy, t.max_attempts,
                  t.headers, c.wake_event, c.event_payload
             from claimed c
             join tasks t on t.task_id = c.task_id
            order by c.ord;
         get diagnostics v_n = row_count;
         if v_n < p_qty and greatest(p_qty * 4, 16) > cardinality(c_run) then
           -- Short (runs parked, or left to the transaction that holds their bucket): the rounds go
           -- on, past the runs this one looked at.
           return query select * from absurd.kit_claim_limited_rounds(
             %5$L, p_worker, p_claim_until, p_now, p_qty - v_n, c_run, greatest(p_qty * 4, 16) - cardinality(c_run),
             coalesce(false = any(c_got), false), 2147483648);
         elsif v_n < p_qty and coalesce(false = any(c_got), false) then
           perform pg_notify('absurd_wake_' || md5(%5$L), '');
         end if;
       end
       $body$
    $g$,
    absurd.kit_limits_function_name(p_queue_name, 'claim_limited'), 'r_' || p_queue_name, 't_' || p_queue_name,
    'w_' || p_queue_name, p_queue_name);
end;
$$;

-- kit_limits_drop_functions(q): drops the functions kit_limits_create_functions wrote for q, if any.
create or replace function absurd.kit_limits_drop_functions(p_queue_name text) returns void
language plpgsql
as $$
begin
  execute format('drop function if exists absurd.%I(timestamptz, integer, uuid[], bigint)',
                 absurd.kit_limits_function_name(p_queue_name, 'fetch'));
  execute format('drop function if exists absurd.%I(timestamptz, text, timestamptz, uuid[], text[], text[], uuid[],
                                                   text[], text[], uuid[])',
                 absurd.kit_limits_function_name(p_queue_name, 'claim'));
  execute format('drop function if exists absurd.%I(timestamptz, text, timestamptz, uuid[], timestamptz[], text[],
                                                   text[], integer[], boolean[])',
                 absurd.kit_limits_function_name(p_queue_name, 'take'));
  execute format('drop function if exists absurd.%I(text, timestamptz, timestamptz, integer)',
                 absurd.kit_limits_function_name(p_queue_name, 'claim_limited'));
end;
$$;

-- kit_claim_limited_rounds(q, worker, claim_until, now, qty, seen, budget, busy, bound): the rounds
-- of kit_claim_limited as migration 000021 defines them, starting from the state a first round left:
-- the runs it looked at (seen; not fetched again), the budget of runs left to look at, whether it
-- left a run because another transaction held its bucket (busy: the queue's workers are woken when
-- the claim comes back short), and the priority to look below (bound; 2147483648 for all). Called
-- by the queues' kit_q_<md5(q)>_claim_limited functions. Locks: those of kit_claim_limited (000021).
create function absurd.kit_claim_limited_rounds(p_queue_name text, p_worker text, p_claim_until timestamptz,
                                                p_now timestamptz, p_qty integer, p_seen uuid[], p_budget integer,
                                                p_busy boolean, p_bound bigint)
returns table(run_id uuid, task_id uuid, attempt integer, task_name text, params jsonb,
              retry_strategy jsonb, max_attempts integer, headers jsonb, wake_event text,
              event_payload jsonb)
language plpgsql
set plan_cache_mode = force_generic_plan
as $$
#variable_conflict use_column
declare
  v_r text := 'r_' || p_queue_name;
  v_fetch text := absurd.kit_limits_function_name(p_queue_name, 'fetch');
  v_claim text := absurd.kit_limits_function_name(p_queue_name, 'claim');
  v_take_fn text := absurd.kit_limits_function_name(p_queue_name, 'take');
  v_budget integer := p_budget;
  v_left integer := p_qty;
  v_bound bigint := p_bound;
  v_level integer;
  v_round_bound bigint;
  v_row record;
  v_n integer;
  v_i integer;
  v_j integer;
  v_k integer;
  v_b integer;
  v_skip boolean;
  v_got boolean;
  v_simple boolean;
  v_park integer;
  v_rate_at timestamptz;
  v_at timestamptz;
  v_offset integer;
  v_seen uuid[] := p_seen;        -- runs this claim looked at and left or took (not fetched again)
  v_busy boolean := p_busy;      -- a run was left because another transaction held its bucket
  -- the rows of one round: one per (candidate, limit that applies)
  c_run uuid[];
  c_at timestamptz[];
  c_fresh boolean[];
  c_lim text[];
  c_key text[];
  c_max integer[];
  c_rate integer[];
  c_period interval[];
  c_wlim text[];
  c_wkey text[];
  c_woken boolean[];
  c_bucket integer[];
  c_got boolean[];
  c_wgot boolean[];

  -- the buckets this claim looked at
  b_id text[] := '{}';          -- limit || x'1f' || key, for array_position
  b_lim text[] := '{}';
  b_key text[] := '{}';
  b_locked boolean[] := '{}';
  b_used integer[] := '{}';      -- slots held, plus runs taken by this claim
  b_db_starts integer[] := '{}'; -- starts in the window, as counted
  b_starts integer[] := '{}';    -- plus starts of runs taken by this claim
  -- the buckets a round looks at first
  n_id text[];
  n_lim text[];
  n_key text[];
  n_rate boolean[];
  n_period interval[];
  n_got boolean[];
  n_used integer[];
  n_starts integer[];
  v_lim text;
  v_key text;
  v_id text;
  v_m integer;
  -- what this priority's runs take
  a_run uuid[];
  s_lim text[];
  s_key text[];
  s_run uuid[];
  st_lim text[];
  st_key text[];
  w_run uuid[];
begin
  loop  -- priorities, highest first
    v_level := null;
    a_run := '{}'; s_lim := '{}'; s_key := '{}'; s_run := '{}'; st_lim := '{}'; st_key := '{}'; w_run := '{}';
    v_round_bound := v_bound;
    loop  -- rounds within one priority, until qty runs are taken or nothing is left to look at
      c_run := '{}'; c_at := '{}'; c_fresh := '{}'; c_lim := '{}'; c_key := '{}'; c_max := '{}';
      c_rate := '{}'; c_period := '{}'; c_wlim := '{}'; c_wkey := '{}'; c_woken := '{}'; c_bucket := '{}';
      c_got := '{}'; c_wgot := '{}';
      v_n := least(v_left - cardinality(a_run), v_budget);
      exit when v_n <= 0;
      -- The candidates with the limits that apply to each, its bucket keys, its waiter row, and a
      -- try of every bucket's lock (kit_q_<md5(q)>_fetch); the buckets are counted in a later
      -- statement (see the race analysis).
      execute format('select * from absurd.%I($1, $2, $3, $4)', v_fetch)
        into c_run, c_at, c_fresh, c_lim, c_key, c_max, c_rate, c_period, c_wlim, c_wkey, c_woken, c_got, c_wgot,
             v_level, v_simple
        using p_now, v_n, v_seen, v_round_bound;
      exit when cardinality(c_run) = 0;
      v_round_bound := v_level::bigint + 1;  -- later rounds stay at this priority
      c_bucket := array_fill(null::integer, array[cardinality(c_run)]);

      if v_simple and cardinality(a_run) = 0 then
        -- The common case: each run under at most one limit, a concurrency limit, and never parked
        -- before, and nothing taken by this priority's earlier rounds waits to be claimed. One
        -- statement (kit_q_<md5(q)>_take) decides them all, in claim order, and claims, parks and
        -- writes at once: a run fits while its bucket's slots (counted there, after the locks; they
        -- include those this claim wrote in earlier rounds) and the runs before it in this round stay
        -- within max_running; a run whose bucket is full is parked; a run whose bucket another
        -- transaction holds is left.
        return query execute format('select * from absurd.%I($1, $2, $3, $4, $5, $6, $7, $8, $9)', v_take_fn)
          using p_now, p_worker, p_claim_until, c_run, c_at, c_lim, c_key, c_max, c_got;
        get diagnostics v_n = row_count;
        v_left := v_left - v_n;
        v_budget := v_budget - cardinality(c_run);
        v_seen := v_seen || c_run;
        -- A bucket lock another transaction held (got false) left its run.
        v_busy := v_busy or coalesce(false = any(c_got), false);
        -- The counts kept for later rounds of the other kind predate what this round wrote: drop
        -- them, so that such a round counts its buckets again (nothing of this claim is pending).
        if cardinality(b_id) > 0 then
          b_id := '{}'; b_lim := '{}'; b_key := '{}'; b_locked := '{}'; b_used := '{}';
          b_db_starts := '{}'; b_starts := '{}';
        end if;
        exit when v_left <= 0 or v_budget <= 0;
        continue;
      end if;

      -- The buckets of this round not looked at yet (those of its runs, and those that woke the
      -- runs un-parked earlier: their turn may have to be handed on), tried by the statement above;
      -- their slots and starts are counted below, in statements that start after the locks.
      n_id := '{}'; n_lim := '{}'; n_key := '{}'; n_rate := '{}'; n_period := '{}'; n_got := '{}';
      for v_k in 1 .. cardinality(c_run) loop
        for v_m in 1 .. 2 loop
          if v_m = 1 then
            v_lim := c_lim[v_k];
            v_key := c_key[v_k];
            v_got := c_got[v_k];
          elsif coalesce(c_woken[v_k], false) then
            v_lim := c_wlim[v_k];
            v_key := c_wkey[v_k];
            v_got := c_wgot[v_k];
          else
            v_lim := null;
          end if;
          continue when v_lim is null;
          v_id := v_lim || E'\x1f' || v_key;
          continue when array_position(b_id, v_id) is not null;
          v_b := array_position(n_id, v_id);
          if v_b is null then
            n_id := n_id || v_id;
            n_lim := n_lim || v_lim;
            n_key := n_key || v_key;
            n_rate := n_rate || false;
            n_period := n_period || null::interval;
            n_got := n_got || coalesce(v_got, false);
            v_b := cardinality(n_id);
          end if;
          if v_m = 1 and c_rate[v_k] is not null then
            n_rate[v_b] := true;
            n_period[v_b] := c_period[v_k];
          end if;
        end loop;
      end loop;
      if cardinality(n_id) > 0 then
        if true = any(n_rate) then
          delete from absurd.kit_limit_starts s
           using unnest(n_lim, n_key, n_period, n_got, n_rate) as u(l, k, p, g, r)
           where u.g and u.r and s.queue_name = p_queue_name and s.limit_name = u.l and s.key = u.k
             and s.started_at <= p_now - u.p;
        end if;
        select array_agg(case when u.g then (select count(*)::integer from absurd.kit_limit_slots s
                                              where s.queue_name = p_queue_name and s.limit_name = u.l and s.key = u.k)
                                            -- plus what earlier rounds of this claim took, not written yet
                                            + (select count(*)::integer from unnest(s_lim, s_key) as x(l, k)
                                                where x.l = u.l and x.k = u.k)
                              else 0 end order by u.ord),
               array_agg(case when u.g and u.r then (select count(*)::integer from absurd.kit_limit_starts s
                                                      where s.queue_name = p_queue_name and s.limit_name = u.l and s.key = u.k)
                              else 0 end order by u.ord)
          into n_used, n_starts
          from unnest(n_lim, n_key, n_got, n_rate) with ordinality as u(l, k, g, r, ord);
        b_id := b_id || n_id;
        b_lim := b_lim || n_lim;
        b_key := b_key || n_key;
        b_locked := b_locked || n_got;
        b_used := b_used || n_used;
        b_db_starts := b_db_starts || n_starts;
        b_starts := b_starts || n_starts;
      end if;

      v_i := 1;
      while v_i <= cardinality(c_run) loop
        v_j := v_i;  -- the rows v_i .. v_j belong to one run
        while v_j < cardinality(c_run) and c_run[v_j + 1] = c_run[v_i] loop
          v_j := v_j + 1;
        end loop;
        v_budget := v_budget - 1;
        v_seen := v_seen || c_run[v_i];

        -- A bucket of the run (or the one that woke it) taken by another transaction: skip it.
        v_skip := coalesce(c_woken[v_i], false)
                  and not b_locked[array_position(b_id, c_wlim[v_i] || E'\x1f' || c_wkey[v_i])];
        for v_k in v_i .. v_j loop
          continue when c_lim[v_k] is null;
          v_b := array_position(b_id, c_lim[v_k] || E'\x1f' || c_key[v_k]);
          c_bucket[v_k] := v_b;
          if not b_locked[v_b] then
            v_skip := true;
          end if;
        end loop;

        if v_skip then
          v_busy := true;
          v_i := v_j + 1;
          continue;
        end if;

        v_park := null;
        v_rate_at := null;
        for v_k in v_i .. v_j loop
          continue when c_lim[v_k] is null;
          v_b := c_bucket[v_k];
          if c_max[v_k] is not null and b_used[v_b] >= c_max[v_k] and v_park is null then
            v_park := v_k;
          end if;
          if c_rate[v_k] is not null and c_fresh[v_k] and b_starts[v_b] >= c_rate[v_k] then
            -- The window admits one more start once the (starts - rate_count + 1)-th oldest has left it.
            v_offset := b_starts[v_b] - c_rate[v_k];
            if v_offset < b_db_starts[v_b] then
              select s.started_at into v_at from absurd.kit_limit_starts s
               where s.queue_name = p_queue_name and s.limit_name = c_lim[v_k] and s.key = c_key[v_k]
               order by s.started_at
               offset v_offset limit 1;
            else
              v_at := p_now;
            end if;
            v_rate_at := greatest(v_rate_at, coalesce(v_at, p_now) + c_period[v_k]);
          end if;
        end loop;

        if v_park is not null then
          execute format($f$update absurd.%I r set available_at = 'infinity' where r.run_id = $1$f$, v_r)
            using c_run[v_i];
          insert into absurd.kit_limit_waiters as w (queue_name, run_id, limit_name, key, available_at, woken)
          values (p_queue_name, c_run[v_i], c_lim[v_park], c_key[v_park], c_at[v_i], false)
          on conflict (queue_name, run_id) do update
             set limit_name = excluded.limit_name, key = excluded.key, available_at = excluded.available_at,
                 woken = false;
          -- Un-parked for a bucket and parked again for another: that bucket's turn goes on.
          if c_woken[v_i] and (c_wlim[v_i], c_wkey[v_i]) is distinct from (c_lim[v_park], c_key[v_park]) then
            perform absurd.kit_limit_unpark(p_queue_name, c_wlim[v_i], c_wkey[v_i]);
          end if;
        elsif v_rate_at is not null then
          execute format('update absurd.%I r set available_at = $2 where r.run_id = $1', v_r)
            using c_run[v_i], v_rate_at;
        else
          a_run := a_run || c_run[v_i];
          if c_wlim[v_i] is not null then
            w_run := w_run || c_run[v_i];
          end if;
          for v_k in v_i .. v_j loop
            continue when c_lim[v_k] is null;
            v_b := c_bucket[v_k];
            if c_max[v_k] is not null then
              b_used[v_b] := b_used[v_b] + 1;
              s_lim := s_lim || c_lim[v_k];
              s_key := s_key || c_key[v_k];
              s_run := s_run || c_run[v_i];
            end if;
            if c_rate[v_k] is not null and c_fresh[v_k] then
              b_starts[v_b] := b_starts[v_b] + 1;
              st_lim := st_lim || c_lim[v_k];
              st_key := st_key || c_key[v_k];
            end if;
          end loop;
        end if;
        exit when cardinality(a_run) >= v_left;
        v_i := v_j + 1;
      end loop;
      exit when cardinality(a_run) >= v_left or v_budget <= 0;
    end loop;

    if cardinality(a_run) > 0 then
      -- One statement: the runs claimed, their slots and starts, their waiter rows gone.
      return query execute format('select * from absurd.%I($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)', v_claim)
        using p_now, p_worker, p_claim_until, a_run, s_lim, s_key, s_run, st_lim, st_key, w_run;
      v_left := v_left - cardinality(a_run);
    end if;
    exit when v_left <= 0 or v_level is null or v_budget <= 0;
    v_bound := v_level;
  end loop;
  -- Runs left because their bucket was busy are due now: the claim that held it commits within
  -- moments. Wake the queue's listening workers (this one too) when this claim commits, rather than
  -- let them wait for their next poll because this claim came back short.
  if v_busy and v_left > 0 then
    perform pg_notify('absurd_wake_' || md5(p_queue_name), '');
  end if;
end;
$$;



-- kit_claim_limited(q, worker, claim_until, now, qty): phase C of claim_task on a queue with limits
-- (same arguments, rows, order and locks as in 000021), every round by kit_claim_limited_rounds.
-- The queues' claims call their kit_q_<md5(q)>_claim_limited instead (migration 000022), and this
-- only when that function is missing. Locks: those of 000021.
create or replace function absurd.kit_claim_limited(p_queue_name text, p_worker text, p_claim_until timestamptz,
                                         p_now timestamptz, p_qty integer)
returns table(run_id uuid, task_id uuid, attempt integer, task_name text, params jsonb,
              retry_strategy jsonb, max_attempts integer, headers jsonb, wake_event text,
              event_payload jsonb)
language plpgsql
as $$
begin
  return query select * from absurd.kit_claim_limited_rounds(p_queue_name, p_worker, p_claim_until, p_now, p_qty,
                                                              '{}', greatest(p_qty * 4, 16), false, 2147483648);
end;
$$;

-- The queues that have limits get their fourth function now.
select absurd.kit_limits_create_functions(q.queue_name)
  from (select distinct l.queue_name from absurd.kit_limits l) q
 where to_regclass(format('absurd.%I', 'r_' || q.queue_name)) is not null
 order by q.queue_name;
