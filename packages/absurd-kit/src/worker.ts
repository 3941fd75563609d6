/**
 * The worker loop: claims runs while slots are free, executes them, and waits for work between
 * claims (poll interval, notifications, the next due run).
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { ClaimedTask, ExecuteOptions, IdleListener } from './types.js';

/** Options of `startWorker`. */
export interface WorkerOptions {
  /** Recorded as `claimed_by`; default `<hostname>:<pid>`. */
  workerId?: string;
  /** Lease in seconds, renewed by every checkpoint and heartbeat; default 120. 0 = no lease. */
  claimTimeout?: number;
  /** Runs claimed per claim call; default `concurrency`. */
  batchSize?: number;
  /**
   * Handlers running at once; default 1. A run whose handler has settled gives its slot to new
   * work while its completion is being written (at most `concurrency` such writes at once).
   */
  concurrency?: number;
  /**
   * Seconds between polls when idle; default 0.25. On absurd-kit's schema notifications wake the
   * worker sooner, and the engine says when the next run is due; on a schema installed by Absurd
   * the worker polls at this interval, as absurd-sdk's workers do.
   */
  pollInterval?: number;
  /**
   * Receives claim errors and unexpected execution errors. The default logs each as an ERROR,
   * except connection failures: while the database is unreachable the client logs one WARN, and
   * one INFO when it is back.
   */
  onError?: (error: Error) => void;
  /** Exit the process when a task overruns its lease by 100 %; default true. */
  fatalOnLeaseTimeout?: boolean;
  /**
   * Listen for wake-up notifications (spawns, events, retries); default true when possible: the
   * client has a `pg.Pool`, and absurd-kit installed (or adopted) the schema.
   */
  listen?: boolean;
}

/** Options of {@link Worker.close}. */
export interface WorkerCloseOptions {
  /**
   * Seconds to wait for runs in flight; afterwards `close` returns and those runs keep their
   * lease (another worker takes them over when it expires), and their `ctx.signal` fires with
   * `WorkerClosed` so that their handlers can stop. Default: wait for all of them.
   */
  timeout?: number;
}

/** A running worker. */
export interface Worker {
  /** The id this worker claims with. */
  readonly workerId: string;
  /** Runs claimed and not finished yet (handlers running, and final writes on their way). */
  readonly inFlight: number;
  /**
   * Stops claiming, then waits for the runs in flight to finish (up to `timeout`). Nothing is
   * released half-done: a run still executing when the timeout passes is left to its lease.
   */
  close(options?: WorkerCloseOptions): Promise<void>;
}

/** What the worker loop needs from its client. Claims and executions go through these methods. */
export interface WorkerHost {
  claimTasks(options: { batchSize: number; claimTimeout: number; workerId: string; idleListener?: IdleListener }): Promise<ClaimedTask[]>;
  executeTask(task: ClaimedTask, claimTimeout: number, options: ExecuteOptions): Promise<void>;
  /** Subscribes to wake-up notifications of the worker's queue; absent when not possible. */
  subscribeToWakeups?(onWake: () => void): Promise<() => Promise<void>>;
  /** Seconds until the queue's next run is due (null: none). */
  secondsUntilNextRun?(): Promise<number | null>;
  /**
   * Whether no spawn that may have missed this worker's new idle mark is still in flight (true
   * where the engine cannot tell: it then has no such race to close).
   */
  wakeupsSettled?(): Promise<boolean>;
  /** Fires the queue's due cron schedules, as a claim does first (nothing where there are none). */
  fireSchedules?(): Promise<void>;
  /**
   * Reports the worker's slots in use (read when metrics are collected) and its concurrency, as
   * long as it runs; returns the function that stops reporting. Absent without metrics.
   */
  observeSlots?(workerId: string, limit: number, used: () => number): () => void;
}

/** Longest a busy worker waits for more free slots before claiming for the ones it has. */
const CLAIM_COALESCE_MS = 3;

/**
 * A worker whose slots are all busy does not claim, and a claim is what fires due schedules: it
 * fires them itself this often (four poll intervals, at least a second, at most ten), so that a
 * saturated queue's ticks are spawned on time rather than late (or dropped, with catch-up 'skip').
 */
