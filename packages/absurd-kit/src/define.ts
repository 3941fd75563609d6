import type { StandardSchemaV1 } from '@standard-schema/spec';
import { InvalidLimitError } from './errors.js';
import { validateQueueName } from './queue-name.js';
import type { CancellationPolicy, RetryStrategy } from './spawn-options.js';

/** Any Standard Schema validator (Zod, Valibot, ArkType, …). */
export type Schema = StandardSchemaV1;

/** The type a schema accepts (what producers send and what is stored). */
export type Input<S extends Schema> = StandardSchemaV1.InferInput<S>;

/** The type a schema produces (what handlers and readers get after parsing). */
export type Output<S extends Schema> = StandardSchemaV1.InferOutput<S>;

/** Step result schemas by step name. */
export type StepSchemas = { readonly [step: string]: Schema };

/** Spawn defaults declared by a task contract. */
export interface TaskDefaults {
  maxAttempts?: number;
  retryStrategy?: RetryStrategy;
  cancellation?: CancellationPolicy;
}

/**
 * A path into a task's params that picks a limit's bucket: a top-level key of the params, a dotted
 * path under one (`'customer.id'`), or a list of names.
 */
export type ParamsKeyPath<T> =
  | (T extends object ? Extract<keyof T, string> | `${Extract<keyof T, string>}.${string}` : string)
  | readonly string[];

/**
 * A concurrency limit a task contract declares: at most `limit` runs of the task running at once,
 * per value of `key` in their params (or in all when there is no key). Applied by the engine's
 * claim, so workers of every SDK respect it; a worker sets it when it starts (docs/flow-control.md).
 */
export interface TaskConcurrency<T = unknown> {
  limit: number;
  key?: ParamsKeyPath<T>;
}

/** A rate limit a task contract declares: at most `limit` starts per `periodSeconds`, per `key`. */
export interface TaskRateLimit<T = unknown> {
  limit: number;
  periodSeconds: number;
  key?: ParamsKeyPath<T>;
}

/**
 * A task's contract: its name and queue, and the schemas of its params, result and (optionally)
 * step results. Holds no handler code, so any service can import it.
 */
export interface TaskContract<
  Name extends string = string,
  P extends Schema = Schema,
  R extends Schema = Schema,
  S extends StepSchemas = StepSchemas,
> {
  readonly kind: 'absurd.task';
  readonly name: Name;
  readonly queue: string;
  readonly params: P;
  readonly result: R;
  readonly steps: S;
  readonly defaults: Readonly<TaskDefaults>;
  /** The task's concurrency limit, if it declares one (its key as a list of names). */
  readonly concurrency?: { readonly limit: number; readonly key?: readonly string[] } | undefined;
  /** The task's rate limit, if it declares one (its key as a list of names). */
  readonly rateLimit?: { readonly limit: number; readonly periodSeconds: number; readonly key?: readonly string[] } | undefined;
  /** Bumped deliberately when the contract changes incompatibly (see `absurd generate --check`). */
  readonly version: number;
}

/** An event's contract: its name and payload schema. Emitted and awaited as `<name>:<key>`. */
export interface EventContract<Name extends string = string, E extends Schema = Schema> {
  readonly kind: 'absurd.event';
  readonly name: Name;
  readonly payload: E;
  readonly version: number;
  /** The engine's event name for a key: `<name>:<key>` (just `<name>` without a key). */
  eventName(key?: string): string;
}

/** The params schema of a task contract. */
export type ParamsOf<C> = C extends TaskContract<string, infer P, Schema, StepSchemas> ? P : never;
/** The result schema of a task contract. */
export type ResultOf<C> = C extends TaskContract<string, Schema, infer R, StepSchemas> ? R : never;
/** The step schemas of a task contract. */
export type StepsOf<C> = C extends TaskContract<string, Schema, Schema, infer S> ? S : never;
/** The payload schema of an event contract. */
export type PayloadOf<E> = E extends EventContract<string, infer S> ? S : never;

/** Options of {@link defineTask}. */
export interface DefineTaskOptions<Name extends string, P extends Schema, R extends Schema, S extends StepSchemas> {
  name: Name;
  /** Default `"default"`. */
  queue?: string;
  params: P;
  result: R;
  steps?: S;
  defaults?: TaskDefaults;
  /** At most `limit` runs running at once, per `key` of the params (see {@link TaskConcurrency}). */
  concurrency?: TaskConcurrency<Input<P>>;
  /** At most `limit` starts per `periodSeconds`, per `key` of the params (see {@link TaskRateLimit}). */
  rateLimit?: TaskRateLimit<Input<P>>;
  /** Default 1. */
  version?: number;
}

/**
 * Declares a task contract. Schemas must describe JSON (what is stored is the value a producer
 * sent, parsed again on every read): a Zod schema whose input is not representable in JSON (a
 * `z.date()`, a `z.bigint()`, a Map…) is refused here. Use e.g. `z.iso.datetime()`, or a string
 * with a `.transform()` to get a Date in handlers.
 *
 * @example
 * export const fulfillOrder = defineTask({
 *   name: 'order-fulfillment',
 *   queue: 'orders',
 *   params: z.object({ orderId: z.string(), amount: z.number().int().positive() }),
 *   result: z.object({ trackingNumber: z.string() }),
 *   steps: { 'process-payment': z.object({ paymentId: z.string() }) },
 *   defaults: { maxAttempts: 5 },
 *   concurrency: { limit: 1, key: 'orderId' },
 * });
 */
export function defineTask<
  const Name extends string,
  P extends Schema,
  R extends Schema,
  S extends StepSchemas = Record<never, Schema>,
