/**
 * Schedules in the runtime: `defineSchedule` refuses a bad cron, time zone or params at
 * definition; the client's schedule methods manage them in the engine; a worker given a schedule
 * applies it and runs its ticks' tasks; a worker of the `absurd-sdk` package runs them too (the
 * engine fires ticks from claim_task, which every SDK calls).
 */
import { Absurd as SdkAbsurd } from 'absurd-sdk';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineSchedule, defineTask, ScheduleError, ValidationError } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import { gate, onAbsurdSchema, queueName, recordingLog, table, taskRow, useClients, WAKE_UP_POLL, waitFor, waitForTaskState } from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);

const report = defineTask({
  name: 'schedule-report',
  queue: 'reports',
  params: z.object({ kind: z.enum(['daily', 'weekly']), limit: z.number().int().positive() }),
  result: z.object({ kind: z.string(), schedule: z.unknown() }),
});

/** The contract of `report` on another queue (each test has its own). */
function reportOn(queue: string) {
  return defineTask({ name: 'schedule-report', queue, params: report.params, result: report.result });
}

/** Makes the schedule's next tick due now (by the server's real clock), as if its time had come. */
async function makeDue(name: string): Promise<void> {
  await db.pool.query(`update absurd.kit_schedules set next_fire_at = clock_timestamp() - interval '1 second' where schedule_name = $1`, [name]);
}

describe('defineSchedule', () => {
  it('returns a frozen declaration with defaults, on the task queue', () => {
    const schedule = defineSchedule({ name: 'nightly', task: report, cron: '0 2 * * *', params: { kind: 'daily', limit: 10 } });
    expect(schedule).toMatchObject({
      kind: 'absurd.schedule',
      name: 'nightly',
      queue: 'reports',
      cron: '0 2 * * *',
      timezone: 'UTC',
      catchUp: 'skip',
      params: { kind: 'daily', limit: 10 },
      options: {},
    });
    expect(schedule.task).toBe(report);
    expect(Object.isFrozen(schedule)).toBe(true);
  });

  it.each([
    ['0 24 * * *', 'hour field "24": 24 is out of range 0-23'],
    ['*/0 * * * *', 'minute field "*/0": step must be at least 1'],
    ['* * * * Funday', 'day-of-week field "Funday": "Funday" is not a number or a name'],
    ['0 0 30 2 *', 'it never fires'],
    ['* * * *', 'expected 5 fields'],
    ['@reboot', 'unknown macro'],
  ])('throws at definition for the cron %j, naming the field', (cron, message) => {
    const define = () => defineSchedule({ name: 'bad', task: report, cron, params: { kind: 'daily', limit: 1 } });
    expect(define).toThrow(ScheduleError);
    expect(define).toThrow(`defineSchedule("bad"): invalid cron expression "${cron}": ${message}`);
  });

  it('accepts names, ranges, steps and macros', () => {
    for (const cron of ['*/15 9-17 * JAN-MAR mon-fri', '1-5/2 0 1,15 * *', '@hourly', '@Weekly', '0 0 * * 7', '10/20 * * * *']) {
      expect(defineSchedule({ name: 'ok', task: report, cron, params: { kind: 'daily', limit: 1 } }).cron).toBe(cron);
    }
  });

  it('throws for an unknown time zone, a bad catch-up policy or an idempotency key', () => {
    const params = { kind: 'daily' as const, limit: 1 };
    expect(() => defineSchedule({ name: 'tz', task: report, cron: '@daily', timezone: 'Mars/Olympus_Mons', params })).toThrow(
      /unknown time zone "Mars\/Olympus_Mons"/,
    );
    try {
      defineSchedule({ name: 'tz', task: report, cron: '@daily', timezone: 'Nowhere/City', params });
    } catch (error) {
      expect((error as ScheduleError).code).toBe('UNKNOWN_TIMEZONE');
    }
    expect(() => defineSchedule({ name: 'c', task: report, cron: '@daily', params, catchUp: 'all' as 'skip' })).toThrow(/catchUp must be/);
    expect(() =>
      defineSchedule({ name: 'k', task: report, cron: '@daily', params, options: { idempotencyKey: 'k' } as unknown as { maxAttempts: number } }),
    ).toThrow(/idempotencyKey is not allowed/);
  });

  it("validates params with the task's contract at definition", () => {
    const define = () =>
      defineSchedule({ name: 'params', task: report, cron: '@daily', params: { kind: 'daily', limit: -1 } });
    expect(define).toThrow(ValidationError);
    expect(define).toThrow(/^schedule "params" of schedule-report: params\.limit: /);
  });

  it('refuses a contract whose params schema validates asynchronously', () => {
    const asyncTask = defineTask({
      name: 'async-params',
      params: z.object({ id: z.string() }).refine(async () => true),
      result: z.null(),
    });
    expect(() => defineSchedule({ name: 'async', task: asyncTask, cron: '@daily', params: { id: 'x' } })).toThrow(
      /validates asynchronously, which is not supported/,
    );
  });
});