function busyFireMs(pollMs: number): number {
  return Math.min(Math.max(4 * pollMs, 1000), 10_000);
}

/** A worker going idle asks again whether spawns have settled after this, then twice as long… */
const SETTLE_FIRST_MS = 10;
/** …up to this (and never longer than its poll interval). */
const SETTLE_LONGEST_MS = 1000;

/** The defaults of the `absurd-sdk` worker. */
export function resolveWorkerOptions(options: WorkerOptions, logError: (error: Error) => void) {
  const concurrency = options.concurrency ?? 1;
  return {
    workerId: options.workerId ?? `${hostname() || 'host'}:${process.pid}`,
    claimTimeout: options.claimTimeout ?? 120,
    concurrency,
    batchSize: options.batchSize ?? concurrency,
    pollInterval: options.pollInterval ?? 0.25,
    onError: options.onError ?? logError,
    fatalOnLeaseTimeout: options.fatalOnLeaseTimeout ?? true,
    listen: options.listen ?? true,
  };
}

/**
 * Starts the claim/execute loop in the background and returns at once.
 *
 * The loop claims `min(batchSize, free slots)` runs, starts them, and claims again straight away
 * (while runs are in flight it first gives a quarter of the batch a few milliseconds to free up);
 * when nothing was claimed (or no slot is free) it waits until the poll interval passes, a run
 * finishes, a notification arrives for the queue, or the queue's next sleeping run is due.
 */
