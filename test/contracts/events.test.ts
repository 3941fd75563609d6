/**
 * The event boundaries. Emitting through an event contract (client or task) checks the payload
 * first and writes nothing when it is refused. Receiving parses the stored payload, which anyone
 * may have emitted without a contract (the untyped API, SQL, another SDK): a payload the schema
 * refuses fails the waiting task without retry, since a retry would read the same payload.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ValidationError, defineEvent, defineTask } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import {
  awkwardQueueNames,
  checkpoints,
  countRows,
  expectFailedWithoutRetry,
  queueName,
  rawEmit,
  runRows,
  table,
  taskRow,
  useClients,
  validationErrorOf,
  workOnce,
} from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);

const packed = defineEvent({
  name: 'shipment.packed',
  payload: z.object({ trackingNumber: z.string(), packedAt: z.iso.datetime().transform((s) => new Date(s)) }),
});
const goodPayload = { trackingNumber: 'T-1', packedAt: '2024-05-01T10:00:00Z' };
const badPayload = { trackingNumber: 5, packedAt: '2024-05-01T10:00:00Z' } as unknown as typeof goodPayload;

function shipping(queue: string) {
  return defineTask({
    name: 'ship',
    queue,
    params: z.object({ orderId: z.string() }),
    result: z.object({ trackingNumber: z.string(), packedAt: z.string() }),
    defaults: { maxAttempts: 5 },
  });
}

async function events(queue: string): Promise<{ event_name: string; payload: unknown }[]> {
  const { rows } = await db.pool.query<{ event_name: string; payload: unknown }>(
    `select event_name, payload from ${table('e', queue)} order by event_name`,
  );
  return rows;
}

describe('client emitEvent', () => {
  it('refuses a payload the event schema rejects and writes nothing, on its own queue or the one given', async () => {
    const queue = queueName('emit-client');
    const other = awkwardQueueNames()[2]!;
    const app = await clients.app(queue);
    await app.createQueue(other);

    const here = await validationErrorOf(app.emitEvent(packed, 'o-1', badPayload));
    expect(here).toMatchObject({
      code: 'VALIDATION',
      subject: 'shipment.packed:o-1',
      boundary: 'event',
      detail: undefined,
      issues: [{ path: 'trackingNumber' }],
      received: '5',
      retryable: true,
    });
    expect(here.message).toMatch(/^shipment\.packed:o-1: event\.trackingNumber: .+, received 5$/);
    const there = await validationErrorOf(app.emitEvent(packed, 'o-1', { ...goodPayload, packedAt: 'yesterday' }, other));
    expect(there.issues[0]?.path).toBe('packedAt');
    const keyless = await validationErrorOf(app.emitEvent(packed, undefined, badPayload));
    expect(keyless.subject).toBe('shipment.packed');
    expect(await countRows(db.pool, queue, 'e')).toBe(0);
    expect(await countRows(db.pool, other, 'e')).toBe(0);

    // A good payload is stored as sent (the input form), under `<name>:<key>`.
    await app.emitEvent(packed, 'o-1', goodPayload, other);
    expect(await events(other)).toEqual([{ event_name: 'shipment.packed:o-1', payload: goodPayload }]);
    expect(await countRows(db.pool, queue, 'e')).toBe(0);
  });
});

describe('ctx.emitEvent', () => {
  it('refuses a payload the event schema rejects and writes nothing; the error names the task and the event', async () => {
    const queue = queueName('emit-ctx');
    const app = await clients.app(queue);
    const caught: unknown[] = [];
    const contract = shipping(queue);
    app.registerTask(contract, async (params, ctx) => {
      try {
        await ctx.emitEvent(packed, params.orderId, badPayload);
      } catch (error) {
        caught.push(error);
      }
      return { trackingNumber: 'none', packedAt: 'never' };
    });
    const handle = await app.spawn(contract, { orderId: 'o-1' });
    await workOnce(app);

    expect(caught).toHaveLength(1);
    const error = caught[0] as ValidationError;
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({
      subject: 'ship',
      boundary: 'event',
      detail: 'shipment.packed:o-1',
      issues: [{ path: 'trackingNumber' }],
      received: '5',
      retryable: true,
    });
    expect(error.message).toMatch(/^ship: event "shipment\.packed:o-1"\.trackingNumber: .+, received 5$/);
    expect(await countRows(db.pool, queue, 'e')).toBe(0);
    expect((await taskRow(db.pool, queue, handle.taskID))?.state).toBe('completed');
  });

  it('an uncaught refusal fails the run with the normal retry rules', async () => {
    const queue = queueName('emit-ctx-retry');
    const app = await clients.app(queue);
    const contract = shipping(queue);
    app.registerTask(contract, async (params, ctx) => {
      await ctx.emitEvent(packed, params.orderId, ctx.attempt === 1 ? badPayload : goodPayload);
      return { trackingNumber: 'T-1', packedAt: goodPayload.packedAt };
    });
    const handle = await app.spawn(contract, { orderId: 'o-1' });
    await workOnce(app);
    expect((await runRows(db.pool, queue, handle.taskID)).map((run) => run.state)).toEqual(['failed', 'pending']);
    expect(await countRows(db.pool, queue, 'e')).toBe(0);
    await workOnce(app);
    expect((await taskRow(db.pool, queue, handle.taskID))?.state).toBe('completed');
    expect(await events(queue)).toEqual([{ event_name: 'shipment.packed:o-1', payload: goodPayload }]);
  });
});

describe('ctx.awaitEvent receiving a payload emitted without validation', () => {
  it.each([
    ['the untyped client API, after the wait began', 'api', 'after'],
    ['SQL, after the wait began', 'sql', 'after'],
    ['SQL, before the task started', 'sql', 'before'],
  ] as const)('fails the task without retry (%s)', async (_label, emitter, when) => {
    const queue = queueName(`await-${emitter}-${when}`);
    const app = await clients.app(queue);
    const contract = shipping(queue);
    let received = 0;
    app.registerTask(contract, async (params, ctx) => {
      const payload = await ctx.awaitEvent(packed, params.orderId);
      received += 1;
      return { trackingNumber: payload.trackingNumber, packedAt: payload.packedAt.toISOString() };
    });
    const emit = async () => {
      if (emitter === 'api') await app.emitEvent('shipment.packed:o-1', { trackingNumber: 5, packedAt: 'soon' });
      else await rawEmit(db.pool, queue, 'shipment.packed:o-1', { trackingNumber: 5, packedAt: 'soon' });
    };

    if (when === 'before') await emit();
    const handle = await app.spawn(contract, { orderId: 'o-1' });
    await workOnce(app);
    if (when === 'after') {
      expect((await taskRow(db.pool, queue, handle.taskID))?.state).toBe('sleeping');
      await emit();
      await workOnce(app);
    }

    expect(received).toBe(0);
    const reason = await expectFailedWithoutRetry(db.pool, queue, handle.taskID);
    expect(reason).toMatchObject({
      name: 'ValidationError',
      subject: 'ship',
      boundary: 'event',
      detail: 'shipment.packed:o-1',
      received: '5',
      retryable: false,
    });
    expect((reason.issues as { path: string }[]).map((issue) => issue.path)).toEqual(['trackingNumber', 'packedAt']);
    expect(reason.message).toMatch(/^ship: event "shipment\.packed:o-1"\.trackingNumber: .+, received 5 \(and 1 more issue\(s\)\)$/);
    expect(await workOnce(app)).toHaveLength(0);
  });

  it('a payload the schema accepts is parsed on receipt and again, identically, on replay', async () => {
    const queue = queueName('await-good');
    const app = await clients.app(queue);
    const contract = shipping(queue);
    const seen: unknown[] = [];
    app.registerTask(contract, async (params, ctx) => {
      const payload = await ctx.awaitEvent(packed, params.orderId);
      seen.push(payload);
      if (ctx.attempt === 1) throw new Error('crash after receiving');
      return { trackingNumber: payload.trackingNumber, packedAt: payload.packedAt.toISOString() };
    });
    const handle = await app.spawn(contract, { orderId: 'o-1' });
    await workOnce(app);
    await app.emitEvent(packed, 'o-1', goodPayload);
    await workOnce(app);
    await workOnce(app);

    const expected = { trackingNumber: 'T-1', packedAt: new Date('2024-05-01T10:00:00Z') };
    expect(seen).toEqual([expected, expected]);
    expect(seen[1]).not.toBe(seen[0]);
    // The checkpoint holds the payload as emitted, not the parsed output.
    expect(await checkpoints(db.pool, queue, handle.taskID)).toEqual({ '$awaitEvent:shipment.packed:o-1': goodPayload });
    expect(await app.fetchTaskResult(handle)).toEqual({
      state: 'completed',
      result: { trackingNumber: 'T-1', packedAt: '2024-05-01T10:00:00.000Z' },
    });
  });
});
