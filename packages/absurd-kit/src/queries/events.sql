/*
  Events.

  AwaitEvent       waits for an event in step `stepName`: the payload when it was emitted already,
                   otherwise suspends the run (`should_suspend`) until it is or `timeout` seconds
                   (null: none) pass.
  EmitEvent        stores an event's payload, wakes the runs waiting for it, then notifies the
                   queue's wake channel.
  EmitEventWaking  the same where emit_event wakes the queue's idle listening workers itself
                   when it makes a run due (migration 000018): no notification of its own.
  AwaitEvents      waits for a group of events in one statement (migration 000011): each wait's
                   value when it was answered, and the group's outcome (`ready`, `timed_out`,
                   `suspended`). `waits` is a JSON array of {"step", "event"}; `wake` 'all' or 'any'.
  AnnounceEnd      tells the parent of an ended task that it ended, in one statement (migration
                   000014): the "$taskResult:<task>" event with the final snapshot on the parent's
                   queue, and a wake-up of its idle workers. Nothing for a task without a parent.
*/

/* @name AwaitEvent */
select should_suspend as "should_suspend!", payload
  from absurd.await_event(:queueName!, :taskId!, :runId!, :stepName!, :eventName!, :timeout);

/* @name EmitEvent */
select absurd.emit_event(:queueName!, :eventName!, :payload::text::jsonb), pg_notify(:channel!, '');

/* @name EmitEventWaking */
select absurd.emit_event(:queueName!, :eventName!, :payload::text::jsonb);

/* @name AwaitEvents */
select step_name as "step_name!", payload, resolved as "resolved!", outcome as "outcome!"
  from absurd.kit_await_events(:queueName!, :taskId!, :runId!, :waits!::text::jsonb, :timeout, :wake!);

/* @name AnnounceEnd */
select absurd.kit_announce_end(:queueName!, :taskId!) as "announced";
