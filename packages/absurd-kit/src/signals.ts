/**
 * Control-flow signals. A handler's durable calls throw these to stop the current execution without
 * failing the task; the worker recognises them and returns quietly. They are not errors: a `catch`
 * around `ctx.step`, `ctx.sleepFor`, `ctx.awaitEvent` or `ctx.awaitTaskResult` must rethrow them —
 * test with {@link isControlFlowSignal}.
 *
 * @example
 * try {
 *   await ctx.step('charge', charge);
 * } catch (error) {
 *   if (isControlFlowSignal(error)) throw error;
 *   await ctx.step('refund', refund);
 * }
 */

/**
 * The task suspended (sleeping, or waiting for an event or a child); it resumes later. Exported,
 * like its siblings, under the names `absurd-sdk` uses, so that code written for it keeps working.
 *
 * @example
 * await expect(ctx.sleepFor('cool-down', 60)).rejects.toBeInstanceOf(SuspendTask);
 */
export class SuspendTask extends Error {
  constructor() {
    super('Task suspended');
    this.name = 'SuspendTask';
  }
}

/**
 * The task was cancelled (SQLSTATE AB001); nothing more of it runs.
 *
 * @example
 * catch (error) { if (error instanceof CancelledTask) await releaseReservation(); throw error; }
 */
export class CancelledTask extends Error {
  constructor() {
    super('Task cancelled');
    this.name = 'CancelledTask';
  }
}

/**
 * This run already failed, e.g. its lease expired and another worker took over (SQLSTATE AB002).
 *
 * @example
 * catch (error) { if (error instanceof FailedTask) log.info('another worker has this task now'); throw error; }
 */
export class FailedTask extends Error {
  constructor() {
    super('Task already failed');
    this.name = 'FailedTask';
  }
}

/**
 * True for {@link SuspendTask}, {@link CancelledTask} and {@link FailedTask}: rethrow these.
 *
 * @example
 * try {
 *   await ctx.step('charge', charge);
 * } catch (error) {
 *   if (isControlFlowSignal(error)) throw error;
 *   await ctx.step('refund', refund);
 * }
 */
export function isControlFlowSignal(error: unknown): error is SuspendTask | CancelledTask | FailedTask {
  return error instanceof SuspendTask || error instanceof CancelledTask || error instanceof FailedTask;
}

/**
 * The signal for a batched write that the engine refused because of the run's state (the outcome
 * `absurd.kit_complete_runs` / `kit_set_checkpoints` report where the single-call functions raise
 * AB001/AB002): `cancelled` → {@link CancelledTask}, `failed` → {@link FailedTask}; else undefined.
 */
export function signalFromOutcome(outcome: string): CancelledTask | FailedTask | undefined {
  if (outcome === 'cancelled') return new CancelledTask();
  if (outcome === 'failed') return new FailedTask();
  return undefined;
}

/**
 * Maps the engine's "stop quietly" SQLSTATEs to their signals: AB001 → {@link CancelledTask},
 * AB002 → {@link FailedTask}; anything else is returned unchanged.
 */
export function signalFromDatabaseError(error: unknown): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'AB001') return new CancelledTask();
  if (code === 'AB002') return new FailedTask();
  return error;
}
