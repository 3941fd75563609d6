import { Batcher } from './batcher.js';
import { isConnectionError } from './outage.js';
import { setCheckpoints, setCheckpointState } from './queries/checkpoints.queries.js';
import { completeRuns } from './queries/runs.queries.js';
import type { Queryable } from './queryable.js';
import type { CheckpointWrite } from './types.js';

/**
 * The writes a worker makes for the runs it executes — completions and checkpoints — batched per
 * queue: those that coincide go out in one statement (`absurd.kit_complete_runs`,
 * `absurd.kit_set_checkpoints`) instead of one call each. Outcomes are per write: `completed` /
 * `ok`, or the state that refused it (`cancelled`, `failed`, `not_found`, …).
 */
export class RunWrites {
  readonly #con: Queryable;
  readonly #queueName: string;
  readonly #completions: Batcher<{ runID: string; result: string }, string>;
  readonly #checkpoints: Batcher<CheckpointWrite, string>;

  constructor(con: Queryable, queueName: string) {
    this.#con = con;
    this.#queueName = queueName;
    this.#completions = new Batcher((items) => this.#completeRuns(items));
    this.#checkpoints = new Batcher((writes) => this.#writeCheckpoints(writes));
  }

  /** Completes a run with its result (JSON text). */
  complete(runID: string, result: string): Promise<string> {
    return this.#completions.submit({ runID, result });
  }

  /** Writes a checkpoint (and extends its run's lease). */
  writeCheckpoint(write: CheckpointWrite): Promise<string> {
    return this.#checkpoints.submit(write);
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
      const code = (error as { code?: unknown }).code;
      if (code === 'AB001') return 'cancelled';
      if (code === 'AB002') return 'failed';
      throw error;
    }
  }
}
