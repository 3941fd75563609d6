/*
  Queue administration.

  CreateQueue              creates an unpartitioned queue (a no-op when it exists).
  CreateQueueWithMode      creates a queue with the given storage mode.
  DropQueue                drops a queue with all its tasks; unknown queues are ignored.
  ListQueues               every queue, sorted by name.
  GetQueuePolicy           the queue's storage and cleanup policy (intervals as text); no row for an
                           unknown queue.
  SetQueuePolicy           changes the policy: `policy` is the JSON text of an object holding the
                           settings to change (typed `Json` because of the `::jsonb` cast; callers
                           pass the text).
*/

/* @name CreateQueue */
select absurd.create_queue(:queueName!);

/* @name CreateQueueWithMode */
select absurd.create_queue(:queueName!, :storageMode!);

/* @name DropQueue */
select absurd.drop_queue(:queueName!);

/* @name ListQueues */
select queue_name as "queue_name!" from absurd.list_queues();

/* @name GetQueuePolicy */
select queue_name as "queue_name!", storage_mode as "storage_mode!", partition_lookahead::text as "partition_lookahead!",
       partition_lookback::text as "partition_lookback!", cleanup_ttl::text as "cleanup_ttl!", cleanup_limit as "cleanup_limit!",
       detach_mode as "detach_mode!", detach_min_age::text as "detach_min_age!"
  from absurd.get_queue_policy(:queueName!);

/* @name SetQueuePolicy */
select absurd.set_queue_policy(:queueName!, :policy!::jsonb);
