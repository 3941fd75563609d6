/**
 * The side of a client that runs tasks: its claims, the host each execution runs on, the writes of
 * its runs, and its workers' wake-up connection — on absurd-kit's functions where the engine has
 * them, on Absurd's standard ones where it does not (see `engine-features.ts`).
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import type { EngineProbe } from './engine-features.js';
import { errorLine } from './errors.js';
import { executeClaimedTask, type ExecutionHost } from './execute-task.js';
import { QueueListener } from './notify.js';
import { isConnectionError, type OutageMonitor } from './outage.js';
import { fireSchedules } from './queries/schedules.queries.js';
import { claimTasks, claimTasksListening, claimTasksStandard, secondsUntilNextRun, wakeupsSettled } from './queries/runs.queries.js';
import type { Queryable } from './queryable.js';
import type { Registration } from './registration.js';
import { RunWrites } from './run-writes.js';
import type { TaskContext } from './task-context.js';
import type { ClaimedTask, EngineFeatures, ExecuteOptions, IdleListener, Log, TaskContextRuntime } from './types.js';
import type { WorkerHost } from './worker.js';
import { telemetryFor } from './telemetry.js';

/** What a {@link TaskRunner} needs from its client. */
export interface TaskRunnerOptions {
  con: Queryable;
  queueName: string;
  log: Log;
  /** The client's view of its database: claims that fail on their connection are reported to it. */
  outage: OutageMonitor;
  /** The registration of a task name, looked up when a run of it starts. */
  registration(name: string): Registration | undefined;
  wrapTaskExecution?: (<T>(ctx: TaskContext, execute: () => Promise<T>) => Promise<T>) | undefined;
  /** The client's spawn on its own connection (registration rules, defaults, hooks, validation). */
  spawn: TaskContextRuntime['spawn'];
  /** The client's spawnMany on its own connection. */
  spawnMany: NonNullable<TaskContextRuntime['spawnMany']>;
  /** Whether runs make spans and metrics (when an OpenTelemetry SDK is registered). */
  telemetry: boolean;
  /** The client's knowledge of its engine (shared with the clients bound from it). */
  engine: () => EngineProbe;
}

/** A claim: how many runs, for how long, by whom. */
export interface ClaimOptions {
  batchSize: number;
  claimTimeout: number;
  workerId: string;
  /**
   * Set by a worker loop that LISTENs for wake-ups: the claim marks it idle (spawns then notify)
   * when it returns fewer runs than asked, for `seconds`, under `id` (unique to the loop).
   */
  idleListener?: IdleListener | undefined;
}

/**
 * Claims and executes runs for one client. Which engine functions it uses is read once, at the
 * first claim, execution or worker start (one round trip; none after), and said once at INFO
 * when the engine lacks absurd-kit's additions.
 */
export class TaskRunner {
  readonly #options: TaskRunnerOptions;
  #writes: RunWrites | undefined;
  #listener: QueueListener | undefined;

  constructor(options: TaskRunnerOptions) {
    this.#options = options;
  }

  /** Which of absurd-kit's additions the engine has (detected at the first call). */
  features(): Promise<EngineFeatures> {
    return this.#options.engine().features();
  }