>(options: DefineTaskOptions<Name, P, R, S>): TaskContract<Name, P, R, S> {
  const subject = `defineTask(${JSON.stringify(options?.name)})`;
  if (typeof options?.name !== 'string' || options.name.trim() === '') {
    throw new Error('defineTask: name must be a non-empty string');
  }
  const queue = options.queue ?? 'default';
  try {
    validateQueueName(queue);
  } catch (error) {
    throw new Error(`${subject}: ${(error as Error).message}`);
  }
  checkSchema(subject, 'params', options.params);
  checkSchema(subject, 'result', options.result);
  const steps = (options.steps ?? {}) as S;
  for (const [step, schema] of Object.entries(steps)) checkSchema(subject, `steps["${step}"]`, schema);
  const maxAttempts = options.defaults?.maxAttempts;
  if (maxAttempts !== undefined && !(Number.isInteger(maxAttempts) && maxAttempts >= 1)) {
    throw new Error(`${subject}: defaults.maxAttempts must be an integer >= 1`);
  }
  return Object.freeze({
    kind: 'absurd.task',
    name: options.name,
    queue,
    params: options.params,
    result: options.result,
    steps: Object.freeze({ ...steps }),
    defaults: Object.freeze({ ...options.defaults }),
    ...(options.concurrency === undefined ? {} : { concurrency: checkTaskLimit(subject, 'concurrency', options.concurrency) }),
    ...(options.rateLimit === undefined ? {} : { rateLimit: checkTaskLimit(subject, 'rateLimit', options.rateLimit) }),
    version: checkVersion(subject, options.version),
  });
}

/**
 * Declares an event contract. Events are addressed by a key: `shipment.packed:<orderId>`.
 *
 * @example
 * export const shipmentPacked = defineEvent({
 *   name: 'shipment.packed',
 *   payload: z.object({ trackingNumber: z.string() }),
 * });
 */
export function defineEvent<const Name extends string, E extends Schema>(options: {
  name: Name;
  payload: E;
  version?: number;
}): EventContract<Name, E> {
  const subject = `defineEvent(${JSON.stringify(options?.name)})`;
  if (typeof options?.name !== 'string' || options.name.trim() === '') {
    throw new Error('defineEvent: name must be a non-empty string');
  }
  checkSchema(subject, 'payload', options.payload);
  const name = options.name;
  return Object.freeze({
    kind: 'absurd.event',
    name,
    payload: options.payload,
    version: checkVersion(subject, options.version),
    eventName: (key?: string) => (key === undefined ? name : `${name}:${key}`),
  });
}

/**
 * True for values made by {@link defineTask}.
 *
 * @example
 * const tasks = Object.values(await import('./workflows/index.js')).filter(isTaskContract);
 */
export function isTaskContract(value: unknown): value is TaskContract {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'absurd.task';
}

/**
 * True for values made by {@link defineEvent}.
 *
 * @example
 * const events = Object.values(await import('./workflows/index.js')).filter(isEventContract);
 */
export function isEventContract(value: unknown): value is EventContract {
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'absurd.event';
}

function checkVersion(subject: string, version: number | undefined): number {
  if (version === undefined) return 1;
  if (!Number.isInteger(version) || version < 1) throw new Error(`${subject}: version must be an integer >= 1`);
  return version;
}

function checkSchema(subject: string, where: string, schema: unknown): void {
  const standard = (schema as Partial<StandardSchemaV1> | null | undefined)?.['~standard'];
  if (!standard || typeof standard.validate !== 'function') {
    throw new Error(`${subject}: ${where} must be a Standard Schema (e.g. a Zod schema)`);
  }
  // Only Zod can tell us what its input looks like (its schemas' own toJSONSchema, so that absurd-kit
  // never loads Zod itself); other validators are trusted to describe JSON.
  const toJSONSchema = (schema as { toJSONSchema?: (params: { io: 'input' }) => unknown }).toJSONSchema;
  if (standard.vendor === 'zod' && typeof toJSONSchema === 'function') {
    try {
      toJSONSchema.call(schema, { io: 'input' });
    } catch (error) {
      throw new Error(
        `${subject}: ${where} is not JSON-serialisable (${(error as Error).message}); ` +
          'stored values must be JSON — use a string schema (e.g. z.iso.datetime()) and transform it if you need another type',
      );
    }
  }
}

/** A declared limit, checked and frozen (its key as a list of names); InvalidLimitError otherwise. */
function checkTaskLimit<L extends { limit: number; periodSeconds?: number; key?: unknown }>(
  subject: string,
  field: string,
  limit: L,
): Readonly<Omit<L, 'key'> & { key?: readonly string[] }> {
  const fail = (what: string): never => {
    throw new InvalidLimitError(`${subject}: ${field}.${what}`);
  };
  if (!(Number.isInteger(limit?.limit) && limit.limit >= 1 && limit.limit <= 2147483647)) fail('limit must be an integer >= 1');
  if (field === 'rateLimit' && !(typeof limit.periodSeconds === 'number' && Number.isFinite(limit.periodSeconds) && limit.periodSeconds > 0)) {
    fail('periodSeconds must be more than 0');
  }
  let key: string[] | undefined;
  if (limit.key !== undefined) {
    key = typeof limit.key === 'string' ? limit.key.split('.') : Array.isArray(limit.key) ? [...(limit.key as unknown[])].map(String) : [];
    if (key.length === 0 || key.some((part) => part === '')) fail('key must be a dotted path or a list of non-empty names');
  }
  return Object.freeze({ ...limit, ...(key === undefined ? {} : { key: Object.freeze(key) }) });
}
