/**
 * A run's statements that fail on their connection are sent again while the run holds its lease,
 * and a repeat of one that committed unseen changes nothing. A flaky connection loses chosen
 * statements before they reach the database (nothing committed) or loses their answer after they
 * committed; a real backend is also terminated in the middle of a statement.
 */
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { Queryable } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import { checkpoints, gate, onAbsurdSchema, queueName, runRows, table, taskRow, useClients, waitFor, workOnce } from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);

type Loss = 'before' | 'after';

/**
 * The statements that write a checkpoint and complete a run: absurd-kit's batched functions, or —
 * on Absurd's schema, which lacks them — the contract's one-by-one functions.
 */
const CHECKPOINT_WRITE = onAbsurdSchema ? /absurd\.set_task_checkpoint_state\(/ : /absurd\.kit_set_checkpoints\(/;
const COMPLETION = onAbsurdSchema ? /absurd\.complete_run\(/ : /absurd\.kit_complete_runs\(/;

/** What a dropped connection looks like to node-postgres: refused before, terminated after. */
function connectionError(loss: Loss): Error {
  return loss === 'before'
    ? Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })
    : new Error('Connection terminated unexpectedly');
}

/**
 * A connection to `target` that loses the next `times` statements matching `pattern`: `before`
 * they are sent, or `after` they ran (committed, answer lost). Counts what reached the database.
 */
function flakyConnection(target: pg.Pool) {
  const rules: { pattern: RegExp; loss: Loss; times: number }[] = [];
  const sent: string[] = [];
  const con = {
    async query(text: string, values?: unknown[]) {
      const rule = rules.find((r) => r.times > 0 && r.pattern.test(text));
      if (rule) rule.times -= 1;
      if (rule?.loss === 'before') throw connectionError('before');
      sent.push(text);
      const result = await target.query(text, values);
      if (rule?.loss === 'after') throw connectionError('after');
      return result;
    },
  };
  return {
    con: con as unknown as Queryable,
    lose(pattern: RegExp, loss: Loss, times = 1) {
      rules.push({ pattern, loss, times });
    },
    /** How many statements matching `pattern` reached the database. */
    sentCount: (pattern: RegExp) => sent.filter((text) => pattern.test(text)).length,
  };
}

async function flakyApp(label: string) {
  const flaky = flakyConnection(clients.pool());
  const app = await clients.app(queueName(label), { db: flaky.con });
  return { app, flaky };
}

describe.each<Loss>(['before', 'after'])('a statement lost %s it reached the database', (loss) => {
  it('a checkpoint write is sent again; the step does not run again and the run completes', async () => {
    const { app, flaky } = await flakyApp('retry-checkpoint');
    const runs: string[] = [];
    app.registerTask({ name: 'two-steps' }, async (_params, ctx) => {
      const one = await ctx.step('one', () => (runs.push('one'), 1));
      const two = await ctx.step('two', () => (runs.push('two'), 2));
      return one + two;
    });
    const { taskID } = await app.spawn('two-steps', null);
    flaky.lose(CHECKPOINT_WRITE, loss);
    await workOnce(app);
    expect(runs).toEqual(['one', 'two']);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: 3 });
    expect(await checkpoints(db.pool, app.queueName, taskID)).toEqual({ one: 1, two: 2 });
    expect(flaky.sentCount(CHECKPOINT_WRITE)).toBe(loss === 'before' ? 2 : 3);
    expect((await runRows(db.pool, app.queueName, taskID)).map((r) => r.state)).toEqual(['completed']);
    // The database answered all along: a lost statement alone is no outage worth a line.
    expect(app.recorded.lines).toEqual([]);
  });

  it('a completion is sent again; one that committed unseen is reported completed by the repeat', async () => {
    const { app, flaky } = await flakyApp('retry-complete');
    app.registerTask({ name: 'quick' }, async () => 'done');
    const { taskID } = await app.spawn('quick', null);
    flaky.lose(COMPLETION, loss);
    await workOnce(app);
    expect(flaky.sentCount(COMPLETION)).toBe(loss === 'before' ? 1 : 2);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: 'done' });
    expect((await runRows(db.pool, app.queueName, taskID)).map((r) => r.state)).toEqual(['completed']);
    expect(app.recorded.lines).toEqual([]);
  });

  it('a failure is sent again and recorded once, with its real reason; the retry follows at once', async () => {
    const { app, flaky } = await flakyApp('retry-fail');
    app.registerTask({ name: 'breaks' }, async () => {
      throw new Error('boom');
    });
    const { taskID } = await app.spawn('breaks', null, { maxAttempts: 3 });
    flaky.lose(/absurd\.fail_run/, loss);
    await workOnce(app);
    expect(flaky.sentCount(/absurd\.fail_run/)).toBe(loss === 'before' ? 1 : 2);
    const runs = await runRows(db.pool, app.queueName, taskID);
    expect(runs.map((r) => [r.attempt, r.state])).toEqual([
      [1, 'failed'],
      [2, 'pending'],
    ]);
    expect(runs[0]?.failure_reason).toMatchObject({ name: 'Error', message: 'boom' });
    expect(app.recorded.messages('warn')).toEqual([`task "breaks" run ${runs[0]?.run_id}: Error: boom — attempt 1 of 3 failed`]);
    expect(app.recorded.messages('error')).toEqual([]);
  });

  it('a sleep is sent again only while the task still runs: one that suspended the run unseen ends the execution', async () => {
    const { app, flaky } = await flakyApp('retry-sleep');
    let after = false;
    app.registerTask({ name: 'naps' }, async (_params, ctx) => {
      await ctx.sleepFor('nap', 3600);
      after = true;
    });
    const { taskID } = await app.spawn('naps', null);
    flaky.lose(/absurd\.schedule_run/, loss);
    await workOnce(app);
    expect(after).toBe(false);
    expect(flaky.sentCount(/absurd\.schedule_run/)).toBe(1);
    expect((await runRows(db.pool, app.queueName, taskID)).map((r) => r.state)).toEqual(['sleeping']);
    expect((await taskRow(db.pool, app.queueName, taskID)).state).toBe('sleeping');
    expect(app.recorded.lines).toEqual([]);
  });

  it('an event wait is sent again only while the task still runs; the event then resumes it', async () => {
    const { app, flaky } = await flakyApp('retry-await');
    app.registerTask({ name: 'waits' }, async (_params, ctx) => ctx.awaitEvent('go'));
    const { taskID } = await app.spawn('waits', null);
    flaky.lose(/absurd\.await_event/, loss);
    await workOnce(app);
    expect(flaky.sentCount(/absurd\.await_event/)).toBe(1);
    expect((await taskRow(db.pool, app.queueName, taskID)).state).toBe('sleeping');
    await app.emitEvent('go', { n: 1 });
    await workOnce(app);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: { n: 1 } });
    expect(app.recorded.lines).toEqual([]);
  });

  it('a heartbeat is sent again and extends the lease', async () => {
    const { app, flaky } = await flakyApp('retry-heartbeat');
    app.registerTask({ name: 'beats' }, async (_params, ctx) => {
      await ctx.heartbeat(600);
      return 'alive';
    });
    const { taskID } = await app.spawn('beats', null);
    flaky.lose(/absurd\.extend_claim/, loss);
    await workOnce(app, 30);
    expect(flaky.sentCount(/absurd\.extend_claim/)).toBe(loss === 'before' ? 1 : 2);
    const [run] = await runRows(db.pool, app.queueName, taskID);
    expect(run?.state).toBe('completed');
    expect(run!.claim_expires_at!.getTime() - run!.started_at!.getTime()).toBeGreaterThan(500_000);
    expect(app.recorded.lines).toEqual([]);
  });
});

