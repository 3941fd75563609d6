/**
 * Emitting an event: the one call that sends it, for the client, the task context and the worker.
 */
import { toJsonParam } from './json.js';
import { wakeChannel } from './notify.js';
import { emitEvent, emitEventWaking } from './queries/events.queries.js';
import type { Queryable } from './queryable.js';
import { validateQueueName } from './queue-name.js';

/**
 * Emits `eventName` on `queueName` (`absurd.emit_event`; the first emission of a name wins, later
 * ones are ignored), which wakes the runs waiting for it, and wakes the queue's idle workers: the
 * engine does where it can (`engineWakes`, migration 000018: only when a run became due, only idle
 * listening workers), else a notification goes with the emit. An `undefined` payload is stored as
 * JSON null. Checks the name and the queue first, as `absurd-sdk` does.
 */
export async function sendEvent(
  con: Queryable,
  queueName: string,
  eventName: string,
  payload: unknown,
  engineWakes: boolean | (() => Promise<boolean>) = false,
): Promise<void> {
  if (!eventName) throw new Error('eventName must be a non-empty string');
  const queue = validateQueueName(queueName);
  const args = { queueName: queue, eventName, payload: toJsonParam(payload ?? null) };
  if (typeof engineWakes === 'function' ? await engineWakes() : engineWakes) await emitEventWaking.run(args, con);
  else await emitEvent.run({ ...args, channel: wakeChannel(queue) }, con);
}
