import { CheckpointStore, withTaskState } from './checkpoint-store.js';
import {
  isTaskContract,
  type EventContract,
  type Input,
  type Output,
  type ParamsOf,
  type PayloadOf,
  type ResultOf,
  type Schema,
  type StepSchemas,
  type TaskContract,
} from './define.js';
import { sendEvent } from './emit-event.js';
import { AwaitedTaskFailedError, type ValidationBoundary } from './errors.js';
import { isControlFlowSignal } from './signals.js';
import { EventWaits } from './event-waits.js';
import type { JsonObject, JsonValue } from './json.js';
import { extendClaim } from './queries/runs.queries.js';
import { unguarded } from './lease.js';
import type { SpawnOptions } from './spawn-options.js';
import {
  attachContract,
  parentHeader,
  typedSnapshot,
  type AwaitedSnapshot,
  type SpawnResult,
  type TaskHandle,
  type TaskResultSnapshot,
  type TypedTaskResultSnapshot,
} from './task-result.js';
import { standaloneRuntime, type TaskContextOptions } from './task-context-runtime.js';
import type {
  AwaitAllOptions,
  ChildSpawnOptions,
  AwaitEventOptions,
  ClaimedTask,
  ContextAwaitTaskResultOptions,
  MaybePromise,
  NoSteps,
  RunGuard,
  StepHandle,
  TaskContextRuntime,
  TaskRef,
  UndeclaredStep,
  UntypedStepName,
} from './types.js';
import { parseWith } from './validation.js';
import { ATTR } from './telemetry-attributes.js';
import { validateQueueName } from './queue-name.js';

/** The checkpoint of `ctx.spawnMany`: the children's queue and spawn results, in order. */
interface SpawnedList {
  queue: string;
  tasks: { taskID: string; runID: string; attempt: number; created: boolean }[];
  cancelWithParent?: true;
}

/**
 * What a task handler uses to make its work durable. Every durable call is identified by a
 * checkpoint name: the requested name the first time in an execution, `name#2`, `name#3`, … after
 * (one counter per name, shared by steps, sleeps, event waits, child spawns and awaits), so a
 * replay meets the same names in the same order and gets the stored results back.
 *
 * Durable calls stop an execution by throwing control-flow signals (a sleep or wait suspends, a
 * cancellation ends it): a `catch` around them must rethrow those, see `isControlFlowSignal`.
 *
 * @example
 * app.registerTask({ name: 'welcome' }, async (params: { email: string }, ctx) => {
 *   const user = await ctx.step('create-user', () => createUser(params.email));
 *   await ctx.sleepFor('grace-period', 3600);
 *   await ctx.step('send-mail', () => sendWelcome(user));
 * });
 */
export class TaskContext<S extends StepSchemas = NoSteps> {
  /** The task's id. */
  readonly taskID: string;
  readonly #runtime: TaskContextRuntime;
  readonly #task: ClaimedTask;
  readonly #checkpoints: CheckpointStore;
  readonly #waits: EventWaits;
  #headers: Readonly<JsonObject> | undefined;

  private constructor(runtime: TaskContextRuntime, task: ClaimedTask, checkpoints: CheckpointStore) {
    this.taskID = task.task_id;
    this.#runtime = runtime;
    this.#task = task;
    this.#checkpoints = checkpoints;
    this.#waits = new EventWaits(runtime, task, checkpoints, () => this.heartbeat());
  }

