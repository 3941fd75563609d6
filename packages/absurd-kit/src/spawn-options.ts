import type { JsonObject, JsonValue } from './json.js';

/** How a failed run is retried (delays in seconds). Defaults in the engine: fixed 60 s; exponential 30 s × 2^(attempt-1). */
export interface RetryStrategy {
  kind: 'fixed' | 'exponential' | 'none';
  baseSeconds?: number;
  factor?: number;
  maxSeconds?: number;
}

/** When the engine cancels a task on its own (seconds). */
export interface CancellationPolicy {
  /** Cancel when the task has been running longer than this since its first start. */
  maxDuration?: number;
  /** Cancel when the task has not started within this long after it was spawned. */
  maxDelay?: number;
}

/** Options of `spawn`. */
export interface SpawnOptions {
  /** Total attempts allowed; omit for the registration's or client's default (5). */
  maxAttempts?: number;
  retryStrategy?: RetryStrategy;
  headers?: JsonObject;
  /** Queue of an unregistered task (required then); must match a registered task's queue. */
  queue?: string;
  cancellation?: CancellationPolicy;
  /** Spawning twice with one key (per queue) creates one task; the second call returns the first. */
  idempotencyKey?: string;
  /**
   * Claim priority of the task's runs (an integer; higher first; default 0). Claims take due runs
   * by priority, then oldest first; retries keep it. Requires engine migration 000016 (an older
   * engine ignores it). See docs/flow-control.md.
   *
   * @example
   * await app.spawn('send-receipt', { orderId }, { priority: 10 });
   */
  priority?: number;
}

/**
 * One task of a bulk spawn (`spawnMany`): its params and its own options (an idempotency key, say),
 * which override the options given for all items.
 */
export interface SpawnManyItem<P = unknown> {
  params: P;
  options?: SpawnOptions;
}

/**
 * Turns spawn options into the engine's snake_case JSON (`max_attempts`, `retry_strategy`,
 * `cancellation`, `headers`, `idempotency_key`, `priority`), leaving out what is unset.
 *
 * @example
 * spawnOptionsToJson({ maxAttempts: 3, retryStrategy: { kind: 'fixed', baseSeconds: 5 } });
 * // { max_attempts: 3, retry_strategy: { kind: 'fixed', base_seconds: 5 } }
 */
export function spawnOptionsToJson(options: SpawnOptions): JsonObject {
  const json: JsonObject = {};
  if (options.headers !== undefined) json.headers = options.headers;
  if (options.maxAttempts !== undefined) json.max_attempts = options.maxAttempts;
  if (options.retryStrategy !== undefined) {
    const { kind, baseSeconds, factor, maxSeconds } = options.retryStrategy;
    json.retry_strategy = compact({ kind, base_seconds: baseSeconds, factor, max_seconds: maxSeconds });
  }
  if (options.cancellation !== undefined) {
    const cancellation = compact({
      max_duration: options.cancellation.maxDuration,
      max_delay: options.cancellation.maxDelay,
    });
    if (Object.keys(cancellation).length > 0) json.cancellation = cancellation;
  }
  if (options.idempotencyKey !== undefined) json.idempotency_key = options.idempotencyKey;
  if (options.priority !== undefined) json.priority = options.priority;
  return json;
}

function compact(fields: Record<string, JsonValue | undefined>): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(fields)) if (value !== undefined) out[key] = value;
  return out;
}
