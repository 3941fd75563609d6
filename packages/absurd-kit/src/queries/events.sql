/*
  Events.

  AwaitEvent       waits for an event in step `stepName`: the payload when it was emitted already,
                   otherwise suspends the run (`should_suspend`) until it is or `timeout` seconds
                   (null: none) pass.
  EmitEvent        stores an event's payload, wakes the runs waiting for it, then notifies the
                   queue's wake channel.
*/

/* @name AwaitEvent */
select should_suspend as "should_suspend!", payload
  from absurd.await_event(:queueName!, :taskId!, :runId!, :stepName!, :eventName!, :timeout);

/* @name EmitEvent */
select absurd.emit_event(:queueName!, :eventName!, :payload::text::jsonb), pg_notify(:channel!, '');
