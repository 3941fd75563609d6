/**
 * The option and handler types of the `Absurd` client.
 */
import type pg from 'pg';
import type { Input, Output, ParamsOf, ResultOf, StepsOf, TaskContract } from './define.js';
import type { Queryable } from './queryable.js';
import type { CancellationPolicy, SpawnOptions } from './spawn-options.js';
import type { TaskContext } from './task-context.js';
import type { Log } from './types.js';

/** A task handler: gets the spawn params and the task context, returns the task's result. */
export type TaskHandler<P = unknown, R = unknown> = (params: P, ctx: TaskContext) => Promise<R>;

/**
 * The handler of a task contract: gets the parsed params (the schema's output) and a context whose
 * steps are typed by the contract, and returns the result schema's input.
 */
export type ContractHandler<C extends TaskContract> = (
  params: Output<ParamsOf<C>>,
  ctx: TaskContext<StepsOf<C>>,
) => Promise<Input<ResultOf<C>>>;

/** Attempts per task when neither the spawn, the contract nor the registration says, unless the client's `defaultMaxAttempts` does. */
export const DEFAULT_MAX_ATTEMPTS = 5;

/** Options of `Absurd#registerTask`. */
export interface TaskRegistrationOptions {
  name: string;
  /** Queue the task runs on; default the client's queue. */
  queue?: string;
  /** Attempts for spawns that do not say; default the client's (5). */
  defaultMaxAttempts?: number;
  /** Cancellation policy for spawns that do not give one. */
  defaultCancellation?: CancellationPolicy;
}

/** Hooks around spawning and executing. */
export interface AbsurdHooks {
  /** Sees the resolved options of every spawn (defaults applied) and returns the options to use. */
  beforeSpawn?: (taskName: string, params: unknown, options: SpawnOptions) => SpawnOptions | Promise<SpawnOptions>;
  /** Wraps each execution (handler and completion), e.g. to restore tracing or request context. */
  wrapTaskExecution?: <T>(ctx: TaskContext, execute: () => Promise<T>) => Promise<T>;
}

/** Options of the `Absurd` constructor. */
export interface AbsurdOptions {
  /** A connection URL, a `pg.Pool`, or anything with `query`. Default: `ABSURD_DATABASE_URL`, `PGDATABASE`, `postgresql://localhost/absurd`. */
  db?: pg.Pool | string | Queryable;
  /** The client's queue; default `"default"`. */
  queueName?: string;
  /** Attempts per task when neither spawn nor registration says; default 5. */
  defaultMaxAttempts?: number;
  log?: Log;
  hooks?: AbsurdHooks;
  /**
   * OpenTelemetry spans and metrics (docs/observability.md); default true. They are made only when
   * the optional peer `@opentelemetry/api` is installed and the application registered an SDK
   * (a tracer or meter provider); otherwise they cost one check per call. `false` turns them off
   * for this client even then.
   */
  telemetry?: boolean;
}

/** Options of `Absurd#fetchTaskResult`. */
export interface FetchTaskResultOptions {
  queue?: string;
}

/** Options of `Absurd#awaitTaskResult`. */
export interface AwaitTaskResultOptions {
  queue?: string;
  /** Seconds; `undefined` or `Infinity` waits forever. */
  timeout?: number;
}

/** Options of `Absurd#retryTask`. */
export interface RetryTaskOptions {
  queue?: string;
  /** The new total of attempts (must exceed the attempts so far); default one more. */
  maxAttempts?: number;
  /** Start a new task with the same params instead of a new run of the failed one. */
  spawnNewTask?: boolean;
}
