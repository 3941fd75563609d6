/*
  Checkpoints: the stored results of a task's steps.

  GetCheckpointStates      every checkpoint of the task visible to the run (preloaded at task start).
  GetCheckpointState       one checkpoint by name; no row when it does not exist.
  SetCheckpointState       writes a checkpoint owned by `ownerRunId` and extends the run's lease by
                           `extendClaimBy` seconds (null: leave it).
*/

/* @name GetCheckpointStates */
select checkpoint_name as "checkpoint_name!", state
  from absurd.get_task_checkpoint_states(:queueName!, :taskId!, :runId!);

/* @name GetCheckpointState */
select checkpoint_name as "checkpoint_name!", state
  from absurd.get_task_checkpoint_state(:queueName!, :taskId!, :checkpointName!);

/* @name SetCheckpointState */
select absurd.set_task_checkpoint_state(:queueName!, :taskId!, :checkpointName!, :state::text::jsonb, :ownerRunId!, :extendClaimBy);
