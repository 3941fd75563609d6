/**
 * The runtime of a task context made without a client: from `absurd-sdk`'s `TaskContext.create`
 * options, e.g. to run a handler by hand. (Clients and workers give their contexts their own.)
 */
import { isTaskContract } from './define.js';
import type { Queryable } from './queryable.js';
import { validateQueueName } from './queue-name.js';
import { checkSpawnParams, checkSpawnParamsList, sendSpawn } from './spawn-task.js';
import { spawnTasks } from './spawn-tasks.js';
import type { ClaimedTask, TaskContextRuntime } from './types.js';

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
      await checkSpawnParams(contract, params);
      const queue = validateQueueName(spawnOptions.queue ?? contract?.queue ?? options.queueName);
      // No engine probe here: absurd.spawn_task and a notification work on every engine.
      return sendSpawn(options.con, queue, contract ? contract.name : (task as string), params, spawnOptions, 'client');
    },
    spawnMany: async (task, items, spawnOptions) => {
      const contract = isTaskContract(task) ? task : undefined;
      await checkSpawnParamsList(contract, items.map((item) => item.params));
      const queue = validateQueueName(spawnOptions.queue ?? contract?.queue ?? options.queueName);
      const taskName = contract ? contract.name : (task as string);
      return spawnTasks(options.con, queue, items.map((item) => ({ taskName, params: item.params, options: { ...spawnOptions, ...item.options } })), false);
    },
  };
}
