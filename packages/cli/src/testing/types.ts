/**
 * The types that several modules of the testing entry share: what a run did, what a task looks
 * like when a test inspects it, and the log lines a test environment keeps.
 */
import type { JsonValue, Output, ParamsOf, ResultOf, StepSchemas, StepsOf, TaskContract, TaskResultState } from 'absurd-kit';

/**
 * A run's stored failure reason: for an error thrown by a handler `{ name, message, stack }`
 * (a `ValidationError` adds its details), for an expired lease Absurd's
 * `{ name: '$ClaimTimeout', message, workerId, claimExpiredAt, attempt }`.
 */
export type FailureReason = { readonly name?: string; readonly message?: string; readonly [key: string]: JsonValue | undefined };

/**
 * How one execution of a run ended:
 * - `completed`, `failed`, `cancelled`: the run ended so (a failed run's task may retry: see
 *   {@link RunReport.taskState});
 * - `suspended`: it sleeps, or waits for an event or another task (see `wakeAt`, `waitingFor`);
 * - `deferred`: no handler is registered for its task name on its queue's client, so the runtime
 *   put it back for 15–30 s, as a worker does while a deploy is under way;
 * - `stopped`: it stopped without an end of its own (its lease ran out while it ran).
 */
export type RunOutcome = 'completed' | 'failed' | 'suspended' | 'cancelled' | 'deferred' | 'stopped';

/** What one run did when a test environment executed it. */
export interface RunReport {
  readonly queue: string;
  readonly taskName: string;
  readonly taskID: string;
  readonly runID: string;
  /** The attempt this run is (1-based). */
  readonly attempt: number;
  readonly outcome: RunOutcome;
  /**
   * The task's state afterwards, e.g. `sleeping` after a failed run whose retry waits out its
   * backoff, `pending` after one retried at once, `failed` when no attempt is left.
   */
  readonly taskState: TaskResultState;
  /** The stored result when completed (as stored: parse it with `inspect` for the contract's type). */
  readonly result: JsonValue | null;
  /** The failure reason when failed. */
  readonly failure: FailureReason | null;
  /** When suspended or deferred: when it becomes due by time alone; null when only an event wakes it. */
  readonly wakeAt: Date | null;
  /**
   * When suspended on an event: its name (`shipment.packed:o-1`; a wait for another task's result
   * is `$taskResult:<task id>`); otherwise null.
   */
  readonly waitingFor: string | null;
}

/** A run claimed by `abandonNextRun` and never executed, as a worker that died leaves it. */
export interface AbandonedRun {
  readonly queue: string;
  readonly taskName: string;
  readonly taskID: string;
  readonly runID: string;
  readonly attempt: number;
  /** When its lease runs out (test clock): a claim after that fails it with `$ClaimTimeout` and retries it. */
  readonly leaseExpiresAt: Date;
}

/** One run of a task as `inspect` reads it. */
export interface InspectedRun {
  readonly runID: string;
  readonly attempt: number;
  readonly state: TaskResultState;
  /** The run's result when it completed. */
  readonly result: JsonValue | null;
  /** The run's failure reason when it failed. */
  readonly failure: FailureReason | null;
  readonly createdAt: Date;
  /** When it was last claimed (null: never). */
  readonly startedAt: Date | null;
  readonly completedAt: Date | null;
  readonly failedAt: Date | null;
  /** When it is (or was) due; null for a wait without a timeout. */
  readonly availableAt: Date | null;
  /** The event a sleeping run waits for. */
  readonly wakeEvent: string | null;
}

/**
 * An event a task awaited: `received` (its payload is checkpointed), `waiting`, or `timed-out` (the
 * wait's timeout passed without the event). Waits for other tasks' results are in `children`.
 * An event awaited under a step name of the handler's choosing (`{ stepName }`) shows here while
 * it is awaited; once received, its payload is in `steps` under that name.
 */
export interface AwaitedEvent {
  /** The engine's event name, e.g. `shipment.packed:o-1`. */
  readonly eventName: string;
  /** The checkpoint the wait writes, e.g. `$awaitEvent:shipment.packed:o-1`. */
  readonly stepName: string;
  readonly state: 'received' | 'waiting' | 'timed-out';
  /** The payload when received (as stored). */
  readonly payload: JsonValue | undefined;
  /** The wait's deadline (null: none, or received). */
  readonly timeoutAt: Date | null;
}

/** A task spawned by another one with `ctx.spawn` (any queue). */
export interface ChildTask {
  readonly taskID: string;
  readonly queue: string;
  readonly taskName: string;
  readonly state: TaskResultState;
  readonly attempts: number;
}

/** An event emitted on a queue. */
export interface EmittedEvent {
  readonly queue: string;
  readonly eventName: string;
  readonly payload: JsonValue;
  readonly emittedAt: Date;
}

/** A task of one of the environment's queues, as `tasks()` lists it. */
export interface TaskSummary {
  readonly queue: string;
  readonly taskID: string;
  readonly taskName: string;
  readonly state: TaskResultState;
  readonly attempts: number;
}

/**
 * The results of a task's steps by checkpoint name (`process-payment`, `process-payment#2` for a
 * repeat): a step the contract declares has its schema's output type (and was parsed by it);
 * any other step, including sleeps (their wake time), is its stored JSON.
 */
export type StepResults<S extends StepSchemas> = { readonly [K in keyof S]?: Output<S[K]> } & { readonly [name: string]: unknown };

/** A task as a test sees it, typed by its contract `C` (untyped JSON without one). */
export interface TaskInspection<C extends TaskContract = TaskContract> {
  readonly taskID: string;
  readonly queue: string;
  readonly taskName: string;
  readonly state: TaskResultState;
  /** Attempts made or scheduled: a retry waiting out its backoff counts. */
  readonly attempts: number;
  readonly maxAttempts: number | null;
  /** The params, parsed by the contract's params schema. */
  readonly params: Output<ParamsOf<C>>;
  /** The result when completed, parsed by the contract's result schema; undefined otherwise. */
  readonly result: Output<ResultOf<C>> | undefined;
  /** The last run's failure reason when the task failed; null otherwise. */
  readonly failure: FailureReason | null;
  /** Every run, by attempt. */
  readonly runs: readonly InspectedRun[];
  /** The handler's steps (the runtime's own bookkeeping left out), parsed by the contract's step schemas. */
  readonly steps: StepResults<StepsOf<C>>;
  /** Every checkpoint as stored, the runtime's own (`$spawn:…`, `$awaitEvent:…`) included. */
  readonly checkpoints: Readonly<Record<string, JsonValue>>;
  /** The events it awaited. */
  readonly events: readonly AwaitedEvent[];
  /** The tasks it spawned with `ctx.spawn`, oldest first. */
  readonly children: readonly ChildTask[];
  readonly createdAt: Date;
  readonly firstStartedAt: Date | null;
  readonly cancelledAt: Date | null;
}

/** A line the environment's clients logged. */
export interface LogLine {
  readonly level: 'log' | 'info' | 'warn' | 'error';
  readonly message: string;
}
