/**
 * Child process of the pg-boss reference: one pg-boss instance working the no-op jobs in batches.
 * Started by bench/run.ts (see child.ts for the protocol; only `startWorker` and `stop` apply).
 */
import { PgBoss } from 'pg-boss';
import { runChild } from './child.js';
import { REFERENCE_OPTIONS, REFERENCE_QUEUE } from './settings.js';
import type { BenchContext } from './tasks.js';

const noContext = {} as BenchContext;

runChild((_pool, handlers, init) => {
  const { batchSize, burstWhenBatchFull, poolMax, schedule, supervise } = REFERENCE_OPTIONS.pgboss;
  const boss = new PgBoss({ connectionString: init.url, max: poolMax, schedule, supervise });
  boss.on('error', (error: unknown) => console.error('[bench child] pg-boss:', error));
  return {
    spawn: () => Promise.reject(new Error('the pg-boss child only works jobs')),
    emit: () => Promise.reject(new Error('the pg-boss child only works jobs')),
    startWorker: async () => {
      await boss.start();
      await boss.work<{ i: number }>(REFERENCE_QUEUE, { batchSize, burstWhenBatchFull }, async (jobs) => {
        for (const job of jobs) await handlers.noop(job.data, noContext);
      });
    },
    close: async () => {
      await boss.stop({ graceful: true, timeout: 30_000 });
    },
  };
});
