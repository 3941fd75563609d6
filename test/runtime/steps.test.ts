import { describe, expect, it } from 'vitest';
import type { JsonValue, StepHandle, TaskContext } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import {
  appAtFakeTime,
  checkpoints,
  queueName,
  recordingConnection,
  runRows,
  table,
  taskRow,
  useClients,
  useFakeClock,
  workOnce,
} from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);
const clock = useFakeClock();

function appWithQueue(queue = queueName('steps')) {
  return clients.app(queue, { db: db.pool });
}

/** Fails the first attempt after `body` ran, so that the second attempt replays it. */
function replayTwice<T>(body: (ctx: TaskContext) => Promise<T>) {
  const results: T[] = [];
  const handler = async (_params: unknown, ctx: TaskContext) => {
    results.push(await body(ctx));
    if (ctx.attempt === 1) throw new Error('replay me');
    return 'done';
  };
  return { handler, results };
}

const spawnOptions = { maxAttempts: 2, retryStrategy: { kind: 'none' as const } };

describe('checkpoint names', () => {
  it('numbers repeated names name, name#2, … across step, beginStep, sleeps and event waits', async () => {
    const app = await appWithQueue(queueName('Awkward', 'quoted'));
    const names: string[] = [];
    app.registerTask({ name: 'numbered' }, async (_p, ctx) => {
      await ctx.step('x', () => 1);
      const handle = await ctx.beginStep<number>('x');
      names.push(handle.checkpointName);
      await ctx.completeStep(handle, 2);
      await ctx.sleepUntil('x', new Date(0));
      await ctx.awaitEvent('ev', { stepName: 'x' });
      await ctx.step('x', () => 5);
      await ctx.step('y', () => 'other counter');
      await ctx.awaitEvent('ev');
      await ctx.awaitEvent('ev');
      names.push((await ctx.beginStep('y')).checkpointName);
      return null;
    });
    await app.emitEvent('ev', 'payload');
    const { taskID } = await app.spawn('numbered', null);
    await workOnce(app);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: null });
    expect(names).toEqual(['x#2', 'y#2']);
    expect(await checkpoints(db.pool, app.queueName, taskID)).toEqual({
      x: 1,
      'x#2': 2,
      'x#3': '1970-01-01T00:00:00.000Z',
      'x#4': 'payload',
      'x#5': 5,
      y: 'other counter',
      '$awaitEvent:ev': 'payload',
      '$awaitEvent:ev#2': 'payload',
    });
  });

  it('advances the counter for cached values too, so a replay meets the same names', async () => {
    const app = await appWithQueue();
    const runs: string[] = [];
    const { handler, results } = replayTwice(async (ctx) => {
      const a = await ctx.step('s', () => {
        runs.push(`a${ctx.attempt}`);
        return `a${ctx.attempt}`;
      });
      const b = await ctx.step('s', () => {
        runs.push(`b${ctx.attempt}`);
        return `b${ctx.attempt}`;
      });
      const c = ctx.attempt === 1 ? 'skipped' : await ctx.step('s', () => `c${ctx.attempt}`);
      return [a, b, c];
    });
    app.registerTask({ name: 'replayed' }, handler);
    const { taskID } = await app.spawn('replayed', null, spawnOptions);
    await workOnce(app);
    await workOnce(app);
    expect(results).toEqual([
      ['a1', 'b1', 'skipped'],
      ['a1', 'b1', 'c2'],
    ]);
    expect(runs).toEqual(['a1', 'b1']);
    expect(await checkpoints(db.pool, app.queueName, taskID)).toEqual({ s: 'a1', 's#2': 'b1', 's#3': 'c2' });
  });
});

