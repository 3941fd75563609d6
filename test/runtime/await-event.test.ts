import { describe, expect, it } from 'vitest';
import { TimeoutError } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import { appAtFakeTime, checkpoints, queueName, runRows, table, useClients, useFakeClock, workOnce } from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);
const clock = useFakeClock();

const T0 = Date.parse('2034-02-03T04:05:06.000Z');
const at = (ms: number) => new Date(ms).toISOString();

/** A client on a single-connection pool at fake time T0 that records its statements. */
function eventApp(queue = queueName('await')) {
  return appAtFakeTime(clients, clock, queue, T0);
}

async function waits(pool: Parameters<typeof runRows>[0], queue: string, taskId: string) {
  const { rows } = await pool.query(`select step_name, event_name, timeout_at from ${table('w', queue)} where task_id = $1`, [
    taskId,
  ]);
  return rows as { step_name: string; event_name: string; timeout_at: Date | null }[];
}

/** The run's available_at as text ('infinity' for a wait without timeout). */
async function availableAt(pool: Parameters<typeof runRows>[0], queue: string, taskId: string): Promise<string> {
  const { rows } = await pool.query(
    `select case when available_at = 'infinity' then 'infinity'
                 else to_char(available_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') end as at
       from ${table('r', queue)} where task_id = $1`,
    [taskId],
  );
  return (rows[0] as { at: string }).at;
}

describe('an event emitted before the wait', () => {
  it('is returned at once, even when emitted before the spawn, and checkpointed', async () => {
    const { app, pool } = await eventApp(queueName('Awkward', 'quoted'));
    app.registerTask({ name: 'early' }, async (_p, ctx) => ctx.awaitEvent('ready'));
    await app.emitEvent('ready', { first: true });
    await app.emitEvent('ready', { first: false });
    const { taskID } = await app.spawn('early', null);
    await workOnce(app);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: { first: true } });
    expect(await checkpoints(pool, app.queueName, taskID)).toEqual({ '$awaitEvent:ready': { first: true } });
    expect(await waits(pool, app.queueName, taskID)).toEqual([]);
    expect((await runRows(pool, app.queueName, taskID)).map((r) => r.state)).toEqual(['completed']);
  });

  it('a null payload counts as emitted', async () => {
    const { app, pool } = await eventApp();
    app.registerTask({ name: 'nullish' }, async (_p, ctx) => ({ got: await ctx.awaitEvent('empty') }));
    await app.emitEvent('empty');
    const { taskID } = await app.spawn('nullish', null);
    await workOnce(app);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: { got: null } });
    expect(await checkpoints(pool, app.queueName, taskID)).toEqual({ '$awaitEvent:empty': null });
  });
});

describe('waiting for an event', () => {
  it('suspends without a timeout and resumes the same run with the payload', async () => {
    const { app, pool } = await eventApp();
    const trace: string[] = [];
    app.registerTask({ name: 'waiter' }, async (_p, ctx) => {
      trace.push(`run ${ctx.runID}`);
      const payload = await ctx.awaitEvent('go');
      trace.push(`got ${JSON.stringify(payload)}`);
      return payload;
    });
    const { taskID, runID } = await app.spawn('waiter', null);
    await workOnce(app);
    const [run] = await runRows(pool, app.queueName, taskID);
    expect(run).toMatchObject({ state: 'sleeping', wake_event: 'go', claimed_by: null, claim_expires_at: null });
    expect(await availableAt(pool, app.queueName, taskID)).toBe('infinity');
    expect(await waits(pool, app.queueName, taskID)).toEqual([{ step_name: '$awaitEvent:go', event_name: 'go', timeout_at: null }]);
    expect(await workOnce(app)).toEqual([]);

    await app.emitEvent('go', ['payload']);
    const [resumed] = await workOnce(app);
    expect(resumed).toMatchObject({ run_id: runID, attempt: 1 });
    expect(trace).toEqual([`run ${runID}`, `run ${runID}`, 'got ["payload"]']);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: ['payload'] });
  });

  it('wakes a waiter on a null payload without mistaking it for a timeout', async () => {
    const { app } = await eventApp();
    app.registerTask({ name: 'null-waiter' }, async (_p, ctx) => ({ got: await ctx.awaitEvent('nothing', { timeout: 600 }) }));
    const { taskID } = await app.spawn('null-waiter', null);
    await workOnce(app);
    await app.emitEvent('nothing', null);
    await workOnce(app);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: { got: null } });
  });

  it('checkpoints under a custom step name', async () => {
    const { app, pool } = await eventApp();
    app.registerTask({ name: 'custom' }, async (_p, ctx) => {
      const a = await ctx.awaitEvent('signal', { stepName: 'wait-for-signal' });
      const b = await ctx.awaitEvent('signal', { stepName: 'wait-for-signal' });
      return [a, b];
    });
    const { taskID } = await app.spawn('custom', null);
    await workOnce(app);
    expect((await waits(pool, app.queueName, taskID)).map((w) => w.step_name)).toEqual(['wait-for-signal']);
    await app.emitEvent('signal', 7);
    await workOnce(app);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: [7, 7] });
    expect(await checkpoints(pool, app.queueName, taskID)).toEqual({ 'wait-for-signal': 7, 'wait-for-signal#2': 7 });
  });

  it('waits on its own queue only', async () => {
    const { app } = await eventApp();
    const other = queueName('other');
    await app.createQueue(other);
    app.registerTask({ name: 'local' }, async (_p, ctx) => ctx.awaitEvent('shared'));
    const { taskID } = await app.spawn('local', null);
    await workOnce(app);
    await app.emitEvent('shared', 'elsewhere', other);
    expect(await workOnce(app)).toEqual([]);
    expect((await app.fetchTaskResult(taskID))?.state).toBe('sleeping');
  });
});

