/**
 * What a task context runs on: the runtime a client or worker gives it, or one made from
 * `absurd-sdk`'s `TaskContext.create` options for a context outside a worker.
 */
import { isTaskContract, type TaskContract } from './define.js';
import type { Queryable } from './queryable.js';
import { validateQueueName } from './queue-name.js';
import { signalFromOutcome } from './signals.js';
import type { SpawnOptions } from './spawn-options.js';
import { sendSpawn } from './spawn-task.js';
import type { ClaimedTask } from './task-context-types.js';
import type { SpawnResult } from './task-result.js';
import { parseWith } from './validation.js';

/** What a context needs from the client and worker that run it. */
export interface TaskContextRuntime {
  con: Queryable;
  queueName: string;
  claimTimeout: number;
  /** Spawns on this context's connection (registration rules, defaults, hooks and params validation applied). */
  spawn(task: string | TaskContract, params: unknown, options: SpawnOptions): Promise<SpawnResult & { queue: string }>;
  /** Called whenever the lease was extended (checkpoint write, heartbeat), with its new length. */
  onLeaseExtended?(seconds: number): void;
  /** The task's contract when it was registered by one: its step schemas are enforced. */
  contract?: TaskContract | undefined;
  /**
   * Writes a checkpoint (batched with other runs' writes); resolves with `ok` or why it was
   * refused (`cancelled`, `failed`, `not_found`). Without it, each write is its own call.
   */
  writeCheckpoint?(write: CheckpointWrite): Promise<string>;
}

/**
 * `TaskContext.create`'s options in `absurd-sdk`'s form (a context outside a worker, e.g. to run
 * a handler by hand). `log` and `taskID` are accepted for compatibility and not needed.
 */
export interface TaskContextOptions {
  con: Queryable;
  queueName: string;
  task: ClaimedTask;
  claimTimeout: number;
  onLeaseExtended?: (seconds: number) => void;
  log?: unknown;
  taskID?: string;
}

/**
 * A runtime for a context made without a client: `ctx.spawn` goes to the child's contract queue,
 * or `options.queue`, or this task's queue, with no registration defaults or hooks.
 */
export function standaloneRuntime(options: TaskContextOptions): TaskContextRuntime {
  return {
    con: options.con,
    queueName: options.queueName,
    claimTimeout: options.claimTimeout,
    ...(options.onLeaseExtended ? { onLeaseExtended: options.onLeaseExtended } : {}),
    spawn: async (task, params, spawnOptions) => {
      const contract = isTaskContract(task) ? task : undefined;
      if (contract) await parseWith(contract.params, params, { subject: contract.name, boundary: 'params', retryable: true });
      const queue = validateQueueName(spawnOptions.queue ?? contract?.queue ?? options.queueName);
      return sendSpawn(options.con, queue, contract ? contract.name : (task as string), params, spawnOptions);
    },
  };
}

/** One checkpoint write: `state` is JSON text (null: SQL NULL); `extendBy` the lease extension in seconds. */
export interface CheckpointWrite {
  taskId: string;
  stepName: string;
  state: string | null;
  ownerRun: string;
  extendBy: number | null;
}

/** What absurd.set_task_checkpoint_state raises for a write refused with `outcome`. */
export function checkpointRefusal(outcome: string, runID: string, queueName: string): Error {
  const signal = signalFromOutcome(outcome);
  if (signal) return signal;
  if (outcome === 'not_found') return new Error(`Run "${runID}" not found for checkpoint`);
  return new Error(`checkpoint write refused (${outcome}) for run "${runID}" in queue "${queueName}"`);
}
