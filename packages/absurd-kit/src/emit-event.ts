/**
 * Emitting an event: the one call that sends it, for the client, the task context and the worker.
 */
import { toJsonParam } from './json.js';
import { wakeChannel } from './notify.js';
import { emitEvent } from './queries/events.queries.js';
import type { Queryable } from './queryable.js';
import { validateQueueName } from './queue-name.js';

/**
 * Emits `eventName` on `queueName` (`absurd.emit_event`; the first emission of a name wins, later
 * ones are ignored), which wakes the runs waiting for it, and notifies the queue's idle workers.
 * An `undefined` payload is stored as JSON null. Checks the name and the queue first, as
 * `absurd-sdk` does.
 */
export async function sendEvent(con: Queryable, queueName: string, eventName: string, payload: unknown): Promise<void> {
  if (!eventName) throw new Error('eventName must be a non-empty string');
  const queue = validateQueueName(queueName);
  await emitEvent.run({ queueName: queue, eventName, payload: toJsonParam(payload ?? null), channel: wakeChannel(queue) }, con);
}