  /**
   * Claims up to `batchSize` due runs (`kit_claim_task`, which returns their checkpoints too, or
   * Absurd's `claim_task`, after which each run loads its own).
   */
  async claim({ batchSize, claimTimeout, workerId, idleListener }: ClaimOptions): Promise<ClaimedTask[]> {
    const features = await this.features();
    const params = { queueName: this.#options.queueName, workerId, claimTimeout, quantity: batchSize };
    const con = this.#options.con;
    const rows = (
      idleListener && features.idleWakeups
        ? await claimTasksListening.run({ ...params, listener: idleListener.id, listenSeconds: idleListener.seconds }, con)
        : features.claimWithCheckpoints
          ? await claimTasks.run(params, con)
          : await claimTasksStandard.run(params, con)
    ) as ClaimedTask[];
    const metrics = rows.length > 0 ? (await telemetryFor(this.#options.telemetry))?.metrics : undefined;
    metrics?.claimed(this.#options.queueName, rows);
    return rows;
  }

  /** Executes one claimed run to its end (see `executeClaimedTask`). */
  async execute(task: ClaimedTask, claimTimeout: number, options: ExecuteOptions): Promise<void> {
    await executeClaimedTask(this.#executionHost(await this.features()), task, claimTimeout, options);
  }

  /**
   * The host of a worker loop: `calls` claim and execute (through the client, whose methods tests
   * replace), claims that fail on their connection are reported to the outage monitor, and — on
   * absurd-kit's schema — wake-ups come over a LISTEN connection and an idle worker sleeps until
   * the next run is due. Elsewhere the worker polls at its poll interval, as absurd-sdk's does.
   * Reads the engine's features first (and says what is missing, once).
   */
  async workerHost(calls: Pick<WorkerHost, 'claimTasks' | 'executeTask'>): Promise<WorkerHost> {
    const { con, queueName, outage, log } = this.#options;
    // Unknown while the database is unreachable: the worker then listens (harmless anywhere),
    // and its first claim reads them again.
    const features = await this.features().catch((error: unknown) => {
      if (isConnectionError(error)) outage.failed(error);
      return undefined;
    });
    const connection = features?.wakeups === false ? undefined : listenConfig(con);
    // Metrics as registered when the worker starts (register the SDK before starting workers).
    const metrics = (await telemetryFor(this.#options.telemetry))?.metrics;
    return {
      claimTasks: async (claim) => {
        const sentAt = performance.now();
        try {
          const tasks = await calls.claimTasks(claim);
          outage.succeeded(sentAt);
          return tasks;
        } catch (error) {
          if (isConnectionError(error)) outage.failed(error);
          throw error;
        }
      },
      executeTask: calls.executeTask,
      subscribeToWakeups: connection
        ? (onWake) => {
            this.#listener ??= new QueueListener({
              connection,
              onError: (error) => {
                if (isConnectionError(error)) outage.failed(error);
                else log.warn(`wake-up connection problem: ${errorLine(error)}`);
              },
              onConnected: () => outage.succeeded(),
            });
            return this.#listener.subscribe(queueName, onWake);
          }
        : undefined,
      observeSlots: metrics ? (workerId, limit, used) => metrics.observeWorker(queueName, workerId, limit, used) : undefined,
      secondsUntilNextRun: async () => {
        if (!(await this.features()).nextRunDue) return null;
        const [row] = await secondsUntilNextRun.run({ queueName }, con);
        return row?.seconds ?? null;
      },
      fireSchedules: async () => {
        if (!(await this.features()).schedules) return;
        await fireSchedules.run({ queueName }, con);
      },
      wakeupsSettled: async () => {
        if (!(await this.features()).settledWakeups) return true;
        const [row] = await wakeupsSettled.run({ queueName }, con);
        return row?.settled ?? true;
      },
    };
  }

  /** Closes the wake-up connection. */
  async close(): Promise<void> {
    await this.#listener?.close();
    this.#listener = undefined;
  }

  #runWrites(features: EngineFeatures): RunWrites {
    this.#writes ??= new RunWrites(this.#options.con, this.#options.queueName, features);
    return this.#writes;
  }

  #executionHost(features: EngineFeatures): ExecutionHost {
    const { con, queueName, log, outage, spawn, spawnMany } = this.#options;
    const writes = this.#runWrites(features);
    return {
      con,
      queueName,
      log,
      features,
      registration: (name) => this.#options.registration(name),
      completeRun: (runID, result) => writes.complete(runID, result),
      wrapTaskExecution: this.#options.wrapTaskExecution,
      outage,
      telemetry: this.#options.telemetry,
      contextRuntime: (claimTimeout, guard, registration, trace): TaskContextRuntime => ({
        con,
        queueName,
        claimTimeout,
        guard,
        contract: registration?.contract,
        groupedWaits: features.groupedWaits,
        cancelWithParent: features.cancelWithParent,
        eventWakeups: features.eventWakeups,
        spawn,
        spawnMany,
        writeCheckpoint: (write) => writes.writeCheckpoint(write),
        trace,
      }),
    };
  }
}

/** Connection settings for a dedicated LISTEN connection, when the client has a real pg.Pool. */
function listenConfig(con: Queryable): pg.ClientConfig | undefined {
  if (!(con instanceof pg.Pool)) return undefined;
  const { max: _max, idleTimeoutMillis: _idle, ...config } = con.options as pg.PoolConfig;
  return config;
}
