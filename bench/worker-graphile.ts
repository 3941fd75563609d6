/**
 * Child process of the graphile-worker reference: one runner with its local queue on, working the
 * no-op jobs. Started by bench/run.ts (see child.ts for the protocol; only `startWorker` and `stop`
 * apply).
 */
import { Logger, run, type Runner } from 'graphile-worker';
import { benchLog, runChild } from './child.js';
import { REFERENCE_OPTIONS, REFERENCE_QUEUE } from './settings.js';
import type { BenchContext, BenchParams } from './tasks.js';

const noContext = {} as BenchContext;

runChild((_pool, handlers, init) => {
  let runner: Runner | undefined;
  const { concurrency, ...worker } = REFERENCE_OPTIONS.graphile;
  return {
    spawn: () => Promise.reject(new Error('the graphile-worker child only works jobs')),
    emit: () => Promise.reject(new Error('the graphile-worker child only works jobs')),
    startWorker: async () => {
      runner = await run({
        connectionString: init.url,
        concurrency,
        noHandleSignals: true,
        logger: new Logger(() => (level, message) => {
          if (level === 'error' || level === 'warning') benchLog.warn(`graphile-worker: ${message}`);
        }),
        taskList: {
          [REFERENCE_QUEUE]: async (payload) => {
            await handlers.noop(payload as BenchParams, noContext);
          },
        },
        preset: { worker: { ...worker, localQueue: { ...worker.localQueue } } },
      });
    },
    close: async () => {
      await runner?.stop();
    },
  };
});
