import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { appAtFakeTime, checkpoints, queueName, runRows, table, taskRow, useClients, useFakeClock, workOnce } from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);
const clock = useFakeClock();

const T0 = Date.parse('2033-05-06T07:08:09.000Z');
const at = (ms: number) => new Date(ms).toISOString();

/** A client on a single-connection pool; the database clock and Date.now stand at T0. */
function sleepyApp(queue = queueName('sleep')) {
  return appAtFakeTime(clients, clock, queue, T0, { moveDateNow: true });
}

describe('sleepFor', () => {
  it('suspends the run and resumes the same run and attempt when the time has come', async () => {
    const { app, pool } = await sleepyApp(queueName('Awkward', 'quoted'));
    const trace: string[] = [];
    app.registerTask({ name: 'napper' }, async (_p, ctx) => {
      await ctx.step('before', () => trace.push('before'));
      trace.push(`sleep ${ctx.runID}/${ctx.attempt}`);
      await ctx.sleepFor('nap', 60);
      trace.push(`awake ${ctx.runID}/${ctx.attempt}`);
      return 'rested';
    });
    const { taskID, runID } = await app.spawn('napper', null);
    await workOnce(app);

    const [run] = await runRows(pool, app.queueName, taskID);
    expect(run).toMatchObject({ run_id: runID, state: 'sleeping', claimed_by: null, claim_expires_at: null, attempt: 1 });
    expect(run?.available_at.toISOString()).toBe(at(T0 + 60_000));
    expect((await taskRow(pool, app.queueName, taskID)).state).toBe('sleeping');
    expect(await checkpoints(pool, app.queueName, taskID)).toMatchObject({ nap: at(T0 + 60_000) });

    await clock.advance(pool, 59);
    expect(await workOnce(app)).toEqual([]);
    await clock.advance(pool, 1);
    const [resumed] = await workOnce(app);
    expect(resumed).toMatchObject({ run_id: runID, attempt: 1 });
    expect(trace).toEqual(['before', `sleep ${runID}/1`, `sleep ${runID}/1`, `awake ${runID}/1`]);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: 'rested' });
    expect((await runRows(pool, app.queueName, taskID)).map((r) => r.state)).toEqual(['completed']);
  });

  it('schedules against the database clock, storing the process-clock wake time', async () => {
    const { app, pool, queries } = await sleepyApp();
    // The database is an hour ahead of the process.
    await clock.set(pool, T0 + 3_600_000, { dbOnly: true });
    app.registerTask({ name: 'skewed' }, async (_p, ctx) => {
      await ctx.sleepFor('nap', 90);
    });
    const { taskID } = await app.spawn('skewed', null);
    await workOnce(app);
    const [run] = await runRows(pool, app.queueName, taskID);
    expect(run?.available_at.toISOString()).toBe(at(T0 + 3_600_000 + 90_000));
    expect(await checkpoints(pool, app.queueName, taskID)).toEqual({ nap: at(T0 + 90_000) });
    const schedule = queries.find((q) => q.text.includes('schedule_run'));
    expect(schedule?.text).toMatch(/^SELECT absurd\.schedule_run\(/);
    expect(schedule?.text).toContain('absurd.current_time() + make_interval(secs =>');
    expect(schedule?.values).toEqual([app.queueName, run?.run_id, 90]);
  });

  it('takes fractional seconds', async () => {
    const { app, pool } = await sleepyApp();
    app.registerTask({ name: 'short' }, async (_p, ctx) => {
      await ctx.sleepFor('blink', 1.5);
    });
    const { taskID } = await app.spawn('short', null);
    await workOnce(app);
    expect((await runRows(pool, app.queueName, taskID))[0]?.available_at.toISOString()).toBe(at(T0 + 1500));
  });

  it('numbers repeated sleeps and resumes after each', async () => {
    const { app, pool } = await sleepyApp();
    let awake = 0;
    app.registerTask({ name: 'twice' }, async (_p, ctx) => {
      await ctx.sleepFor('nap', 10);
      await ctx.sleepFor('nap', 10);
      awake += 1;
      return 'two naps';
    });
    const { taskID } = await app.spawn('twice', null);
    await workOnce(app);
    await clock.advance(pool, 10);
    await workOnce(app);
    expect(await checkpoints(pool, app.queueName, taskID)).toEqual({ nap: at(T0 + 10_000), 'nap#2': at(T0 + 20_000) });
    expect((await app.fetchTaskResult(taskID))?.state).toBe('sleeping');
    await clock.advance(pool, 10);
    await workOnce(app);
    expect(awake).toBe(1);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: 'two naps' });
  });
});

describe('sleepUntil', () => {
  it('the stored wake time wins on replay over a newly computed one', async () => {
    const { app, pool } = await sleepyApp();
    const computed: string[] = [];
    app.registerTask({ name: 'until' }, async (_p, ctx) => {
      const wakeAt = new Date(Date.now() + 60_000);
      computed.push(wakeAt.toISOString());
      await ctx.sleepUntil('deadline', wakeAt);
      return 'past the deadline';
    });
    const { taskID } = await app.spawn('until', null);
    await workOnce(app);
    await clock.advance(pool, 60);
    await workOnce(app);
    // The replay computed T0+120 s, but the stored T0+60 s has passed: no second sleep.
    expect(computed).toEqual([at(T0 + 60_000), at(T0 + 120_000)]);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: 'past the deadline' });
    expect(await checkpoints(pool, app.queueName, taskID)).toEqual({ deadline: at(T0 + 60_000) });
  });

  it('a stored wake time still ahead suspends again for the remaining time only', async () => {
    const { app, pool } = await sleepyApp();
    app.registerTask({ name: 'early' }, async (_p, ctx) => {
      await ctx.sleepUntil('deadline', new Date(Date.now() + 60_000));
      return 'done';
    });
    const { taskID } = await app.spawn('early', null);
    await workOnce(app);
    // Woken early (as if by an operator): the run is made due at +20 s.
    await pool.query(`update ${table('r', app.queueName)} set available_at = $1 where task_id = $2`, [at(T0 + 20_000), taskID]);
    await clock.advance(pool, 20);
    await workOnce(app);
    const [run] = await runRows(pool, app.queueName, taskID);
    expect(run).toMatchObject({ state: 'sleeping', attempt: 1 });
    expect(run?.available_at.toISOString()).toBe(at(T0 + 60_000));
  });

  it('a time in the past stores the checkpoint and goes on without suspending', async () => {
    const { app, pool, queries } = await sleepyApp();
    app.registerTask({ name: 'past' }, async (_p, ctx) => {
      await ctx.sleepUntil('already', new Date(T0 - 1000));
      await ctx.sleepUntil('now', new Date(T0));
      return 'straight through';
    });
    const { taskID } = await app.spawn('past', null);
    await workOnce(app);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: 'straight through' });
    expect(await checkpoints(pool, app.queueName, taskID)).toEqual({ already: at(T0 - 1000), now: at(T0) });
    expect(queries.some((q) => q.text.includes('schedule_run'))).toBe(false);
  });
});
