import pg from 'pg';
import { resolveDatabaseUrl } from './config.js';
import { TimeoutError } from './errors.js';
import { executeClaimedTask, type ExecutionHost, type Log, type Registration } from './execute-task.js';
import { toJsonParam, type JsonValue } from './json.js';
import { QueueListener, wakeChannel } from './notify.js';
import * as q from './queries.js';
import * as queues from './queue-admin.js';
import type { CreateQueueOptions, QueuePolicy, QueuePolicyOptions } from './queue-admin.js';
import type { Queryable } from './queryable.js';
import { validateQueueName } from './queue-name.js';
import { spawnOptionsToJson, type CancellationPolicy, type SpawnOptions } from './spawn-options.js';
import type { ClaimedTask, TaskContext, TaskContextRuntime } from './task-context.js';
import { snapshotFromRow, type SpawnResult, type TaskResultRow, type TaskResultSnapshot } from './task-result.js';
import { resolveWorkerOptions, startWorkerLoop, type Worker, type WorkerCloseOptions, type WorkerOptions } from './worker.js';

/** A task handler: gets the spawn params and the task context, returns the task's result. */
export type TaskHandler<P = unknown, R = unknown> = (params: P, ctx: TaskContext) => Promise<R>;

/** Options of {@link Absurd.registerTask}. */
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

/** Options of the {@link Absurd} constructor. */
export interface AbsurdOptions {
  /** A connection URL, a `pg.Pool`, or anything with `query`. Default: `ABSURD_DATABASE_URL`, `PGDATABASE`, `postgresql://localhost/absurd`. */
  db?: pg.Pool | string | Queryable;
  /** The client's queue; default `"default"`. */
  queueName?: string;
  /** Attempts per task when neither spawn nor registration says; default 5. */
  defaultMaxAttempts?: number;
  log?: Log;
  hooks?: AbsurdHooks;
}

/** Options of {@link Absurd.fetchTaskResult}. */
export interface FetchTaskResultOptions {
  queue?: string;
}

/** Options of {@link Absurd.awaitTaskResult}. */
export interface AwaitTaskResultOptions {
  queue?: string;
  /** Seconds; `undefined` or `Infinity` waits forever. */
  timeout?: number;
}

/** Options of {@link Absurd.retryTask}. */
export interface RetryTaskOptions {
  queue?: string;
  /** The new total of attempts (must exceed the attempts so far); default one more. */
  maxAttempts?: number;
  /** Start a new task with the same params instead of a new run of the failed one. */
  spawnNewTask?: boolean;
}

type Registry = Map<string, Registration>;

/**
 * The client: registers handlers, spawns tasks, emits events, manages queues and runs workers.
 * A drop-in replacement for the `absurd-sdk` package's `Absurd` class.
 *
 * @example
 * const app = new Absurd({ db: process.env.DATABASE_URL, queueName: 'orders' });
 * app.registerTask({ name: 'send-receipt' }, async (params: { orderId: string }, ctx) => {
 *   return ctx.step('send', () => sendReceipt(params.orderId));
 * });
 * await app.startWorker({ concurrency: 8 });
 * await app.spawn('send-receipt', { orderId: 'o-1' });
 */
export class Absurd {
  /** The queue this client works on. */
  readonly queueName: string;
  /** The connection every query goes through (named like the `absurd-sdk` field). */
  private readonly con: Queryable;
  private readonly ownsConnection: boolean;
  private readonly defaultMaxAttempts: number;
  private readonly log: Log;
  private readonly hooks: AbsurdHooks;
  private readonly registry: Registry;
  private worker: Worker | undefined;
  private listener: QueueListener | undefined;