  /**
   * Builds the context of a claimed run with every checkpoint visible to it (checkpoints of later
   * attempts are hidden): those the claim returned, or loaded now.
   */
  static async create<S extends StepSchemas = NoSteps>(options: TaskContextOptions): Promise<TaskContext<S>>;
  static async create<S extends StepSchemas = NoSteps>(runtime: TaskContextRuntime, task: ClaimedTask): Promise<TaskContext<S>>;
  static async create<S extends StepSchemas = NoSteps>(
    runtimeOrOptions: TaskContextRuntime | TaskContextOptions,
    claimed?: ClaimedTask,
  ): Promise<TaskContext<S>> {
    // absurd-sdk's form: one object with the task in it.
    const task = claimed ?? (runtimeOrOptions as TaskContextOptions).task;
    const runtime: TaskContextRuntime = claimed
      ? (runtimeOrOptions as TaskContextRuntime)
      : standaloneRuntime(runtimeOrOptions as TaskContextOptions);
    return new TaskContext<S>(runtime, task, await CheckpointStore.load(runtime, task));
  }

  /** The current run's id. */
  get runID(): string {
    return this.#task.run_id;
  }

  /** The current attempt (1-based). */
  get attempt(): number {
    return this.#task.attempt;
  }

  /** The task's registered name. */
  get taskName(): string {
    return this.#task.task_name;
  }

  /** The queue the task runs on. */
  get queueName(): string {
    return this.#runtime.queueName;
  }

  /**
   * Aborted when this run must stop, with a reason that says why:
   * - {@link LeaseLost}: the run's lease ran out (a long step, a frozen process, a database that
   *   stayed away longer than the lease); another worker may run the task now;
   * - {@link CancelledTask}: the task was cancelled (noticed at a checkpoint write or a heartbeat);
   * - {@link WorkerClosed}: the worker was closed and its close timeout passed.
   *
   * Durable calls made after it fired throw its reason, so no new step starts. A step body that
   * takes long can pass the signal on, or look at it between pieces of work. Outside a worker (a
   * context made with `TaskContext.create`) it never fires.
   *
   * @example
   * const invoice = await ctx.step('fetch-invoice', async () => {
   *   const response = await fetch(`https://billing.example/invoices/${params.id}`, { signal: ctx.signal });
   *   return response.json();
   * });
   */
  get signal(): AbortSignal {
    return this.#guard.signal;
  }

  /** The headers given at spawn (the same frozen object every time; `{}` when none). */
  get headers(): Readonly<JsonObject> {
    this.#headers ??= Object.freeze({ ...(this.#task.headers ?? {}) });
    return this.#headers;
  }

