/*
  What `emit` reads before emitting (the emission itself goes through the runtime's `Absurd` client).
  The events table depends on the queue, so the query returns the statement to run, its table name
  quoted by `format('%I', …)` (see tasks.sql).

  EmittedEventStatement  `(emitted_at)` of event $1 when it was emitted already (a payload stored):
                         events are first-write-wins, and the operator is told so.
*/

/* @name EmittedEventStatement */
select format('select emitted_at from absurd.%I where event_name = $1 and payload is not null',
              'e_' || :queueName!::text) as "statement!";
