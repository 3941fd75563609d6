/**
 * Child process of the "peer" side: the `absurd-sdk` npm package's client and worker, on the same
 * engine schema. Started by bench/run.ts (see child.ts for the protocol).
 */
import { Absurd } from 'absurd-sdk';
import { benchLog, runChild } from './child.js';
import { BENCH_QUEUE, TASK, WORKER_OPTIONS } from './settings.js';
import type { BenchContext, BenchParams } from './tasks.js';

runChild((pool, handlers) => {
  const app = new Absurd({ db: pool, queueName: BENCH_QUEUE, log: benchLog });
  app.registerTask({ name: TASK.noop }, (params: BenchParams, ctx) => handlers.noop(params, ctx as BenchContext));
  app.registerTask({ name: TASK.event }, (params: BenchParams, ctx) => handlers.event(params, ctx as BenchContext));
  app.registerTask({ name: TASK.steps }, (params: BenchParams, ctx) => handlers.steps(params, ctx as BenchContext));
  let worker: { close(): Promise<void> } | undefined;
  return {
    spawn: async (task, params) => (await app.spawn(task, params)).taskID,
    emit: (event, payload) => app.emitEvent(event, { ...payload }),
    startWorker: async () => {
      worker = await app.startWorker({ ...WORKER_OPTIONS.peer });
    },
    close: async () => {
      await worker?.close();
      await app.close();
    },
  };
});
