/*
  What the operator commands read and change about queues (packages/cli/src/commands/queue.ts and
  the queue checks of every other command). Creating and dropping go through the runtime's
  `Absurd` client.

  QueueStorageMode   the queue's storage mode; no row for an unknown queue.
  QueueRows          every queue with its storage mode and creation time, by name.
  QueuePolicy        the queue's whole policy, `default_partition` included, intervals as
                     Postgres text; no row for an unknown queue.
  SetQueuePolicy     changes the policy keys present in `policy`, the JSON text of an object with
                     the engine's key names (validated by the engine before anything is written).
*/

/* @name QueueStorageMode */
select storage_mode as "storage_mode!" from absurd.queues where queue_name = :queueName!;

/* @name QueueRows */
select queue_name as "queue_name!", storage_mode as "storage_mode!", created_at as "created_at!"
  from absurd.queues
 order by queue_name;

/* @name QueuePolicy */
select queue_name as "queue_name!", storage_mode as "storage_mode!", default_partition as "default_partition!",
       partition_lookahead::text as "partition_lookahead!", partition_lookback::text as "partition_lookback!",
       cleanup_ttl::text as "cleanup_ttl!", cleanup_limit as "cleanup_limit!", detach_mode as "detach_mode!",
       detach_min_age::text as "detach_min_age!"
  from absurd.get_queue_policy(:queueName!);

/* @name SetQueuePolicy */
select absurd.set_queue_policy(:queueName!, :policy!::text::jsonb);
