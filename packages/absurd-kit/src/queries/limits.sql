/*
  Concurrency and rate limits of a queue (engine migration 000016; src/limits.ts).

  SetLimit      creates or replaces a named limit of a queue; returns whether anything changed.
                The key path is a text array (null: one bucket for every run the limit applies to).
  RemoveLimit   removes a named limit; returns false when there was none.
  ListLimits    the limits of a queue (of every queue when queueName is null), with the runs that
                hold a slot now and the runs parked.
*/

/* @name SetLimit */
select absurd.kit_set_limit(:queueName!, :limitName!, :taskName, :keyPath::text[], :maxRunning::integer,
                            :rateCount::integer, :ratePeriodSeconds::double precision) as "changed!";

/* @name RemoveLimit */
select absurd.kit_remove_limit(:queueName!, :limitName!) as "removed!";

/* @name ListLimits */
select queue_name as "queueName!", limit_name as "limitName!", task_name as "taskName", key_path as "keyPath",
       max_running as "maxRunning", rate_count as "rateCount", rate_period_seconds as "ratePeriodSeconds",
       running::integer as "running!", parked::integer as "parked!"
  from absurd.kit_list_limits(:queueName::text);
