/**
 * The OpenTelemetry SDK as a test registers it: a tracer provider exporting to an in-memory span
 * exporter (SimpleSpanProcessor: a span is exported when it ends), the AsyncLocalStorage context
 * manager, and a meter provider whose reader exports to an in-memory metric exporter on demand.
 * Also the plain-JSON form of finished spans, in which worker processes hand theirs to the test.
 */
import { context, metrics, trace, type Attributes } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';

/** A finished span, as plain JSON. */
export interface SpanRecord {
  name: string;
  /** `SpanKind`: 0 internal, 1 server, 2 client, 3 producer, 4 consumer. */
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  attributes: Attributes;
  /** `SpanStatusCode`: 0 unset, 1 ok, 2 error. */
  status: number;
  events: string[];
  /** Which process exported it (set by the test when it gathers them). */
  source?: string;
}

/** What {@link registerTelemetry} set up. */
export interface TestTelemetry {
  /** The spans finished so far, as JSON. */
  spans(): SpanRecord[];
  /** Collects the metrics now and returns every metric of absurd-kit's meter. */
  metrics(): Promise<MetricData[]>;
  /** Unregisters the providers. */
  shutdown(): Promise<void>;
}

/** Registers the SDK globally (tracing, context manager, metrics) with in-memory exporters. */
export function registerTelemetry(): TestTelemetry {
  const spanExporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spanExporter)] });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(tracerProvider);
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  metrics.setGlobalMeterProvider(meterProvider);
  return {
    spans: () => spanExporter.getFinishedSpans().map(toRecord),
    async metrics() {
      metricExporter.reset();
      await reader.forceFlush();
      return metricExporter
        .getMetrics()
        .flatMap((resource) => resource.scopeMetrics)
        .filter((scope) => scope.scope.name === 'absurd-kit')
        .flatMap((scope) => scope.metrics);
    },
    async shutdown() {
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
      trace.disable();
      metrics.disable();
      context.disable();
    },
  };
}

function toRecord(span: ReadableSpan): SpanRecord {
  return {
    name: span.name,
    kind: span.kind,
    traceId: span.spanContext().traceId,
    spanId: span.spanContext().spanId,
    parentSpanId: span.parentSpanContext?.spanId,
    attributes: span.attributes,
    status: span.status.code,
    events: span.events.map((event) => event.name),
  };
}
