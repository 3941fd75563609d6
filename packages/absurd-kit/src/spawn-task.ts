/**
 * Spawning: where a spawn goes, which options it gets, the call that sends it, and its span.
 */
import type * as Otel from '@opentelemetry/api';
import { isTaskContract, type TaskContract, type TaskDefaults } from './define.js';
import { toJsonParam, type JsonObject } from './json.js';
import { wakeChannel } from './notify.js';
import { spawnTask, spawnTaskWaking, spawnTaskWakingIdle } from './queries/tasks.queries.js';
import type { Queryable } from './queryable.js';
import { validateQueueName } from './queue-name.js';
import { spawnOptionsToJson, type SpawnOptions } from './spawn-options.js';
import type { SpawnResult } from './task-result.js';
import type { Telemetry } from './telemetry.js';
import { ATTR } from './telemetry-attributes.js';
import { spawnAttributes } from './telemetry-tracing.js';
import type { EngineFeatures, TraceParentContext } from './types.js';
import { parseWith } from './validation.js';

/**
 * Checks spawn params against the task's contract, if it has one: checked, not transformed (the
 * input form is stored and parsed again by the worker). A refused value throws ValidationError
 * (retryable: nothing was written); `item` names the element of a bulk spawn (`items[2].params…`).
 */
export async function checkSpawnParams(contract: TaskContract | undefined, params: unknown, item?: number): Promise<void> {
  if (!contract) return;
  await parseWith(contract.params, params, { subject: contract.name, boundary: 'params', retryable: true, ...(item === undefined ? {} : { item }) });
}

/** {@link checkSpawnParams} for every element of a bulk spawn, before anything is written. */
export async function checkSpawnParamsList(contract: TaskContract | undefined, paramsList: readonly unknown[]): Promise<void> {
  for (const [index, params] of paramsList.entries()) await checkSpawnParams(contract, params, index);
}

/**
 * The queue a client's spawn of `task` goes to: a contract's declared queue, else the queue the
 * task was registered for (`registeredQueue`), else `requested` (required for names the client
 * does not know). A requested queue that disagrees with the declared or registered one is refused.
 */
export function spawnQueue(task: string | TaskContract, registeredQueue: string | undefined, requested: string | undefined): string {
  const taskName = isTaskContract(task) ? task.name : task;
  if (isTaskContract(task)) {
    if (requested !== undefined && validateQueueName(requested) !== task.queue) {
      throw new Error(`Task "${taskName}" is declared for queue "${task.queue}" but spawn requested queue "${requested}".`);
    }
    return task.queue;
  }
  if (registeredQueue !== undefined) {
    if (requested !== undefined) {
      validateQueueName(requested);
      if (requested !== registeredQueue) {
        throw new Error(`Task "${taskName}" is registered for queue "${registeredQueue}" but spawn requested queue "${requested}".`);
      }
    }
    return registeredQueue;
  }
  if (requested === undefined) {
    throw new Error(`Task "${taskName}" is not registered. Provide options.queue when spawning unregistered tasks.`);
  }
  return validateQueueName(requested);
}

/**
 * A spawn's options with the defaults filled in, each from the first that gives it: the spawn's own
 * options, the contract's defaults, the registration's (`registered`), then (attempts only) the
 * client's.
 */
export function withSpawnDefaults(
  task: string | TaskContract,
  registered: TaskDefaults | undefined,
  options: SpawnOptions,
  clientMaxAttempts: number,
): SpawnOptions {
  const defaults = isTaskContract(task) ? task.defaults : undefined;
  const effective: SpawnOptions = {
    ...options,
    maxAttempts: options.maxAttempts ?? defaults?.maxAttempts ?? registered?.maxAttempts ?? clientMaxAttempts,
  };
  const cancellation = options.cancellation ?? defaults?.cancellation ?? registered?.cancellation;
  if (cancellation !== undefined) effective.cancellation = cancellation;
  const retryStrategy = options.retryStrategy ?? defaults?.retryStrategy ?? registered?.retryStrategy;
  if (retryStrategy !== undefined) effective.retryStrategy = retryStrategy;
  return effective;
}

