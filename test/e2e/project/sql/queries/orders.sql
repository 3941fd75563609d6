/* @name findQueue */
select queue_name from absurd.list_queues() where queue_name = :queueName!;
