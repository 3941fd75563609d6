/** The most items sent in one statement. */
const MAX_BATCH = 64;

interface Pending<I, O> {
  item: I;
  resolve(outcome: O): void;
  reject(error: unknown): void;
}

/**
 * Groups calls into batches: items submitted while a batch is on its way (or in the same turn of
 * the event loop) go out together in one `send`. A lone item is sent at once, so batching adds no
 * latency; under load one statement does the work of many, which saves the database a call (and
 * its planning) per item. `send` returns one outcome per item, in order; if it throws, every item
 * of that batch is rejected with the error.
 *
 * @example
 * const completions = new Batcher((runs: Run[]) => completeRunsInOneStatement(runs));
 * const outcome = await completions.submit(run);
 */
export class Batcher<I, O> {
  readonly #send: (items: I[]) => Promise<O[]>;
  #pending: Pending<I, O>[] = [];
  #flushing = false;

  constructor(send: (items: I[]) => Promise<O[]>) {
    this.#send = send;
  }

  /** Adds `item` to the next batch; resolves with its outcome. */
  submit(item: I): Promise<O> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
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
        const outcomes = await this.#send(batch.map((p) => p.item));
        batch.forEach((p, i) => p.resolve(outcomes[i] as O));
      } catch (error) {
        for (const p of batch) p.reject(error);
      }
    }
    this.#flushing = false;
  }
}
