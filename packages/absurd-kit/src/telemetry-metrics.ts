/**
 * absurd-kit's metrics (made only when a meter provider is registered; see `telemetry.ts`):
 * tasks spawned, claimed, completed and failed (by reason), how long runs take, how long due runs
 * waited to be claimed, and how many slots each worker has in use. docs/observability.md lists
 * them with their attributes.
 */
import type * as Otel from '@opentelemetry/api';
import { ValidationError } from './errors.js';
import { CancelledTask } from './signals.js';
import { ATTR, MESSAGING_SYSTEM, type RunOutcome } from './telemetry-attributes.js';

type OtelApi = typeof Otel;

/** Why a run counted in `absurd.tasks.failed` failed. */
export type FailureReason = 'error' | 'validation' | 'cancelled';

/** The failure reason of a run that ended with `error`. */
export function failureReason(error: unknown): FailureReason {
  if (error instanceof CancelledTask) return 'cancelled';
  if (error instanceof ValidationError) return 'validation';
  return 'error';
}

/** Buckets (seconds) for run durations and queue lag: 5 ms to 10 min. */
const SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/** The instruments of one meter provider. */
export class TaskMetrics {
  readonly #spawned: Otel.Counter;
  readonly #claimed: Otel.Counter;
  readonly #completed: Otel.Counter;
  readonly #failed: Otel.Counter;
  readonly #duration: Otel.Histogram;
  readonly #lag: Otel.Histogram;
  readonly #slotsUsed: Otel.ObservableGauge;
  readonly #slotsLimit: Otel.ObservableGauge;
  /** Attribute sets by queue and task name (and outcome, reason), made once: points are recorded per run. */
  readonly #attributes = new Map<string, Otel.Attributes>();

  constructor(otel: OtelApi, meter: Otel.Meter) {
    const seconds = { unit: 's', advice: { explicitBucketBoundaries: SECONDS_BUCKETS } };
    this.#spawned = meter.createCounter('absurd.tasks.spawned', { unit: '{task}', description: 'Tasks spawned (new ones; not those an idempotency key found).' });
    this.#claimed = meter.createCounter('absurd.tasks.claimed', { unit: '{run}', description: 'Runs claimed by workers.' });
    this.#completed = meter.createCounter('absurd.tasks.completed', { unit: '{run}', description: 'Runs that completed their task.' });
    this.#failed = meter.createCounter('absurd.tasks.failed', { unit: '{run}', description: 'Runs that failed, by absurd.failure.reason (error, validation, cancelled).' });
    this.#duration = meter.createHistogram('absurd.run.duration', { ...seconds, description: 'How long a run took, from its start to its final write, by absurd.run.outcome.' });
    this.#lag = meter.createHistogram('absurd.queue.lag', { ...seconds, description: 'How long a due run waited to be claimed (claim time minus available time, on the database clock).' });
    this.#slotsUsed = meter.createObservableGauge('absurd.worker.slots.used', { unit: '{slot}', description: 'Slots of a worker whose handlers are running.', valueType: otel.ValueType.INT });
    this.#slotsLimit = meter.createObservableGauge('absurd.worker.slots.limit', { unit: '{slot}', description: "A worker's concurrency.", valueType: otel.ValueType.INT });
  }

  /** A task a spawn created (not one an idempotency key found). */
  spawned(queue: string, taskName: string): void {
    this.#spawned.add(1, this.#task(queue, taskName));
  }

  /**
   * The runs of one claim, with their queue lag in seconds where the claim reported it. Counted
   * once per task name (a claim brings many runs of few tasks; each point costs the SDK a lookup).
   */
  claimed(queue: string, runs: readonly { task_name: string; queue_lag?: number | null | undefined }[]): void {
    const counts = new Map<string, number>();
    for (const run of runs) {
      counts.set(run.task_name, (counts.get(run.task_name) ?? 0) + 1);
      const lag = run.queue_lag;
      if (typeof lag === 'number' && Number.isFinite(lag)) this.#lag.record(Math.max(0, lag), this.#task(queue, run.task_name));
    }
    for (const [taskName, count] of counts) this.#claimed.add(count, this.#task(queue, taskName));
  }

  /** A run's end: counted as completed or failed (by reason), and its duration recorded. */
  runEnded(queue: string, taskName: string, outcome: RunOutcome, seconds: number, reason?: FailureReason): void {
    if (outcome === 'completed') this.#completed.add(1, this.#task(queue, taskName));
    else if (reason) this.#failed.add(1, this.#task(queue, taskName, ATTR.failureReason, reason));
    this.#duration.record(seconds, this.#task(queue, taskName, ATTR.outcome, outcome));
  }

  /** The attributes of a task's points, with one more key when given; the same object every time. */
  #task(queue: string, taskName: string, key?: string, value?: string): Otel.Attributes {
    const id = `${queue}\0${taskName}\0${key ?? ''}\0${value ?? ''}`;
    let attributes = this.#attributes.get(id);
    if (!attributes) {
      attributes = { [ATTR.system]: MESSAGING_SYSTEM, [ATTR.destination]: queue, [ATTR.taskName]: taskName };
      if (key !== undefined) attributes[key] = value;
      this.#attributes.set(id, Object.freeze(attributes));
    }
    return attributes;
  }

  /**
   * Reports a worker's slots (in use, and its concurrency) while it runs; returns the function
   * that stops reporting (called when the worker closes).
   */
  observeWorker(queue: string, workerId: string, limit: number, used: () => number): () => void {
    const attributes = { [ATTR.system]: MESSAGING_SYSTEM, [ATTR.destination]: queue, [ATTR.workerID]: workerId };
    const observeUsed: Otel.ObservableCallback = (result) => result.observe(used(), attributes);
    const observeLimit: Otel.ObservableCallback = (result) => result.observe(limit, attributes);
    this.#slotsUsed.addCallback(observeUsed);
    this.#slotsLimit.addCallback(observeLimit);
    return () => {
      this.#slotsUsed.removeCallback(observeUsed);
      this.#slotsLimit.removeCallback(observeLimit);
    };
  }
}
