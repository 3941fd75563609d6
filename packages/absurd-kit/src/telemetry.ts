/**
 * OpenTelemetry, when the application has it: `@opentelemetry/api` is an optional peer
 * dependency, imported once, lazily, the first time a client is made. Without it installed, with
 * no SDK registered, or with `telemetry: false`, every instrumented call costs one check and
 * nothing else: {@link currentTelemetry} returns undefined and the callers take their plain path.
 *
 * The names of spans, attributes and metrics are listed in docs/observability.md.
 */
import type * as Otel from '@opentelemetry/api';
import { TaskMetrics } from './telemetry-metrics.js';
import { Tracing } from './telemetry-tracing.js';

/** The OpenTelemetry API module, as `import('@opentelemetry/api')` gives it. */
export type OtelApi = typeof Otel;

/** What is on in this process right now: tracing, metrics, or both (never neither). */
export interface Telemetry {
  /** Present when a tracer provider is registered. */
  tracing: Tracing | undefined;
  /** Present when a meter provider is registered. */
  metrics: TaskMetrics | undefined;
}

/** The instrumentation scope of absurd-kit's spans and metrics. */
export const INSTRUMENTATION_NAME = 'absurd-kit';

// undefined: not loaded yet; null: not installed (or failed to load).
let api: OtelApi | null | undefined;
let loading: Promise<OtelApi | null> | undefined;
let tracing: { delegate: unknown; value: Tracing | undefined } | undefined;
let metrics: { provider: unknown; value: TaskMetrics | undefined } | undefined;
let current: Telemetry | undefined;

/**
 * Imports `@opentelemetry/api` once (later calls share the same promise); resolves with null
 * when it is not installed. A client starts this when it is made, so that by its first spawn or
 * run the answer is known and {@link currentTelemetry} needs no await.
 */
export function loadTelemetryApi(): Promise<OtelApi | null> {
  loading ??= import('@opentelemetry/api').then(
    (module) => {
      // Either build of the package: ESM gives the namespace, a CJS interop may nest it in default.
      const resolved = (typeof module.trace === 'object' ? module : (module as unknown as { default?: OtelApi }).default) ?? null;
      api = resolved;
      return resolved;
    },
    () => {
      api = null;
      return null;
    },
  );
  return loading;
}

/**
 * The telemetry that is on now, or undefined (the cheap answer: API absent, or no SDK
 * registered). Synchronous once {@link loadTelemetryApi} has settled; before that it is
 * undefined. Tracer and instruments are made once per registered provider.
 */
export function currentTelemetry(): Telemetry | undefined {
  if (!api) return undefined;
  const tracingNow = currentTracing(api);
  const metricsNow = currentMetrics(api);
  if (!tracingNow && !metricsNow) return undefined;
  if (current?.tracing !== tracingNow || current?.metrics !== metricsNow) current = { tracing: tracingNow, metrics: metricsNow };
  return current;
}

/**
 * {@link currentTelemetry}, after the API's import has settled (only the first calls of a process
 * wait for it: later ones get the answer without a promise); undefined when `enabled` is false.
 */
export function telemetryFor(enabled: boolean): Telemetry | undefined | Promise<Telemetry | undefined> {
  if (!enabled) return undefined;
  if (api === undefined) return loadTelemetryApi().then(currentTelemetry);
  return currentTelemetry();
}

function currentTracing(otel: OtelApi): Tracing | undefined {
  const provider = otel.trace.getTracerProvider() as Otel.TracerProvider & { getDelegate?: () => unknown };
  // The global provider is a proxy; with no SDK registered it delegates to the no-op provider.
  const delegate = typeof provider.getDelegate === 'function' ? provider.getDelegate() : provider;
  if (tracing && tracing.delegate === delegate) return tracing.value;
  const noop = isNoop(delegate) || delegate === new otel.ProxyTracerProvider().getDelegate();
  const value = noop ? undefined : new Tracing(otel, otel.trace.getTracer(INSTRUMENTATION_NAME));
  tracing = { delegate, value };
  return value;
}

function currentMetrics(otel: OtelApi): TaskMetrics | undefined {
  const provider = otel.metrics.getMeterProvider();
  if (metrics && metrics.provider === provider) return metrics.value;
  const meter = provider.getMeter(INSTRUMENTATION_NAME);
  const value = meter === otel.createNoopMeter() || isNoop(provider) ? undefined : new TaskMetrics(otel, meter);
  metrics = { provider, value };
  return value;
}

/** The API's no-op providers (of whichever build of the package registered the global). */
function isNoop(provider: unknown): boolean {
  const name = (provider as { constructor?: { name?: string } } | null)?.constructor?.name;
  return provider == null || name === 'NoopTracerProvider' || name === 'NoopMeterProvider';
}
