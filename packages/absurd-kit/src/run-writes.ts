import { Batcher } from './batcher.js';
import { isConnectionError } from './outage.js';
import { setCheckpoints, setCheckpointState } from './queries/checkpoints.queries.js';
import { completeRun, completeRuns } from './queries/runs.queries.js';
import type { Queryable } from './queryable.js';
import type { CheckpointWrite, EngineFeatures } from './types.js';

/**
 * The writes a worker makes for the runs it executes — completions and checkpoints — batched per
 * queue: those that coincide go out in one statement (`absurd.kit_complete_runs`,
 * `absurd.kit_set_checkpoints`) instead of one call each. On an engine without those functions
 * (Absurd's schema) each write is its own call of `complete_run` / `set_task_checkpoint_state`.
 * Outcomes are per write: `completed` / `ok`, or the state that refused it (`cancelled`, `failed`,
 * `not_found`, …).
 */
export class RunWrites {
  readonly #con: Queryable;
  readonly #queueName: string;
  readonly #completions: Batcher<{ runID: string; result: string }, string> | undefined;
  readonly #checkpoints: Batcher<CheckpointWrite, string> | undefined;

  constructor(con: Queryable, queueName: string, features: Pick<EngineFeatures, 'batchedCompletions' | 'batchedCheckpoints'>) {
    this.#con = con;
    this.#queueName = queueName;
    if (features.batchedCompletions) this.#completions = new Batcher((items) => this.#completeRuns(items));
    if (features.batchedCheckpoints) this.#checkpoints = new Batcher((writes) => this.#writeCheckpoints(writes));
  }

  /** Completes a run with its result (JSON text). */
  complete(runID: string, result: string): Promise<string> {
    return this.#completions ? this.#completions.submit({ runID, result }) : this.#completeOne(runID, result);
  }

  /** Writes a checkpoint (and extends its run's lease). */
  writeCheckpoint(write: CheckpointWrite): Promise<string> {
    return this.#checkpoints ? this.#checkpoints.submit(write) : this.#writeOne(write);
  }

  async #completeRuns(items: { runID: string; result: string }[]): Promise<string[]> {
    const rows = await completeRuns.run(
      { queueName: this.#queueName, runIds: items.map((c) => c.runID), results: items.map((c) => c.result) },
      this.#con,
    );
    const outcomes = new Map(rows.map((row) => [row.run_id, row.outcome]));
    return items.map((c) => outcomes.get(c.runID) ?? 'not_found');
  }

  /**
   * Writes checkpoints in one statement. If that statement fails (e.g. one batch holds the same
   * checkpoint twice), each write is retried on its own, so a write fails only for its own reason.
   */
  async #writeCheckpoints(writes: CheckpointWrite[]): Promise<string[]> {
    try {
      const rows = await setCheckpoints.run(
        {
          queueName: this.#queueName,
          taskIds: writes.map((w) => w.taskID),
          stepNames: writes.map((w) => w.stepName),
          states: writes.map((w) => w.state) as string[],
          ownerRuns: writes.map((w) => w.ownerRun),
          extendBy: writes.map((w) => w.extendBy ?? 0),
        },
        this.#con,
      );
      return writes.map((_, i) => rows[i]?.outcome ?? 'not_found');
    } catch (error) {
      // A lost connection fails every write alike: each run sends its own again (see lease.ts).
      if (writes.length === 1 || isConnectionError(error)) throw error;
      return Promise.all(writes.map((write) => this.#writeOne(write)));
    }
  }

  /** absurd.complete_run: its AB001/AB002 become the outcomes kit_complete_runs reports. */
  async #completeOne(runID: string, result: string): Promise<string> {
    try {
      await completeRun.run({ queueName: this.#queueName, runId: runID, result }, this.#con);
      return 'completed';
    } catch (error) {
      return refusalOutcome(error);
    }
  }

  async #writeOne(write: CheckpointWrite): Promise<string> {
    try {
      await setCheckpointState.run(
        {
          queueName: this.#queueName,
          taskId: write.taskID,
          checkpointName: write.stepName,
          state: write.state,
          ownerRunId: write.ownerRun,
          extendClaimBy: write.extendBy,
        },
        this.#con,
      );
      return 'ok';
    } catch (error) {
      return refusalOutcome(error);
    }
  }
}

/** The outcome of a write the engine refused with AB001 (`cancelled`) or AB002 (`failed`); other errors are thrown. */
function refusalOutcome(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'AB001') return 'cancelled';
  if (code === 'AB002') return 'failed';
  throw error;
}
