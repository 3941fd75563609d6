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
 * This run's lease ran out before it finished (the worker measures it: claim or last renewal plus
 * the lease's length). Another worker may run the task by now, so nothing more of this run starts
 * or is written; it is a {@link FailedTask} as far as the run is concerned. `ctx.signal` is aborted
 * with it, and durable calls made afterwards throw it.
 *
 * @example
 * await ctx.step('render', async () => {
 *   for (const page of pages) {
 *     if (ctx.signal.reason instanceof LeaseLost) throw ctx.signal.reason; // stop: another worker takes over
 *     await render(page);
 *   }
 * });
 */
export class LeaseLost extends FailedTask {
  /** The run whose lease ran out. */
  readonly runID: string;
  /** Length in seconds of the lease that ran out (the claim timeout, or the last heartbeat's). */
  readonly leaseSeconds: number;

  constructor(runID: string, leaseSeconds: number) {
    super();
    this.name = 'LeaseLost';
    this.message = `the lease of run ${runID} (${leaseSeconds}s) ran out before it finished; another worker may take the task over`;
    this.runID = runID;
    this.leaseSeconds = leaseSeconds;
  }
}

/**
 * The worker was closed with a timeout, and the timeout passed while this run was still executing.
 * The run keeps its lease (another worker takes it over when the lease ends); `ctx.signal` is
 * aborted with this so that the handler can stop, and durable calls made afterwards throw it.
 *
 * @example
 * if (ctx.signal.reason instanceof WorkerClosed) log.info('shutting down; the task resumes elsewhere');
 */
export class WorkerClosed extends Error {
  constructor() {
    super('the worker was closed and its close timeout passed before this run finished');
    this.name = 'WorkerClosed';
  }
}

/**
 * True for {@link SuspendTask}, {@link CancelledTask}, {@link FailedTask} (and its {@link LeaseLost})
 * and {@link WorkerClosed}: rethrow these.
 *
 * @example
 * try {
 *   await ctx.step('charge', charge);
 * } catch (error) {
 *   if (isControlFlowSignal(error)) throw error;
 *   await ctx.step('refund', refund);
 * }
 */
export function isControlFlowSignal(error: unknown): error is SuspendTask | CancelledTask | FailedTask | WorkerClosed {
  return (
    error instanceof SuspendTask ||
    error instanceof CancelledTask ||
    error instanceof FailedTask ||
    error instanceof WorkerClosed
  );
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

/**
 * The signal that ends an execution which finds its task in `state` where it expected it running
 * (e.g. after a suspending statement whose answer was lost): `sleeping`/`pending` →
 * {@link SuspendTask} (the run was suspended, and maybe woken since), `cancelled` →
 * {@link CancelledTask}, anything else but `running` → {@link FailedTask}; undefined while running.
 */
export function signalForTaskState(state: string | undefined): Error | undefined {
  if (state === 'running') return undefined;
  if (state === 'sleeping' || state === 'pending') return new SuspendTask();
  if (state === 'cancelled') return new CancelledTask();
  return new FailedTask();
}
