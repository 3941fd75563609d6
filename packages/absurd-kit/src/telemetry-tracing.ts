/**
 * absurd-kit's spans (made only when a tracer provider is registered; see `telemetry.ts`): a
 * producer span per spawn and per event emission, a consumer span per run of a task, and inside a
 * run one span per step (run or replayed), sleep, event wait and wait for a task's result.
 * Attribute names follow OpenTelemetry's messaging conventions where they fit and use the
 * `absurd.` prefix otherwise (docs/observability.md lists them).
 */
import type * as Otel from '@opentelemetry/api';
import { TimeoutError, ValidationError } from './errors.js';
import type { JsonObject } from './json.js';
import { isControlFlowSignal, SuspendTask } from './signals.js';
import { ATTR, MESSAGING_SYSTEM } from './telemetry-attributes.js';
import { traceHeaders, traceParentFromHeaders } from './trace-headers.js';
import type { ClaimedTask, RunTrace, TraceParentContext } from './types.js';

type OtelApi = typeof Otel;

/** The attributes a spawn span gets once the engine answered. */
export function spawnAttributes(result: { taskID: string; runID: string; created: boolean }): Otel.Attributes {
  return { [ATTR.messageId]: result.taskID, [ATTR.taskID]: result.taskID, [ATTR.runID]: result.runID, [ATTR.created]: result.created };
}

/** A span that absurd-kit started, with the context it is the active span of. */
export interface ActiveSpan {
  span: Otel.Span;
  context: Otel.Context;
}

/** The tracer of a registered provider, and the span helpers absurd-kit's modules use. */
export class Tracing {
  readonly #otel: OtelApi;
  readonly #tracer: Otel.Tracer;

  constructor(otel: OtelApi, tracer: Otel.Tracer) {
    this.#otel = otel;
    this.#tracer = tracer;
  }

  /**
   * Runs `fn` in a new span, a child of `parent` (default: the active context), with the span as
   * the active one; ends it when `fn` settles, recording a thrown error (see {@link recordError}).
   */
  async inSpan<T>(
    name: string,
    options: { kind: Otel.SpanKind; attributes: Otel.Attributes; parent?: Otel.Context | undefined },
    fn: (span: Otel.Span) => Promise<T>,
  ): Promise<T> {
    const parent = options.parent ?? this.#otel.context.active();
    const span = this.#tracer.startSpan(name, { kind: options.kind, attributes: options.attributes }, parent);
    try {
      return await this.#otel.context.with(this.#otel.trace.setSpan(parent, span), () => fn(span));
    } catch (error) {
      this.recordError(span, error);
      throw error;
    } finally {
      span.end();
    }
  }

  /**
   * A producer span for a spawn of `taskName` on `queue`; `fn` gets the headers that carry the
   * span's context to the task's runs. Headers the producer set itself (a `traceparent` already
   * there) are kept, and the span becomes their child instead.
   */
  spawn<T>(
    queue: string,
    taskName: string,
    headers: JsonObject | undefined,
    parent: TraceParentContext | undefined,
    fn: (span: Otel.Span, traceHeaders: JsonObject) => Promise<T>,
  ): Promise<T> {
    const given = traceParentFromHeaders(headers);
    const attributes = {
      [ATTR.system]: MESSAGING_SYSTEM,
      [ATTR.destination]: queue,
      [ATTR.operationType]: 'send',
      [ATTR.operationName]: 'spawn',
      [ATTR.taskName]: taskName,
    };
    const spanParent = given ? this.contextOf(given) : (parent as Otel.Context | undefined);
    return this.inSpan(`spawn ${taskName}`, { kind: this.#otel.SpanKind.PRODUCER, attributes, parent: spanParent }, (span) => {
      const context = span.spanContext();
      const carried = given
        ? {}
        : traceHeaders({ traceId: context.traceId, spanId: context.spanId, traceFlags: context.traceFlags, traceState: context.traceState?.serialize() });
      return fn(span, carried);
    });
  }

