/**
 * A database that goes away and comes back, as a client's log shows it: one WARN when it goes,
 * one INFO (with how long it was gone) when it is back, no ERROR per failed poll or dropped idle
 * connection; and a run in flight that rides out a real restart of its server.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Absurd, defineSchedule, defineTask, type Queryable } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import { startPrivateServer, type PrivateServer } from '../support/private-server.js';
import { delay, gate, onAbsurdSchema, queueName, recordingLog, runRows, useClients, waitFor } from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);

/** A connection to `target` that refuses every statement while `down` is set. */
function switchableConnection(target: pg.Pool) {
  const state = { down: false, refused: 0 };
  const con = {
    async query(text: string, values?: unknown[]) {
      if (state.down) {
        state.refused += 1;
        throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
      }
      return target.query(text, values);
    },
  };
  return { con: con as unknown as Queryable, state };
}

const WARN = /^database unreachable: Error: connect ECONNREFUSED 127\.0\.0\.1:5432 — waiting for it to come back$/;
const INFO = /^database reachable again after \d+\.\ds$/;

describe('a worker whose database goes away', () => {
  it('logs one WARN and, when it is back, one INFO with how long it was gone — no ERROR per failed claim', async () => {
    const { con, state } = switchableConnection(clients.pool());
    const app = await clients.app(queueName('outage-log'), { db: con });
    app.registerTask({ name: 'after' }, async () => 'ran');
    const worker = await app.startWorker({ pollInterval: 0.02 });
    state.down = true;
    await waitFor(() => state.refused >= 20, { what: 'claims to fail' });
    await delay(300);
    state.down = false;
    await waitFor(() => app.recorded.messages('info').length > 0, { what: 'the INFO line' });
    const { taskID } = await app.spawn('after', null);
    await waitFor(async () => (await app.fetchTaskResult(taskID))?.state === 'completed', { what: 'the task to run' });
    await worker.close();

    expect(app.recorded.messages('warn')).toHaveLength(1);
    expect(app.recorded.messages('warn')[0]).toMatch(WARN);
    expect(app.recorded.messages('info')).toHaveLength(1);
    expect(app.recorded.messages('info')[0]).toMatch(INFO);
    const gone = Number(/after (\d+\.\d)s/.exec(app.recorded.messages('info')[0]!)![1]);
    expect(gone).toBeGreaterThanOrEqual(0.3);
    expect(app.recorded.messages('error')).toEqual([]);
  });

  it('still hands every failed claim to a custom onError', async () => {
    const { con, state } = switchableConnection(clients.pool());
    const app = await clients.app(queueName('outage-onerror'), { db: con });
    const seen: Error[] = [];
    const worker = await app.startWorker({ pollInterval: 0.02, onError: (error) => seen.push(error) });
    state.down = true;
    await waitFor(() => seen.length >= 5, { what: 'claim errors' });
    state.down = false;
    await waitFor(() => app.recorded.messages('info').length > 0, { what: 'the INFO line' });
    await worker.close();
    expect(seen.every((error) => (error as { code?: string }).code === 'ECONNREFUSED')).toBe(true);
    expect(app.recorded.messages('warn')).toHaveLength(1);
    expect(app.recorded.messages('error')).toEqual([]);
  });

  it.skipIf(onAbsurdSchema)("starts while the database is unreachable, and applies its schedules and contract limits once it is back [absurd-kit's schema only: schedules, limits]", async () => {
    const { con, state } = switchableConnection(clients.pool());
    const queue = queueName('outage-declared');
    const app = await clients.app(queue, { db: con });
    const job = defineTask({ name: 'job', queue, params: z.object({ n: z.number() }), result: z.null(), concurrency: { limit: 2 } });
    app.registerTask(job, async () => null);
    app.registerSchedule(defineSchedule({ name: `${queue}-hourly`, task: job, cron: '0 * * * *', params: { n: 1 } }));
    state.down = true;
    const worker = await app.startWorker({ pollInterval: 0.05 });
    await delay(300);
    expect(app.recorded.messages('warn')).toContain(
      `could not apply the schedules and limits of queue "${queue}" (the database is unreachable): the worker starts, and they are applied when it is back`,
    );
    state.down = false;
    await waitFor(() => app.recorded.messages('info').includes(`applied the schedules and limits of queue "${queue}"`), {
      what: 'the declarations to be applied',
    });
    await worker.close();
    expect((await app.listSchedules(queue)).map((schedule) => schedule.name)).toEqual([`${queue}-hourly`]);
    expect((await app.listLimits()).map((limit) => [limit.name, limit.maxRunning])).toEqual([['job:concurrency', 2]]);
    expect(app.recorded.messages('error')).toEqual([]);
  });

  it('still logs an ERROR for a claim that fails for another reason', async () => {
    const pool = clients.pool();
    const app = await clients.app(queueName('outage-other'), { db: pool });
    // A queue that does not exist: the database answers, with an error that no wait will fix.
    const missing = new Absurd({ db: pool, queueName: queueName('never-created'), log: app.recorded });
    const worker = await missing.startWorker({ pollInterval: 0.05 });
    await waitFor(() => app.recorded.messages('error').length > 0, { what: 'the ERROR line' });
    await worker.close();
    expect(app.recorded.messages('error')[0]).toMatch(/^Worker error: /);
    expect(app.recorded.messages('warn')).toEqual([]);
  });
});

