-- absurd-kit engine, migration 000026: the release of a batch's limit slots keeps one plan.
--
-- kit_limits_release_runs (migration 000023) deletes the slots of the runs it is given, by run id
-- (`= any(array)`), takes their buckets' locks and probes for waiters. PostgreSQL's plan cache
-- kept switching its delete between a custom plan and the generic one: measured with
-- pg_stat_statements on PostgreSQL 18, a loop of claims and completions of two runs on a queue with
-- a per-key limit planned the delete at half of its 6,000 calls, 0.05 ms each, beside 0.04 ms to
-- run it; the release took 0.15 ms a batch. It now keeps the generic plan (planned once in 3,000
-- calls, 0.02 ms to run; the release 0.07 ms a batch), and plans without sequential scans, as the
-- queue's own statements do since migration 000022, so that the plan it keeps finds the slots
-- through the primary key (run_id, limit_name) whatever the statistics said when it was made (the
-- table holds one row per running run of every limited queue). Same rows deleted, same locks in the
-- same order.

-- kit_limits_release_runs(q, runs): as in migration 000023, with the plan settings above.
alter function absurd.kit_limits_release_runs(text, uuid[]) set plan_cache_mode = force_generic_plan;
alter function absurd.kit_limits_release_runs(text, uuid[]) set enable_seqscan = off;
