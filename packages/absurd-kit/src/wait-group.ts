/**
 * Waits of one run that start together — `Promise.all` over `ctx.awaitEvent`, `ctx.awaitTaskResult`
 * and `ctx.sleepFor`, or `ctx.awaitAll` — suspend the run once. Every wait counts itself in when it
 * starts (synchronously, before its first statement) and out when it ends. A wait that has to
 * suspend the run arrives here instead of sending its own statement; once every wait still counted
 * in has arrived, the group is settled at once:
 *
 * - one wait alone sends its own statement (await_event or schedule_run), exactly as it would
 *   outside a group;
 * - several send one statement (`kit_await_events`): waits answered already get their values, and
 *   if any must still wait the run suspends once, until all of them can be answered (or, when one
 *   asks `resume: 'each'`, until the first can), or until the earliest deadline of the group. A
 *   group of sleeps alone suspends until the earliest wake time.
 *
 * A wait told to look `again` (the group's timeout passed, or the run resumed for another wait)
 * checks its own deadline and arrives again if it still has to wait.
 */
import type { JsonValue } from './json.js';
import { SuspendTask } from './signals.js';

/** What a wait of a group asks for when it arrives. */
export interface WaitRequest {
  /** The event wait's checkpoint name and event name; absent for a sleep. */
  event?: { step: string; name: string } | undefined;
  /** Seconds until this wait's own deadline or wake time; null: none. */
  timeout: number | null;
  /** `each`: the run resumes as soon as this wait can be answered, not when all can. */
  resume: 'all' | 'each';
  /**
   * Called before a group of several suspends: a wait whose deadline is only relative (an event's
   * timeout) stores it, so that the resumed run knows how much of it is left.
   */
  keepDeadline?: (() => Promise<void>) | undefined;
}

/** How the group answered a wait. */
export type WaitAnswer =
  | { kind: 'alone' }
  | { kind: 'answered'; payload: JsonValue }
  | { kind: 'again'; timedOut: boolean };

/** One row of `kit_await_events`: a wait's value when it was answered, and the group's outcome. */
export interface GroupRow {
  step_name: string;
  payload: JsonValue | null;
  resolved: boolean;
  outcome: string;
}

/** The statements a group sends. */
export interface WaitGroupStatements {
  /** `kit_await_events` (null when the engine lacks it: the waits are then sent one by one). */
  awaitEvents:
    | ((waits: { step: string; event: string }[], timeout: number | null, wake: 'all' | 'any') => Promise<GroupRow[]>)
    | null;
  /** `await_event` of one wait: suspended, or answered with a payload, or timed out (payload null). */
  awaitEvent(step: string, event: string, timeout: number | null): Promise<{ should_suspend: boolean; payload: JsonValue | null }>;
  /** Suspends the run for `seconds` (schedule_run). */
  sleep(seconds: number): Promise<void>;
}

interface Arrival {
  request: WaitRequest;
  resolve(answer: WaitAnswer): void;
  reject(error: unknown): void;
}

/** The waits of one run (see the module comment); a task context holds one. */
export class WaitGroup {
  readonly #statements: WaitGroupStatements;
  #active = 0;
  #arrived: Arrival[] = [];

  constructor(statements: WaitGroupStatements) {
    this.#statements = statements;
  }

  /** Counts a wait in; call synchronously as it starts. Returns the call that counts it out. */
  enter(): () => void {
    this.#active += 1;
    let left = false;
    return () => {
      if (left) return;
      left = true;
      this.#active -= 1;
      this.#settleSoon();
    };
  }

  /** A wait that must suspend the run: resolves with how the group answered it, or rejects (SuspendTask). */
  arrive(request: WaitRequest): Promise<WaitAnswer> {
    return new Promise<WaitAnswer>((resolve, reject) => {
      this.#arrived.push({ request, resolve, reject });
      this.#settleSoon();
    });
  }

  /**
   * Looks once the code running now has run: waits started in one synchronous stretch (the
   * callback of `Promise.all(items.map(…))`) have all counted themselves in by then, even when the
   * first of them arrives before the next one starts.
   */
  #settleSoon(): void {
    queueMicrotask(() => this.#settleIfAllArrived());
  }

  #settleIfAllArrived(): void {
    if (this.#arrived.length === 0 || this.#arrived.length < this.#active) return;
    const arrivals = this.#arrived;
    this.#arrived = [];
    if (arrivals.length === 1) {
      arrivals[0]!.resolve({ kind: 'alone' });
      return;
    }
    this.#settle(arrivals).then(
      (answers) => arrivals.forEach((arrival, i) => arrival.resolve(answers[i]!)),
      (error: unknown) => arrivals.forEach((arrival) => arrival.reject(error)),
    );
  }

  /** Answers for each arrival, in order; throws SuspendTask when the run was suspended. */
  async #settle(arrivals: Arrival[]): Promise<WaitAnswer[]> {
    const requests = arrivals.map((arrival) => arrival.request);
    const timeouts = requests.map((request) => request.timeout).filter((timeout): timeout is number => timeout !== null);
    const timeout = timeouts.length === 0 ? null : Math.max(0, Math.ceil(Math.min(...timeouts)));
    const events = requests.filter((request) => request.event !== undefined);
    if (events.length === 0) {
      await this.#statements.sleep(Math.max(0, Math.min(...timeouts)));
      throw new SuspendTask();
    }
    const { awaitEvents } = this.#statements;
    if (!awaitEvents) return this.#settleOneByOne(requests);

    await Promise.all(requests.map((request) => request.keepDeadline?.()));
    const wake = requests.some((request) => request.resume === 'each') ? 'any' : 'all';
    const rows = await awaitEvents(
      events.map((request) => ({ step: request.event!.step, event: request.event!.name })),
      timeout,
      wake,
    );
    const outcome = rows[0]?.outcome;
    if (outcome === 'suspended') throw new SuspendTask();
    const byStep = new Map(rows.map((row) => [row.step_name, row]));
    return requests.map((request): WaitAnswer => {
      const row = request.event && byStep.get(request.event.step);
      if (row?.resolved) return { kind: 'answered', payload: row.payload as JsonValue };
      return { kind: 'again', timedOut: outcome === 'timed_out' };
    });
  }

  /**
   * Without `kit_await_events` (a schema installed by Absurd): each event wait is sent on its own,
   * with its own timeout, until one suspends the run; the run then resumes at that wait's event (or
   * timeout, which that wait reports as it would alone) and looks again. A sleep started together
   * with event waits is looked at again only once they are answered.
   */
  async #settleOneByOne(requests: WaitRequest[]): Promise<WaitAnswer[]> {
    const answers: WaitAnswer[] = [];
    for (const request of requests) {
      if (!request.event) {
        answers.push({ kind: 'again', timedOut: false });
        continue;
      }
      const timeout = request.timeout === null ? null : Math.max(0, Math.ceil(request.timeout));
      const row = await this.#statements.awaitEvent(request.event.step, request.event.name, timeout);
      if (row.should_suspend) throw new SuspendTask();
      answers.push({ kind: 'answered', payload: row.payload as JsonValue });
    }
    return answers;
  }
}
