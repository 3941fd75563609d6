/**
 * Waiting for a task's end by reading its snapshot again and again, as `absurd-sdk`'s
 * `awaitTaskResult` does on the client and in a task: the first pause 50 ms, each next one twice
 * as long up to 1 s, a pause never longer than the time left. `Absurd#awaitTaskResult` waits this
 * way, and so does `ctx.awaitTaskResult` for a task that will not announce its end to the waiter.
 */
import { TimeoutError } from './errors.js';
import { isFinalState, type TaskResultSnapshot } from './task-result.js';

/** First pause between two reads; it doubles up to {@link MAX_PAUSE_MS}. */
const FIRST_PAUSE_MS = 50;
const MAX_PAUSE_MS = 1000;

/** Options of {@link pollTaskResult}. */
export interface PollTaskResultOptions {
  /** Milliseconds to wait in all, from now (`Infinity`: no limit); then a {@link TimeoutError}. */
  timeoutMs: number;
  /** Runs before each pause, with the pause's length (a task's heartbeat). */
  beforePause?: (pauseMs: number) => Promise<void>;
  /** Ends a pause early when aborted; `read` then decides what the next read does. */
  signal?: AbortSignal;
}

/**
 * Reads the task's snapshot (`read` throws when there is no such task) until it is final and
 * returns it; throws {@link TimeoutError} `Timed out waiting for task "<id>"` when the timeout
 * passes first. Times are taken with `Date.now`, as absurd-sdk's are.
 *
 * @example
 * const snapshot = await pollTaskResult(taskID, () => readOrThrow(taskID), { timeoutMs: 30_000 });
 */
export async function pollTaskResult(
  taskID: string,
  read: () => Promise<TaskResultSnapshot>,
  options: PollTaskResultOptions,
): Promise<TaskResultSnapshot> {
  const deadline = Date.now() + options.timeoutMs;
  let pause = FIRST_PAUSE_MS;
  for (;;) {
    const snapshot = await read();
    if (isFinalState(snapshot.state)) return snapshot;
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw new TimeoutError(`Timed out waiting for task "${taskID}"`);
    const next = Math.min(pause, remaining);
    await options.beforePause?.(next);
    await pauseFor(next, options.signal);
    pause = Math.min(pause * 2, MAX_PAUSE_MS);
  }
}

/**
 * A wait's timeout in milliseconds: `Infinity` for `undefined` or `Infinity` (wait forever). Throws
 * `timeout must be a finite non-negative number` for anything else that is not a number ≥ 0.
 */
export function timeoutMs(timeout: number | undefined): number {
  if (timeout === undefined || timeout === Infinity) return Infinity;
  if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout < 0) {
    throw new Error('timeout must be a finite non-negative number');
  }
  return timeout * 1000;
}

function pauseFor(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    signal?.addEventListener('abort', done, { once: true });
  });
}