describe('step values', () => {
  it('returns the raw value on the first run and its JSON round trip on replay', async () => {
    const app = await appWithQueue();
    const original = { when: new Date(Date.UTC(2030, 0, 2, 3, 4, 5)), gone: undefined, list: [1, undefined], n: 1 };
    const { handler, results } = replayTwice(async (ctx) => ({
      value: await ctx.step('value', () => original),
      nothing: await ctx.step('nothing', () => undefined),
      date: await ctx.step('date', () => new Date(0)),
    }));
    app.registerTask({ name: 'json' }, handler);
    const { taskID } = await app.spawn('json', null, spawnOptions);
    await workOnce(app);
    await workOnce(app);
    const [first, replay] = results as unknown as [Record<string, unknown>, Record<string, unknown>];
    expect(first.value).toBe(original);
    expect(first.nothing).toBeUndefined();
    expect(first.date).toBeInstanceOf(Date);
    expect(replay.value).toStrictEqual({ when: '2030-01-02T03:04:05.000Z', list: [1, null], n: 1 });
    expect(replay.nothing).toBeNull();
    expect(replay.date).toBe('1970-01-01T00:00:00.000Z');
    const { rows } = await db.pool.query(
      `select state is null as sql_null from ${table('c', app.queueName)} where task_id = $1 and checkpoint_name = 'nothing'`,
      [taskID],
    );
    expect(rows).toEqual([{ sql_null: true }]);
  });

  it('falsy stored values count as found on replay', async () => {
    const app = await appWithQueue();
    const ran: string[] = [];
    const { handler, results } = replayTwice(async (ctx) => {
      const values: unknown[] = [];
      for (const [name, value] of [['f', false], ['zero', 0], ['empty', ''], ['nul', null], ['arr', []]] as const) {
        values.push(
          await ctx.step(name, () => {
            ran.push(`${name}${ctx.attempt}`);
            return value;
          }),
        );
      }
      return values;
    });
    app.registerTask({ name: 'falsy' }, handler);
    await app.spawn('falsy', null, spawnOptions);
    await workOnce(app);
    await workOnce(app);
    expect(results).toEqual([
      [false, 0, '', null, []],
      [false, 0, '', null, []],
    ]);
    expect(ran).toEqual(['f1', 'zero1', 'empty1', 'nul1', 'arr1']);
  });

  it('a throwing step stores nothing and fails the run; a retry runs it again', async () => {
    const app = await appWithQueue();
    let calls = 0;
    app.registerTask({ name: 'throws' }, async (_p, ctx) => {
      await ctx.step('before', () => 'kept');
      return ctx.step('boom', () => {
        calls += 1;
        if (calls === 1) throw new Error('step failed');
        return 'second time';
      });
    });
    const { taskID } = await app.spawn('throws', null, spawnOptions);
    await workOnce(app);
    expect(await checkpoints(db.pool, app.queueName, taskID)).toEqual({ before: 'kept' });
    const [failed] = await runRows(db.pool, app.queueName, taskID);
    expect(failed).toMatchObject({ state: 'failed', failure_reason: { name: 'Error', message: 'step failed' } });
    await workOnce(app);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: 'second time' });
    expect(calls).toBe(2);
  });

  it('a step error caught by the handler leaves no checkpoint, and the next use of the name is name#2', async () => {
    const app = await appWithQueue();
    app.registerTask({ name: 'caught' }, async (_p, ctx) => {
      try {
        await ctx.step('risky', () => {
          throw new Error('nope');
        });
      } catch {
        // handled by the task itself
      }
      return ctx.step('risky', () => 'recovered');
    });
    const { taskID } = await app.spawn('caught', null);
    await workOnce(app);
    expect(await checkpoints(db.pool, app.queueName, taskID)).toEqual({ 'risky#2': 'recovered' });
  });

  it('takes the name of a named function; an anonymous one is refused', async () => {
    const app = await appWithQueue();
    app.registerTask({ name: 'named' }, async (_p, ctx) => {
      const a = await ctx.step(async function chargeCard() {
        return 'charged';
      });
      const b = await ctx.step(function chargeCard() {
        return 'again';
      });
      return [a, b];
    });
    app.registerTask({ name: 'anonymous' }, async (_p, ctx) => ctx.step(async () => 'never stored'));
    const named = await app.spawn('named', null);
    const anonymous = await app.spawn('anonymous', null, { maxAttempts: 1 });
    await workOnce(app, 120, 2);
    expect(await checkpoints(db.pool, app.queueName, named.taskID)).toEqual({ chargeCard: 'charged', 'chargeCard#2': 'again' });
    expect(await app.fetchTaskResult(anonymous.taskID)).toMatchObject({
      state: 'failed',
      failure: { message: 'ctx.step needs a name: pass one, or a named function' },
    });
    expect(await checkpoints(db.pool, app.queueName, anonymous.taskID)).toEqual({});
  });
});

describe('beginStep and completeStep', () => {
  it('complete in any order; on replay the handles are done and completing them writes nothing', async () => {
    const { con, queries } = recordingConnection(db.pool);
    const app = await clients.app(queueName('handles'), { db: con });
    const seen: unknown[] = [];
    const { handler } = replayTwice(async (ctx) => {
      const first = await ctx.beginStep<string>('first');
      const second = await ctx.beginStep<string>('second');
      seen.push({ attempt: ctx.attempt, first: { ...first }, second: { ...second } });
      const writesBefore = checkpointWrites(queries).length;
      const b = await ctx.completeStep(second, `second from attempt ${ctx.attempt}`);
      const a = await ctx.completeStep(first, `first from attempt ${ctx.attempt}`);
      const writes = checkpointWrites(queries).length - writesBefore;
      seen.push({ a, b, writes });
      return null;
    });
    app.registerTask({ name: 'handles' }, handler);
    const { taskID } = await app.spawn('handles', null, spawnOptions);
    await workOnce(app);
    await workOnce(app);
    expect(seen).toEqual([
      {
        attempt: 1,
        first: { name: 'first', checkpointName: 'first', done: false },
        second: { name: 'second', checkpointName: 'second', done: false },
      },
      { a: 'first from attempt 1', b: 'second from attempt 1', writes: 2 },
      {
        attempt: 2,
        first: { name: 'first', checkpointName: 'first', done: true, state: 'first from attempt 1' },
        second: { name: 'second', checkpointName: 'second', done: true, state: 'second from attempt 1' },
      },
      { a: 'first from attempt 1', b: 'second from attempt 1', writes: 0 },
    ]);
    expect(await checkpoints(db.pool, app.queueName, taskID)).toEqual({
      first: 'first from attempt 1',
      second: 'second from attempt 1',
    });
  });

  it('a handle completed with undefined is found again (as null)', async () => {
    const app = await appWithQueue();
    const { handler, results } = replayTwice(async (ctx) => {
      const handle: StepHandle<JsonValue | undefined> = await ctx.beginStep('maybe');
      if (!handle.done) await ctx.completeStep(handle, undefined);
      return { done: handle.done, state: handle.state };
    });
    app.registerTask({ name: 'undef' }, handler);
    await app.spawn('undef', null, spawnOptions);
    await workOnce(app);
    await workOnce(app);
    expect(results).toEqual([{ done: false, state: undefined }, { done: true, state: null }]);
  });
});

