/**
 * Schemas with defaults and transforms: what is stored is always the input form (what the producer
 * sent, what the step function returned), and it is parsed on every read, so the handler sees the
 * same output on the first run and on every replay.
 */
import { expect, it } from 'vitest';
import { z } from 'zod';
import { defineTask } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import { checkpoints, queueName, rawEmit, runRows, taskRow, useClients, workOnce } from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);

function booking(queue: string) {
  return defineTask({
    name: 'booking',
    queue,
    params: z.object({
      guest: z.string().transform((s) => s.trim().toUpperCase()),
      nights: z.number().int().default(1),
      arrival: z.iso.datetime().transform((s) => new Date(s)),
      tags: z.array(z.string()).default([]),
    }),
    result: z.object({ summary: z.string() }),
    steps: {
      quote: z
        .object({ cents: z.number().int(), currency: z.string().default('EUR') })
        .transform((q) => ({ ...q, euros: q.cents / 100 })),
      'check-in': z.iso.datetime().transform((s) => new Date(s)),
    },
    defaults: { maxAttempts: 3 },
  });
}

it('params: stored as sent, the handler gets the parsed output on the first run and the same on replay', async () => {
  const queue = queueName('transform-params');
  const app = await clients.app(queue);
  const contract = booking(queue);
  const seen: unknown[] = [];
  app.registerTask(contract, async (params, ctx) => {
    seen.push(params);
    if (ctx.attempt === 1) throw new Error('crash on the first attempt');
    return { summary: `${params.guest} x${params.nights}` };
  });

  const sent = { guest: '  ada ', arrival: '2024-07-01T15:00:00Z' };
  const handle = await app.spawn(contract, sent);
  expect((await taskRow(db.pool, queue, handle.taskID))?.params).toEqual(sent);

  await workOnce(app);
  await workOnce(app);
  const expected = { guest: 'ADA', nights: 1, arrival: new Date('2024-07-01T15:00:00Z'), tags: [] };
  expect(seen).toEqual([expected, expected]);
  expect((seen[0] as typeof expected).arrival).toBeInstanceOf(Date);
  expect((await runRows(db.pool, queue, handle.taskID)).map((run) => run.state)).toEqual(['failed', 'completed']);
  // The stored params never changed.
  expect((await taskRow(db.pool, queue, handle.taskID))?.params).toEqual(sent);
  expect(await app.fetchTaskResult(handle)).toEqual({ state: 'completed', result: { summary: 'ADA x1' } });
});

it('steps: the checkpoint holds what the step function returned; first run and replay return the same output', async () => {
  const queue = queueName('transform-steps');
  const app = await clients.app(queue);
  const contract = booking(queue);
  const outputs: { quote: unknown; checkIn: unknown; attempt: number }[] = [];
  let quoteCalls = 0;
  app.registerTask(contract, async (_params, ctx) => {
    const quote = await ctx.step('quote', () => {
      quoteCalls += 1;
      return { cents: 12_345 };
    });
    const checkIn = await ctx.step('check-in', () => '2024-07-01T15:00:00Z');
    outputs.push({ quote, checkIn, attempt: ctx.attempt });
    // Suspend once, then fail once, so the steps are replayed both ways.
    await ctx.awaitEvent('go');
    if (ctx.attempt === 1) throw new Error('crash after the steps');
    return { summary: `${quote.euros} ${quote.currency} at ${checkIn.toISOString()}` };
  });

  const handle = await app.spawn(contract, { guest: 'ada', arrival: '2024-07-01T15:00:00Z' });
  await workOnce(app); // first run, suspends
  await rawEmit(db.pool, queue, 'go', null);
  await workOnce(app); // replay after the suspend, then fails
  await workOnce(app); // replay on attempt 2

  expect(quoteCalls).toBe(1);
  expect(await checkpoints(db.pool, queue, handle.taskID)).toMatchObject({
    quote: { cents: 12_345 },
    'check-in': '2024-07-01T15:00:00Z',
  });
  const quote = { cents: 12_345, currency: 'EUR', euros: 123.45 };
  const checkIn = new Date('2024-07-01T15:00:00Z');
  expect(outputs).toEqual([
    { quote, checkIn, attempt: 1 },
    { quote, checkIn, attempt: 1 },
    { quote, checkIn, attempt: 2 },
  ]);
  expect(await app.fetchTaskResult(handle)).toEqual({
    state: 'completed',
    result: { summary: '123.45 EUR at 2024-07-01T15:00:00.000Z' },
  });
});

it('a default added to a step schema after a checkpoint was stored applies on replay', async () => {
  const queue = queueName('transform-default-later');
  const app = await clients.app(queue);
  const before = defineTask({
    name: 'booking',
    queue,
    params: z.object({}),
    result: z.object({ summary: z.string() }),
    steps: { room: z.object({ number: z.number() }) },
  });
  app.registerTask(before, async (_params, ctx) => {
    await ctx.step('room', () => ({ number: 12 }));
    throw new Error('crash');
  });
  const handle = await app.spawn(before, {});
  await workOnce(app);

  const after = defineTask({
    name: 'booking',
    queue,
    params: z.object({}),
    result: z.object({ summary: z.string() }),
    steps: { room: z.object({ number: z.number(), floor: z.number().default(0) }) },
  });
  app.registerTask(after, async (_params, ctx) => {
    const room = await ctx.step('room', () => ({ number: -1 }));
    return { summary: `${room.number}/${room.floor}` };
  });
  await workOnce(app);
  expect(await app.fetchTaskResult(handle)).toEqual({ state: 'completed', result: { summary: '12/0' } });
});
