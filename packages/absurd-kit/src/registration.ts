/**
 * A task registered with a client: the handler a worker runs, and the queue and defaults its
 * spawns get. By contract (typed and validated) or by name (as in `absurd-sdk`).
 */
import type { TaskRegistrationOptions } from './client-options.js';
import { isTaskContract, type TaskContract, type TaskDefaults } from './define.js';
import { validateQueueName } from './queue-name.js';
import type { TaskContext } from './task-context.js';

/** A registered handler with its resolved queue and spawn defaults (and its contract, when registered by one). */
export interface Registration {
  name: string;
  queue: string;
  /** The handler; its params type is erased, since one registry holds the handlers of every task. */
  handler: (params: never, ctx: TaskContext) => Promise<unknown>;
  /** Defaults for spawns that do not give their own: the contract's, or the registration options'. */
  defaults: TaskDefaults;
  contract?: TaskContract | undefined;
}

/**
 * The registration of `handler` for a contract, or for the task named in `options` (its queue
 * defaults to `clientQueue`). Throws `absurd-sdk`'s errors for a missing name or a
 * `defaultMaxAttempts` below 1, and the queue-name error for a bad queue.
 *
 * @example
 * registry.set('send-mail', toRegistration({ name: 'send-mail' }, handler, 'default'));
 */
export function toRegistration(
  options: TaskRegistrationOptions | TaskContract,
  handler: Registration['handler'],
  clientQueue: string,
): Registration {
  if (isTaskContract(options)) {
    return { name: options.name, queue: options.queue, handler, defaults: options.defaults, contract: options };
  }
  if (!options?.name) throw new Error('Task registration requires a name');
  if (options.defaultMaxAttempts !== undefined && options.defaultMaxAttempts < 1) {
    throw new Error('defaultMaxAttempts must be at least 1');
  }
  const defaults: TaskDefaults = {};
  if (options.defaultMaxAttempts !== undefined) defaults.maxAttempts = options.defaultMaxAttempts;
  if (options.defaultCancellation !== undefined) defaults.cancellation = options.defaultCancellation;
  return { name: options.name, queue: validateQueueName(options.queue ?? clientQueue), handler, defaults };
}
