/**
 * The types that several modules of the runtime share: the claimed run, step handles and the
 * options of a task context's waits, where log lines go, what a task context runs on, what the
 * worker passes to an execution, and which of absurd-kit's additions the engine has. Modules import these from here rather than from each other, so
 * that type imports never tie modules into a loop (graphile-worker's `interfaces.ts` habit).
 * Types that only one module uses stay in that module.
 */
import type { Schema, TaskContract } from './define.js';
import type { JsonObject, JsonValue } from './json.js';
import type { Queryable } from './queryable.js';
import type { SpawnManyItem, SpawnOptions } from './spawn-options.js';
import type { SpawnResult } from './task-result.js';

/** Where log lines go; `console` by default. */
export interface Log {
  log(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

/** A run as `absurd.claim_task` hands it out (the raw row, snake_case, as `absurd-sdk` exposes it). */
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
  /**
   * Seconds the run waited between becoming due and this claim (database clock), when the claim
   * reported it (absurd-kit's claims do); recorded as the `absurd.queue.lag` metric.
   */
  queue_lag?: number | null;
}

/**
 * A step looked up with `TaskContext#beginStep`: done with its stored state, or still to do.
 * `I` is the type `TaskContext#completeStep` accepts (a step schema's input).
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

/** A value, or a promise of it. */
export type MaybePromise<T> = T | Promise<T>;

/** Options of `TaskContext#awaitEvent`. */
export interface AwaitEventOptions {
  /** Checkpoint name; default `$awaitEvent:<eventName>`. */
  stepName?: string;
  /** Seconds to wait (floored); then a `TimeoutError`. Negative or NaN: no timeout. */
  timeout?: number;
  /** With other waits started at the same time (see {@link WaitResume}); default `'all'`. */
  resume?: WaitResume;
}

/**
 * When a run whose waits started together (`Promise.all` over `ctx.awaitEvent`,
 * `ctx.awaitTaskResult` and `ctx.sleepFor`, or `ctx.awaitAll`) resumes: `'all'` once every one of
 * them can be answered (the run suspends once), `'each'` as soon as this one can (the run resumes,
 * answers it, and suspends again for the others).
 */
export type WaitResume = 'all' | 'each';

/** Options of `TaskContext#awaitTaskResult`. */
export interface ContextAwaitTaskResultOptions {
  /** Queue of the awaited task; default the handle's queue, else this task's queue. */
  queue?: string;
  /** Seconds to wait in all; then a `TimeoutError`. Default: no limit. */
  timeout?: number;
  /** Checkpoint name; default `$awaitTaskResult:<taskID>`. */
  stepName?: string;
  /**
   * While suspended, how often (seconds) to look at the awaited task in case nobody announces its
   * end (a task run by another SDK does not). Default 60. Not used when the task is polled.
   */
  checkInterval?: number;
  /** With other waits started at the same time (see {@link WaitResume}); default `'all'`. */
  resume?: WaitResume;
}

/** Options of `TaskContext#spawn`: a spawn's options, plus the step and what the child does when this task is cancelled. */
export interface ChildSpawnOptions extends SpawnOptions {
  /** Checkpoint name of the spawn; default `$spawn:<task name>`. */
  stepName?: string;
  /**
   * Cancel the child when this task is cancelled (by any client, absurdctl or a cancellation
   * policy) and the child has not ended; its own such children follow. Default false: the child
   * runs on.
   */
  cancelWithParent?: boolean;
}

/** Options of `TaskContext#awaitAll`: those of each wait (see `ctx.awaitTaskResult`), and `failures`. */
export interface AwaitAllOptions {
  /** Queue of the tasks given by id; default each handle's queue, else this task's queue. */
  queue?: string;
  /** Seconds to wait in all; then a `TimeoutError`. Default: no limit. */
  timeout?: number;
  /** While suspended, how often (seconds) to look at tasks nobody announces the end of. Default 60. */
  checkInterval?: number;
  /** See {@link WaitResume}; default `'all'`: the run resumes once every task has ended. */
  resume?: WaitResume;
  /**
   * `'throw'` (default): a task that failed or was cancelled fails the wait with
   * `AwaitedTaskFailedError`; `'return'`: its snapshot is returned with the others.
   */
  failures?: 'throw' | 'return';
}

/** A task to await: its id, or an object with its id and queue (a spawn result, a handle). */
export type TaskRef = string | { taskID: string; queue?: string };

/** Options the worker passes to `Absurd#executeTask`. */
export interface ExecuteOptions {
  /** Exit the process when the run overruns its lease by 100 %. */
  fatalOnLeaseTimeout?: boolean;
  /**
   * Called once the handler has settled and only the run's final write (completion or failure)
   * is left. The worker then lets the run's slot go to new work while that write is on its way.
   */
  onHandlerSettled?: () => void;
  /** When the claim was sent (`performance.now()`): the lease runs from then. Default: when execution starts. */
  claimedAt?: number;
  /** Aborted when the worker was closed and its close timeout passed: the run's `ctx.signal` fires. */
  workerSignal?: AbortSignal;
}

/**
 * What a task context knows of its run's lease (see `lease.ts`): the signal its handler gets, a
 * check made before anything new starts, and the way every statement of the run is sent.
 */
export interface RunGuard {
  /** Aborted when the run must stop: lease lost, task cancelled, worker closed past its timeout. */
  readonly signal: AbortSignal;
  /** Throws why the run must stop, if it must (nothing new may start then). */
  check(): void;
  /**
   * Runs a statement of the run; after a connection failure waits for the database and runs it
   * again while the run holds its lease. `fn` must be idempotent (it may have committed unseen).
   */
  call<T>(fn: () => Promise<T>, options?: RunCallOptions): Promise<T>;
}

/** Options of {@link RunGuard.call}. */
export interface RunCallOptions {
  /** The statement extends the lease by this many seconds when it succeeds. */
  renews?: number | null | undefined;
  /**
   * Runs before each repeat of the statement; may throw to end the call instead (e.g. when the
   * statement is found to have committed although its answer was lost).
   */
  beforeRetry?: () => Promise<void>;
  /** Make one attempt even when the run must stop (a completion, which the engine arbitrates). */
  evenIfStopped?: boolean;
}

/**
 * An OpenTelemetry context (`Context` of `@opentelemetry/api`), passed through modules that must
 * not name the optional package's types.
 */
export type TraceParentContext = unknown;

/**
 * The tracing of one run, when tracing is on (see `telemetry-tracing.ts`): the spans of its steps,
 * waits and event emissions, children of the run's span. Typed without `@opentelemetry/api`,
 * which is optional.
 */
export interface RunTrace {
  /** The context spawns made by the run are children of (the active step's, else the run's). */
  parent(): TraceParentContext;
  /** A step's span: `replayed` when its checkpoint answered and `fn` did not run. */
  step<T>(name: string, checkpointName: string, replayed: boolean, fn: () => Promise<T>): Promise<T>;
  /**
   * A sleep's or wait's span (`kind`: sleep, awaitEvent, awaitTaskResult); its outcome is
   * `suspended` when `fn` suspends the run, else `resolved` (or `replayed` when `replayed`).
   */
  wait<T>(kind: string, name: string, attributes: Record<string, string | number | boolean>, fn: () => Promise<T>): Promise<T>;
  /** An event emission's span. */
  emit<T>(eventName: string, fn: () => Promise<T>): Promise<T>;
}

/** What a task context runs on: given by the client and worker that run it. */
export interface TaskContextRuntime {
  con: Queryable;
  queueName: string;
  claimTimeout: number;
  /** Spawns on this context's connection (registration rules, defaults, hooks and params validation applied). */
  spawn(
    task: string | TaskContract,
    params: unknown,
    options: SpawnOptions,
    parent?: TraceParentContext,
  ): Promise<SpawnResult & { queue: string }>;
  /**
   * Spawns many tasks of one queue in one statement on this context's connection (each item's
   * params validated before anything is written; defaults and hooks applied to each).
   */
  spawnMany?(
    task: string | TaskContract,
    items: readonly SpawnManyItem<unknown>[],
    options: SpawnOptions,
    parent?: TraceParentContext,
  ): Promise<(SpawnResult & { queue: string })[]>;
  /** Called whenever the lease was extended (checkpoint write, heartbeat), with its new length. */
  onLeaseExtended?(seconds: number): void;
  /** The run's lease; without one (a context made by hand) statements are sent once and the signal never fires. */
  guard?: RunGuard | undefined;
  /** The task's contract when it was registered by one: its step schemas are enforced. */
  contract?: TaskContract | undefined;
  /** The engine has `kit_await_events` (waits started together suspend the run once); default true. */
  groupedWaits?: boolean | undefined;
  /** The engine cancels children spawned with `cancelWithParent` (`kit_cancel_children`); default true. */
  cancelWithParent?: boolean | undefined;
  /** `emit_event` wakes idle workers itself (migration 000018): emits send no notification; default false. */
  eventWakeups?: boolean | undefined;
  /**
   * Writes a checkpoint (batched with other runs' writes); resolves with `ok` or why it was
   * refused (`cancelled`, `failed`, `not_found`). Without it, each write is its own call.
   */
  writeCheckpoint?(write: CheckpointWrite): Promise<string>;
  /** The run's tracing, when tracing is on (steps, waits and spawns make spans through it). */
  trace?: RunTrace | undefined;
}

/** One checkpoint write: `state` is JSON text (null: SQL NULL); `extendBy` the lease extension in seconds. */
export interface CheckpointWrite {
  taskID: string;
  stepName: string;
  state: string | null;
  ownerRun: string;
  extendBy: number | null;
}

/** A worker loop's idle mark (see `ClaimOptions.idleListener`). */
export interface IdleListener {
  /** Unique to one worker loop. */
  id: string;
  /** How long a claim that found too little marks the worker idle; longer than its poll interval. */
  seconds: number;
}

/**
 * Which of absurd-kit's additions the database's engine has (see `engine-features.ts`). Each one
 * missing is replaced by Absurd's standard functions; the fast path uses them all.
 */
export interface EngineFeatures {
  /** absurd-kit installed or adopted the schema (`absurd.kit_migrations` exists). */
  tracked: boolean;
  /** `kit_claim_task`: a claim returns its runs' checkpoints (else each run loads its own). */
  claimWithCheckpoints: boolean;
  /** `kit_complete_runs`: completions of many runs in one statement (else `complete_run` each). */
  batchedCompletions: boolean;
  /** `kit_set_checkpoints`: checkpoint writes of many runs in one statement (else one by one). */
  batchedCheckpoints: boolean;
  /** `kit_fail_task`: a run fails with its task, no retry (else `fail_run`, then `cancel_task`). */
  failWithoutRetry: boolean;
  /** `kit_seconds_until_next_run`: an idle worker sleeps until the next run is due (else it polls). */
  nextRunDue: boolean;
  /** `kit_await_events`: waits started together suspend a run once (else one by one). */
  groupedWaits: boolean;
  /** `kit_cancel_children`: cancel_task cancels the children spawned with `cancelWithParent`. */
  cancelWithParent: boolean;
  /** `kit_announce_end`: `kit_complete_runs` announces a child's completion to its parent itself. */
  completionsAnnounced: boolean;
  /** Workers LISTEN for wake-ups on absurd-kit's schema (else they poll, as absurd-sdk does). */
  wakeups: boolean;
  /**
   * `kit_spawn_task`, `kit_spawn_tasks` and the listening claim (migration 000013): spawns notify
   * only while a worker of the queue is idle and listening, and workers say when they are (else
   * every spawn notifies), and many spawns go in one statement set-based.
   */
  idleWakeups: boolean;
  /**
   * `kit_wakeups_settled` (migration 000018): a worker going idle asks whether a spawn that missed
   * its new idle mark is still in flight, and claims once more when none is (else such a spawn's
   * run can wait for the worker's next poll).
   */
  settledWakeups: boolean;
  /**
   * `emit_event` wakes the queue's idle listening workers when it makes a run due (migration
   * 000018), so emits need no notification of their own (else the client notifies on every emit).
   */
  eventWakeups: boolean;
  /**
   * `kit_set_limit` and the claim that enforces limits and priorities (migration 000016): a worker
   * applies the concurrency and rate limits its task contracts declare when it starts.
   */
  flowControl: boolean;
  /**
   * `kit_fire_schedules` (migration 000015): cron schedules, fired by `claim_task`, and by a worker
   * whose slots are all busy (it does not claim then).
   */
  schedules: boolean;
}
