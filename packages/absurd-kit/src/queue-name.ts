/** The longest queue name in UTF-8 bytes; derived relation names must fit in 63 bytes. */
export const MAX_QUEUE_NAME_BYTES = 57;

/**
 * Checks a queue name by the engine's rule (1–57 UTF-8 bytes, anything else allowed) and returns it.
 * Throws the engine's own messages, so a name is refused the same way before and after a round trip.
 *
 * @example
 * validateQueueName('orders'); // 'orders'
 * validateQueueName('');       // throws "Queue name must be provided"
 */
export function validateQueueName(queueName: string | undefined | null): string {
  if (typeof queueName !== 'string' || queueName === '') {
    throw new Error('Queue name must be provided');
  }
  if (Buffer.byteLength(queueName, 'utf8') > MAX_QUEUE_NAME_BYTES) {
    throw new Error(`Queue name "${queueName}" is too long (max ${MAX_QUEUE_NAME_BYTES} bytes).`);
  }
  return queueName;
}
