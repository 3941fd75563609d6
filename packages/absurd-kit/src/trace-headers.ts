/**
 * The W3C Trace Context of a task, carried in its headers: `traceparent` and `tracestate` as
 * top-level string keys of the headers object (`absurd.spawn_task`'s `headers` option). Any
 * producer can set them — Python's `absurd_sdk`, Go, psql — and the worker continues its trace.
 * Written and read here rather than through the globally registered propagator, so that the format
 * does not depend on how the application configured OpenTelemetry (docs/observability.md).
 */
import type { JsonObject } from './json.js';

/** The header key of the W3C `traceparent` (lowercase, as the recommendation writes it). */
export const TRACEPARENT_HEADER = 'traceparent';
/** The header key of the W3C `tracestate`; written only when not empty. */
export const TRACESTATE_HEADER = 'tracestate';

/** A span's identity as a traceparent carries it. */
export interface TraceParent {
  traceId: string;
  spanId: string;
  traceFlags: number;
  traceState?: string | undefined;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/**
 * The headers that carry `parent`: `{ traceparent: '00-<trace id>-<span id>-<flags>' }`, plus
 * `tracestate` when it is not empty.
 *
 * @example
 * traceHeaders({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1 });
 * // { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }
 */
export function traceHeaders(parent: TraceParent): JsonObject {
  const headers: JsonObject = {
    [TRACEPARENT_HEADER]: `00-${parent.traceId}-${parent.spanId}-${(parent.traceFlags & 0xff).toString(16).padStart(2, '0')}`,
  };
  if (parent.traceState) headers[TRACESTATE_HEADER] = parent.traceState;
  return headers;
}

/**
 * The trace context a task's headers carry, or undefined when they carry none or an invalid one
 * (a malformed value is ignored, as the recommendation asks: the run then starts a new trace).
 */
export function traceParentFromHeaders(headers: JsonObject | null | undefined): TraceParent | undefined {
  const value = headers?.[TRACEPARENT_HEADER];
  if (typeof value !== 'string') return undefined;
  const match = TRACEPARENT.exec(value.trim().toLowerCase());
  if (!match) return undefined;
  const [, version, traceId, spanId, flags, rest] = match as unknown as [string, string, string, string, string, string | undefined];
  // Version ff is invalid; version 00 has exactly four fields; later versions may add fields.
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined;
  const state = headers?.[TRACESTATE_HEADER];
  return { traceId, spanId, traceFlags: parseInt(flags, 16), traceState: typeof state === 'string' && state !== '' ? state : undefined };
}
