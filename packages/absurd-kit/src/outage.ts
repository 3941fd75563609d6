/**
 * Database outages as one client sees them: which errors mean that the connection failed (rather
 * than the statement), and the two log lines an operator wants — one WARN when the database goes
 * away, one INFO when it is back — however many queries failed in between.
 */
import { performance } from 'node:perf_hooks';
import { errorLine } from './errors.js';
import type { Log } from './types.js';

/**
 * SQLSTATEs of a server that closed the connection or does not take connections now: admin
 * shutdown, crash shutdown, "the database system is starting up / shutting down / in recovery".
 * Class 08 (connection exceptions) counts too.
 */
const CONNECTION_SQLSTATES = new Set(['57P01', '57P02', '57P03']);

/** Socket errors of a server that is down, restarting or unreachable for a moment. */
const NETWORK_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTCONN',
  'EAI_AGAIN',
]);

/**
 * node-postgres reports a connection it lost, or could not open in time, with plain errors that
 * carry no code: their fixed texts are all there is to recognise them by. (Everywhere else the
 * runtime matches codes, never messages.) `Connection terminated` without "unexpectedly" is not
 * here: that is a client this process ended itself.
 */
const DRIVER_CONNECTION_MESSAGES = new Set([
  'Connection terminated unexpectedly',
  'Connection terminated due to connection timeout',
  'timeout exceeded when trying to connect',
  'timeout expired',
  'Client has encountered a connection error and is not queryable',
]);

/**
 * True when `error` says the connection to the database failed (refused, reset, the server shutting
 * down or starting up, SQLSTATE class 08 or 57P01–57P03), as opposed to a statement the database
 * refused. Such a failure is transient: the same statement may succeed once the database is back.
 * Looks into `AggregateError`s (one per address tried) and `cause`s.
 *
 * @example
 * isConnectionError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })); // true
 */
export function isConnectionError(error: unknown, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > 4) return false;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (code.startsWith('08') && code.length === 5) return true;
    if (CONNECTION_SQLSTATES.has(code) || NETWORK_ERRNOS.has(code)) return true;
  }
  if (error instanceof Error && DRIVER_CONNECTION_MESSAGES.has(error.message)) return true;
  if (error instanceof AggregateError && error.errors.some((inner) => isConnectionError(inner, depth + 1))) return true;
  return isConnectionError((error as { cause?: unknown }).cause, depth + 1);
}

/** Options of {@link OutageMonitor}. */
export interface OutageMonitorOptions {
  log: Log;
  /** A cheap statement that succeeds when the database answers (e.g. reading its clock). */
  probe: () => Promise<unknown>;
}

/** Longest wait between two probes of a database that is down. */
const MAX_PROBE_INTERVAL_MS = 500;

/**
 * How long the database must stay reachable before the INFO line: a server that is shutting down
 * may still answer a statement or two between refusals, which must not split one outage in two.
 */
const SETTLE_MS = 1000;

/**
 * Watches one client's database. A connection failure reported with {@link failed} starts probing
 * (every 100–500 ms): if the first probe fails too, the database is down and one WARN is logged;
 * when a probe or any statement sent since ({@link succeeded}) goes through again, the database is
 * reachable, and once it has stayed so for a second one INFO says how long it was gone. A single
 * dropped connection whose database still answers logs nothing. Writes waiting for the database
 * use {@link whenReachable}. Times are taken on the monotonic clock.
 */
export class OutageMonitor {
  readonly #options: OutageMonitorOptions;
  #state: 'up' | 'checking' | 'down' = 'up';
  /** When the first failure of the current outage was seen (`performance.now()`). */
  #since = 0;
  /** Reachable again, INFO not logged yet: a failure meanwhile continues the same outage. */
  #settling: { timer: NodeJS.Timeout; line: string } | undefined;
  #firstError: unknown;
  #probing = false;
  #closed = false;
  #sleep: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  readonly #waiters = new Set<() => void>();

  constructor(options: OutageMonitorOptions) {
    this.#options = options;
  }

  /** False from a reported connection failure until the database answers again. */
  get reachable(): boolean {
    return this.#state === 'up';
  }

  /** Reports a statement that failed with a connection error (see {@link isConnectionError}). */
  failed(error: unknown): void {
    if (this.#closed) return;
    if (this.#state === 'up' && this.#settling) {
      clearTimeout(this.#settling.timer);
      this.#settling = undefined;
      this.#state = 'down';
    } else if (this.#state === 'up') {
      this.#state = 'checking';
      this.#since = performance.now();
      this.#firstError = error;
    }
    void this.#probe();
  }

  /**
   * Reports a statement that went through: the database is there. `sentAt` (`performance.now()`
   * when it was sent) keeps a statement sent before the failures began from counting.
   */
  succeeded(sentAt?: number): void {
    if (this.#state === 'up' || (sentAt !== undefined && sentAt < this.#since)) return;
    this.#recovered();
  }

  /**
   * Resolves once the database answers again (at once when no outage is known), after `maxMs`, or
   * when `signal` aborts, whichever comes first.
   */
  whenReachable(maxMs: number, signal?: AbortSignal): Promise<void> {
    if (this.#state === 'up' || this.#closed || !(maxMs > 0) || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.min(maxMs, 2 ** 31 - 1));
      this.#waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /** Stops probing and releases every waiter (an INFO line still settling is logged now). */
  close(): void {
    this.#closed = true;
    if (this.#settling) {
      clearTimeout(this.#settling.timer);
      this.#options.log.info(this.#settling.line);
      this.#settling = undefined;
    }
    if (this.#sleep) {
      clearTimeout(this.#sleep.timer);
      this.#sleep.resolve();
    }
    for (const done of [...this.#waiters]) done();
  }

  async #probe(): Promise<void> {
    if (this.#probing) return;
    this.#probing = true;
    let interval = 100;
    try {
      while (!this.#closed && this.#state !== 'up') {
        try {
          await this.#options.probe();
          this.#recovered();
          return;
        } catch (error) {
          // Any answer from the database, even an error, means it is there.
          if (!isConnectionError(error)) {
            this.#recovered();
            return;
          }
        }
        if (this.#state === 'checking') {
          this.#state = 'down';
          this.#options.log.warn(`database unreachable: ${errorLine(this.#firstError)} — waiting for it to come back`);
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, interval);
          timer.unref();
          this.#sleep = { timer, resolve };
        });
        this.#sleep = undefined;
        interval = Math.min(interval * 2, MAX_PROBE_INTERVAL_MS);
      }
    } finally {
      this.#probing = false;
    }
  }

  #recovered(): void {
    if (this.#state === 'down') {
      const line = `database reachable again after ${((performance.now() - this.#since) / 1000).toFixed(1)}s`;
      const timer = setTimeout(() => {
        this.#settling = undefined;
        this.#options.log.info(line);
      }, SETTLE_MS);
      timer.unref();
      this.#settling = { timer, line };
    }
    this.#state = 'up';
    this.#firstError = undefined;
    for (const done of [...this.#waiters]) done();
  }
}
