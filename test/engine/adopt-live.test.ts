/**
 * Adoption on a database in use: Absurd's schema with tasks in every state on an unpartitioned,
 * a partitioned and a quoted queue, adopted while absurd-sdk workers hold running tasks and
 * churn through a busy queue and a loop of raw SQL claims works another. Nothing of the waiting
 * work changes, no worker sees an error, and afterwards every task reaches its end, finished by
 * absurd-kit's worker in one run of the test and by absurd-sdk's in the other.
 */
import { Absurd as SdkAbsurd } from 'absurd-sdk';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { Absurd } from '../../packages/absurd-kit/src/index.js';
import { migrate, schemaStatus } from '../../packages/absurd-kit/src/migrate.js';
import {
  expectedEnds,
  populateEveryState,
  runJob,
  snapshotRows,
  useAbsurdDatabases,
  type EveryState,
  type JobContext,
  type JobParams,
} from '../support/absurd-schema.js';

const absurd = useAbsurdDatabases();

/** Logs that keep their lines, so that a test can check nothing went wrong. */
function quietLog() {
  const errors: unknown[][] = [];
  return { errors, log: () => {}, info: () => {}, warn: () => {}, error: (...args: unknown[]) => void errors.push(args) };
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const tableOf = (prefix: string, queue: string) => `absurd.${pg.escapeIdentifier(`${prefix}_${queue}`)}`;

describe.each([['absurd-kit'], ['absurd-sdk']] as const)('adopted while Absurd workers run, then finished by %s', (finisher) => {
  it('changes none of the waiting work, disturbs no worker, and every task reaches its end', { timeout: 120_000 }, async () => {
    const url = await absurd.create();
    const pool = new pg.Pool({ connectionString: url, max: 12 });
    pool.on('error', () => {});
    const sdkErrors: unknown[] = [];
    const closers: (() => Promise<unknown>)[] = [];
    try {
      const tag = `${process.pid}${finisher === 'absurd-kit' ? 'k' : 's'}`;
      const stateQueues = [
        { name: `plain_${tag}`, mode: 'unpartitioned' },
        { name: `part_${tag}`, mode: 'partitioned' },
        { name: `it's "quoted" ${tag}`, mode: 'unpartitioned' },
      ];
      const busy = `busy_${tag}`;
      const raw = `raw_${tag}`;
      for (const queue of [...stateQueues, { name: busy, mode: 'unpartitioned' }, { name: raw, mode: 'partitioned' }]) {
        await pool.query('select absurd.create_queue($1, $2)', [queue.name, queue.mode]);
      }

      // On each queue of waiting work, an absurd-sdk worker (one slot) holds a running task.
      let openGate = () => {};
      const gate = new Promise<void>((resolve) => (openGate = resolve));
      const holders: { sdk: SdkAbsurd; worker: { close(): Promise<void> }; task: string; queue: string }[] = [];
      for (const { name } of stateQueues) {
        const sdk = new SdkAbsurd({ db: pool, queueName: name, log: quietLog() });
        sdk.registerTask({ name: 'hold' }, async (_params, ctx) => {
          const before = await ctx.step('before', async () => 'held');
          await gate;
          return { before };
        });
        const { taskID } = await sdk.spawn('hold', {});
        const worker = await sdk.startWorker({ pollInterval: 0.05, fatalOnLeaseTimeout: false, onError: (e) => sdkErrors.push(e) });
        holders.push({ sdk, worker, task: taskID, queue: name });
        closers.push(() => worker.close());
      }
      for (const holder of holders) {
        await waitFor('a held task to run', async () => {
          const { rows } = await pool.query(`select state from ${tableOf('c', holder.queue)} where task_id = $1`, [holder.task]);
          return rows.length === 1;
        });
      }
      const tasks: Record<string, EveryState> = {};
      for (const { name } of stateQueues) tasks[name] = await populateEveryState(pool, name);
      const before = await snapshotRows(pool, stateQueues.map((q) => q.name));

      // Work that goes on during the adoption: an absurd-sdk worker on a busy queue fed by a
      // producer, and raw SQL claims (as a Python or Go worker sends them) on another.
      const busySdk = new SdkAbsurd({ db: pool, queueName: busy, log: quietLog() });
      busySdk.registerTask({ name: 'quick' }, async (params: { i: number }, ctx) => ctx.step('square', async () => params.i * params.i));
      const busyWorker = await busySdk.startWorker({ concurrency: 2, pollInterval: 0.02, onError: (e) => sdkErrors.push(e) });
      closers.push(() => busyWorker.close());
      let producing = true;
      let spawned = 0;
      const producer = (async () => {
        while (producing) {
          await busySdk.spawn('quick', { i: spawned });
          spawned += 1;
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      })();
      let rawRounds = 0;
      const rawErrors: unknown[] = [];
      const rawClaims = (async () => {
        const client = await pool.connect();
        try {
          while (producing) {
            try {
              await client.query(`select absurd.spawn_task($1, 'raw', '{}', '{}')`, [raw]);
              const { rows } = await client.query<{ run_id: string; task_id: string }>(
                `select run_id, task_id from absurd.claim_task($1, 'raw-worker', 30, 1)`,
                [raw],
              );
              for (const run of rows) {
                await client.query(`select absurd.set_task_checkpoint_state($1, $2, 'step', '1', $3, 30)`, [raw, run.task_id, run.run_id]);
                await client.query(`select absurd.complete_run($1, $2, '{"done": true}')`, [raw, run.run_id]);
              }
              rawRounds += 1;
            } catch (error) {
              rawErrors.push(error);
            }
          }
        } finally {
          client.release();
        }
      })();
      await waitFor('the busy queues to get going', async () => spawned >= 5 && rawRounds >= 5);

      const { adoption } = await migrate(url, { adopt: true });
      const roundsAtAdoption = rawRounds;
      expect(adoption?.queues.map((q) => q.name).sort()).toEqual([...stateQueues.map((q) => q.name), busy, raw].sort());

      // The waiting work is exactly as it was.
      expect(await snapshotRows(pool, stateQueues.map((q) => q.name))).toEqual(before);
      expect((await schemaStatus(url)).state).toBe('current');

      // The busy queues kept going through the adoption and drain completely.
      await waitFor('raw claims after the adoption', async () => rawRounds >= roundsAtAdoption + 5);
      producing = false;
      await producer;
      await rawClaims;
      expect(rawErrors).toEqual([]);
      await waitFor('the busy queue to drain', async () => {
        const { rows } = await pool.query<{ n: number }>(`select count(*)::int as n from ${tableOf('t', busy)} where state = 'completed'`);
        return rows[0]!.n === spawned;
      });
      const { rows: rawStates } = await pool.query(`select state, count(*)::int as n from ${tableOf('t', raw)} group by state`);
      expect(rawStates).toEqual([{ state: 'completed', n: rawRounds }]);

      // The held tasks finish on the adopted schema; their workers stop.
      const holderClosing = holders.map((h) => h.worker.close());
      openGate();
      await Promise.all(holderClosing);
      for (const holder of holders) {
        expect(await holder.sdk.fetchTaskResult(holder.task)).toEqual({ state: 'completed', result: { before: 'held' } });
      }

      // The rest of the work, finished by one worker or the other.
      for (const { name } of stateQueues) {
        if (finisher === 'absurd-kit') {
          const app = new Absurd({ db: pool, queueName: name, log: quietLog() });
          app.registerTask({ name: 'job' }, (params: JobParams, ctx: unknown) => runJob(params, ctx as JobContext));
          await app.emitEvent('go', { go: name });
          await app.emitEvent('go-later', { later: name });
          const worker = await app.startWorker({ pollInterval: 0.1, concurrency: 4 });
          closers.push(() => worker.close());
        } else {
          const sdk = new SdkAbsurd({ db: pool, queueName: name, log: quietLog() });
          sdk.registerTask({ name: 'job' }, (params: JobParams, ctx) => runJob(params, ctx as unknown as JobContext));
          await sdk.emitEvent('go', { go: name });
          await sdk.emitEvent('go-later', { later: name });
          const worker = await sdk.startWorker({ pollInterval: 0.1, concurrency: 4, onError: (e) => sdkErrors.push(e) });
          closers.push(() => worker.close());
        }
      }
      for (const { name } of stateQueues) {
        const ends = expectedEnds(tasks[name]!);
        await waitFor(`every task of ${name} to end`, async () => {
          const { rows } = await pool.query<{ state: string }>(
            `select state from ${tableOf('t', name)} where task_id = any($1) and state in ('completed', 'failed', 'cancelled')`,
            [Object.keys(ends)],
          );
          return rows.length === Object.keys(ends).length;
        });
        const { rows } = await pool.query<{ task_id: string; state: string; completed_payload: unknown }>(
          `select task_id, state, completed_payload from ${tableOf('t', name)} where task_id = any($1)`,
          [Object.keys(ends)],
        );
        const t = tasks[name]!;
        const eventOf = (id: string) => (id === t.waiting ? { go: name } : id === t.waitingWithTimeout ? { later: name } : null);
        expect(Object.fromEntries(rows.map((r) => [r.task_id, { state: r.state, result: r.completed_payload }]))).toEqual(
          Object.fromEntries(
            Object.entries(ends).map(([id, end]) => [
              id,
              { state: end.state, result: end.state === 'completed' ? { n: end.n, doubled: end.n * 2, event: eventOf(id) } : null },
            ]),
          ),
        );
      }
      expect(sdkErrors).toEqual([]);

      // absurd-kit's indexes are on every queue.
      const { rows: indexes } = await pool.query<{ name: string }>(
        `select indexname as name from pg_indexes where schemaname = 'absurd' and indexname ~ '_(cai|cdi)$' order by 1`,
      );
      expect(indexes.map((i) => i.name).sort()).toEqual(
        [...stateQueues.map((q) => q.name), busy, raw].flatMap((q) => [`r_${q}_cai`, `r_${q}_cdi`]).sort(),
      );
    } finally {
      for (const close of closers.reverse()) await close().catch(() => {});
      await pool.end();
    }
  });
});