describe('a run whose statements keep failing', () => {
  it('stops as lost when its lease runs out first: one warning, nothing written', async () => {
    const { app, flaky } = await flakyApp('retry-lost');
    let stepRuns = 0;
    let after = false;
    app.registerTask({ name: 'stranded' }, async (_params, ctx) => {
      await ctx.step('one', () => ++stepRuns);
      after = true;
    });
    const { taskID } = await app.spawn('stranded', null);
    flaky.lose(CHECKPOINT_WRITE, 'before', Infinity);
    const started = Date.now();
    await workOnce(app, 1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(stepRuns).toBe(1);
    expect(after).toBe(false);
    expect(await checkpoints(db.pool, app.queueName, taskID)).toEqual({});
    // Left to its lease: still running, no failure recorded by this worker.
    expect(await runRows(db.pool, app.queueName, taskID)).toMatchObject([{ state: 'running', failure_reason: null }]);
    expect(app.recorded.messages('warn')).toEqual([`task stranded (${taskID}) exceeded claim timeout of 1s`]);
    expect(app.recorded.messages('error')).toEqual([]);
  });
});

describe('a backend terminated in the middle of a statement', () => {
  it.each(['checkpoint', 'completion'] as const)('the %s is sent again on a new connection and the run completes', async (write) => {
    const application = `retry-victim-${write}`;
    const pool = clients.pool({ application_name: application });
    const app = await clients.app(queueName('terminated'), { db: pool });
    const go = gate();
    let stepRuns = 0;
    app.registerTask({ name: 'held' }, async (_params, ctx) => {
      if (write === 'checkpoint') {
        const value = await ctx.step('one', async () => {
          stepRuns += 1;
          await go.promise;
          return 'one';
        });
        return value;
      }
      await go.promise;
      return 'done';
    });
    const { taskID, runID } = await app.spawn('held', null);
    const execution = workOnce(app);
    await waitFor(async () => (await runRows(db.pool, app.queueName, taskID))[0]?.state === 'running', { what: 'the run to start' });

    // Hold the run's row: the write (which locks it) waits; then its backend is terminated.
    const locker = await db.connect();
    await locker.query('begin');
    await locker.query(`select 1 from ${table('r', app.queueName)} where run_id = $1 for update`, [runID]);
    go.open();
    const blocked = await waitFor(
      async () => {
        const { rows } = await db.pool.query<{ pid: number }>(
          `select pid from pg_stat_activity where application_name = $1 and wait_event_type = 'Lock'`,
          [application],
        );
        return rows[0]?.pid;
      },
      { what: 'the write to wait for the lock' },
    );
    await db.pool.query('select pg_terminate_backend($1)', [blocked]);
    await locker.query('commit');
    await execution;

    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: write === 'checkpoint' ? 'one' : 'done' });
    expect((await runRows(db.pool, app.queueName, taskID)).map((r) => r.state)).toEqual(['completed']);
    if (write === 'checkpoint') expect(stepRuns).toBe(1);
    expect(app.recorded.lines).toEqual([]);
  });
});

