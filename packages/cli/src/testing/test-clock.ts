/**
 * The clock of a test environment: the engine's fake time (`absurd.fake_now`, read by
 * `absurd.current_time()` in every engine function) on the environment's one connection, and the
 * same time for the handlers the environment runs (`Date.now()` and `new Date()` while a run
 * executes). It stands still until the test moves it.
 */
import type pg from 'pg';
import { AbsurdError } from 'absurd-kit';
import { setFakeNow } from '../queries/testing.queries.js';
import { durationMs, type Duration } from './duration.js';

/** A point in time: a Date, an ISO 8601 text, or milliseconds since the epoch. */
export type TimeInput = Date | string | number;

/** The time of a {@link TimeInput} in milliseconds; throws for one that names no time. */
export function timeMs(at: TimeInput): number {
  const ms = at instanceof Date ? at.getTime() : typeof at === 'number' ? at : Date.parse(at);
  if (!Number.isFinite(ms)) {
    throw new AbsurdError('INVALID_TIME', `${JSON.stringify(String(at))} is not a point in time — pass a Date, an ISO 8601 text or epoch milliseconds`);
  }
  return ms;
}

/**
 * The engine's fake time on one connection, and the process clock that matches it while runs
 * execute (see {@link TestClock.whileRunning}).
 */
export class TestClock {
  readonly #connection: pg.ClientBase;
  #nowMs: number;

  private constructor(connection: pg.ClientBase, nowMs: number) {
    this.#connection = connection;
    this.#nowMs = nowMs;
  }

  /** A clock standing at `at` on `connection` (the setting lasts for the connection's session). */
  static async start(connection: pg.ClientBase, at: TimeInput): Promise<TestClock> {
    const clock = new TestClock(connection, timeMs(at));
    await clock.set(clock.#nowMs);
    return clock;
  }

  /** The time it shows. */
  now(): Date {
    return new RealDate(this.#nowMs);
  }

  /** Milliseconds since the epoch. */
  get nowMs(): number {
    return this.#nowMs;
  }

  /** Moves it to `at` (also backwards). */
  async set(at: TimeInput): Promise<Date> {
    const ms = timeMs(at);
    await setFakeNow.run({ at: new RealDate(ms).toISOString() }, this.#connection);
    this.#nowMs = ms;
    return this.now();
  }

  /** Moves it forward by `duration`. */
  async advance(duration: Duration): Promise<Date> {
    return this.set(this.#nowMs + durationMs(duration));
  }

  /**
   * Runs `fn` with the process clock at this clock's time: `Date.now()`, `new Date()` and `Date()`
   * read it (dates built from arguments, `Date.parse` and the rest are untouched). Handlers compute
   * wake times from `Date.now()` — `ctx.sleepFor` does — and the engine schedules them on its own
   * clock, so both must show the same time. Restored when `fn` settles; nested calls share one patch.
   */
  async whileRunning<T>(fn: () => Promise<T>): Promise<T> {
    if (patchDepth++ === 0) {
      previousDate = globalThis.Date;
      globalThis.Date = fakeDate(previousDate, () => patchedNow());
    }
    const outer = patchedNow;
    patchedNow = () => this.#nowMs;
    try {
      return await fn();
    } finally {
      patchedNow = outer;
      if (--patchDepth === 0 && previousDate) {
        globalThis.Date = previousDate;
        previousDate = undefined;
      }
    }
  }
}

/** The Date constructor as it was when this module loaded (what {@link TestClock.now} builds). */
const RealDate = globalThis.Date;
let patchDepth = 0;
let previousDate: DateConstructor | undefined;
let patchedNow: () => number = () => RealDate.now();

/**
 * `Date` with its clock replaced: a proxy, so `instanceof Date`, `Date.prototype`, `Date.UTC`,
 * `Date.parse` and dates built from arguments behave exactly as before.
 */
function fakeDate(Real: DateConstructor, now: () => number): DateConstructor {
  const proxy: DateConstructor = new Proxy(Real, {
    construct(target, args, newTarget) {
      return Reflect.construct(target, args.length === 0 ? [now()] : args, newTarget === proxy ? target : newTarget);
    },
    // `Date()` called as a function ignores its arguments and returns the current time as text.
    apply(target) {
      return new target(now()).toString();
    },
    get(target, key) {
      if (key === 'now') return now;
      return Reflect.get(target, key, target);
    },
  });
  return proxy;
}