describe('checkpoint preload', () => {
  it('loads all checkpoints once per run and never looks one up by name', async () => {
    const { con, queries } = recordingConnection(db.pool);
    const app = await clients.app(queueName('preload'), { db: con });
    const { handler } = replayTwice(async (ctx) => {
      await ctx.step('a', () => 1);
      await ctx.step('b', () => 2);
      await ctx.sleepUntil('nap', new Date(0));
      if (ctx.attempt === 2) await ctx.step('new-in-attempt-2', () => 3);
      return null;
    });
    app.registerTask({ name: 'preloaded' }, handler);
    await app.spawn('preloaded', null, spawnOptions);
    await workOnce(app);
    const firstRun = queries.length;
    await workOnce(app);
    const second = queries.slice(firstRun).map((q) => ({ text: q.text, name: q.values?.[2] }));
    // At most one bulk load per run (none if the claim itself carries the checkpoints) …
    const preloads = second.filter((q) => q.text.includes('get_task_checkpoint_states('));
    expect(preloads.length).toBeLessThanOrEqual(1);
    // … and no lookup one by one: the run knows every checkpoint it can see from the start.
    const lookups = second.filter((q) => q.text.includes('get_task_checkpoint_state(')).map((q) => q.name);
    expect(lookups).toEqual([]);
    expect(checkpointWrites(queries.slice(firstRun))).toEqual(['new-in-attempt-2']);
  });

  // Deliberate difference from absurd-sdk, which looks every unknown step up by name (one more round
  // trip per step): a checkpoint written by someone else while the run executes is not seen by it.
  it('does not see a checkpoint written by another writer after the run started', async () => {
    const app = await appWithQueue();
    app.registerTask({ name: 'late-writer' }, async (_p, ctx) => {
      await db.pool.query(`select absurd.set_task_checkpoint_state($1, $2, 'late', '"written elsewhere"', $3)`, [
        ctx.queueName,
        ctx.taskID,
        ctx.runID,
      ]);
      return ctx.step('late', () => 'computed');
    });
    const { taskID } = await app.spawn('late-writer', null);
    await workOnce(app);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: 'computed' });
  });
});

describe('leases and checkpoint writes', () => {
  it('a step write extends the lease by the claim timeout from now', async () => {
    const T0 = Date.parse('2032-01-01T00:00:00.000Z');
    const { app, pool } = await appAtFakeTime(clients, clock, queueName('lease'), T0, { record: false });
    const expiries: Date[] = [];
    app.registerTask({ name: 'leased' }, async (_p, ctx) => {
      expiries.push((await runRows(pool, ctx.queueName, ctx.taskID))[0]!.claim_expires_at!);
      await clock.set(pool, T0 + 10_000, { dbOnly: true });
      await ctx.step('one', () => 1);
      expiries.push((await runRows(pool, ctx.queueName, ctx.taskID))[0]!.claim_expires_at!);
      return null;
    });
    const { taskID } = await app.spawn('leased', null);
    await workOnce(app, 30);
    expect(expiries.map((d) => d.toISOString())).toEqual(['2032-01-01T00:00:30.000Z', '2032-01-01T00:00:40.000Z']);
    expect((await taskRow(pool, app.queueName, taskID)).state).toBe('completed');
  });
});

/**
 * The checkpoint names written by recorded statements: one per set_task_checkpoint_state call, and
 * every element of a batched absurd.kit_set_checkpoints call (its third parameter).
 */
function checkpointWrites(queries: readonly { text: string; values?: readonly unknown[] }[]): string[] {
  return queries.flatMap((q) => {
    if (q.text.includes('kit_set_checkpoints')) return (q.values?.[2] as string[] | undefined) ?? [];
    if (q.text.includes('set_task_checkpoint_state')) return [q.values?.[2] as string];
    return [];
  });
}
