/**
 * A failed run, as it is stored and as it is logged. The stored failure reason (`failure_reason`)
 * keeps everything, stack included; the log gets one line an operator can act on.
 */
import { describeValidation, errorLine, ValidationError } from './errors.js';
import type { JsonValue } from './json.js';
import type { ClaimedTask } from './types.js';

/**
 * The failure reason stored for an error: `{ name, message, stack }` (plus the error's own `toJSON`
 * fields, e.g. a ValidationError's issues), or `{ message }` for non-errors.
 *
 * @example
 * serializeError(new Error('boom')); // { name: 'Error', message: 'boom', stack: 'Error: boom\n    at …' }
 */
export function serializeError(error: unknown): JsonValue {
  if (error instanceof Error) {
    const own = typeof (error as { toJSON?: unknown }).toJSON === 'function' ? (error as unknown as { toJSON(): object }).toJSON() : {};
    return JSON.parse(
      JSON.stringify({ ...own, name: error.name, message: error.message, stack: error.stack || null }),
    ) as JsonValue;
  }
  return { message: String(error) };
}

/** True for errors that declare a retry pointless (`retryable === false`), e.g. invalid stored data. */
export function isPermanentFailure(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { retryable?: unknown }).retryable === false;
}

/**
 * The log line of a run that failed with `error`, and its level: what went wrong (a refused value
 * names its boundary, path and value) and what it means for the task — an error when the task has
 * failed for good, a warning while attempts remain. No stack: that is in the stored failure.
 *
 * @example
 * failureLogLine(task, error);
 * // { level: 'error', line: 'task "order-fulfillment" run 0190…: params invalid at params.email: expected string, received undefined — failed without retry' }
 */
export function failureLogLine(task: ClaimedTask, error: unknown): { level: 'warn' | 'error'; line: string } {
  const what = error instanceof ValidationError ? `${error.boundary} invalid at ${describeValidation(error)}` : errorLine(error);
  const run = `task "${task.task_name}" run ${task.run_id}: ${what}`;
  if (isPermanentFailure(error)) return { level: 'error', line: `${run} — failed without retry` };
  const max = task.max_attempts;
  if (max !== null && task.attempt >= max) {
    return { level: 'error', line: `${run} — attempt ${task.attempt} of ${max} failed, no attempts left` };
  }
  return { level: 'warn', line: `${run} — attempt ${task.attempt}${max === null ? '' : ` of ${max}`} failed` };
}
