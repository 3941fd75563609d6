/**
 * `TestEnvironment.inspect` and the event readers: a task read back through its contract — state,
 * attempts, runs, parsed steps, awaited events, children — and the events of the queues.
 */
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { defineEvent, defineTask, ValidationError, type JsonValue } from 'absurd-kit';
import { createTestEnvironment, type TaskInspection, type TestEnvironment } from '@absurd-kit/cli/testing';

const parcelShipped = defineEvent({ name: 'parcel.shipped', payload: z.object({ carrier: z.string(), at: z.iso.datetime() }) });

const label = defineTask({
  name: 'print-label',
  queue: 'labels',
  params: z.object({ parcelId: z.string() }),
  result: z.object({ labelId: z.string() }),
});

const ship = defineTask({
  name: 'ship-parcel',
  queue: 'parcels',
  params: z.object({ parcelId: z.string(), weightGrams: z.number().int() }),
  result: z.object({ parcelId: z.string(), carrier: z.string(), labelId: z.string() }),
  steps: {
    weigh: z.object({ grams: z.number().int() }),
    quote: z.object({ cents: z.number().int(), currency: z.string().transform((c) => c.toUpperCase()) }),
  },
});

let t: TestEnvironment;

beforeAll(async () => {
  t = await createTestEnvironment({ now: '2032-02-02T10:00:00Z' });
  const parcels = await t.client('parcels');
  const labels = await t.client('labels');
  labels.registerTask(label, async ({ parcelId }) => ({ labelId: `L-${parcelId}` }));
  parcels.registerTask(ship, async (params, ctx) => {
    await ctx.step('weigh', () => ({ grams: params.weightGrams }));
    await ctx.step('quote', () => ({ cents: 450, currency: 'eur' }));
    await ctx.step('note', () => ['fragile']);
    const child = await ctx.spawn(label, { parcelId: params.parcelId });
    const printed = await ctx.awaitTaskResult(child);
    if (printed.state !== 'completed') throw new Error('no label');
    const shipped = await ctx.awaitEvent(parcelShipped, params.parcelId, { timeout: 86_400 });
    await ctx.emitEvent('parcel.done', { parcelId: params.parcelId });
    return { parcelId: params.parcelId, carrier: shipped.carrier, labelId: printed.result.labelId };
  });
});

afterAll(() => t.close());