describe('timeouts', () => {
  it('sends the floored timeout; negative, NaN and Infinity mean no timeout', async () => {
    const { app, pool, queries } = await eventApp();
    const cases: [string, number | undefined, number | null][] = [
      ['floored', 10.9, 10],
      ['zero-ish', 0.5, 0],
      ['negative', -5, null],
      ['nan', NaN, null],
      ['infinite', Infinity, null],
      ['absent', undefined, null],
    ];
    for (const [name, timeout] of cases) {
      app.registerTask({ name }, async (_p, ctx) => ctx.awaitEvent(`ev-${name}`, timeout === undefined ? {} : { timeout }));
    }
    const spawned = new Map<string, string>();
    for (const [name] of cases) spawned.set(name, (await app.spawn(name, null)).taskID);
    expect(await workOnce(app, 120, cases.length)).toHaveLength(cases.length);
    for (const [name, , sent] of cases) {
      const taskID = spawned.get(name)!;
      const call = queries.find((q) => q.text.includes('absurd.await_event') && q.values?.[1] === taskID);
      expect(call?.values?.[5], name).toBe(sent);
      const [wait] = await waits(pool, app.queueName, taskID);
      expect(wait?.timeout_at?.toISOString() ?? null, name).toBe(sent === null ? null : at(T0 + sent * 1000));
      expect(await availableAt(pool, app.queueName, taskID), name).toBe(sent === null ? 'infinity' : at(T0 + sent * 1000));
    }
  });

  it('a timed-out wait throws TimeoutError without asking the engine or writing a checkpoint; a second wait returns null', async () => {
    const { app, pool, queries } = await eventApp();
    const outcome: unknown[] = [];
    let queriesBeforeHandler = 0;
    app.registerTask({ name: 'impatient' }, async (_p, ctx) => {
      queriesBeforeHandler = queries.length;
      try {
        await ctx.awaitEvent('late', { timeout: 10 });
        outcome.push('event arrived');
      } catch (error) {
        if (!(error instanceof TimeoutError)) throw error;
        outcome.push({ name: error.name, message: error.message });
        outcome.push(queries.slice(queriesBeforeHandler).filter((q) => q.text.includes('absurd.await_event')).length);
      }
      outcome.push(await ctx.awaitEvent('late'));
      return 'gave up';
    });
    const { taskID, runID } = await app.spawn('impatient', null);
    await workOnce(app);
    expect(outcome).toEqual([]);
    const [waiting] = await runRows(pool, app.queueName, taskID);
    expect(waiting?.available_at.toISOString()).toBe(at(T0 + 10_000));

    await clock.set(pool, T0 + 9_000, { dbOnly: true });
    expect(await workOnce(app)).toEqual([]);
    await clock.set(pool, T0 + 10_000, { dbOnly: true });
    const [claimed] = await app.claimTasks();
    expect({ ...claimed }).toMatchObject({ run_id: runID, wake_event: 'late', event_payload: null });
    await app.executeTask(claimed!, 120);
    expect(outcome).toEqual([{ name: 'TimeoutError', message: 'Timed out waiting for event "late"' }, 0, null]);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: 'gave up' });
    expect(await checkpoints(pool, app.queueName, taskID)).toEqual({});
    expect(await waits(pool, app.queueName, taskID)).toEqual([]);
    // A late emission changes nothing.
    await app.emitEvent('late', 'too late');
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: 'gave up' });
  });

  it('a timeout the handler does not catch fails the run with TimeoutError', async () => {
    const { app, pool } = await eventApp();
    app.registerTask({ name: 'uncaught' }, async (_p, ctx) => ctx.awaitEvent('never', { timeout: 1 }));
    const { taskID } = await app.spawn('uncaught', null, { maxAttempts: 1 });
    await workOnce(app);
    await clock.set(pool, T0 + 1_000, { dbOnly: true });
    await workOnce(app);
    expect(await app.fetchTaskResult(taskID)).toMatchObject({
      state: 'failed',
      failure: { name: 'TimeoutError', message: 'Timed out waiting for event "never"' },
    });
  });

  it('an event emitted before the timeout wins', async () => {
    const { app, pool } = await eventApp();
    app.registerTask({ name: 'in-time' }, async (_p, ctx) => ctx.awaitEvent('soon', { timeout: 60 }));
    const { taskID } = await app.spawn('in-time', null);
    await workOnce(app);
    await clock.set(pool, T0 + 59_000, { dbOnly: true });
    await app.emitEvent('soon', 'made it');
    await workOnce(app);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: 'made it' });
  });
});
