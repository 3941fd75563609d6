/**
 * Many workers competing for runs of a queue with a per-key concurrency limit (engine migration
 * 000016): never more runs of one key running than the limit, and every task completes (nothing
 * is starved). Each handler counts itself in while it runs; a handler runs strictly inside its
 * run's 'running' interval (after the claim committed, before the completion), so the count of a
 * key can only exceed the limit if the engine let too many runs of that key run at once.
 */
import { Absurd as SdkAbsurd } from 'absurd-sdk';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { onAbsurdSchema, queueName, recordingLog } from './helpers.js';

const db = useTestDatabase();
const pools: pg.Pool[] = [];
afterAll(async () => {
  for (const pool of pools) await pool.end().catch(() => undefined);
});

function newPool(max: number): pg.Pool {
  const pool = new pg.Pool({ connectionString: db.url, max });
  pools.push(pool);
  return pool;
}

/** Running handlers per key, and the most seen at once. */
class RunningCounter {
  private readonly now = new Map<string, number>();
  readonly peak = new Map<string, number>();

  enter(key: string): void {
    const n = (this.now.get(key) ?? 0) + 1;
    this.now.set(key, n);
    this.peak.set(key, Math.max(n, this.peak.get(key) ?? 0));
  }

  leave(key: string): void {
    this.now.set(key, (this.now.get(key) ?? 0) - 1);
  }

  running(key: string): number {
    return this.now.get(key) ?? 0;
  }
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A worker speaking the SQL contract directly, as any SDK does: claims up to its free slots on
 * its own connections, runs each handler, completes it.
 */
async function sqlWorker(
  pool: pg.Pool,
  queue: string,
  id: string,
  concurrency: number,
  handler: (params: { key: string }) => Promise<void>,
  done: () => boolean,
): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  while (!done()) {
    const free = concurrency - inFlight.size;
    if (free > 0) {
      const { rows } = await pool.query<{ run_id: string; params: { key: string } }>(
        'select run_id, params from absurd.claim_task($1, $2, $3, $4)',
        [queue, id, 60, free],
      );
      for (const row of rows) {
        const job = (async () => {
          await handler(row.params);
          await pool.query('select absurd.complete_run($1, $2, $3)', [queue, row.run_id, '{}']);
        })();
        inFlight.add(job);
        void job.finally(() => inFlight.delete(job));
      }
      if (rows.length === 0) await pause(5);
    } else {
      await Promise.race(inFlight);
    }
  }
  await Promise.all(inFlight);
}

async function completedCount(queue: string): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    `select count(*)::int as n from absurd.${pg.escapeIdentifier(`t_${queue}`)} where state = 'completed'`,
  );
  return rows[0]?.n ?? 0;
}

describe.skipIf(onAbsurdSchema)('workers competing for a limited key', () => {
  it('4 SQL workers × concurrency 4, limit 2 per key over 3 keys: never above 2, all 48 complete', async () => {
    const queue = queueName('compete');
    await db.pool.query('select absurd.create_queue($1)', [queue]);
    await db.pool.query('select absurd.kit_set_limit($1, $2, null, $3, 2, null, null)', [queue, 'per-key', ['key']]);
    const keys = ['a', 'b', 'c'];
    const total = 48;
    await db.pool.query('select * from absurd.kit_spawn_tasks($1, $2)', [
      queue,
      JSON.stringify(Array.from({ length: total }, (_, i) => ({ task_name: 'job', params: { key: keys[i % 3] } }))),
    ]);
    const counter = new RunningCounter();
    let finished = false;
    const handler = async ({ key }: { key: string }) => {
      counter.enter(key);
      // Keep the slot until a second run of the key is running too (or 250 ms have passed), so
      // that each key's peak shows what the limit admits, however busy the machine is.
      const until = Date.now() + 250;
      while (counter.running(key) < 2 && Date.now() < until) await pause(2);
      await pause(2 + Math.random() * 10);
      counter.leave(key);
    };
    const workers = [0, 1, 2, 3].map((i) => sqlWorker(newPool(5), queue, `w${i}`, 4, handler, () => finished));
    const deadline = Date.now() + 60_000;
    while ((await completedCount(queue)) < total && Date.now() < deadline) await pause(50);
    finished = true;
    await Promise.all(workers);
    expect(await completedCount(queue)).toBe(total);
    expect(Object.fromEntries(counter.peak)).toEqual({ a: 2, b: 2, c: 2 });
    const { rows } = await db.pool.query(
      'select count(*)::int as n from absurd.kit_limit_slots where queue_name = $1 union all ' +
        'select count(*)::int from absurd.kit_limit_waiters where queue_name = $1',
      [queue],
    );
    expect(rows.map((r) => r.n)).toEqual([0, 0]);
  }, 90_000);

  it('absurd-sdk workers respect a limit set through the engine (limit 1 per customer)', async () => {
    const queue = queueName('sdk-limit');
    await db.pool.query('select absurd.create_queue($1)', [queue]);
    await db.pool.query('select absurd.kit_set_limit($1, $2, $3, $4, 1, null, null)', [
      queue,
      'per-customer',
      'charge',
      ['customerId'],
    ]);
    const counter = new RunningCounter();
    const sdks = [0, 1].map(() => new SdkAbsurd({ db: newPool(6), queueName: queue, log: recordingLog() }));
    for (const sdk of sdks) {
      sdk.registerTask({ name: 'charge' }, async (params: { customerId: string }) => {
        counter.enter(params.customerId);
        await pause(5 + Math.random() * 10);
        counter.leave(params.customerId);
        return { ok: true };
      });
    }
    const workers = await Promise.all(sdks.map((sdk) => sdk.startWorker({ concurrency: 4, pollInterval: 0.02 })));
    const spawned = [];
    for (let i = 0; i < 20; i += 1) spawned.push(await sdks[0]!.spawn('charge', { customerId: `c${i % 2}` }));
    const results = await Promise.all(spawned.map((s) => sdks[1]!.awaitTaskResult(s.taskID, { timeout: 60 })));
    for (const worker of workers) await worker.close();
    expect(results.map((r) => r.state)).toEqual(Array(20).fill('completed'));
    expect(Object.fromEntries(counter.peak)).toEqual({ c0: 1, c1: 1 });
  }, 90_000);
});
