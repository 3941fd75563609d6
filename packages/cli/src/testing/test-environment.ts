/**
 * A test environment: a fresh database, the runtime's clients on one connection at a fake time,
 * due work run in the test's process when the test says so, and tasks read back through their
 * contracts. Depends on no test runner.
 */
import type pg from 'pg';
import {
  Absurd,
  AbsurdError,
  isTaskContract,
  type AbsurdOptions,
  type EventContract,
  type Output,
  type PayloadOf,
  type TaskContract,
  type TaskHandle,
} from 'absurd-kit';
import { runStatement } from '../cli-database.js';
import { connectDatabase } from '../database/connect.js';
import { listTasksStatement } from '../queries/tasks.queries.js';
import { emittedEventsStatement } from '../queries/testing.queries.js';
import { createTestDatabase } from './create-test-database.js';
import { durationMs, type Duration } from './duration.js';
import { abandonNext, nextWakeAt, runNext, type QueueClient, type RunContext } from './run-due.js';
import { TestClock, type TimeInput } from './test-clock.js';
import type { TestDatabase } from './test-database.js';
import type { TestServer } from './test-server.js';
import { inspectTask, parseStored, type TaskRef } from './task-inspection.js';
import type { AbandonedRun, EmittedEvent, LogLine, RunReport, TaskInspection, TaskSummary } from './types.js';

/** Where the runtime's clients log (`AbsurdOptions.log`). */
export type Log = NonNullable<AbsurdOptions['log']>;

/** Options of {@link createTestEnvironment}. */
export interface TestEnvironmentOptions {
  /** The database to use (not dropped by `close`). Default: a new one from `createTestDatabase`, dropped by `close`. */
  database?: TestDatabase;
  /** Where a new database is cloned: a server URL, or a server from `startTestServer` (see `createTestDatabase`). */
  server?: string | TestServer;
  /** Where the clock starts. Default: the machine's time when the environment is created. */
  now?: TimeInput;
  /** Lease length in seconds (on the test clock) of the runs it claims. Default 120. */
  claimTimeout?: number;
  /** Where the clients' log lines go besides {@link TestEnvironment.logs}. Default: nowhere. */
  log?: Log;
}

/** Options of {@link TestEnvironment.client}. */
export type TestClientOptions = Omit<AbsurdOptions, 'db' | 'queueName' | 'log'>;

/** Options of {@link TestEnvironment.runUntilIdle}. */
export interface RunUntilIdleOptions {
  /**
   * Once nothing is due, move the clock to the next time something becomes due (a sleep, a
   * timeout, a backoff) and go on — up to this far ahead (`true`: no limit). Waits for an event
   * without a timeout, or for another task, are never skipped to. Default false: time stands still.
   */
  skipTime?: boolean | Duration;
  /** Throw after this many runs (a task retried forever, say). Default 1000. */
  maxRuns?: number;
}

/**
 * Creates a test environment on a fresh database (see {@link TestEnvironmentOptions}); close it
 * with `close()` (or `await using`).
 *
 * @example
 * const t = await createTestEnvironment({ now: '2030-01-01T00:00:00Z' });
 * const orders = await t.client('orders');
 * orders.registerTask(fulfillOrder, handler);
 * const handle = await createClient(orders).fulfillOrder.spawn(params);
 * await t.runUntilIdle();
 * await t.advance('1 day');
 * expect((await t.inspect(handle)).state).toBe('completed');
 * await t.close();
 */
export async function createTestEnvironment(options: TestEnvironmentOptions = {}): Promise<TestEnvironment> {
  const owned = options.database === undefined;
  const database = options.database ?? (await createTestDatabase({ server: options.server }));
  let connection: pg.Client | undefined;
  try {
    connection = await connectDatabase(database.url);
    const clock = await TestClock.start(connection, options.now ?? Date.now());
    return new TestEnvironment({ database, owned, connection, clock, claimTimeout: options.claimTimeout ?? 120, log: options.log });
  } catch (error) {
    await connection?.end().catch(() => {});
    if (owned) await database.close().catch(() => {});
    throw error;
  }
}

interface EnvironmentParts {
  database: TestDatabase;
  owned: boolean;
  connection: pg.Client;
  clock: TestClock;
  claimTimeout: number;
  log: Log | undefined;
}

/**
 * A database at a fake time, and the runtime's clients on it. Nothing runs in the background:
 * {@link runUntilIdle} and {@link runNext} run due work in this process, and the clock moves only
 * with {@link advance} and {@link setTime}. One environment is meant to be used by one test at a
 * time.
 */
