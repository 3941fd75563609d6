/**
 * The lease of one run as the worker executing it sees it: when it ends, the task context's
 * `signal`, and the statements of the run, retried after connection failures while the lease lasts.
 */
import { performance } from 'node:perf_hooks';
import { isConnectionError, type OutageMonitor } from './outage.js';
import { CancelledTask, FailedTask, isControlFlowSignal, LeaseLost, WorkerClosed } from './signals.js';
import type { Log, RunCallOptions, RunGuard } from './types.js';

/** Options of {@link RunLease}. */
export interface RunLeaseOptions {
  runID: string;
  /** Lease length in seconds given at the claim; 0 = no lease. */
  claimTimeout: number;
  /** When the claim was sent (`performance.now()`); default now. */
  claimedAt?: number | undefined;
  /** Names the run in log lines, e.g. `task send-mail (0190…)`. */
  label: string;
  log: Log;
  /** The client's view of its database: connection failures are reported to it and waited out with it. */
  outage?: OutageMonitor | undefined;
  /** Exit the process when the run overruns its lease by 100 % (absurd-sdk's fatalOnLeaseTimeout). */
  fatalOnLeaseTimeout?: boolean | undefined;
  /** Aborted when the worker was closed and its close timeout passed. */
  workerSignal?: AbortSignal | undefined;
}

/** First pause before a statement is sent again after a connection failure; it doubles up to 1 s. */
const FIRST_RETRY_MS = 50;
const MAX_RETRY_MS = 1000;

/**
 * One run's lease. Its deadline is the claim (or the last renewal: a checkpoint write that extends
 * the lease, a heartbeat) plus the lease's length, measured from when that statement was *sent*:
 * the engine starts the lease when it runs the statement, later, so the worker's deadline is never
 * later than the engine's. Measured on the monotonic clock: a frozen process (a GC pause, SIGSTOP)
 * finds its lease gone when it resumes.
 *
 * When the deadline passes, one WARN is logged and {@link signal} is aborted with {@link LeaseLost};
 * from then on the run starts nothing and writes nothing (a completion is still offered once: the
 * engine takes it only while the run is still running, under this claim). With
 * `fatalOnLeaseTimeout` the process exits one more lease length later, as absurd-sdk's workers do.
 *
 * {@link call} runs a statement of the run and, when the connection fails, waits for the database
 * and sends it again while the lease lasts. Every statement passed to it must be idempotent: it may
 * have committed before the connection dropped.
 */
export class RunLease implements RunGuard {
  readonly #options: RunLeaseOptions;
  readonly #controller = new AbortController();
  #deadline: number;
  #length: number;
  #lostLogged = false;
  #timer: NodeJS.Timeout | undefined;
  readonly #onWorkerClosed = () => this.abort(new WorkerClosed());

