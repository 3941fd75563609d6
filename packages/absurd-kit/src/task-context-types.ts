/**
 * The types a task context works with: the claimed run, step handles, and the options of its waits.
 */
import type { Schema } from './define.js';
import type { JsonObject, JsonValue } from './json.js';
import type { TaskContext } from './task-context.js';
import type { TimeoutError } from './errors.js';

/** A run as `absurd.claim_task` hands it out (the raw row, snake_case). */
export interface ClaimedTask {
  run_id: string;
  task_id: string;
  task_name: string;
  attempt: number;
  params: JsonValue;
  retry_strategy: JsonValue;
  max_attempts: number | null;
  headers: JsonObject | null;
  wake_event: string | null;
  event_payload: JsonValue | null;
  /**
   * The checkpoints visible to this run, by name, when the claim returned them (absurd-kit's
   * claims do); otherwise they are loaded when the run starts.
   */
  checkpoints?: { [name: string]: JsonValue } | null;
}

/**
 * A step looked up with {@link TaskContext.beginStep}: done with its stored state, or still to do.
 * `I` is the type {@link TaskContext.completeStep} accepts (a step schema's input).
 */
export type StepHandle<T = JsonValue, I = T> = {
  readonly name: string;
  readonly checkpointName: string;
  /** Type-only: what completeStep accepts. */
  readonly __input?: I;
  /** Type-only: what completeStep returns (kept when `done` narrows `state` away). */
  readonly __output?: T;
} & ({ done: false; state?: never } | { done: true; state: T });

/** No step schemas (a task registered without a contract). */
export type NoSteps = Record<never, Schema>;

/** A step name that has no schema in `S` (so the untyped overloads cannot bypass a declared one). */
export type UndeclaredStep<S, N extends string> = N & (N extends keyof S ? never : unknown);

/**
 * The name type the untyped overloads fall back to when a result type is given explicitly
 * (`ctx.step<T>(name, fn)`, where the name is not inferred): any string when `S` declares no steps,
 * none otherwise (write `ctx.step<T, 'name'>(…)` or let `T` be inferred), so that an explicit type
 * cannot skip a declared step's schema.
 */
export type UntypedStepName<S> = [keyof S] extends [never] ? string : never;

export type MaybePromise<T> = T | Promise<T>;

/** Options of {@link TaskContext.awaitEvent}. */
export interface AwaitEventOptions {
  /** Checkpoint name; default `$awaitEvent:<eventName>`. */
  stepName?: string;
  /** Seconds to wait (floored); then a {@link TimeoutError}. Negative or NaN: no timeout. */
  timeout?: number;
}

/** Options of {@link TaskContext.awaitTaskResult}. */
export interface AwaitTaskResultOptions {
  /** Queue of the awaited task; default the handle's queue, else this task's queue. */
  queue?: string;
  /** Seconds to wait in all; then a {@link TimeoutError}. Default: no limit. */
  timeout?: number;
  /** Checkpoint name; default `$awaitTaskResult:<taskId>`. */
  stepName?: string;
  /**
   * While suspended, how often (seconds) to look at the awaited task in case nobody announces its
   * end (a task run by another SDK does not). Default 60.
   */
  checkInterval?: number;
}

/** A task to await: its id, or an object with its id and queue. */
export type TaskRef = string | { taskID: string; queue?: string };
