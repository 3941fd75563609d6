/**
 * Compile-time guarantees of schedules: a declared schedule's params are typed by its task's
 * contract (its input form), and the client's schedule methods take a declaration or a plain object.
 */
import { describe, expectTypeOf, test } from 'vitest';
import { z } from 'zod';
import { Absurd, defineSchedule, defineTask, type ScheduleContract, type ScheduleInfo } from '../../packages/absurd-kit/src/index.js';

const report = defineTask({
  name: 'report',
  queue: 'reports',
  params: z.object({ kind: z.enum(['daily', 'weekly']), limit: z.number().default(10) }),
  result: z.null(),
});

describe('defineSchedule', () => {
  test("params are the task's params input: defaults optional, wrong fields refused", () => {
    const nightly = defineSchedule({ name: 'n', task: report, cron: '@daily', params: { kind: 'daily' } });
    expectTypeOf(nightly).toEqualTypeOf<ScheduleContract<typeof report>>();
    expectTypeOf(nightly.params).toEqualTypeOf<{ kind: 'daily' | 'weekly'; limit?: number | undefined }>();
    // @ts-expect-error 'monthly' is not a kind of the contract
    defineSchedule({ name: 'n', task: report, cron: '@daily', params: { kind: 'monthly' } });
    // @ts-expect-error params are required
    defineSchedule({ name: 'n', task: report, cron: '@daily' });
    // @ts-expect-error catchUp is 'skip' or 'latest'
    defineSchedule({ name: 'n', task: report, cron: '@daily', params: { kind: 'daily' }, catchUp: 'all' });
  });

  test('the client takes a declaration or a plain schedule and returns ScheduleInfo', () => {
    const app = new Absurd();
    const nightly = defineSchedule({ name: 'n', task: report, cron: '@daily', params: { kind: 'daily' } });
    expectTypeOf(app.upsertSchedule(nightly)).toEqualTypeOf<Promise<ScheduleInfo>>();
    expectTypeOf(app.upsertSchedule({ name: 'p', queue: 'q', task: 't', cron: '@hourly' })).toEqualTypeOf<Promise<ScheduleInfo>>();
    // @ts-expect-error a plain schedule needs its queue
    void app.upsertSchedule({ name: 'p', task: 't', cron: '@hourly' });
    expectTypeOf(app.listSchedules()).toEqualTypeOf<Promise<ScheduleInfo[]>>();
    expectTypeOf(app.removeSchedule('n')).toEqualTypeOf<Promise<boolean>>();
  });
});