describe.skipIf(onAbsurdSchema)('the cron check at definition agrees with the engine', () => {
  const expressions = [
    '* * * * *', '*/15 9-17 * JAN-MAR mon-fri', '1-5/2 0 1,15 * *', '10/20 * * * *', '0 0 * * 7', '@hourly', ' @Daily ',
    '0 0 29 2 *', '0 0 13 * FRI', '0 0 30 2 *', '0 0 31 4,6,9,11 *', '0 0 30 2 MON',
    '60 * * * *', '* 24 * * *', '* * 0 * *', '* * 32 * *', '* * * 0 *', '* * * 13 *', '* * * * 8', '* * * * Funday',
    '* * * JANUARY *', '* MON * * *', '*/0 * * * *', '5-1 * * * *', '1-2-3 * * * *', '1,,2 * * * *', '*/x * * * *',
    '* * * *', '* * * * * *', '', '   ', '@reboot', '-1 * * * *', '1- * * * *', '* * * * MON-', '99999 * * * *',
  ];

  it.each(expressions)('%j: the same verdict and message', async (cron) => {
    let local: string | undefined;
    try {
      defineSchedule({ name: 'agree', task: report, cron, params: { kind: 'daily', limit: 1 } });
    } catch (error) {
      local = (error as Error).message.replace(/^defineSchedule\("agree"\): /, '');
    }
    let engine: string | undefined;
    try {
      const { rows } = await db.pool.query<{ at: Date | null }>(`select absurd.kit_cron_next($1, 'UTC', now()) as at`, [cron]);
      if (rows[0]?.at === null) engine = `invalid cron expression "${cron}": it never fires (no such day in the months it allows)`;
    } catch (error) {
      engine = (error as Error).message;
    }
    expect(local).toBe(engine);
  });
});

