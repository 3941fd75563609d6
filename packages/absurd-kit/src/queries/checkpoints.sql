/*
  Checkpoints: the stored results of a task's steps.

  GetCheckpointStates      every checkpoint of the task visible to the run (preloaded at task start).
  SetCheckpointState       writes a checkpoint owned by `ownerRunId` and extends the run's lease by
                           `extendClaimBy` seconds (null: leave it).
  SetCheckpoints           many such writes in one call (element i of each array is one write); a
                           write refused for its task's or run's state is reported, not raised.
*/

/* @name GetCheckpointStates */
select checkpoint_name as "checkpoint_name!", state
  from absurd.get_task_checkpoint_states(:queueName!, :taskId!, :runId!);

/* @name SetCheckpointState */
select absurd.set_task_checkpoint_state(:queueName!, :taskId!, :checkpointName!, :state::text::jsonb, :ownerRunId!, :extendClaimBy);

/* @name SetCheckpoints */
select ord as "ord!", outcome as "outcome!"
  from absurd.kit_set_checkpoints(:queueName!, :taskIds!::uuid[], :stepNames!::text[], :states!::text[]::jsonb[],
                                  :ownerRuns!::uuid[], :extendBy!::integer[]);
