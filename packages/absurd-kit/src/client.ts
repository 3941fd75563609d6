import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { resolveDatabaseUrl } from './config.js';
import {
  isEventContract,
  isTaskContract,
  type EventContract,
  type Input,
  type Output,
  type ParamsOf,
  type PayloadOf,
  type ResultOf,
  type TaskContract,
} from './define.js';
import { errorLine, TimeoutError } from './errors.js';
import type { JsonObject, JsonValue } from './json.js';
import { wakeChannel } from './notify.js';
import { sendEvent } from './emit-event.js';
import { OutageMonitor, isConnectionError } from './outage.js';
import { currentTime } from './queries/runs.queries.js';
import { cancelTask, retryTask } from './queries/tasks.queries.js';
import * as limits from './limits.js';
import type { LimitOptions, QueueLimit } from './limits.js';
import * as queues from './queue-admin.js';
import type { CreateQueueOptions, QueuePolicy, QueuePolicyOptions } from './queue-admin.js';
import type { Queryable } from './queryable.js';
import { validateQueueName } from './queue-name.js';
import type { SpawnManyItem, SpawnOptions } from './spawn-options.js';
import { checkSpawnParams, checkSpawnParamsList, observedSpawn, observedSpawnMany, sendSpawn, spawnQueue, spawnWakeups, withSpawnDefaults } from './spawn-task.js';
import { spawnTasks, type SpawnTaskItem } from './spawn-tasks.js';
import { EngineProbe } from './engine-features.js';
import { toRegistration, type Registration } from './registration.js';
import type { ScheduleContract } from './define-schedule.js';
import * as schedules from './schedules.js';
import type { ScheduleInfo, ScheduleInput } from './schedules.js';
import { applyDeclarationsUntilDone } from './queue-declarations.js';
import { TaskRunner } from './task-runner.js';
import { pollTaskResult, timeoutMs } from './task-result-polling.js';
import type { ClaimedTask, ExecuteOptions, IdleListener, Log } from './types.js';
import {
  attachContract,
  readTaskResult,
  typedSnapshot,
  type SpawnResult,
  type TaskHandle,
  type TaskResultSnapshot,
  type TypedTaskResultSnapshot,
} from './task-result.js';
import { parseWith } from './validation.js';
import { loadTelemetryApi, telemetryFor } from './telemetry.js';
import type { TraceParentContext } from './types.js';
import type {
  AbsurdHooks,
  AbsurdOptions,
  AwaitTaskResultOptions,
  ContractHandler,
  FetchTaskResultOptions,
  RetryTaskOptions,
  TaskHandler,
  TaskRegistrationOptions,
} from './client-options.js';
import { DEFAULT_MAX_ATTEMPTS } from './client-options.js';
import {
  resolveWorkerOptions,
  startWorkerLoop,
  type Worker,
  type WorkerCloseOptions,
  type WorkerOptions,
} from './worker.js';

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
  /** Schedules `startWorker` applies (registerSchedule), by name. */
  private readonly schedules: Map<string, ScheduleContract | ScheduleInput>;
  private worker: Worker | undefined;
  /** This client's view of its database: one WARN when it goes away, one INFO when it is back. */
  readonly #outage: OutageMonitor;
  /** Claims and executions, on the engine functions the database has. */
  readonly #runner: TaskRunner;
  /** Whether this client makes spans and metrics (when an OpenTelemetry SDK is registered). */
  readonly #telemetry: boolean;
  /** Which of absurd-kit's functions the engine has: read once, shared with bound clients. */
  #engine: EngineProbe;

  constructor(options: AbsurdOptions | string | pg.Pool | Queryable = {}) {
    const opts: AbsurdOptions =
      typeof options === 'string' || typeof (options as Queryable).query === 'function'
        ? { db: options as string | Queryable }
        : (options as AbsurdOptions);
    this.queueName = validateQueueName(opts.queueName ?? 'default');
    this.defaultMaxAttempts = opts.defaultMaxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    this.log = opts.log ?? console;
    this.hooks = opts.hooks ?? {};
    this.registry = new Map();
    this.schedules = new Map();
    this.#telemetry = opts.telemetry !== false;
    // Imported now, so that the first spawn or run knows the answer without waiting.
    if (this.#telemetry) void loadTelemetryApi();
    if (typeof opts.db === 'string' || opts.db === undefined) {
      const pool = new pg.Pool({ connectionString: resolveDatabaseUrl({ databaseUrl: opts.db }) });
      // An idle connection dropped by a restarting server is an outage's first sign, not an event
      // of its own: the monitor logs the outage once (and nothing if the database still answers).
      pool.on('error', (error) => {
        if (isConnectionError(error)) this.#outage.failed(error);
        else this.log.warn(`idle database connection dropped: ${errorLine(error)}`);
      });
      this.con = pool;
      this.ownsConnection = true;
    } else {
      this.con = opts.db;
      this.ownsConnection = false;
    }
    const con = this.con;
    this.#outage = new OutageMonitor({ log: this.log, probe: () => currentTime.run(undefined, con) });
    this.#engine = new EngineProbe(con, this.log);
    this.#runner = new TaskRunner({
      con,
      queueName: this.queueName,
      log: this.log,
      outage: this.#outage,
      registration: (name) => this.registry.get(name),
      wrapTaskExecution: this.hooks.wrapTaskExecution,
      telemetry: this.#telemetry,
      spawn: (task, params, options, parent) => this.#spawn(con, task, params, options, parent),
      spawnMany: (task, items, options, parent) => this.#spawnMany(con, task, items, options, parent),
      engine: () => this.#engine,
    });
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
      telemetry: this.#telemetry,
    });
    Object.assign(bound, { registry: this.registry, schedules: this.schedules, ownsConnection: owned });
    // Same database, same engine: the bound client does not probe it again.
    bound.#engine = this.#engine;
    return bound;
  }

  /**
   * Registers (or replaces) the handler of a task: by contract (typed; params, step results and the
   * result are validated) or by name (untyped, as in `absurd-sdk`).
   *
   * @example
   * app.registerTask(fulfillOrder, async (params, ctx) => {
   *   const payment = await ctx.step('process-payment', () => charge(params));
   *   return { orderId: params.orderId, trackingNumber: 'T-1' };
   * });
   */
  registerTask<C extends TaskContract>(contract: C, handler: ContractHandler<C>): void;
  // `kind?: never` keeps a contract whose handler does not fit out of this overload.
  registerTask<P = unknown, R = unknown>(
    options: TaskRegistrationOptions & { readonly kind?: never },
    handler: TaskHandler<P, R>,
  ): void;
  registerTask(options: TaskRegistrationOptions | TaskContract, handler: (params: never, ctx: never) => Promise<unknown>): void {
    const registration = toRegistration(options, handler as Registration['handler'], this.queueName);
    this.registry.set(registration.name, registration);
  }

  /**
   * Spawns a task. By contract: the params are checked first (a {@link ValidationError} is thrown
   * and nothing is written), the contract's queue and defaults apply, and the returned handle types
   * the result. By name: a registered task goes to its queue (and gets its defaults); an
   * unregistered one needs `options.queue`. Notifies the queue's idle workers.
   *
   * @example
   * const handle = await app.spawn(fulfillOrder, { orderId: 'o-1', amount: 42, items: ['sku-1'] });
   * const snapshot = await app.awaitTaskResult(handle, { timeout: 60 });
   */
  spawn<C extends TaskContract>(task: C, params: Input<ParamsOf<C>>, options?: SpawnOptions): Promise<TaskHandle<C>>;
  spawn<P = unknown>(taskName: string, params: P, options?: SpawnOptions): Promise<SpawnResult>;
  async spawn(task: string | TaskContract, params: unknown, options: SpawnOptions = {}): Promise<SpawnResult | TaskHandle> {
    const result = await this.#spawn(this.con, task, params, options);
    if (!isTaskContract(task)) {
      const { queue: _queue, ...plain } = result;
      return plain;
    }
    return attachContract(result, task);
  }

  /**
   * Spawns many tasks of one task name in one statement: one round trip, one commit. Every item's
   * params are checked against the contract before anything is written (a {@link ValidationError}
   * names the item: `items[3].params.amount: …`); `options` apply to every item and each item's own
   * options override them (an idempotency key belongs in the item's). Returns the results in the
   * items' order; an item whose idempotency key is already used in the queue, by an existing task
   * or an earlier item, returns that task with `created: false`. All or nothing: when the engine
   * refuses an item, no task is written. Wakes idle workers of the queue once.
   *
   * @example
   * const handles = await app.spawnMany(sendReceipt, [
   *   { params: { orderId: 'o-1' }, options: { idempotencyKey: 'receipt:o-1' } },
   *   { params: { orderId: 'o-2' }, options: { idempotencyKey: 'receipt:o-2' } },
   * ]);
   */
  spawnMany<C extends TaskContract>(
    task: C,
    items: readonly SpawnManyItem<Input<ParamsOf<C>>>[],
    options?: SpawnOptions,
  ): Promise<TaskHandle<C>[]>;
  spawnMany<P = unknown>(taskName: string, items: readonly SpawnManyItem<P>[], options?: SpawnOptions): Promise<SpawnResult[]>;
  async spawnMany(
    task: string | TaskContract,
    items: readonly SpawnManyItem<unknown>[],
    options: SpawnOptions = {},
  ): Promise<(SpawnResult | TaskHandle)[]> {
    const results = await this.#spawnMany(this.con, task, items, options);
    return results.map((result) => {
      if (isTaskContract(task)) return attachContract(result, task);
      const { queue: _queue, ...plain } = result;
      return plain;
    });
  }

  /**
   * Emits an event on a queue (first emission wins; later ones are ignored) and wakes its waiters.
   * With an event contract the event is `<name>:<key>` and the payload is checked first.
   *
   * @example
   * await app.emitEvent(shipmentPacked, orderId, { trackingNumber: 'T-1' }, 'orders');
   */
  emitEvent<E extends EventContract>(
    event: E,
    key: string | undefined,
    payload: Input<PayloadOf<E>>,
    queueName?: string,
  ): Promise<void>;
  emitEvent(eventName: string, payload?: JsonValue, queueName?: string): Promise<void>;
  async emitEvent(event: string | EventContract, ...rest: unknown[]): Promise<void> {
    let eventName: string;
    let payload: unknown;
    let queueName: string | undefined;
    if (isEventContract(event)) {
      eventName = event.eventName(rest[0] as string | undefined);
      payload = rest[1];
      queueName = rest[2] as string | undefined;
    } else {
      eventName = event;
      payload = rest[0];
      queueName = rest[1] as string | undefined;
    }
    const queue = queueName ?? this.queueName;
    const emit = async () => {
      if (isEventContract(event)) await parseWith(event.payload, payload, { subject: eventName, boundary: 'event', retryable: true });
      await sendEvent(this.con, queue, eventName, payload, async () => (await this.#engine.quietFeatures()).eventWakeups);
    };
    const tracing = (await telemetryFor(this.#telemetry))?.tracing;
    await (tracing ? tracing.emit(queue, eventName, emit) : emit());
  }

  /**
   * Cancels a task that has not ended (a no-op on ended tasks). On absurd-kit's engine a child
   * task's waiting parent is told at once; on Absurd's schema it finds out at its next check
   * (`checkInterval`), unless an absurd-kit worker is running the child and notices first.
   */
  async cancelTask(taskID: string, queueName?: string): Promise<void> {
    await cancelTask.run({ queueName: validateQueueName(queueName ?? this.queueName), taskId: taskID }, this.con);
  }

  /** Retries a failed task: in place (a new run) or, with `spawnNewTask`, as a new task. */
  async retryTask(taskID: string, options: RetryTaskOptions = {}): Promise<SpawnResult> {
    const queue = validateQueueName(options.queue ?? this.queueName);
    const body: Record<string, JsonValue> = {};
    if (options.maxAttempts !== undefined) body.max_attempts = options.maxAttempts;
    if (options.spawnNewTask) body.spawn_new = true;
    const rows = await retryTask.run(
      { queueName: queue, taskId: taskID, options: JSON.stringify(body), channel: wakeChannel(queue) },
      this.con,
    );
    return toSpawnResult(rows[0]);
  }

  /**
   * The task's current snapshot, or null when there is no such task. With a handle from a contract
   * spawn (or {@link taskHandle}) a completed result is parsed by the contract's result schema.
   */
  fetchTaskResult<C extends TaskContract>(
    task: TaskHandle<C>,
    options?: FetchTaskResultOptions,
  ): Promise<TypedTaskResultSnapshot<Output<ResultOf<C>>> | null>;
  fetchTaskResult(taskID: string, options?: FetchTaskResultOptions): Promise<TaskResultSnapshot | null>;
  async fetchTaskResult(task: string | TaskHandle, options: FetchTaskResultOptions = {}): Promise<unknown> {
    const taskID = typeof task === 'string' ? task : task.taskID;
    const queue = validateQueueName(options.queue ?? (typeof task === 'string' ? undefined : task.queue) ?? this.queueName);
    const snapshot = await readTaskResult(this.con, queue, taskID);
    return snapshot && typedSnapshot(snapshot, typeof task === 'string' ? undefined : task.contract);
  }

  /**
   * Waits until the task ends and returns its final snapshot. Polls with a backoff from 50 ms up to
   * 1 s; throws {@link TimeoutError} after `timeout` seconds. Typed and validated with a handle.
   */
  awaitTaskResult<C extends TaskContract>(
    task: TaskHandle<C>,
    options?: AwaitTaskResultOptions,
  ): Promise<TypedTaskResultSnapshot<Output<ResultOf<C>>>>;
  awaitTaskResult(taskID: string, options?: AwaitTaskResultOptions): Promise<TaskResultSnapshot>;
  async awaitTaskResult(task: string | TaskHandle, options: AwaitTaskResultOptions = {}): Promise<unknown> {
    const limit = timeoutMs(options.timeout);
    const taskID = typeof task === 'string' ? task : task.taskID;
    const queue = validateQueueName(options.queue ?? (typeof task === 'string' ? undefined : task.queue) ?? this.queueName);
    const snapshot = await pollTaskResult(
      taskID,
      async () => {
        const found = await readTaskResult(this.con, queue, taskID);
        if (!found) throw new Error(`Task "${taskID}" not found`);
        return found;
      },
      { timeoutMs: limit },
    );
    return typedSnapshot(snapshot, typeof task === 'string' ? undefined : task.contract);
  }

  /** Creates a queue (default: this client's; idempotent), then applies any policy given. */
  async createQueue(queueName?: string, options: CreateQueueOptions = {}): Promise<void> {
    await queues.createQueue(this.con, queueName ?? this.queueName, options);
  }

  /** Updates a queue's policy keys; sends nothing when none is given. */
  async setQueuePolicy(queueName?: string, options: QueuePolicyOptions = {}): Promise<void> {
    await queues.setQueuePolicy(this.con, queueName ?? this.queueName, options);
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

  /**
   * Gives this client a schedule to apply when its worker starts: `startWorker` upserts every
   * registered schedule (as {@link upsertSchedule} does) before it claims. Re-registering a name
   * replaces the schedule. Whichever worker applies it, the engine spawns one task per tick.
   *
   * @example
   * app.registerTask(sendReport, handler);
   * app.registerSchedule(nightlyReport);
   * await app.startWorker();
   */
  registerSchedule(schedule: ScheduleContract | ScheduleInput): void {
    if (typeof schedule?.name !== 'string' || schedule.name.trim() === '') throw new Error('registerSchedule: the schedule needs a name');
    this.schedules.set(schedule.name, schedule);
  }

  /**
   * Creates or updates a schedule in the engine and returns it: one declared with `defineSchedule`,
   * or a plain {@link ScheduleInput}. Its next tick is kept unless cron or time zone changed; a
   * paused schedule stays paused. Its tasks get the options a spawn by this client would: the
   * schedule's own, then the contract's defaults, then `defaultMaxAttempts`. Throws `ScheduleError` (invalid cron or time zone, unknown queue).
   *
   * @example
   * const info = await app.upsertSchedule(nightlyReport);
   * console.log(info.nextFireAt);
   */
  async upsertSchedule(schedule: ScheduleContract | ScheduleInput): Promise<ScheduleInfo> {
    return schedules.upsertSchedule(this.con, schedule, this.defaultMaxAttempts);
  }

  /**
   * Removes a schedule; returns whether it existed (the tasks it spawned stay).
   *
   * @example
   * await app.removeSchedule('nightly-report');
   */
  async removeSchedule(name: string): Promise<boolean> {
    return schedules.removeSchedule(this.con, name);
  }

  /**
   * Pauses a schedule: it fires nothing until resumed. `ScheduleError` `SCHEDULE_NOT_FOUND` when unknown.
   *
   * @example
   * await app.pauseSchedule('nightly-report');
   */
  async pauseSchedule(name: string): Promise<ScheduleInfo> {
    return schedules.setScheduleState(this.con, name, { paused: true });
  }

  /**
   * Resumes a paused schedule from its first tick after now (ticks that fell while it was paused
   * never fire). `ScheduleError` `SCHEDULE_NOT_FOUND` when unknown.
   *
   * @example
   * await app.resumeSchedule('nightly-report');
   */
  async resumeSchedule(name: string): Promise<ScheduleInfo> {
    return schedules.setScheduleState(this.con, name, { paused: false });
  }

  /**
   * Every schedule in the database (or those of `queueName`), by name, with next and last ticks.
   *
   * @example
   * for (const s of await app.listSchedules()) console.log(s.name, s.nextFireAt, s.paused);
   */
  async listSchedules(queueName?: string): Promise<ScheduleInfo[]> {
    return schedules.listSchedules(this.con, queueName === undefined ? undefined : validateQueueName(queueName));
  }

  /**
   * Creates or replaces the concurrency and/or rate limit `name` of a queue (default: this
   * client's). The engine's claim enforces it, for the workers of every SDK. Returns false when
   * the limit already had exactly this definition. See docs/flow-control.md.
   *
   * @example
   * await app.setLimit('one-per-customer', { taskName: 'charge', key: 'customerId', maxRunning: 1 });
   * await app.setLimit('mail-api', { taskName: 'send-mail', rate: { limit: 100, periodSeconds: 60 } });
   */
  async setLimit(name: string, options: LimitOptions, queueName?: string): Promise<boolean> {
    return limits.setLimit(this.con, queueName ?? this.queueName, name, options);
  }

  /**
   * Removes the limit `name` of a queue (default: this client's); the runs it parked become
   * claimable. False when there was no such limit.
   *
   * @example
   * await app.removeLimit('one-per-customer');
   */
  async removeLimit(name: string, queueName?: string): Promise<boolean> {
    return limits.removeLimit(this.con, queueName ?? this.queueName, name);
  }

  /**
   * The limits of a queue (default: this client's; null: every queue), with the runs holding a
   * slot and the runs parked now.
   *
   * @example
   * for (const limit of await app.listLimits()) console.log(limit.name, limit.running, limit.parked);
   */
  async listLimits(queueName?: string | null): Promise<QueueLimit[]> {
    return limits.listLimits(this.con, queueName === undefined ? this.queueName : queueName);
  }

  /**
   * Claims up to `batchSize` due runs of this client's queue (also sweeps expired leases and
   * policies). The first claim of a client reads which engine functions to use (see `startWorker`).
   * `idleListener` is what `startWorker`'s loop passes while it listens for wake-ups: a claim that
   * finds fewer runs than asked then marks it idle, so that spawns notify it.
   */
  async claimTasks(
    options: { batchSize?: number; claimTimeout?: number; workerId?: string; idleListener?: IdleListener } = {},
  ): Promise<ClaimedTask[]> {
    const { batchSize = 1, claimTimeout = 120, workerId = 'worker', idleListener } = options;
    return this.#runner.claim({ batchSize, claimTimeout, workerId, idleListener });
  }

  /**
   * Claims once and executes what it got, one after the other. Every lease starts at the claim, so
   * a run still waiting its turn when its lease has run out is not started (another worker may
   * have it by then).
   */
  async workBatch(workerId = 'worker', claimTimeout = 120, batchSize = 1): Promise<void> {
    const claimedAt = performance.now();
    const tasks = await this.claimTasks({ batchSize, claimTimeout, workerId });
    for (const task of tasks) await this.executeTask(task, claimTimeout, { claimedAt });
  }

  /**
   * Starts a worker for this client's queue in the background (see {@link WorkerOptions}). While
   * the database is unreachable the worker logs one warning (not one error per failed claim), keeps
   * its runs' writes waiting for it as long as their leases last, and logs once when it is back.
   *
   * Schedules given by {@link registerSchedule} are applied first (a refused one throws here), then
   * the limits the task contracts declare; a contract limit no longer declared is removed. While the
   * database is unreachable the worker starts anyway and applies them once it is back.
   *
   * On a schema installed by Absurd (no `absurd migrate --adopt` yet) the worker runs on Absurd's
   * standard functions — one claim, completion and checkpoint write per call, polling at
   * `pollInterval` without wake-ups — and says so once at INFO when it starts.
   */
  async startWorker(options: WorkerOptions = {}): Promise<Worker> {
    // Claims that fail on their connection are the outage the monitor logs once; the default
    // onError logs only the others. A custom onError still receives every claim error.
    const resolved = resolveWorkerOptions(options, (error) => {
      if (!isConnectionError(error)) this.log.error(`Worker error: ${errorLine(error)}`);
    });
    const stopApplying = await applyDeclarationsUntilDone({
      con: this.con,
      queueName: this.queueName,
      log: this.log,
      schedules: [...this.schedules.values()],
      contracts: [...this.registry.values()]
        .filter((registration) => registration.queue === this.queueName && registration.contract !== undefined)
        .map((registration) => registration.contract as TaskContract),
      defaultMaxAttempts: this.defaultMaxAttempts,
      features: () => this.#runner.features(),
    });
    const host = await this.#runner.workerHost({
      claimTasks: (claim) => this.claimTasks(claim),
      executeTask: (task, claimTimeout, execute) => this.executeTask(task, claimTimeout, execute),
    });
    const loop = await startWorkerLoop(host, resolved);
    const worker: Worker = {
      workerId: loop.workerId,
      get inFlight() {
        return loop.inFlight;
      },
      close: (closeOptions) => {
        stopApplying();
        return loop.close(closeOptions);
      },
    };
    this.worker = worker;
    return worker;
  }

  /** Executes one claimed run to its end (see the worker). */
  async executeTask(task: ClaimedTask, claimTimeout: number, options: ExecuteOptions = {}): Promise<void> {
    await this.#runner.execute(task, claimTimeout, options);
  }

  /**
   * Stops the last started worker (waiting for its runs in flight, up to `timeout` seconds), closes
   * the wake-up connection and, if this client owns it, the pool.
   */
  async close(options: WorkerCloseOptions = {}): Promise<void> {
    await this.worker?.close(options);
    await this.#runner.close();
    this.#outage.close();
    if (this.ownsConnection) await (this.con as { end?: () => Promise<void> }).end?.();
  }

  /**
   * Resolves queue, defaults and hooks, validates contract params, and spawns on `con`. With
   * tracing on, in a producer span whose context the task's headers carry (`parent`: the span to
   * make it a child of, when not the active one — a run's, for `ctx.spawn`).
   */
  async #spawn(
    con: Queryable,
    task: string | TaskContract,
    params: unknown,
    options: SpawnOptions,
    parent?: TraceParentContext,
  ): Promise<SpawnResult & { queue: string }> {
    const taskName = isTaskContract(task) ? task.name : task;
    const registration = this.registry.get(taskName);
    const contract = isTaskContract(task) ? task : registration?.contract;
    const queue = spawnQueue(task, registration?.queue, options.queue);
    const spawn = async (traceHeaders: JsonObject | undefined) => {
      await checkSpawnParams(contract, params);
      let effective = withSpawnDefaults(task, registration?.defaults, options, this.defaultMaxAttempts);
      if (this.hooks.beforeSpawn) effective = await this.hooks.beforeSpawn(taskName, params, effective);
      // Headers the producer (or a hook) set win over the trace context's.
      if (traceHeaders) effective = { ...effective, headers: { ...traceHeaders, ...effective.headers } };
      return sendSpawn(con, queue, taskName, params, effective, spawnWakeups(await this.#engine.quietFeatures()));
    };
    const telemetry = await telemetryFor(this.#telemetry);
    if (!telemetry) return spawn(undefined);
    return observedSpawn(telemetry, { queue, taskName, headers: options.headers, parent }, spawn);
  }

  /** {@link spawnMany} on `con`: every item checked and resolved, then one statement. */
  async #spawnMany(
    con: Queryable,
    task: string | TaskContract,
    items: readonly SpawnManyItem<unknown>[],
    shared: SpawnOptions,
    parent?: TraceParentContext,
  ): Promise<(SpawnResult & { queue: string })[]> {
    const taskName = isTaskContract(task) ? task.name : task;
    const registration = this.registry.get(taskName);
    const contract = isTaskContract(task) ? task : registration?.contract;
    const queue = spawnQueue(task, registration?.queue, shared.queue);
    for (const [index, item] of items.entries()) {
      const own = item.options?.queue;
      if (own !== undefined && validateQueueName(own) !== queue) {
        throw new Error(`items[${index}]: queue "${own}" differs from the queue of the other items, "${queue}" — spawnMany writes to one queue`);
      }
    }
    await checkSpawnParamsList(contract, items.map((item) => item.params));
    const resolved: SpawnTaskItem[] = [];
    for (const item of items) {
      let effective = withSpawnDefaults(task, registration?.defaults, { ...shared, ...item.options }, this.defaultMaxAttempts);
      if (this.hooks.beforeSpawn) effective = await this.hooks.beforeSpawn(taskName, item.params, effective);
      resolved.push({ taskName, params: item.params, options: effective });
    }
    if (resolved.length === 0) return [];
    const { idleWakeups } = await this.#engine.quietFeatures();
    // Headers an item (or a hook) set win over the trace context's.
    const send = (traceHeaders: JsonObject | undefined) =>
      spawnTasks(
        con,
        queue,
        traceHeaders ? resolved.map((item) => ({ ...item, options: { ...item.options, headers: { ...traceHeaders, ...item.options.headers } } })) : resolved,
        idleWakeups,
      );
    const telemetry = await telemetryFor(this.#telemetry);
    if (!telemetry) return send(undefined);
    return observedSpawnMany(telemetry, { queue, taskName, headers: shared.headers, parent }, send);
  }
}

function toSpawnResult(row: unknown): SpawnResult {
  const r = row as { task_id: string; run_id: string; attempt: number; created: boolean } | undefined;
  if (!r) throw new Error('the engine returned no row');
  return { taskID: r.task_id, runID: r.run_id, attempt: r.attempt, created: r.created };
}
