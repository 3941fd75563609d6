/**
 * Waiting for Ctrl-C or SIGTERM in the long-running commands (`dev`, `dashboard`).
 */

/**
 * Resolves `received` with the first SIGINT/SIGTERM; `dispose` removes the handlers.
 *
 * @example
 * const signal = stopSignal();
 * try { await signal.received; } finally { signal.dispose(); }
 */
export function stopSignal(): { received: Promise<NodeJS.Signals>; dispose(): void } {
  let resolve: (signal: NodeJS.Signals) => void = () => {};
  const received = new Promise<NodeJS.Signals>((r) => (resolve = r));
  const onSignal = (signal: NodeJS.Signals) => resolve(signal);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    received,
    dispose() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
