/**
 * The W3C Trace Context in a task's headers, as producers in any language write it.
 */
import { describe, expect, it } from 'vitest';
import { traceHeaders, traceParentFromHeaders } from '../../packages/absurd-kit/src/trace-headers.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

describe('trace headers', () => {
  it('writes traceparent in the W3C form, and tracestate only when there is one', () => {
    expect(traceHeaders({ traceId: TRACE, spanId: SPAN, traceFlags: 1 })).toEqual({ traceparent: `00-${TRACE}-${SPAN}-01` });
    expect(traceHeaders({ traceId: TRACE, spanId: SPAN, traceFlags: 0, traceState: 'a=1,b=2' })).toEqual({
      traceparent: `00-${TRACE}-${SPAN}-00`,
      tracestate: 'a=1,b=2',
    });
  });

  it('reads what it writes, and what another producer wrote (upper case, a later version with more fields)', () => {
    expect(traceParentFromHeaders({ traceparent: `00-${TRACE}-${SPAN}-01`, tracestate: 'v=x' })).toEqual({
      traceId: TRACE,
      spanId: SPAN,
      traceFlags: 1,
      traceState: 'v=x',
    });
    expect(traceParentFromHeaders({ traceparent: `00-${TRACE.toUpperCase()}-${SPAN}-01` })?.traceId).toBe(TRACE);
    expect(traceParentFromHeaders({ traceparent: `01-${TRACE}-${SPAN}-01-future` })?.spanId).toBe(SPAN);
  });

  it('ignores a missing or invalid traceparent (the run starts a new trace)', () => {
    for (const headers of [
      null,
      {},
      { traceparent: 42 },
      { traceparent: 'garbage' },
      { traceparent: `ff-${TRACE}-${SPAN}-01` },
      { traceparent: `00-${TRACE}-${SPAN}-01-extra` },
      { traceparent: `00-${'0'.repeat(32)}-${SPAN}-01` },
      { traceparent: `00-${TRACE}-${'0'.repeat(16)}-01` },
      { traceparent: `00-${TRACE.slice(1)}-${SPAN}-01` },
    ]) {
      expect(traceParentFromHeaders(headers as never), JSON.stringify(headers)).toBeUndefined();
    }
  });
});
