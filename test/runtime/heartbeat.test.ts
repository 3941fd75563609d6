import { describe, expect, it } from 'vitest';
import { CancelledTask } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import { appAtFakeTime, queueName, runRows, useClients, useFakeClock, workOnce } from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);
const clock = useFakeClock();

const T0 = Date.parse('2035-06-07T08:09:10.000Z');
const at = (ms: number) => new Date(ms).toISOString();

function heartbeatApp(queue = queueName('hb')) {
  return appAtFakeTime(clients, clock, queue, T0);
}

describe('ctx.heartbeat', () => {
  it('extends the lease from now by the seconds given, or by the claim timeout', async () => {
    const { app, pool, queries } = await heartbeatApp(queueName('Awkward', 'quoted'));
    const expiries: string[] = [];
    const expiry = async (taskId: string) => (await runRows(pool, app.queueName, taskId))[0]!.claim_expires_at!.toISOString();
    app.registerTask({ name: 'beating' }, async (_p, ctx) => {
      expiries.push(await expiry(ctx.taskID));
      await clock.set(pool, T0 + 10_000, { dbOnly: true });
      await ctx.heartbeat(100);
      expiries.push(await expiry(ctx.taskID));
      await clock.set(pool, T0 + 20_000, { dbOnly: true });
      await ctx.heartbeat();
      expiries.push(await expiry(ctx.taskID));
      return 'alive';
    });
    const { taskID } = await app.spawn('beating', null);
    await workOnce(app, 30);
    expect(expiries).toEqual([at(T0 + 30_000), at(T0 + 110_000), at(T0 + 50_000)]);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: 'alive' });
    const calls = queries.filter((q) => q.text.includes('absurd.extend_claim'));
    expect(calls.map((q) => q.values?.slice(0, 1).concat(q.values?.slice(2)))).toEqual([
      [app.queueName, 100],
      [app.queueName, 30],
    ]);
  });

  it('rejects 0 and negative seconds with an unmapped engine error that fails the task', async () => {
    for (const seconds of [0, -1]) {
      const { app } = await heartbeatApp();
      const caught: unknown[] = [];
      app.registerTask({ name: 'bad-beat' }, async (_p, ctx) => {
        try {
          await ctx.heartbeat(seconds);
        } catch (error) {
          caught.push(error);
          throw error;
        }
      });
      const { taskID } = await app.spawn('bad-beat', null, { maxAttempts: 1 });
      await workOnce(app);
      expect(caught).toHaveLength(1);
      expect(caught[0]).not.toBeInstanceOf(CancelledTask);
      expect(caught[0]).toMatchObject({ message: 'extend_by must be > 0', code: 'P0001' });
      expect(await app.fetchTaskResult(taskID)).toMatchObject({
        state: 'failed',
        failure: { name: 'error', message: 'extend_by must be > 0' },
      });
      expect(app.recorded.messages('error')).toEqual([
        expect.stringMatching(/^task "bad-beat" run \S+: error: extend_by must be > 0 — attempt 1 of 1 failed, no attempts left$/),
      ]);
    }
  });

  it('on a cancelled task throws CancelledTask and the run ends quietly', async () => {
    const { app, queries } = await heartbeatApp();
    const caught: unknown[] = [];
    app.registerTask({ name: 'cancelled-beat' }, async (_p, ctx) => {
      await app.cancelTask(ctx.taskID);
      try {
        await ctx.heartbeat();
      } catch (error) {
        caught.push(error);
        throw error;
      }
      return 'not reached';
    });
    const { taskID } = await app.spawn('cancelled-beat', null);
    await workOnce(app);
    expect(caught[0]).toBeInstanceOf(CancelledTask);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'cancelled' });
    expect(app.recorded.messages('error')).toEqual([]);
    expect(queries.some((q) => q.text.includes('fail_run') || q.text.includes('complete_run'))).toBe(false);
  });
});