  constructor(options: AbsurdOptions | string | pg.Pool | Queryable = {}) {
    const opts: AbsurdOptions =
      typeof options === 'string' || typeof (options as Queryable).query === 'function'
        ? { db: options as string | Queryable }
        : (options as AbsurdOptions);
    this.queueName = validateQueueName(opts.queueName ?? 'default');
    this.defaultMaxAttempts = opts.defaultMaxAttempts ?? 5;
    this.log = opts.log ?? console;
    this.hooks = opts.hooks ?? {};
    this.registry = new Map();
    if (typeof opts.db === 'string' || opts.db === undefined) {
      const pool = new pg.Pool({ connectionString: resolveDatabaseUrl({ databaseUrl: opts.db }) });
      pool.on('error', (error) => this.log.error('[absurd] idle database connection failed:', error));
      this.con = pool;
      this.ownsConnection = true;
    } else {
      this.con = opts.db;
      this.ownsConnection = false;
    }
  }

  /**
   * A client that runs every query on `con` (e.g. a `PoolClient` inside your transaction, so that
   * a spawn commits or rolls back with your own writes) and shares this client's registrations.
   * With `owned`, {@link close} ends `con`.
   */
  bindToConnection(con: Queryable, owned = false): Absurd {
    const bound = new Absurd({
      db: con,
      queueName: this.queueName,
      defaultMaxAttempts: this.defaultMaxAttempts,
      log: this.log,
      hooks: this.hooks,
    });
    Object.assign(bound, { registry: this.registry, ownsConnection: owned });
    return bound;
  }

  /** Registers (or replaces) the handler of a task name. */
  registerTask<P = unknown, R = unknown>(options: TaskRegistrationOptions, handler: TaskHandler<P, R>): void {
    if (!options?.name) throw new Error('Task registration requires a name');
    if (options.defaultMaxAttempts !== undefined && options.defaultMaxAttempts < 1) {
      throw new Error('defaultMaxAttempts must be at least 1');
    }
    const queue = validateQueueName(options.queue ?? this.queueName);
    this.registry.set(options.name, {
      name: options.name,
      queue,
      handler: handler as Registration['handler'],
      defaultMaxAttempts: options.defaultMaxAttempts,
      defaultCancellation: options.defaultCancellation,
    });
  }

  /**
   * Spawns a task. A registered task goes to its queue (and gets its defaults); an unregistered one
   * needs `options.queue`. Notifies the queue's idle workers.
   */
  async spawn<P = unknown>(taskName: string, params: P, options: SpawnOptions = {}): Promise<SpawnResult> {
    const registration = this.registry.get(taskName);
    let queue: string;
    if (registration) {
      if (options.queue !== undefined) {
        validateQueueName(options.queue);
        if (options.queue !== registration.queue) {
          throw new Error(
            `Task "${taskName}" is registered for queue "${registration.queue}" but spawn requested queue "${options.queue}".`,
          );
        }
      }
      queue = registration.queue;
    } else {
      if (options.queue === undefined) {
        throw new Error(`Task "${taskName}" is not registered. Provide options.queue when spawning unregistered tasks.`);
      }
      queue = validateQueueName(options.queue);
    }
    let effective: SpawnOptions = {
      ...options,
      maxAttempts: options.maxAttempts ?? registration?.defaultMaxAttempts ?? this.defaultMaxAttempts,
    };
    const cancellation = options.cancellation ?? registration?.defaultCancellation;
    if (cancellation !== undefined) effective.cancellation = cancellation;
    if (this.hooks.beforeSpawn) effective = await this.hooks.beforeSpawn(taskName, params, effective);
    return this.#spawnOn(this.con, queue, taskName, params, effective);
  }

  /** Emits an event on a queue (first emission wins; later ones are ignored) and wakes its waiters. */
  async emitEvent(eventName: string, payload?: JsonValue, queueName?: string): Promise<void> {
    if (!eventName) throw new Error('eventName must be a non-empty string');
    const queue = validateQueueName(queueName ?? this.queueName);
    await this.con.query(q.EMIT_EVENT, [queue, eventName, toJsonParam(payload ?? null), wakeChannel(queue)]);
  }