describe.skipIf(onAbsurdSchema)('the client and the worker (needs migration 000015)', () => {
  it('upserts, lists, pauses, resumes and removes schedules; engine errors become ScheduleError', async () => {
    const queue = queueName('sched-admin');
    const app = await clients.app(queue);
    const name = `${queue}/hourly`;
    const created = await app.upsertSchedule({ name, queue, task: 'plain-task', cron: '@hourly', params: { a: 1 }, options: { maxAttempts: 2 } });
    expect(created).toMatchObject({ name, queue, task: 'plain-task', cron: '@hourly', timezone: 'UTC', params: { a: 1 }, options: { max_attempts: 2 }, catchUp: 'skip', paused: false });
    expect(created.nextFireAt?.getUTCMinutes()).toBe(0);
    expect((await app.pauseSchedule(name)).paused).toBe(true);
    expect((await app.resumeSchedule(name)).paused).toBe(false);
    expect((await app.listSchedules(queue)).map((s) => s.name)).toEqual([name]);
    expect(await app.removeSchedule(name)).toBe(true);
    expect(await app.removeSchedule(name)).toBe(false);
    await expect(app.pauseSchedule(name)).rejects.toMatchObject({ code: 'SCHEDULE_NOT_FOUND', message: `schedule "${name}" does not exist` });
    await expect(app.upsertSchedule({ name, queue: queueName('no-such-queue'), task: 't', cron: '@daily' })).rejects.toBeInstanceOf(ScheduleError);
    await expect(app.upsertSchedule({ name, queue: queueName('no-such-queue'), task: 't', cron: '@daily' })).rejects.toMatchObject({
      code: 'QUEUE_NOT_FOUND',
    });
  });

  it("stores the options a client's spawn would give: the schedule's, the contract's defaults, the client's attempts", async () => {
    const queue = queueName('sched-defaults');
    const app = await clients.app(queue, { defaultMaxAttempts: 6 });
    const task = defineTask({
      name: 'with-defaults',
      queue,
      params: z.object({}),
      result: z.null(),
      defaults: { maxAttempts: 4, retryStrategy: { kind: 'fixed', baseSeconds: 3 } },
    });
    const declared = (name: string, options = {}) => defineSchedule({ name: `${queue}/${name}`, task, cron: '@daily', params: {}, options });
    expect((await app.upsertSchedule(declared('contract'))).options).toEqual({ max_attempts: 4, retry_strategy: { kind: 'fixed', base_seconds: 3 } });
    expect((await app.upsertSchedule(declared('own', { maxAttempts: 2 }))).options).toEqual({
      max_attempts: 2,
      retry_strategy: { kind: 'fixed', base_seconds: 3 },
    });
    expect((await app.upsertSchedule({ name: `${queue}/plain`, queue, task: 'other', cron: '@daily' })).options).toEqual({ max_attempts: 6 });
  });

  it('a worker given a schedule applies it when it starts and runs the task of each tick', async () => {
    const queue = queueName('sched-worker');
    const task = reportOn(queue);
    const schedule = defineSchedule({
      name: `${queue}/every-minute`,
      task,
      cron: '* * * * *',
      timezone: 'Europe/Berlin',
      params: { kind: 'weekly', limit: 3 },
      catchUp: 'latest',
      options: { headers: { team: 'ops' } },
    });
    const app = await clients.app(queue);
    app.registerTask(task, async (params, ctx) => ({ kind: `${params.kind}:${params.limit}`, schedule: ctx.headers }));
    app.registerSchedule(schedule);
    const worker = await app.startWorker({ pollInterval: 0.1 });
    const [applied] = await app.listSchedules(queue);
    expect(applied).toMatchObject({ name: schedule.name, cron: '* * * * *', timezone: 'Europe/Berlin', catchUp: 'latest', paused: false });
    await makeDue(schedule.name);
    const done = await waitFor(async () => {
      const { rows } = await db.pool.query<{ state: string; completed_payload: { kind: string; schedule: Record<string, unknown> } }>(
        `select state, completed_payload from ${table('t', queue)} where state = 'completed'`,
      );
      return rows[0];
    });
    await worker.close();
    expect(done.completed_payload.kind).toBe('weekly:3');
    expect(done.completed_payload.schedule).toMatchObject({ team: 'ops', 'absurd.schedule': schedule.name });
    const [after] = await app.listSchedules(queue);
    expect(after?.lastTaskID).not.toBeNull();
    expect(after?.nextFireAt?.getTime()).toBeGreaterThan(Date.now() - 1000);
  });

  it('an idle worker with an hour-long poll interval wakes for the next tick (kit_seconds_until_next_run)', async () => {
    const queue = queueName('sched-idle');
    const app = await clients.app(queue);
    const name = `${queue}/soon`;
    await app.upsertSchedule({ name, queue, task: 'tick', cron: '@yearly', catchUp: 'latest' });
    await db.pool.query(`update absurd.kit_schedules set next_fire_at = clock_timestamp() + interval '1.5 seconds' where schedule_name = $1`, [name]);
    const ran: unknown[] = [];
    app.registerTask({ name: 'tick' }, async (_params, ctx) => {
      ran.push(ctx.headers['absurd.schedule']);
      return null;
    });
    const started = Date.now();
    const worker = await app.startWorker({ pollInterval: WAKE_UP_POLL });
    await waitFor(() => ran.length > 0, { timeoutMs: 10_000, what: 'the tick to run' });
    await worker.close();
    expect(ran).toEqual([name]);
    expect(Date.now() - started).toBeLessThan(8_000);
  });

  it('a worker whose slots are all busy fires a due tick on time, without claiming', async () => {
    const queue = queueName('sched-busy');
    const app = await clients.app(queue);
    const hold = gate();
    const entered = gate();
    app.registerTask({ name: 'long' }, async () => {
      entered.open();
      await hold.promise;
      return null;
    });
    app.registerTask({ name: 'tick' }, async () => null);
    const name = `${queue}/soon`;
    await app.upsertSchedule({ name, queue, task: 'tick', cron: '@yearly' });
    const worker = await app.startWorker({ concurrency: 1, pollInterval: 0.1 });
    await app.spawn('long', {});
    await entered.promise;
    // The one slot is taken: the worker does not claim until `long` ends.
    await db.pool.query(`update absurd.kit_schedules set next_fire_at = clock_timestamp() + interval '0.3 seconds' where schedule_name = $1`, [name]);
    const fired = await waitFor(
      async () => {
        const [info] = await app.listSchedules(queue);
        return info?.lastTaskID ?? undefined;
      },
      { timeoutMs: 5000, what: 'the tick to be fired while the worker is busy' },
    );
    expect((await taskRow(db.pool, queue, fired))?.state).toBe('pending');
    hold.open();
    await waitForTaskState(db.pool, queue, fired, 'completed', 8000);
    await worker.close();
  });

  it("a worker of the absurd-sdk package fires and runs the schedule's tasks (claim_task fires them)", async () => {
    const queue = queueName('sched-sdk');
    const app = await clients.app(queue);
    const name = `${queue}/sdk`;
    await app.upsertSchedule({ name, queue, task: 'sdk-scheduled', cron: '0 * * * *', params: { n: 7 }, catchUp: 'latest' });
    const sdk = new SdkAbsurd({ db: clients.pool(), queueName: queue, log: recordingLog() });
    try {
      sdk.registerTask({ name: 'sdk-scheduled' }, async (params: { n: number }, ctx) => ({ square: params.n * params.n, headers: ctx.headers }));
      const sdkWorker = await sdk.startWorker({ pollInterval: 0.1 });
      await makeDue(name);
      const done = await waitFor(async () => {
        const { rows } = await db.pool.query<{ completed_payload: { square: number; headers: Record<string, unknown> } }>(
          `select completed_payload from ${table('t', queue)} where state = 'completed'`,
        );
        return rows[0];
      });
      await sdkWorker.close();
      expect(done.completed_payload.square).toBe(49);
      expect(done.completed_payload.headers['absurd.schedule']).toBe(name);
      const { rows } = await db.pool.query<{ n: number }>(`select count(*)::int as n from ${table('t', queue)}`);
      expect(rows[0]?.n).toBe(1);
    } finally {
      await sdk.close().catch(() => undefined);
    }
  });
});


describe.runIf(onAbsurdSchema)("on Absurd's schema (ABSURD_TEST_SCHEMA=absurd)", () => {
  it('the schedule methods say that the engine has no schedules and what to run', async () => {
    const queue = queueName('sched-absurd');
    const app = await clients.app(queue);
    await expect(app.upsertSchedule({ name: 'x', queue, task: 't', cron: '@daily' })).rejects.toMatchObject({
      code: 'SCHEDULES_UNSUPPORTED',
      message: expect.stringContaining('run `absurd migrate`'),
    });
    await expect(app.listSchedules()).rejects.toBeInstanceOf(ScheduleError);
  });
});