describe.each(['fast', 'immediate'] as const)('a PostgreSQL restart (-m %s) in the middle of a run', (mode) => {
  let privateServer: PrivateServer;
  beforeAll(async () => {
    privateServer = await startPrivateServer();
  }, 60_000);
  afterAll(async () => {
    await privateServer?.stop();
  });

  it('the run completes as if nothing happened; the log has one WARN and one INFO', async () => {
    const log = recordingLog();
    const queue = queueName('restart');
    const app = new Absurd({ db: privateServer.url, queueName: queue, log });
    try {
      await app.createQueue();
      const inStepTwo = gate();
      const release = gate();
      const ran: string[] = [];
      app.registerTask({ name: 'interrupted' }, async (_params, ctx) => {
        await ctx.step('one', () => ran.push('one'));
        await ctx.step('two', async () => {
          ran.push('two');
          inStepTwo.open();
          await release.promise;
          return 2;
        });
        await ctx.step('three', () => ran.push('three'));
        return 'done';
      });
      const { taskID } = await app.spawn('interrupted', null);
      const worker = await app.startWorker({ pollInterval: 0.05 });
      await inStepTwo.promise;

      // Step two finishes while the server is down: its checkpoint write waits for it.
      const restarting = privateServer.server.restart({ mode, downFor: 700 });
      await delay(200);
      release.open();
      await restarting;
      await waitFor(async () => (await app.fetchTaskResult(taskID).catch(() => null))?.state === 'completed', {
        timeoutMs: 20_000,
        what: 'the run to complete',
      });
      await worker.close();
      // The INFO line comes once the database has stayed reachable for a second.
      await waitFor(() => log.messages('info').length > 0, { what: 'the INFO line' });

      expect(ran).toEqual(['one', 'two', 'three']);
      const check = new pg.Client({ connectionString: privateServer.url });
      await check.connect();
      try {
        expect((await runRows(check, queue, taskID)).map((r) => [r.attempt, r.state, r.failure_reason])).toEqual([
          [1, 'completed', null],
        ]);
      } finally {
        await check.end();
      }
      expect(log.messages('warn')).toHaveLength(1);
      expect(log.messages('warn')[0]).toMatch(/^database unreachable: .+ — waiting for it to come back$/);
      expect(log.messages('info')).toHaveLength(1);
      expect(log.messages('info')[0]).toMatch(INFO);
      expect(log.messages('error')).toEqual([]);
    } finally {
      await app.close({ timeout: 1 });
    }
  });
});