export async function startWorkerLoop(host: WorkerHost, options: ReturnType<typeof resolveWorkerOptions>): Promise<Worker> {
  const { workerId, claimTimeout, concurrency, batchSize, onError, fatalOnLeaseTimeout } = options;
  const pollMs = Math.max(0, options.pollInterval * 1000);
  // A run holds a slot while its handler runs (`executing`). Once the handler has settled, its
  // final write (completion, failure) is on its way and the slot goes to new work: the next claim
  // then overlaps with that write instead of waiting for it. At most `concurrency` runs may be
  // finishing at once, so the writes a slow database has not taken yet stay bounded.
  const executing = new Set<Promise<void>>();
  const finishing = new Set<Promise<void>>();
  // Aborted when close() gives up waiting: the runs still in flight see it in their ctx.signal.
  const closeTimedOut = new AbortController();
  // Every run in flight listens on it (its lease ends the run's ctx.signal with it): up to twice
  // `concurrency` listeners by design, which is no leak for Node to warn about.
  setMaxListeners(0, closeTimedOut.signal);
  let running = true;
  let wake: (() => void) | undefined;
  let woken = false;

  const notify = () => {
    if (wake) wake();
    else woken = true;
  };
  const waitForWake = (ms: number) =>
    new Promise<void>((resolve) => {
      if (woken || !running) {
        woken = false;
        resolve();
        return;
      }
      const done = () => {
        clearTimeout(timer);
        wake = undefined;
        woken = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      wake = done;
    });
  const report = (error: unknown) => onError(error instanceof Error ? error : new Error(String(error)));

  let unsubscribe: (() => Promise<void>) | undefined;
  if (options.listen && host.subscribeToWakeups) {
    unsubscribe = await host.subscribeToWakeups(notify).catch((error: unknown) => {
      report(error);
      return undefined;
    });
  }

  const stopObservingSlots = host.observeSlots?.(workerId, concurrency, () => executing.size);

  // While subscribed, every claim tells the engine whether this loop is now idle on its LISTEN
  // connection: spawns notify only while some worker is (see migration 000013). The mark outlives
  // the poll interval, and every empty poll renews it.
  const idleListener: IdleListener | undefined = unsubscribe
    ? { id: randomUUID(), seconds: (2 * pollMs) / 1000 + 1 }
    : undefined;

  // With a long poll interval, sleep only until the next sleeping run is due.
  const idleWaitMs = async () => {
    if (pollMs < 1000 || !host.secondsUntilNextRun) return pollMs;
    const seconds = await host.secondsUntilNextRun().catch(() => null);
    return seconds === null ? pollMs : Math.min(pollMs, Math.max(0, seconds * 1000) + 5);
  };

  // Whether the engine's idle mark for this loop is known to be seen by every spawn (see below).
  let settled = false;
  let settleBackoffMs = SETTLE_FIRST_MS;

  // When this loop last claimed or fired schedules (claims fire them too).
  let firedAt = performance.now();
  const fireEveryMs = busyFireMs(pollMs);
  const fireWhileBusy = async () => {
    if (!host.fireSchedules || performance.now() - firedAt < fireEveryMs) return;
    firedAt = performance.now();
    await host.fireSchedules().catch(report);
  };

  const coalesceTarget = Math.max(1, Math.ceil(Math.min(batchSize, concurrency) / 4));
  const loop = (async () => {
    while (running) {
      if (executing.size >= concurrency) {
        await fireWhileBusy();
        await waitForWake(Math.min(pollMs, fireEveryMs));
        continue;
      }
      // While runs are in flight, let a few slots free up before claiming: one claim for several
      // runs costs the engine's sweeps once instead of once per run. Never longer than a few ms.
      if (executing.size > 0 && concurrency - executing.size < coalesceTarget) {
        const until = Date.now() + CLAIM_COALESCE_MS;
        while (running && executing.size > 0 && concurrency - executing.size < coalesceTarget && Date.now() < until) {
          await waitForWake(until - Date.now());
        }
        if (!running) break;
      }
      const toClaim = Math.min(batchSize, concurrency - executing.size);
      // The leases start when the engine runs the claim; the worker counts from just before.
      const claimedAt = performance.now();
      firedAt = claimedAt;
      let tasks: ClaimedTask[];
      try {
        tasks = await host.claimTasks(
          idleListener ? { batchSize: toClaim, claimTimeout, workerId, idleListener } : { batchSize: toClaim, claimTimeout, workerId },
        );
      } catch (error) {
        report(error);
        await waitForWake(pollMs);
        continue;
      }
      if (tasks.length === toClaim) settled = false; // the engine removed the idle mark
      if (tasks.length === 0) {
        // Going idle: the claim above marked this loop idle. A spawn that read the marks before
        // that mark committed sent no notification, and may commit after the claim's snapshot.
        // Once none is in flight, claim once more: that claim sees every such spawn's run.
        if (idleListener && !settled && host.wakeupsSettled) {
          let quiet: boolean;
          try {
            quiet = await host.wakeupsSettled();
          } catch (error) {
            report(error);
            await waitForWake(pollMs);
            continue;
          }
          if (quiet) {
            settled = true;
            settleBackoffMs = SETTLE_FIRST_MS;
          } else {
            await waitForWake(Math.min(settleBackoffMs, pollMs));
            settleBackoffMs = Math.min(settleBackoffMs * 2, SETTLE_LONGEST_MS);
          }
          continue;
        }
        await waitForWake(await idleWaitMs());
        continue;
      }
      // Runs claimed while close() was called are executed too: they hold our lease.
      for (const task of tasks) {
        let execution: Promise<void> | undefined;
        const releaseSlot = () => {
          if (!execution || !executing.has(execution) || finishing.size >= concurrency) return;
          executing.delete(execution);
          finishing.add(execution);
          notify();
        };
        const started: Promise<void> = host
          .executeTask(task, claimTimeout, {
            fatalOnLeaseTimeout,
            onHandlerSettled: releaseSlot,
            claimedAt,
            workerSignal: closeTimedOut.signal,
          })
          .catch(report)
          .finally(() => {
            executing.delete(started);
            finishing.delete(started);
            notify();
          });
        execution = started;
        executing.add(started);
      }
    }
  })();

  return {
    workerId,
    get inFlight() {
      return executing.size + finishing.size;
    },
    async close(closeOptions: WorkerCloseOptions = {}) {
      running = false;
      notify();
      await loop;
      stopObservingSlots?.();
      await unsubscribe?.().catch(() => undefined);
      const all = Promise.allSettled([...executing, ...finishing]);
      if (closeOptions.timeout === undefined) {
        await all;
        return;
      }
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        all.then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), Math.max(0, closeOptions.timeout ?? 0) * 1000);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) closeTimedOut.abort();
    },
  };
}