  constructor(options: RunLeaseOptions) {
    this.#options = options;
    this.#length = options.claimTimeout;
    this.#deadline = deadlineOf(options.claimedAt ?? performance.now(), options.claimTimeout);
    if (options.workerSignal?.aborted) this.#onWorkerClosed();
    else options.workerSignal?.addEventListener('abort', this.#onWorkerClosed, { once: true });
    this.#schedule();
  }

  /** Aborted when the run must stop; its reason is a {@link LeaseLost}, {@link CancelledTask}, {@link FailedTask} or {@link WorkerClosed}. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Milliseconds left on the lease (Infinity without one). */
  get remainingMs(): number {
    return this.#deadline - performance.now();
  }

  /** True once the lease ran out (or the engine said the run already failed). */
  get lost(): boolean {
    if (this.#controller.signal.aborted) return this.#controller.signal.reason instanceof FailedTask;
    if (this.remainingMs > 0) return false;
    this.#lose();
    return true;
  }

  /** The lease was renewed for `seconds` by a statement sent at `sentAt` (`performance.now()`). */
  renew(seconds: number, sentAt: number): void {
    if (this.#controller.signal.aborted || !(seconds > 0)) return;
    this.#length = seconds;
    this.#deadline = deadlineOf(sentAt, seconds);
    this.#schedule();
  }

  /** Throws why the run must stop (see {@link signal}), if it must. */
  check(): void {
    if (!this.#controller.signal.aborted && this.remainingMs <= 0) this.#lose();
    if (this.#controller.signal.aborted) throw this.#controller.signal.reason;
  }

  /** Aborts {@link signal} with `reason` (the first reason stays). */
  abort(reason: Error): void {
    if (!this.#controller.signal.aborted) this.#controller.abort(reason);
  }

  /**
   * Runs a statement of the run (see {@link RunGuard.call}): throws why the run must stop before
   * sending it, if it must; after a connection failure waits for the database, never past the
   * lease, and sends it again. A cancellation or failure the engine reports aborts {@link signal}.
   */
  async call<T>(fn: () => Promise<T>, options: RunCallOptions = {}): Promise<T> {
    let pause = FIRST_RETRY_MS;
    for (let attempt = 1; ; attempt++) {
      if (attempt > 1 || !options.evenIfStopped) this.check();
      const sentAt = performance.now();
      try {
        if (attempt > 1) await options.beforeRetry?.();
        const value = await fn();
        this.#options.outage?.succeeded(sentAt);
        if (options.renews) this.renew(options.renews, sentAt);
        return value;
      } catch (error) {
        if (error instanceof CancelledTask || error instanceof FailedTask) this.abort(error);
        if (isControlFlowSignal(error) || !isConnectionError(error)) throw error;
        this.#options.outage?.failed(error);
        // A run that must stop gets no repeat of its one attempt.
        if (options.evenIfStopped) this.check();
      }
      // Wait for the database (the client probes it), but never past the lease.
      const remaining = this.remainingMs;
      if (remaining <= 0) continue;
      await this.#options.outage?.whenReachable(remaining, this.signal);
      await sleep(Math.min(pause, Math.max(0, this.remainingMs)), this.signal);
      pause = Math.min(pause * 2, MAX_RETRY_MS);
    }
  }

  /** Clears the timers; the run is over for this worker. */
  end(): void {
    clearTimeout(this.#timer);
    this.#options.workerSignal?.removeEventListener('abort', this.#onWorkerClosed);
  }

  #lose(): void {
    if (!this.#lostLogged) {
      this.#lostLogged = true;
      this.#options.log.warn(`${this.#options.label} exceeded claim timeout of ${this.#length}s`);
    }
    this.abort(new LeaseLost(this.#options.runID, this.#length));
  }

  #schedule(): void {
    clearTimeout(this.#timer);
    if (!Number.isFinite(this.#deadline)) return;
    this.#timer = setTimeout(() => this.#expired(), clampDelay(this.remainingMs));
  }

  #expired(): void {
    if (this.remainingMs > 0) {
      this.#schedule();
      return;
    }
    this.#lose();
    if (!this.#options.fatalOnLeaseTimeout) return;
    const { label, log } = this.#options;
    const length = this.#length;
    this.#timer = setTimeout(() => {
      log.error(`${label} exceeded claim timeout of ${length}s by more than 100%; terminating process`);
      process.exit(1);
    }, clampDelay(length * 1000));
  }
}

/** A guard for contexts that run outside a worker: no lease, no retries, a signal that never fires. */
export const unguarded: RunGuard = {
  signal: new AbortController().signal,
  check() {},
  call: (fn) => fn(),
};

function deadlineOf(from: number, seconds: number): number {
  return seconds > 0 ? from + seconds * 1000 : Infinity;
}

/** A setTimeout delay: at least 0, at most what a timer can hold (longer ones fire at once). */
function clampDelay(ms: number): number {
  return Math.min(Math.max(0, ms), 2 ** 31 - 1);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