  /** Cancels a task that has not ended (a no-op on ended tasks). */
  async cancelTask(taskID: string, queueName?: string): Promise<void> {
    await this.con.query(q.CANCEL_TASK, [validateQueueName(queueName ?? this.queueName), taskID]);
  }

  /** Retries a failed task: in place (a new run) or, with `spawnNewTask`, as a new task. */
  async retryTask(taskID: string, options: RetryTaskOptions = {}): Promise<SpawnResult> {
    const queue = validateQueueName(options.queue ?? this.queueName);
    const body: Record<string, JsonValue> = {};
    if (options.maxAttempts !== undefined) body.max_attempts = options.maxAttempts;
    if (options.spawnNewTask) body.spawn_new = true;
    const { rows } = await this.con.query(q.RETRY_TASK, [queue, taskID, JSON.stringify(body), wakeChannel(queue)]);
    return toSpawnResult(rows[0]);
  }

  /** The task's current snapshot, or null when there is no such task. */
  async fetchTaskResult(taskID: string, options: FetchTaskResultOptions = {}): Promise<TaskResultSnapshot | null> {
    const queue = validateQueueName(options.queue ?? this.queueName);
    const { rows } = await this.con.query(q.GET_TASK_RESULT, [queue, taskID]);
    const row = rows[0] as TaskResultRow | undefined;
    return row ? snapshotFromRow(row) : null;
  }