  /**
   * Starts the consumer span of one run (one execution: a first attempt, a retry, or a resume after
   * a suspension). Its parent is the spawn's context carried in the task's headers, so every run of
   * a task, in any process and after any restart, belongs to the spawn's trace; without such
   * headers the run starts a new trace.
   */
  startRun(task: ClaimedTask, queue: string): ActiveSpan {
    const carried = traceParentFromHeaders(task.headers);
    const parent = carried ? this.contextOf(carried) : this.#otel.ROOT_CONTEXT;
    const attributes: Otel.Attributes = {
      [ATTR.system]: MESSAGING_SYSTEM,
      [ATTR.destination]: queue,
      [ATTR.operationType]: 'process',
      [ATTR.operationName]: 'run',
      [ATTR.messageId]: task.task_id,
      [ATTR.taskName]: task.task_name,
      [ATTR.taskID]: task.task_id,
      [ATTR.runID]: task.run_id,
      [ATTR.attempt]: task.attempt,
    };
    if (task.wake_event) attributes[ATTR.wakeEvent] = task.wake_event;
    const span = this.#tracer.startSpan(`run ${task.task_name}`, { kind: this.#otel.SpanKind.CONSUMER, attributes }, parent);
    return { span, context: this.#otel.trace.setSpan(parent, span) };
  }

  /** Runs `fn` with `context` active (so that spans made inside are its children). */
  withContext<T>(context: Otel.Context, fn: () => T): T {
    return this.#otel.context.with(context, fn);
  }

  /**
   * The parent of a span made inside a run: the active context when it holds a span (a step's, so
   * that a spawn inside a step is that step's child), else the run's own.
   */
  parentIn(run: Otel.Context): Otel.Context {
    const active = this.#otel.context.active();
    return this.#otel.trace.getSpan(active) ? active : run;
  }

  /** An internal span within a run (a step, a wait), child of {@link parentIn}. */
  inRun<T>(run: Otel.Context, name: string, attributes: Otel.Attributes, fn: (span: Otel.Span) => Promise<T>): Promise<T> {
    return this.inSpan(name, { kind: this.#otel.SpanKind.INTERNAL, attributes, parent: this.parentIn(run) }, fn);
  }

  /** A producer span for emitting `eventName` on `queue` (a child of `parent`, default the active context). */
  emit<T>(queue: string, eventName: string, fn: () => Promise<T>, parent?: Otel.Context): Promise<T> {
    const attributes = {
      [ATTR.system]: MESSAGING_SYSTEM,
      [ATTR.destination]: queue,
      [ATTR.operationType]: 'send',
      [ATTR.operationName]: 'emit',
      [ATTR.eventName]: eventName,
    };
    return this.inSpan(`emit ${eventName}`, { kind: this.#otel.SpanKind.PRODUCER, attributes, parent }, fn);
  }

  /**
   * Records why `span` ended early. A refused value sets `absurd.validation.boundary`, `.field`
   * (the first issue's path), `.subject` and `.detail`; a control-flow signal (suspend, cancel) is
   * no error and only named; anything else is recorded as an exception. Errors set the status.
   */
  recordError(span: Otel.Span, error: unknown): void {
    if (error instanceof SuspendTask) return;
    if (isControlFlowSignal(error)) {
      span.setAttribute('absurd.signal', (error as Error).name);
      return;
    }
    if (error instanceof ValidationError) {
      span.setAttributes({
        [ATTR.validationBoundary]: error.boundary,
        [ATTR.validationField]: error.issues[0]?.path ?? '',
        [ATTR.validationSubject]: error.subject,
      });
      if (error.detail !== undefined) span.setAttribute(ATTR.validationDetail, error.detail);
    }
    span.recordException(error instanceof Error ? error : String(error));
    span.setStatus({ code: this.#otel.SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
  }

  /** Marks a span as an error without an exception (e.g. a run that failed). */
  setError(span: Otel.Span, message: string): void {
    span.setStatus({ code: this.#otel.SpanStatusCode.ERROR, message });
  }

  /** A remote context for a carried traceparent. */
  contextOf(parent: { traceId: string; spanId: string; traceFlags: number; traceState?: string | undefined }): Otel.Context {
    const spanContext: Otel.SpanContext = {
      traceId: parent.traceId,
      spanId: parent.spanId,
      traceFlags: parent.traceFlags,
      isRemote: true,
    };
    if (parent.traceState) spanContext.traceState = this.#otel.createTraceState(parent.traceState);
    return this.#otel.trace.setSpanContext(this.#otel.ROOT_CONTEXT, spanContext);
  }
}

/** The spans inside one run (see {@link RunTrace}), children of the run's span. */
export class RunSpans implements RunTrace {
  readonly #tracing: Tracing;
  readonly #run: Otel.Context;
  readonly #queue: string;

  constructor(tracing: Tracing, run: Otel.Context, queue: string) {
    this.#tracing = tracing;
    this.#run = run;
    this.#queue = queue;
  }

  parent(): TraceParentContext {
    return this.#tracing.parentIn(this.#run);
  }

  step<T>(name: string, checkpointName: string, replayed: boolean, fn: () => Promise<T>): Promise<T> {
    const attributes = { [ATTR.stepName]: name, [ATTR.checkpointName]: checkpointName, [ATTR.replayed]: replayed };
    return this.#tracing.inRun(this.#run, `step ${name}`, attributes, fn);
  }

  wait<T>(kind: string, name: string, attributes: Record<string, string | number | boolean>, fn: () => Promise<T>): Promise<T> {
    return this.#tracing.inRun(this.#run, `${kind} ${name}`, attributes, async (span) => {
      try {
        const value = await fn();
        if (!span.isRecording()) return value;
        span.setAttribute(ATTR.waitOutcome, attributes[ATTR.replayed] === true ? 'replayed' : 'resolved');
        return value;
      } catch (error) {
        span.setAttribute(ATTR.waitOutcome, error instanceof SuspendTask ? 'suspended' : error instanceof TimeoutError ? 'timeout' : 'error');
        throw error;
      }
    });
  }

  emit<T>(eventName: string, fn: () => Promise<T>): Promise<T> {
    return this.#tracing.emit(this.#queue, eventName, fn, this.#tracing.parentIn(this.#run));
  }
}