  /**
   * Runs `fn` once and checkpoints its JSON result; on replay returns the stored result without
   * running `fn`. The name may come from a named function: `ctx.step(async function charge() {…})`.
   * Without a schema, the first execution returns `fn`'s value as is and a replay its JSON round trip
   * (Dates become strings, `undefined` becomes `null`). With a step schema in the task's contract,
   * `fn` must return the schema's input, which is checked before it is stored (a refused value
   * throws, stores nothing, and the task retries), and both the first run and replays return the
   * schema's output. If `fn` throws, nothing is stored.
   */
  step<K extends keyof S & string>(name: K, fn: () => MaybePromise<Input<S[K]>>): Promise<Output<S[K]>>;
  step<T, N extends string = UntypedStepName<S>>(name: UndeclaredStep<S, N>, fn: () => MaybePromise<T>): Promise<T>;
  step<T>(fn: () => MaybePromise<T>): Promise<T>;
  async step<T>(nameOrFn: string | (() => MaybePromise<T>), maybeFn?: () => MaybePromise<T>): Promise<T> {
    const [name, fn] = typeof nameOrFn === 'function' ? [nameOrFn.name, nameOrFn] : [nameOrFn, maybeFn];
    if (!name) throw new Error('ctx.step needs a name: pass one, or a named function');
    if (typeof fn !== 'function') throw new Error(`ctx.step("${name}") needs a function to run`);
    const checkpointName = this.#checkpoints.nameFor(name);
    const state = this.#checkpoints.get(checkpointName);
    const trace = this.#runtime.trace;
    if (state !== undefined) {
      if (!trace) return (await this.#replayed(name, checkpointName, state)) as T;
      return (await trace.step(name, checkpointName, true, async () => this.#replayed(name, checkpointName, state))) as T;
    }
    // A run that must stop (lease lost, cancelled, worker closed) starts no new step.
    this.#guard.check();
    if (!trace) return (await this.#store(name, checkpointName, await fn())) as T;
    return (await trace.step(name, checkpointName, false, async () => this.#store(name, checkpointName, await fn()))) as T;
  }

  /**
   * Looks a step up without running anything; complete it later with {@link completeStep}. With a
   * step schema, a stored value is parsed (a value today's schema refuses fails the task, no retry).
   */
  beginStep<K extends keyof S & string>(name: K): Promise<StepHandle<Output<S[K]>, Input<S[K]>>>;
  beginStep<T = JsonValue, N extends string = UntypedStepName<S>>(name: UndeclaredStep<S, N>): Promise<StepHandle<T>>;
  beginStep(name: string): Promise<StepHandle<unknown, unknown>> {
    return this.#begin(name);
  }

  /**
   * Stores a step's result (and extends the lease); a handle that is already done keeps its state.
   * With a step schema the value is checked first (a refused value throws and stores nothing) and
   * the schema's output is returned.
   */
  async completeStep<T, I>(handle: StepHandle<T, I>, value: I): Promise<T> {
    if (handle.done) return handle.state;
    return (await this.#store(handle.name, handle.checkpointName, value)) as T;
  }

  /** Sleeps `seconds` (durably: the worker slot is released and the run resumes afterwards). */
  async sleepFor(stepName: string, seconds: number): Promise<void> {
    await this.sleepUntil(stepName, new Date(Date.now() + seconds * 1000));
  }

  /** Sleeps until `wakeAt`. The first wake time stored for this step wins on replay. */
  async sleepUntil(stepName: string, wakeAt: Date): Promise<void> {
    const checkpointName = this.#checkpoints.nameFor(stepName);
    const state = this.#checkpoints.get(checkpointName);
    // The first wake time stored wins; the sleep counts in with the waits started beside it.
    const sleep = () =>
      this.#waits.sleepUntil(async () => {
        if (typeof state === 'string') return new Date(state);
        await this.#checkpoints.write(checkpointName, wakeAt.toISOString());
        return wakeAt;
      });
    const trace = this.#runtime.trace;
    if (!trace) return sleep();
    const effective = typeof state === 'string' ? new Date(state) : wakeAt;
    // An invalid date is the sleep's own problem to report, not the span's.
    const wakeAtText = Number.isNaN(effective.getTime()) ? String(effective) : effective.toISOString();
    const attributes = { [ATTR.stepName]: stepName, [ATTR.checkpointName]: checkpointName, [ATTR.wakeAt]: wakeAtText };
    return trace.wait('sleep', stepName, attributes, sleep);
  }

  /**
   * Waits for an event on this task's queue and returns its payload; an event emitted before the
   * wait counts. With an event contract the event is `<name>:<key>` and its stored payload is parsed
   * (a payload the schema refuses fails the task, no retry). With a timeout, throws
   * {@link TimeoutError} when it passes.
   */
  awaitEvent<E extends EventContract>(
    event: E,
    key: string | undefined,
    options?: AwaitEventOptions,
  ): Promise<Output<PayloadOf<E>>>;
  awaitEvent(eventName: string, options?: AwaitEventOptions): Promise<JsonValue>;
  async awaitEvent(
    event: string | EventContract,
    keyOrOptions?: string | AwaitEventOptions,
    maybeOptions?: AwaitEventOptions,
  ): Promise<unknown> {
    const eventName = typeof event === 'string' ? event : event.eventName(keyOrOptions as string | undefined);
    const wait = async (): Promise<unknown> => {
      if (typeof event !== 'string') {
        const payload = await this.#waits.awaitEvent(eventName, maybeOptions ?? {});
        return parseWith(event.payload, payload, this.#site('event', eventName, false));
      }
      return this.#waits.awaitEvent(event, (keyOrOptions as AwaitEventOptions | undefined) ?? {});
    };
    const trace = this.#runtime.trace;
    return trace ? trace.wait('awaitEvent', eventName, { [ATTR.eventName]: eventName }, wait) : wait();
  }

  /**
   * Emits an event on this task's queue (first emission wins) and wakes its waiters. With an event
   * contract the payload is checked first (a refused payload throws; nothing is emitted).
   */
  emitEvent<E extends EventContract>(event: E, key: string | undefined, payload: Input<PayloadOf<E>>): Promise<void>;
  emitEvent(eventName: string, payload?: JsonValue): Promise<void>;
  async emitEvent(event: string | EventContract, keyOrPayload?: unknown, maybePayload?: unknown): Promise<void> {
    const eventName = typeof event === 'string' ? event : event.eventName(keyOrPayload as string | undefined);
    const payload = typeof event === 'string' ? keyOrPayload : maybePayload;
    const emit = async () => {
      if (typeof event !== 'string') await parseWith(event.payload, payload, this.#site('event', eventName, true));
      // The first emission of a name wins, so sending it again after a lost answer changes nothing.
      await this.#guard.call(() => sendEvent(this.#runtime.con, this.queueName, eventName, payload, this.#runtime.eventWakeups === true));
    };
    const trace = this.#runtime.trace;
    await (trace ? trace.emit(eventName, emit) : emit());
  }

  /**
   * Extends the lease by `seconds` (default: the claim timeout) from now. Throws the reason of
   * {@link signal} when the run must stop (a lease that ran out is not taken back).
   */
  async heartbeat(seconds?: number): Promise<void> {
    const extendBy = seconds ?? this.#runtime.claimTimeout;
    const params = { queueName: this.queueName, runId: this.runID, seconds: extendBy };
    await this.#guard.call(() => withTaskState(() => extendClaim.run(params, this.#runtime.con)), { renews: extendBy });
    this.#runtime.onLeaseExtended?.(extendBy);
  }

  /**
   * Spawns a child task exactly once: the spawn is a step, and its idempotency key is derived from
   * this task and the step's checkpoint name, so a replay (even one that crashed between the spawn
   * and its checkpoint) returns the same child. The child knows its parent, so when it ends it wakes
   * a parent waiting in {@link awaitTaskResult}. With a task contract the params are checked first
   * and the handle types the child's result. With `cancelWithParent: true`, cancelling this task
   * (by any client, or by a cancellation policy) also cancels the child if it has not ended.
   */
  spawn<C extends TaskContract>(
    task: C,
    params: Input<ParamsOf<C>>,
    options?: ChildSpawnOptions,
  ): Promise<TaskHandle<C>>;
  spawn(taskName: string, params: unknown, options?: ChildSpawnOptions): Promise<SpawnResult>;
  async spawn(
    task: string | TaskContract,
    params: unknown,
    options: ChildSpawnOptions = {},
  ): Promise<SpawnResult | TaskHandle> {
    const { stepName, cancelWithParent, ...spawnOptions } = options;
    this.#checkCancelWithParent(cancelWithParent);
    const contract = isTaskContract(task) ? task : undefined;
    const taskName = contract ? contract.name : (task as string);
    const name = stepName ?? `$spawn:${taskName}`;
    const handle = await this.#begin(name);
    const trace = this.#runtime.trace;
    const spawnOnce = async (): Promise<SpawnResult & { queue?: string }> => {
      if (handle.done) return handle.state as SpawnResult & { queue?: string };
      this.#guard.check();
      // The idempotency key makes a spawn sent again (after a lost answer) return the same child.
      const spawned = await this.#guard.call(() =>
        this.#runtime.spawn(
          contract ?? taskName,
          params,
          { ...this.#asChildren(spawnOptions), idempotencyKey: spawnOptions.idempotencyKey ?? this.#childKey(handle.checkpointName) },
          trace?.parent(),
        ),
      );
      const spawnedResult = { taskID: spawned.taskID, runID: spawned.runID, attempt: spawned.attempt, created: spawned.created, queue: spawned.queue };
      // The checkpoint names a child to cancel with this task (migration 000012's cancel_task reads it).
      await this.#checkpoints.write(handle.checkpointName, cancelWithParent === true ? { ...spawnedResult, cancelWithParent } : spawnedResult);
      return spawnedResult;
    };
    const { cancelWithParent: _stored, ...result } = (trace ? await trace.step(name, handle.checkpointName, handle.done, spawnOnce) : await spawnOnce()) as SpawnResult & {
      queue?: string;
      cancelWithParent?: boolean;
    };
    if (result.queue !== undefined) this.#waits.noteChild(result.queue, result.taskID);
    return contract ? attachContract({ ...result, queue: result.queue ?? contract.queue }, contract) : result;
  }

  /**
   * Spawns one child per element of `paramsList`, all of `task` on one queue, exactly once: one
   * step (checkpoint `options.stepName`, default `$spawnMany:<task name>`), one statement, one
   * commit. With a contract every element is checked before anything is written (the error names
   * the element: `items[3].params.amount: …`). Each child gets an idempotency key derived from this
   * task, the step and its position, so a replay returns the same children in the same order; each
   * knows its parent (its end wakes a parent waiting in {@link awaitAll}). `options` apply to every
   * child (an `idempotencyKey` there is refused: each child has its own); `cancelWithParent` as in
   * {@link spawn}.
   *
   * @example
   * const handles = await ctx.spawnMany(chargeInvoice, params.invoices, { cancelWithParent: true });
   * const charged = await ctx.awaitAll(handles);
   */
  spawnMany<C extends TaskContract>(task: C, paramsList: readonly Input<ParamsOf<C>>[], options?: ChildSpawnOptions): Promise<TaskHandle<C>[]>;
  spawnMany(taskName: string, paramsList: readonly unknown[], options?: ChildSpawnOptions): Promise<SpawnResult[]>;
  async spawnMany(task: string | TaskContract, paramsList: readonly unknown[], options: ChildSpawnOptions = {}): Promise<(SpawnResult | TaskHandle)[]> {
    const { stepName, cancelWithParent, ...spawnOptions } = options;
    this.#checkCancelWithParent(cancelWithParent);
    if (!Array.isArray(paramsList)) throw new Error('spawnMany takes an array of params');
    if (spawnOptions.idempotencyKey !== undefined) {
      throw new Error('spawnMany gives each child its own idempotency key: leave idempotencyKey out of its options');
    }
    const contract = isTaskContract(task) ? task : undefined;
    const taskName = contract ? contract.name : (task as string);
    const name = stepName ?? `$spawnMany:${taskName}`;
    const handle = await this.#begin(name);
    const trace = this.#runtime.trace;
    const spawnOnce = async (): Promise<SpawnedList> => {
      if (handle.done) return handle.state as SpawnedList;
      this.#guard.check();
      const spawnMany = this.#runtime.spawnMany;
      if (!spawnMany) throw new Error('this task context cannot spawn in bulk');
      const items = paramsList.map((params, i) => ({ params, options: { idempotencyKey: this.#childKey(handle.checkpointName, i) } }));
      const shared = this.#asChildren(spawnOptions);
      // The idempotency keys make the statement, sent again after a lost answer, return the same children.
      const spawned = await this.#guard.call(() => spawnMany(contract ?? taskName, items, shared, trace?.parent()));
      const list: SpawnedList = {
        queue: spawned[0]?.queue ?? validateQueueName(spawnOptions.queue ?? contract?.queue ?? this.queueName),
        tasks: spawned.map(({ taskID, runID, attempt, created }) => ({ taskID, runID, attempt, created })),
        ...(cancelWithParent === true ? { cancelWithParent } : {}),
      };
      // The checkpoint names the children to cancel with this task (kit_cancel_children reads it).
      await this.#checkpoints.write(handle.checkpointName, list as unknown as JsonValue);
      return list;
    };
    const list = trace ? await trace.step(name, handle.checkpointName, handle.done, spawnOnce) : await spawnOnce();
    return list.tasks.map((spawned) => {
      this.#waits.noteChild(list.queue, spawned.taskID);
      const result = { ...spawned, queue: list.queue };
      return contract ? attachContract(result, contract) : result;
    });
  }

  /** Spawn options for children of this task: its parent header added to theirs (their ends wake it). */
  #asChildren<O extends { headers?: JsonObject }>(options: O): O & { headers: JsonObject } {
    return { ...options, headers: { ...options.headers, ...parentHeader(this.queueName, this.taskID) } };
  }

  /**
   * The idempotency key of the child spawned by step `checkpointName` (the `index`th of a bulk
   * spawn): the same on every replay, so that a spawn sent again returns the same child.
   */
  #childKey(checkpointName: string, index?: number): string {
    return index === undefined ? `${this.taskID}:${checkpointName}` : `${this.taskID}:${checkpointName}:${index}`;
  }

  #checkCancelWithParent(cancelWithParent: unknown): void {
    if (cancelWithParent !== undefined && typeof cancelWithParent !== 'boolean') {
      throw new Error(`cancelWithParent must be a boolean (got ${JSON.stringify(cancelWithParent)})`);
    }
    if (cancelWithParent && this.#runtime.cancelWithParent === false) {
      throw new Error(
        'cancelWithParent needs engine migration 000012 (absurd.kit_cancel_children), which this database lacks: run `absurd migrate` (`absurd migrate --adopt` on a schema installed by Absurd)',
      );
    }
  }

  /**
   * Waits until another task ends and returns its final snapshot, checkpointed. A child spawned
   * with {@link spawn}, or any task of this task's own queue, suspends this task (its worker slot
   * is free meanwhile): the child wakes it when it ends, another task is looked at every
   * `checkInterval`. Any other task of another queue is polled in-process, as absurd-sdk does (the
   * slot is kept, the lease renewed by heartbeats).
   * With a handle from a contract spawn, a completed result is parsed by the child's result schema
   * (a result it refuses fails this task, no retry). A timeout throws {@link TimeoutError}; a
   * cancelled waiter stops waiting.
   */
  awaitTaskResult<C extends TaskContract>(
    task: TaskHandle<C>,
    options?: ContextAwaitTaskResultOptions,
  ): Promise<TypedTaskResultSnapshot<Output<ResultOf<C>>>>;
  awaitTaskResult(task: TaskRef, options?: ContextAwaitTaskResultOptions): Promise<TaskResultSnapshot>;
  async awaitTaskResult(task: TaskRef | TaskHandle, options: ContextAwaitTaskResultOptions = {}): Promise<unknown> {
    const contract = typeof task === 'object' && 'contract' in task ? (task as TaskHandle).contract : undefined;
    const wait = async () => typedSnapshot(await this.#waits.awaitTaskResult(task, options), contract);
    const trace = this.#runtime.trace;
    if (!trace) return wait();
    const taskID = typeof task === 'string' ? task : task.taskID;
    return trace.wait('awaitTaskResult', taskID, { [ATTR.awaitedTaskID]: taskID }, wait);
  }

  /**
   * Waits for every task of `tasks` (handles from {@link spawn}, spawn results or task ids) and
   * returns their final snapshots in the same order, typed by each handle's contract. The waits
   * start together, so the run suspends once and resumes when all of them have ended (see
   * {@link WaitResume} for `resume: 'each'`). With `failures: 'throw'` (the default) a task that
   * failed or was cancelled fails this wait with {@link AwaitedTaskFailedError} naming the first such
   * task in the list; with `failures: 'return'` its snapshot is returned among the others.
   *
   * @example
   * const handles = await Promise.all(invoices.map((invoice, i) => ctx.spawn(chargeInvoice, invoice, { stepName: `charge-${i}` })));
   * const charged = await ctx.awaitAll(handles); // [{ state: 'completed', result: … }, …]
   */
  awaitAll<const T extends readonly (TaskRef | TaskHandle)[]>(
    tasks: T,
    options: AwaitAllOptions & { failures: 'return' },
  ): Promise<{ -readonly [K in keyof T]: AwaitedSnapshot<T[K]> }>;
  awaitAll<const T extends readonly (TaskRef | TaskHandle)[]>(
    tasks: T,
    options?: AwaitAllOptions & { failures?: 'throw' },
  ): Promise<{ -readonly [K in keyof T]: Extract<AwaitedSnapshot<T[K]>, { state: 'completed' }> }>;
  awaitAll<const T extends readonly (TaskRef | TaskHandle)[]>(
    tasks: T,
    options?: AwaitAllOptions,
  ): Promise<{ -readonly [K in keyof T]: AwaitedSnapshot<T[K]> }>;
  async awaitAll(tasks: readonly (TaskRef | TaskHandle)[], options: AwaitAllOptions = {}): Promise<unknown[]> {
    const { failures = 'throw', ...waitOptions } = options;
    if (failures !== 'throw' && failures !== 'return') throw new Error(`failures must be 'throw' or 'return' (got ${String(failures)})`);
    // Every wait runs to its end before this returns: none is left sending statements behind it.
    const settled = await Promise.allSettled(tasks.map((task) => this.awaitTaskResult(task, waitOptions)));
    const rejected = settled.filter((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
    const signal = rejected.find((outcome) => isControlFlowSignal(outcome.reason));
    if (signal) throw signal.reason;
    if (rejected[0]) throw rejected[0].reason;
    const snapshots = settled.map((outcome) => (outcome as PromiseFulfilledResult<TaskResultSnapshot>).value);
    if (failures === 'throw') {
      const index = snapshots.findIndex((snapshot) => snapshot.state === 'failed' || snapshot.state === 'cancelled');
      if (index >= 0) {
        const task = tasks[index]!;
        const taskID = typeof task === 'string' ? task : task.taskID;
        const queue = waitOptions.queue ?? (typeof task === 'string' ? undefined : task.queue) ?? this.queueName;
        throw new AwaitedTaskFailedError(index, taskID, queue, snapshots[index] as { state: 'failed' | 'cancelled'; failure?: unknown });
      }
    }
    return snapshots;
  }

  async #begin(name: string): Promise<StepHandle<unknown, unknown>> {
    const checkpointName = this.#checkpoints.nameFor(name);
    const state = this.#checkpoints.get(checkpointName);
    if (state === undefined) return { name, checkpointName, done: false };
    return { name, checkpointName, done: true, state: await this.#replayed(name, checkpointName, state) };
  }

  /** A step's stored value, parsed by its schema when it has one (refused: the task fails, no retry). */
  #replayed(name: string, checkpointName: string, state: JsonValue): unknown {
    const schema = this.#stepSchema(name);
    return schema ? parseWith(schema, state, this.#site('step', checkpointName, false)) : state;
  }

  /** Checks a step's new value against its schema (refused: nothing is stored), stores it, returns the output. */
  async #store(name: string, checkpointName: string, value: unknown): Promise<unknown> {
    const schema = this.#stepSchema(name);
    const output = schema ? await parseWith(schema, value, this.#site('step', checkpointName, true)) : value;
    await this.#checkpoints.write(checkpointName, value);
    return output;
  }

  #stepSchema(name: string): Schema | undefined {
    const steps = this.#runtime.contract?.steps;
    return steps && Object.hasOwn(steps, name) ? steps[name] : undefined;
  }

  #site(boundary: ValidationBoundary, detail: string, retryable: boolean) {
    return { subject: this.#runtime.contract?.name ?? this.taskName, boundary, detail, retryable };
  }

  get #guard(): RunGuard {
    return this.#runtime.guard ?? unguarded;
  }
}