  /**
   * Waits until the task ends and returns its final snapshot. Polls with a backoff from 50 ms up to
   * 1 s; throws {@link TimeoutError} after `timeout` seconds.
   */
  async awaitTaskResult(taskID: string, options: AwaitTaskResultOptions = {}): Promise<TaskResultSnapshot> {
    const { timeout } = options;
    if (timeout !== undefined && (typeof timeout !== 'number' || Number.isNaN(timeout) || timeout < 0)) {
      throw new Error('timeout must be a finite non-negative number');
    }
    const deadline = timeout === undefined || timeout === Infinity ? Infinity : Date.now() + timeout * 1000;
    let delay = 50;
    for (;;) {
      const snapshot = await this.fetchTaskResult(taskID, options);
      if (!snapshot) throw new Error(`Task "${taskID}" not found`);
      if (snapshot.state === 'completed' || snapshot.state === 'failed' || snapshot.state === 'cancelled') {
        return snapshot;
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new TimeoutError(`Timed out waiting for task "${taskID}"`);
      await new Promise((resolve) => setTimeout(resolve, Math.min(delay, remaining)));
      delay = Math.min(delay * 2, 1000);
    }
  }

  /** Creates a queue (default: this client's; idempotent), then applies any policy given. */
  async createQueue(queueName?: string, options: CreateQueueOptions = {}): Promise<void> {
    await queues.createQueue(this.con, validateQueueName(queueName ?? this.queueName), options);
  }

  /** Updates a queue's policy keys; sends nothing when none is given. */
  async setQueuePolicy(queueName?: string, options: QueuePolicyOptions = {}): Promise<void> {
    await queues.setQueuePolicy(this.con, validateQueueName(queueName ?? this.queueName), options);
  }

  /** A queue's policy, or null when it does not exist. */
  async getQueuePolicy(queueName?: string): Promise<QueuePolicy | null> {
    return queues.getQueuePolicy(this.con, queueName ?? this.queueName);
  }

  /** Drops a queue and everything in it. */
  async dropQueue(queueName?: string): Promise<void> {
    await queues.dropQueue(this.con, queueName ?? this.queueName);
  }

  /** Every queue, sorted by name. */
  async listQueues(): Promise<string[]> {
    return queues.listQueues(this.con);
  }

  /** Claims up to `batchSize` due runs of this client's queue (also sweeps expired leases and policies). */
  async claimTasks(options: { batchSize?: number; claimTimeout?: number; workerId?: string } = {}): Promise<ClaimedTask[]> {
    const { batchSize = 1, claimTimeout = 120, workerId = 'worker' } = options;
    const { rows } = await this.con.query(q.CLAIM_TASK, [this.queueName, workerId, claimTimeout, batchSize]);
    return rows as ClaimedTask[];
  }

  /** Claims once and executes what it got, one after the other. */
  async workBatch(workerId = 'worker', claimTimeout = 120, batchSize = 1): Promise<void> {
    const tasks = await this.claimTasks({ batchSize, claimTimeout, workerId });
    for (const task of tasks) await this.executeTask(task, claimTimeout);
  }

  /** Starts a worker for this client's queue in the background (see {@link WorkerOptions}). */
  async startWorker(options: WorkerOptions = {}): Promise<Worker> {
    const resolved = resolveWorkerOptions(options, (error) => this.log.error('Worker error:', error));
    const connection = this.#listenConfig();
    const worker = await startWorkerLoop(
      {
        claimTasks: (claim) => this.claimTasks(claim),
        executeTask: (task, claimTimeout, execute) => this.executeTask(task, claimTimeout, execute),
        subscribeToWakeups: connection
          ? (onWake) => {
              this.listener ??= new QueueListener({
                connection,
                onError: (error) => this.log.warn('[absurd] wake-up connection problem:', error.message),
              });
              return this.listener.subscribe(this.queueName, onWake);
            }
          : undefined,
        secondsUntilNextRun: async () => {
          const { rows } = await this.con.query(q.NEXT_WAKE, [this.queueName]);
          return (rows[0] as { seconds: number | null } | undefined)?.seconds ?? null;
        },
      },
      resolved,
    );
    this.worker = worker;
    return worker;
  }

  /** Executes one claimed run to its end (see the worker). */
  async executeTask(task: ClaimedTask, claimTimeout: number, options: { fatalOnLeaseTimeout?: boolean } = {}): Promise<void> {
    await executeClaimedTask(this.#executionHost(), task, claimTimeout, options);
  }

  /**
   * Stops the last started worker (waiting for its runs in flight, up to `timeout` seconds), closes
   * the wake-up connection and, if this client owns it, the pool.
   */
  async close(options: WorkerCloseOptions = {}): Promise<void> {
    await this.worker?.close(options);
    await this.listener?.close();
    this.listener = undefined;
    if (this.ownsConnection) await (this.con as { end?: () => Promise<void> }).end?.();
  }

  async #spawnOn(con: Queryable, queue: string, taskName: string, params: unknown, options: SpawnOptions): Promise<SpawnResult> {
    const { rows } = await con.query(q.SPAWN_TASK, [
      queue,
      taskName,
      toJsonParam(params),
      JSON.stringify(spawnOptionsToJson(options)),
      wakeChannel(queue),
    ]);
    return toSpawnResult(rows[0]);
  }

  #executionHost(): ExecutionHost {
    return {
      con: this.con,
      queueName: this.queueName,
      log: this.log,
      registration: (name) => this.registry.get(name),
      wrapTaskExecution: this.hooks.wrapTaskExecution,
      contextRuntime: (claimTimeout, onLeaseExtended): TaskContextRuntime => ({
        con: this.con,
        queueName: this.queueName,
        claimTimeout,
        onLeaseExtended,
        spawn: (taskName, params, options) => this.spawn(taskName, params, options),
      }),
    };
  }

  /** Connection settings for a dedicated LISTEN connection, when the client has a real pg.Pool. */
  #listenConfig(): pg.ClientConfig | undefined {
    if (!(this.con instanceof pg.Pool)) return undefined;
    const { max: _max, idleTimeoutMillis: _idle, ...config } = this.con.options as pg.PoolConfig;
    return config;
  }
}

function toSpawnResult(row: unknown): SpawnResult {
  const r = row as { task_id: string; run_id: string; attempt: number; created: boolean } | undefined;
  if (!r) throw new Error('the engine returned no row');
  return { taskID: r.task_id, runID: r.run_id, attempt: r.attempt, created: r.created };
}
