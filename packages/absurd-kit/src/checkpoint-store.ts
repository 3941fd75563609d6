/**
 * The checkpoints of one run as its task context sees them, and the writes of new ones.
 */
import { toJsonParam, type JsonValue } from './json.js';
import { getCheckpointStates, setCheckpointState } from './queries/checkpoints.queries.js';
import { unguarded } from './lease.js';
import { signalFromDatabaseError, signalFromOutcome } from './signals.js';
import type { TaskContextRuntime } from './types.js';

/** What the store needs of the run it belongs to. */
export interface CheckpointRun {
  task_id: string;
  run_id: string;
  /** Checkpoints returned with the claim (`absurd.kit_claim_task`); loaded when absent. */
  checkpoints?: Record<string, JsonValue> | null | undefined;
}

/**
 * Every checkpoint visible to a run from its start (claimed with the run, or loaded once), then the
 * run's own writes: a miss means the step has not been done, so no query is sent per step. (Only
 * this run writes its task's checkpoints while it runs; emit_event writes to sleeping runs only.)
 * Also hands out checkpoint names: the requested name the first time in an execution, then
 * `name#2`, `name#3`, … (one counter per name).
 */
export class CheckpointStore {
  readonly #runtime: TaskContextRuntime;
  readonly #run: CheckpointRun;
  readonly #states: Map<string, JsonValue>;
  /** Written by this run, as the JSON text sent; parsed on the first read only (most are never read back). */
  readonly #written = new Map<string, string | null>();
  readonly #counters = new Map<string, number>();

  private constructor(runtime: TaskContextRuntime, run: CheckpointRun, states: Map<string, JsonValue>) {
    this.#runtime = runtime;
    this.#run = run;
    this.#states = states;
  }

  /** The store of `run`: the checkpoints its claim returned, or those loaded now (hiding later attempts'). */
  static async load(runtime: TaskContextRuntime, run: CheckpointRun): Promise<CheckpointStore> {
    const states = new Map<string, JsonValue>();
    if (run.checkpoints && typeof run.checkpoints === 'object') {
      for (const [name, state] of Object.entries(run.checkpoints)) states.set(name, state);
    } else {
      const params = { queueName: runtime.queueName, taskId: run.task_id, runId: run.run_id };
      const rows = await (runtime.guard ?? unguarded).call(() => getCheckpointStates.run(params, runtime.con));
      for (const row of rows) states.set(row.checkpoint_name, row.state);
    }
    return new CheckpointStore(runtime, run, states);
  }

  /** The checkpoint name of the next durable call named `name` in this execution. */
  nameFor(name: string): string {
    const count = (this.#counters.get(name) ?? 0) + 1;
    this.#counters.set(name, count);
    return count === 1 ? name : `${name}#${count}`;
  }

  /** The stored state of a checkpoint, or undefined when it has not been written. */
  get(checkpointName: string): JsonValue | undefined {
    const state = this.#states.get(checkpointName);
    if (state !== undefined || !this.#written.has(checkpointName)) return state;
    const text = this.#written.get(checkpointName)!;
    const parsed = text === null ? null : (JSON.parse(text) as JsonValue);
    this.#written.delete(checkpointName);
    this.#states.set(checkpointName, parsed);
    return parsed;
  }

  /** Records a state the engine wrote for this run (e.g. the payload `await_event` returned). */
  remember(checkpointName: string, state: JsonValue): void {
    this.#written.delete(checkpointName);
    this.#states.set(checkpointName, state);
  }

  /**
   * Writes a checkpoint (batched with other runs' writes when the runtime offers it) and, with
   * `extendLease`, extends the run's lease by the claim timeout. A write the engine refuses because
   * the task was cancelled or the run already failed throws the matching control-flow signal.
   * After a connection failure the write is sent again while the run holds its lease: writing the
   * same checkpoint of the same run twice stores the same state (an upsert) and extends the lease
   * again, so a first write that committed unseen changes nothing.
   */
  async write(checkpointName: string, value: unknown, extendLease = true): Promise<void> {
    const runtime = this.#runtime;
    const extendBy = extendLease ? runtime.claimTimeout : null;
    const text = toJsonParam(value);
    const { task_id: taskID, run_id: runID } = this.#run;
    const { writeCheckpoint } = runtime;
    const send: () => Promise<unknown> = writeCheckpoint
      ? async () => {
          const outcome = await writeCheckpoint({ taskID, stepName: checkpointName, state: text, ownerRun: runID, extendBy });
          if (outcome !== 'ok') throw checkpointRefusal(outcome, runID, runtime.queueName);
        }
      : () =>
          withTaskState(() =>
            setCheckpointState.run(
              { queueName: runtime.queueName, taskId: taskID, checkpointName, state: text, ownerRunId: runID, extendClaimBy: extendBy },
              runtime.con,
            ),
          );
    await (runtime.guard ?? unguarded).call(send, { renews: extendBy });
    this.#states.delete(checkpointName);
    this.#written.set(checkpointName, text);
    if (extendBy) runtime.onLeaseExtended?.(extendBy);
  }

  /**
   * The absolute deadline (ms) of the timed wait `checkpointName`: `timeout` seconds from `now()`
   * the first time, stored as the checkpoint `<checkpointName>$deadline`, so that suspends and
   * replays keep the first deadline instead of starting the timeout again.
   */
  async deadline(checkpointName: string, timeout: number, now: () => Promise<number>): Promise<number> {
    const key = `${checkpointName}$deadline`;
    const stored = this.get(key);
    if (typeof stored === 'string') return Date.parse(stored);
    const deadline = (await now()) + timeout * 1000;
    await this.write(key, new Date(deadline).toISOString(), false);
    return deadline;
  }
}

/** Runs a call on the task's state, turning the engine's AB001/AB002 into control-flow signals. */
export async function withTaskState<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw signalFromDatabaseError(error);
  }
}

/** What absurd.set_task_checkpoint_state raises for a write refused with `outcome`. */
function checkpointRefusal(outcome: string, runID: string, queueName: string): Error {
  const signal = signalFromOutcome(outcome);
  if (signal) return signal;
  if (outcome === 'not_found') return new Error(`Run "${runID}" not found for checkpoint`);
  return new Error(`checkpoint write refused (${outcome}) for run "${runID}" in queue "${queueName}"`);
}
