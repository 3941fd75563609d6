/**
 * Child process of the "ours" side: absurd-kit's client and worker, through its public API only.
 * Started by bench/run.ts (see child.ts for the protocol).
 */
import { Absurd, type Worker } from 'absurd-kit';
import { runChild } from './child.js';
import { benchLog } from './child.js';
import { BENCH_QUEUE, TASK, WORKER_OPTIONS } from './settings.js';
import type { BenchContext, BenchParams } from './tasks.js';

runChild(async (pool, handlers, init) => {
  // Before the client: it imports @opentelemetry/api when it is made.
  const stopTelemetry = init.tracing ? (await import('./tracing-sdk.js')).registerBenchTelemetry() : undefined;
  const app = new Absurd({ db: pool, queueName: BENCH_QUEUE, log: benchLog });
  app.registerTask({ name: TASK.noop }, (params: BenchParams, ctx) => handlers.noop(params, ctx as unknown as BenchContext));
  app.registerTask({ name: TASK.event }, (params: BenchParams, ctx) => handlers.event(params, ctx as unknown as BenchContext));
  if (init.variant === 'typed') {
    // Same body; the context checks each step result, the worker the params and the result. The
    // contracts (and so Zod) load only for this variant, as in an application without contracts.
    const { threeStepContract } = await import('./contracts.js');
    app.registerTask(threeStepContract, (params, ctx) =>
      handlers.steps(params, ctx as unknown as BenchContext) as Promise<{ i: number; n: number }>,
    );
  } else {
    app.registerTask({ name: TASK.steps }, (params: BenchParams, ctx) => handlers.steps(params, ctx as unknown as BenchContext));
  }
  let worker: Worker | undefined;
  return {
    spawn: async (task, params) => (await app.spawn(task, params)).taskID,
    spawnMany: async (task, params) => (await app.spawnMany(task, params.map((p) => ({ params: p })))).map((r) => r.taskID),
    emit: (event, payload) => app.emitEvent(event, { ...payload }),
    startWorker: async () => {
      worker = await app.startWorker({ ...WORKER_OPTIONS.ours });
    },
    close: async () => {
      await worker?.close();
      await app.close();
      await stopTelemetry?.();
    },
  };
});