/**
 * How a spawn wakes the workers of its queue, by what the engine can do: `spawn_task` notifies
 * idle listening workers itself (migration 000016); `kit_spawn_task` does (migrations 000013 to
 * 000015); or the client notifies on every spawn (Absurd's schema, older absurd-kit).
 */
export type SpawnWakeups = 'engine' | 'kit-spawn-task' | 'client';

/** The {@link SpawnWakeups} of an engine with these features. */
export function spawnWakeups(features: Pick<EngineFeatures, 'flowControl' | 'idleWakeups'>): SpawnWakeups {
  if (features.flowControl) return 'engine';
  return features.idleWakeups ? 'kit-spawn-task' : 'client';
}

/**
 * Creates the task and wakes the workers of its queue, as `wakeups` says (see
 * {@link SpawnWakeups}): the engine notifies only while a worker of the queue is idle and
 * listening; the client's own notification goes out on every spawn. Either way the notification is
 * delivered when the spawning transaction commits, so a spawn inside a caller's transaction wakes
 * nobody before that commit (and nobody if it rolls back).
 */
export async function sendSpawn(
  con: Queryable,
  queue: string,
  taskName: string,
  params: unknown,
  options: SpawnOptions,
  wakeups: SpawnWakeups,
): Promise<SpawnResult & { queue: string }> {
  const args = {
    queueName: queue,
    taskName,
    params: toJsonParam(params),
    options: JSON.stringify(spawnOptionsToJson(options)),
  };
  const [row] =
    wakeups === 'engine'
      ? await spawnTaskWaking.run(args, con)
      : wakeups === 'kit-spawn-task'
        ? await spawnTaskWakingIdle.run(args, con)
        : await spawnTask.run({ ...args, channel: wakeChannel(queue) }, con);
  if (!row) throw new Error('absurd.spawn_task returned no row');
  return { taskID: row.task_id, runID: row.run_id, attempt: row.attempt, created: row.created, queue };
}

/** Where a spawn goes, for its span: queue, task, the producer's headers and the trace it continues. */
export interface SpawnSite {
  queue: string;
  taskName: string;
  headers: JsonObject | undefined;
  parent: TraceParentContext | undefined;
}

/**
 * Runs a bulk `spawn` with telemetry on: in one producer span (`absurd.spawn.count` the number of
 * tasks) whose context `spawn` gets as headers to store with every task (none when the shared
 * `headers` carry a traceparent already), each task it created counted in `absurd.tasks.spawned`.
 */
export async function observedSpawnMany<R extends SpawnResult>(
  telemetry: Telemetry,
  where: SpawnSite,
  spawn: (traceHeaders: JsonObject | undefined) => Promise<R[]>,
): Promise<R[]> {
  return observed(telemetry, where, spawn, (results) => ({ [ATTR.spawnCount]: results.length }), (results) => results);
}

/**
 * Runs `spawn` with telemetry on: in a producer span whose context `spawn` gets as headers to
 * store with the task (none when the producer's own `headers` carry a traceparent already: the
 * span is their child then, and `parent` otherwise), counted in `absurd.tasks.spawned` when it
 * created a task.
 */
export async function observedSpawn<R extends SpawnResult>(
  telemetry: Telemetry,
  where: SpawnSite,
  spawn: (traceHeaders: JsonObject | undefined) => Promise<R>,
): Promise<R> {
  return observed(telemetry, where, spawn, spawnAttributes, (result) => [result]);
}

/** The span and the count of one spawn call, whatever it returns: `describe` gives the span's attributes, `tasks` what it spawned. */
async function observed<T>(
  telemetry: Telemetry,
  where: SpawnSite,
  spawn: (traceHeaders: JsonObject | undefined) => Promise<T>,
  describe: (value: T) => Otel.Attributes,
  tasks: (value: T) => readonly SpawnResult[],
): Promise<T> {
  const { queue, taskName } = where;
  const value = telemetry.tracing
    ? await telemetry.tracing.spawn(queue, taskName, where.headers, where.parent, async (span, headers) => {
        const spawned = await spawn(headers);
        span.setAttributes(describe(spawned));
        return spawned;
      })
    : await spawn(undefined);
  for (const result of tasks(value)) if (result.created) telemetry.metrics?.spawned(queue, taskName);
  return value;
}