export class TestEnvironment implements AsyncDisposable {
  /** The database (its `url` serves a pool of your own, which does not see the fake time). */
  readonly database: TestDatabase;
  /**
   * The one connection every client of the environment uses: the fake time is a setting of its
   * session. Queries of your own on it see the fake time too.
   */
  readonly connection: pg.Client;
  /** What the clients logged, oldest first (failed runs, deferred tasks, …). */
  readonly logs: LogLine[] = [];
  readonly #owned: boolean;
  readonly #clock: TestClock;
  readonly #claimTimeout: number;
  readonly #log: Log;
  readonly #clients = new Map<string, QueueClient & { readonly registered: Set<string> }>();
  #closed: Promise<void> | undefined;

  /** @internal Made by {@link createTestEnvironment}. */
  constructor(parts: EnvironmentParts) {
    this.database = parts.database;
    this.connection = parts.connection;
    this.#owned = parts.owned;
    this.#clock = parts.clock;
    this.#claimTimeout = parts.claimTimeout;
    this.#log = recordingLog(this.logs, parts.log);
  }

  /**
   * The runtime's client for `queue` on this environment's connection (created with its queue on
   * the first call, the same one afterwards). Register handlers on it, spawn and emit through it —
   * or through `createClient(client)` of your generated code — as production code does.
   */
  async client(queue: string, options?: TestClientOptions): Promise<Absurd> {
    const existing = this.#clients.get(queue);
    if (existing) {
      if (options) throw new AbsurdError('TEST_CLIENT_EXISTS', `the client of queue ${JSON.stringify(queue)} exists already — give its options on the first call`);
      return existing.app;
    }
    const app = new Absurd({ ...options, db: this.connection, queueName: queue, log: this.#log });
    await app.createQueue();
    const registered = new Set<string>();
    // Remembers what is registered, so that a run deferred for want of a handler reads as such.
    const register = app.registerTask.bind(app) as (options: { name: string } | TaskContract, handler: never) => void;
    app.registerTask = ((registration: { name: string } | TaskContract, handler: never) => {
      register(registration, handler);
      registered.add(registration.name);
    }) as Absurd['registerTask'];
    this.#clients.set(queue, { queue, app, registered });
    return app;
  }

  /** The test clock's time. */
  now(): Date {
    return this.#clock.now();
  }

  /** Moves the clock to `at` (backwards too). Returns the new time. */
  setTime(at: TimeInput): Promise<Date> {
    return this.#clock.set(at);
  }

  /**
   * Moves the clock forward, e.g. `advance('2 hours')` or `advance(90)` (seconds). Sleeps, event
   * timeouts, retry backoffs, leases and cancellation policies that this passes become due: the
   * next {@link runUntilIdle} runs them. Returns the new time.
   */
  advance(duration: Duration): Promise<Date> {
    return this.#clock.advance(duration);
  }

  /**
   * Runs the next due run (queues in the order their clients were made), to its end or its
   * suspension; null when nothing is due. `Date.now()` and `new Date()` read the test clock while
   * it runs.
   */
  runNext(): Promise<RunReport | null> {
    return runNext(this.#runContext());
  }

  /**
   * Runs due work until nothing is due — runs made due by others (a child that ends wakes its
   * parent, an emitted event its waiters) included — and returns what ran, in order.
   */
  async runUntilIdle(options: RunUntilIdleOptions = {}): Promise<RunReport[]> {
    const { maxRuns = 1000, skipTime = false } = options;
    const limit = skipTime === false ? this.#clock.nowMs : skipTime === true ? Infinity : this.#clock.nowMs + durationMs(skipTime);
    const reports: RunReport[] = [];
    for (;;) {
      const report = await this.runNext();
      if (report) {
        reports.push(report);
        if (reports.length >= maxRuns) {
          throw new AbsurdError(
            'TEST_RUN_LIMIT',
            `still due after ${maxRuns} runs (last: ${report.taskName} ${report.taskID} attempt ${report.attempt}, ${report.outcome}) — a task retried without end? Raise maxRuns if this is meant`,
          );
        }
        continue;
      }
      if (skipTime === false) return reports;
      const next = await nextWakeAt(this.connection, [...this.#clients.keys()]);
      if (!next || next.getTime() > limit) return reports;
      await this.#clock.set(Math.max(next.getTime(), this.#clock.nowMs));
    }
  }

  /**
   * Claims the next due run and leaves it claimed, as a worker that dies leaves it. Once its
   * lease (`claimTimeout`) has passed on the test clock, the next claim fails it with
   * `$ClaimTimeout` and the task retries.
   */
  abandonNextRun(): Promise<AbandonedRun | null> {
    return abandonNext(this.#runContext());
  }

  /**
   * A task read back: state, attempts, runs, step results, awaited events, children. With a
   * handle from a contract spawn (or a contract as second argument) it is typed by the contract,
   * and params, result and declared steps are parsed by its schemas.
   */
  inspect<C extends TaskContract>(task: TaskHandle<C>): Promise<TaskInspection<C>>;
  inspect<C extends TaskContract>(task: TaskRef, contract: C): Promise<TaskInspection<C>>;
  inspect(task: TaskRef): Promise<TaskInspection>;
  async inspect(task: TaskRef, contract?: TaskContract): Promise<TaskInspection> {
    const byHandle = typeof task === 'object' && 'contract' in task && isTaskContract(task.contract) ? task.contract : undefined;
    return inspectTask(this.connection, task, contract ?? byHandle, this.#clock.nowMs);
  }

  /** The tasks of the environment's queues (or of `queue`), oldest first. */
  async tasks(queue?: string): Promise<TaskSummary[]> {
    const summaries: TaskSummary[] = [];
    for (const name of queue === undefined ? this.#clients.keys() : [queue]) {
      const [built] = await listTasksStatement.run({ queueName: name, state: null, byName: false }, this.connection);
      if (!built?.statement) continue;
      const rows = await runStatement<{ queue_name: string; task_id: string; task_name: string; state: TaskSummary['state']; attempts: number }>(
        this.connection,
        built.statement,
        [null, null, null, null, null, null, null, 10_000, 0],
      );
      for (const r of rows.reverse()) summaries.push({ queue: r.queue_name, taskID: r.task_id, taskName: r.task_name, state: r.state, attempts: r.attempts });
    }
    return summaries;
  }

  /**
   * The events emitted on the environment's queues (or on `queue`), each queue's in emission order
   * (by name at the same instant). The runtime's own (`$taskResult:…`, a child's end told to its
   * parent) are left out.
   */
  async emittedEvents(queue?: string): Promise<EmittedEvent[]> {
    const events: EmittedEvent[] = [];
    for (const name of queue === undefined ? this.#clients.keys() : [queue]) {
      const [built] = await emittedEventsStatement.run({ queueName: name }, this.connection);
      if (!built) continue;
      const rows = await runStatement<{ event_name: string; payload: EmittedEvent['payload']; emitted_at: Date }>(this.connection, built.statement);
      for (const r of rows) {
        if (!r.event_name.startsWith('$')) events.push({ queue: name, eventName: r.event_name, payload: r.payload, emittedAt: r.emitted_at });
      }
    }
    return events;
  }

  /**
   * The payload of event `<name>:<key>` parsed by its contract, from `queue` or else the first of
   * the environment's queues that has it; undefined when it was not emitted.
   */
  async emittedEvent<E extends EventContract>(event: E, key: string | undefined, queue?: string): Promise<Output<PayloadOf<E>> | undefined> {
    const eventName = event.eventName(key);
    const found = (await this.emittedEvents(queue)).find((e) => e.eventName === eventName);
    if (!found) return undefined;
    return (await parseStored(event.payload, found.payload, eventName, 'event', eventName)) as Output<PayloadOf<E>>;
  }

  /** Closes the clients and the connection, and drops the database if the environment made it. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      for (const { app } of this.#clients.values()) await app.close().catch(() => {});
      await this.connection.end().catch(() => {});
      if (this.#owned) await this.database.close();
    })();
    return this.#closed;
  }

  /** `await using t = await createTestEnvironment()` closes it at the end of the block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #runContext(): RunContext {
    if (this.#closed) throw new AbsurdError('TEST_ENVIRONMENT_CLOSED', 'the test environment is closed');
    return { connection: this.connection, clock: this.#clock, clients: this.#clients.values(), claimTimeout: this.#claimTimeout };
  }
}

/** A log that keeps each line in `lines` (arguments joined by spaces) and passes it on to `next`. */
function recordingLog(lines: LogLine[], next: Log | undefined): Log {
  const at =
    (level: LogLine['level']) =>
    (...args: unknown[]) => {
      lines.push({ level, message: args.map((a) => (a instanceof Error ? (a.stack ?? a.message) : String(a))).join(' ') });
      next?.[level](...args);
    };
  return { log: at('log'), info: at('info'), warn: at('warn'), error: at('error') };
}
