import { completeRuns } from './queries/runs.queries.js';
import { queryConnection, type Queryable } from './queryable.js';

/** The longest batch sent in one statement. */
const MAX_BATCH = 64;

interface PendingCompletion {
  runId: string;
  result: string;
  resolve(outcome: string): void;
  reject(error: unknown): void;
}

/**
 * Completes runs in batches: completions requested while a batch is on its way (or in the same
 * turn of the event loop) go out together in one `absurd.kit_complete_runs` call. A lone
 * completion is sent at once, so batching costs no latency; under load one statement completes
 * many runs, which saves the database a call (and its planning) per run.
 *
 * Each completion resolves with its run's outcome: `completed`, or the state that prevented it
 * (`cancelled`, `failed`, …, `not_found`).
 */
export class CompletionBatcher {
  readonly #con: Queryable;
  readonly #queueName: string;
  #pending: PendingCompletion[] = [];
  #flushing = false;

  constructor(con: Queryable, queueName: string) {
    this.#con = con;
    this.#queueName = queueName;
  }

  /** Completes `runId` with `result` (JSON text); resolves with the outcome. */
  complete(runId: string, result: string): Promise<string> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ runId, result, resolve, reject });
      if (!this.#flushing) {
        this.#flushing = true;
        setImmediate(() => void this.#flush());
      }
    });
  }

  async #flush(): Promise<void> {
    while (this.#pending.length > 0) {
      const batch = this.#pending.splice(0, MAX_BATCH);
      try {
        const rows = await completeRuns.run(
          { queueName: this.#queueName, runIds: batch.map((c) => c.runId), results: batch.map((c) => c.result) },
          queryConnection(this.#con),
        );
        const outcomes = new Map(rows.map((row) => [row.run_id, row.outcome]));
        for (const completion of batch) completion.resolve(outcomes.get(completion.runId) ?? 'not_found');
      } catch (error) {
        for (const completion of batch) completion.reject(error);
      }
    }
    this.#flushing = false;
  }
}
