import type { WorkerCloseOptions } from './worker.js';

/** Something that can be closed gracefully: a {@link Worker}, or an `Absurd` client. */
export interface Closable {
  close(options?: WorkerCloseOptions): Promise<void>;
}

/** Options of {@link closeOnSignals}. */
export interface CloseOnSignalsOptions extends WorkerCloseOptions {
  /** Signals to handle; default SIGINT and SIGTERM. */
  signals?: NodeJS.Signals[];
  /** Called once everything is closed; default sets `process.exitCode` and lets the process end. */
  onClosed?: (signal: NodeJS.Signals) => void;
  /** Receives an error thrown while closing. */
  onError?: (error: unknown) => void;
}

/**
 * Closes workers (and clients) gracefully on SIGINT/SIGTERM: they stop claiming and finish what is
 * in flight (up to `timeout` seconds). A second signal exits at once with code 130. Returns a
 * function that removes the handlers.
 *
 * @example
 * const worker = await app.startWorker({ concurrency: 4 });
 * closeOnSignals([worker, app], { timeout: 30 });
 */
export function closeOnSignals(targets: Closable | Closable[], options: CloseOnSignalsOptions = {}): () => void {
  const list = Array.isArray(targets) ? targets : [targets];
  const signals = options.signals ?? ['SIGINT', 'SIGTERM'];
  let closing = false;
  const handler = (signal: NodeJS.Signals) => {
    if (closing) {
      process.exit(130);
    }
    closing = true;
    void (async () => {
      try {
        for (const target of list) await target.close({ timeout: options.timeout });
      } catch (error) {
        options.onError?.(error);
        process.exitCode = 1;
      }
      remove();
      if (options.onClosed) options.onClosed(signal);
      else process.exitCode ??= 0;
    })();
  };
  const remove = () => {
    for (const signal of signals) process.off(signal, handler);
  };
  for (const signal of signals) process.on(signal, handler);
  return remove;
}