describe('the engine functions a worker sends again', () => {
  async function claimedRun(label: string) {
    const app = await clients.app(queueName(label), { db: db.pool });
    const { taskID, runID } = await app.spawn('any', null, { queue: app.queueName });
    await app.claimTasks({ claimTimeout: 60 });
    return { q: app.queueName, taskID, runID };
  }

  it.skipIf(onAbsurdSchema)("kit_set_checkpoints twice: the same state, ok both times [absurd-kit's schema only: kit_set_checkpoints]", async () => {
    const { q, taskID, runID } = await claimedRun('repeat-checkpoint');
    const write = () =>
      db.pool.query<{ outcome: string }>(
        'select outcome from absurd.kit_set_checkpoints($1, $2, $3, $4, $5, $6)',
        [q, [taskID], ['step'], ['{"v":1}'], [runID], [60]],
      );
    expect((await write()).rows).toEqual([{ outcome: 'ok' }]);
    expect((await write()).rows).toEqual([{ outcome: 'ok' }]);
    expect(await checkpoints(db.pool, q, taskID)).toEqual({ step: { v: 1 } });
  });

  it.skipIf(onAbsurdSchema)("kit_complete_runs twice: completed both times, the first result kept [absurd-kit's schema only: kit_complete_runs]", async () => {
    const { q, taskID, runID } = await claimedRun('repeat-complete');
    const complete = (result: string) =>
      db.pool.query<{ outcome: string }>('select outcome from absurd.kit_complete_runs($1, $2, $3)', [q, [runID], [result]]);
    expect((await complete('"first"')).rows).toEqual([{ outcome: 'completed' }]);
    expect((await complete('"second"')).rows).toEqual([{ outcome: 'completed' }]);
    expect((await taskRow(db.pool, q, taskID)).completed_payload).toBe('first');
  });

  it('fail_run twice: the repeat raises AB002 (already failed) and creates no second retry', async () => {
    const { q, taskID, runID } = await claimedRun('repeat-fail');
    const fail = () => db.pool.query(`select absurd.fail_run($1, $2, '{"message":"boom"}', null)`, [q, runID]);
    await fail();
    await expect(fail()).rejects.toMatchObject({ code: 'AB002' });
    expect(await runRows(db.pool, q, taskID)).toHaveLength(2);
  });

  it('schedule_run and await_event twice: the repeat raises P0001 (not running), so the worker checks the task first', async () => {
    const { q, runID } = await claimedRun('repeat-sleep');
    const sleep = () => db.pool.query(`select absurd.schedule_run($1, $2, now() + interval '1 hour')`, [q, runID]);
    await sleep();
    await expect(sleep()).rejects.toMatchObject({ code: 'P0001' });

    const other = await claimedRun('repeat-await');
    const wait = () =>
      db.pool.query('select * from absurd.await_event($1, $2, $3, $4, $5, null)', [other.q, other.taskID, other.runID, 'w', 'e']);
    expect((await wait()).rows).toEqual([{ should_suspend: true, payload: null }]);
    await expect(wait()).rejects.toMatchObject({ code: 'P0001' });
  });

  it('extend_claim twice: the lease ends the given seconds after the last call', async () => {
    const { q, taskID, runID } = await claimedRun('repeat-extend');
    await db.pool.query('select absurd.extend_claim($1, $2, 600)', [q, runID]);
    await db.pool.query('select absurd.extend_claim($1, $2, 600)', [q, runID]);
    const [run] = await runRows(db.pool, q, taskID);
    expect(run!.claim_expires_at!.getTime() - Date.now()).toBeGreaterThan(590_000);
  });
});