describe('inspect', () => {
  it('reads a task through its contract: steps parsed, events awaited, children, typed result', async () => {
    const parcels = await t.client('parcels');
    const handle = await parcels.spawn(ship, { parcelId: 'p-1', weightGrams: 1200 });
    await t.runUntilIdle();

    const waiting = await t.inspect(handle);
    expectTypeOf(waiting).toEqualTypeOf<TaskInspection<typeof ship>>();
    expect(waiting).toMatchObject({ taskID: handle.taskID, queue: 'parcels', taskName: 'ship-parcel', state: 'sleeping', attempts: 1, maxAttempts: 5 });
    expect(waiting.params).toEqual({ parcelId: 'p-1', weightGrams: 1200 });
    expect(waiting.result).toBeUndefined();
    // Declared steps come out of their schemas (the currency upper-cased); others as stored.
    expect(waiting.steps).toEqual({ weigh: { grams: 1200 }, quote: { cents: 450, currency: 'EUR' }, note: ['fragile'] });
    expectTypeOf(waiting.steps.quote).toEqualTypeOf<{ cents: number; currency: string } | undefined>();
    expect(Object.keys(waiting.checkpoints)).toEqual(expect.arrayContaining(['weigh', 'quote', 'note', '$spawn:print-label']));
    expect(waiting.checkpoints.quote).toEqual({ cents: 450, currency: 'eur' });
    expect(waiting.events).toEqual([
      {
        eventName: 'parcel.shipped:p-1',
        stepName: '$awaitEvent:parcel.shipped:p-1',
        state: 'waiting',
        payload: undefined,
        timeoutAt: new Date('2032-02-03T10:00:00Z'),
      },
    ]);
    expect(waiting.children).toMatchObject([{ queue: 'labels', taskName: 'print-label', state: 'completed', attempts: 1 }]);
    const child = await t.inspect(waiting.children[0]!, label);
    expect(child.result).toEqual({ labelId: 'L-p-1' });
    expectTypeOf(child.result).toEqualTypeOf<{ labelId: string } | undefined>();

    await t.advance('3 hours');
    await parcels.emitEvent(parcelShipped, 'p-1', { carrier: 'DHL', at: '2032-02-02T13:00:00Z' });
    await t.runUntilIdle();
    const done = await t.inspect(handle);
    expect(done.state).toBe('completed');
    expect(done.result).toEqual({ parcelId: 'p-1', carrier: 'DHL', labelId: 'L-p-1' });
    expectTypeOf(done.result).toEqualTypeOf<{ parcelId: string; carrier: string; labelId: string } | undefined>();
    expect(done.events).toEqual([
      expect.objectContaining({ eventName: 'parcel.shipped:p-1', state: 'received', payload: { carrier: 'DHL', at: '2032-02-02T13:00:00Z' } }),
    ]);
    expect(done.runs).toMatchObject([{ attempt: 1, state: 'completed', failure: null, result: done.result }]);
    expect(done.runs[0]?.completedAt).toEqual(new Date('2032-02-02T13:00:00Z'));
    expect(done.createdAt).toEqual(new Date('2032-02-02T10:00:00Z'));
  });

  it('finds a task by id alone, in whichever queue holds it, untyped', async () => {
    const labels = await t.client('labels');
    const { taskID } = await labels.spawn(label, { parcelId: 'p-2' });
    await t.runUntilIdle();
    const found = await t.inspect(taskID);
    expectTypeOf(found.result).toEqualTypeOf<unknown>();
    expect(found).toMatchObject({ queue: 'labels', state: 'completed', result: { labelId: 'L-p-2' }, params: { parcelId: 'p-2' } });
    await expect(t.inspect('00000000-0000-7000-8000-000000000000')).rejects.toThrow(/no queue has task/);
  });

  it('reports a wait whose timeout passed as timed out, and a stored step today\'s schema refuses as a ValidationError', async () => {
    const parcels = await t.client('parcels');
    const handle = await parcels.spawn(ship, { parcelId: 'p-3', weightGrams: 10 });
    await t.runUntilIdle();
    await t.advance('1 day');
    const late = await t.inspect(handle);
    expect(late.events).toMatchObject([{ eventName: 'parcel.shipped:p-3', state: 'timed-out' }]);

    const stricter = defineTask({ ...ship, name: ship.name, queue: ship.queue, params: ship.params, result: ship.result, steps: { weigh: z.object({ grams: z.number().min(100) }) } });
    const error = await t.inspect(handle, stricter).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({ subject: 'ship-parcel', boundary: 'step', detail: 'weigh' });
    await parcels.cancelTask(handle.taskID);
  });

  it('the failure of a failed task is its last run\'s', async () => {
    const labels = await t.client('labels');
    const broken = defineTask({ name: 'broken-label', queue: 'labels', params: z.null(), result: z.null(), defaults: { maxAttempts: 2, retryStrategy: { kind: 'none' } } });
    let attempt = 0;
    labels.registerTask(broken, async () => {
      attempt += 1;
      throw new Error(`printer jam ${attempt}`);
    });
    const handle = await labels.spawn(broken, null);
    await t.runUntilIdle();
    const failed = await t.inspect(handle);
    expect(failed).toMatchObject({ state: 'failed', attempts: 2, failure: { name: 'Error', message: 'printer jam 2' } });
    expect(failed.runs.map((r) => r.failure?.message)).toEqual(['printer jam 1', 'printer jam 2']);
    expect(failed.runs[0]?.failure?.stack).toMatch(/printer jam 1/);
  });
});

describe('emitted events', () => {
  it('lists the events of the queues, without the runtime\'s own, and parses one by its contract', async () => {
    const events = await t.emittedEvents();
    // Emitted at the same instant: by name.
    expect(events.map((e) => e.eventName)).toEqual(['parcel.done', 'parcel.shipped:p-1']);
    expect(events[0]).toEqual({ queue: 'parcels', eventName: 'parcel.done', payload: { parcelId: 'p-1' }, emittedAt: new Date('2032-02-02T13:00:00Z') });
    expect(await t.emittedEvents('labels')).toEqual([]);

    const shipped = await t.emittedEvent(parcelShipped, 'p-1');
    expectTypeOf(shipped).toEqualTypeOf<{ carrier: string; at: string } | undefined>();
    expect(shipped).toEqual({ carrier: 'DHL', at: '2032-02-02T13:00:00Z' });
    expect(await t.emittedEvent(parcelShipped, 'p-9')).toBeUndefined();
    const payload: JsonValue | undefined = events[1]?.payload;
    expect(payload).toEqual({ carrier: 'DHL', at: '2032-02-02T13:00:00Z' });
  });

  it('lists the tasks of the queues, oldest first', async () => {
    const tasks = await t.tasks('parcels');
    expect(tasks.map((x) => [x.taskName, x.state])).toEqual([
      ['ship-parcel', 'completed'],
      ['ship-parcel', 'cancelled'],
    ]);
    // Each queue's, the queues in the order of their clients: three labels (p-1, p-2, p-3) and the broken one.
    expect((await t.tasks()).map((x) => x.queue)).toEqual(['parcels', 'parcels', 'labels', 'labels', 'labels', 'labels']);
  });
});
