/**
 * The task bodies both sides run, written once against the few context methods the two clients
 * share, so that the handlers are the same code on each side.
 */
import { wakeEventName } from './settings.js';

/** What the bodies need from a task context (both clients' contexts have it). */
export interface BenchContext {
  step<T>(name: string, fn: () => Promise<T>): Promise<T>;
  awaitEvent(eventName: string): Promise<unknown>;
}

/** Params of every bench task. */
export interface BenchParams {
  i: number;
}

/** A step's small result. */
export interface StepValue {
  n: number;
  ok: boolean;
}

/** Does nothing. */
export async function noopTask(_params: BenchParams, _ctx: BenchContext): Promise<null> {
  return null;
}

/** Three steps, each returning a small object; returns a small object. */
export async function threeStepTask(params: BenchParams, ctx: BenchContext): Promise<{ i: number; n: number }> {
  const a = await ctx.step('a', async (): Promise<StepValue> => ({ n: 1, ok: true }));
  const b = await ctx.step('b', async (): Promise<StepValue> => ({ n: a.n + 1, ok: true }));
  const c = await ctx.step('c', async (): Promise<StepValue> => ({ n: b.n + 1, ok: true }));
  return { i: params.i, n: c.n };
}

/**
 * Waits for its event, then returns. `onResumed` is called when the wait is over (the handler
 * runs again from the top after the event wakes the task; only then does the wait return).
 */
export async function eventTask(
  params: BenchParams,
  ctx: BenchContext,
  onResumed: (i: number) => void,
): Promise<{ i: number }> {
  await ctx.awaitEvent(wakeEventName(params.i));
  onResumed(params.i);
  return { i: params.i };
}
