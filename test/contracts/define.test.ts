/**
 * Declaring contracts: schemas must describe JSON (what is stored is the producer's value, parsed on
 * every read), so Zod schemas whose input is not JSON are refused where they are declared; any
 * other Standard Schema validator is accepted and validates at every boundary at run time.
 */
import * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineEvent, defineTask, type Schema } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import {
  countRows,
  expectFailedWithoutRetry,
  queueName,
  rawEmit,
  rawSpawn,
  taskRow,
  useClients,
  validationErrorOf,
  workOnce,
} from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);

describe('defineTask refuses Zod schemas whose input is not JSON', () => {
  const unrepresentable: [string, Schema, string][] = [
    ['z.date()', z.date(), 'Date'],
    ['z.bigint()', z.bigint(), 'BigInt'],
    ['z.map()', z.map(z.string(), z.number()), 'Map'],
    ['a z.date() nested in an object', z.object({ at: z.date().optional() }), 'Date'],
    ['a z.bigint() in an array', z.array(z.bigint()), 'BigInt'],
  ];
  const plain = z.object({ id: z.string() });

  it.each(unrepresentable)('as params: %s', (_label, schema, kind) => {
    expect(() => defineTask({ name: 'order', params: schema, result: plain })).toThrow(
      new RegExp(`^defineTask\\("order"\\): params is not JSON-serialisable \\(${kind} cannot be represented.*\\); stored values must be JSON — use a string schema \\(e\\.g\\. z\\.iso\\.datetime\\(\\)\\)`),
    );
  });

  it.each(unrepresentable)('as result: %s', (_label, schema) => {
    expect(() => defineTask({ name: 'order', params: plain, result: schema })).toThrow(
      /^defineTask\("order"\): result is not JSON-serialisable/,
    );
  });

  it.each(unrepresentable)('as a step: %s', (_label, schema) => {
    expect(() => defineTask({ name: 'order', params: plain, result: plain, steps: { ok: plain, 'pick-up': schema } })).toThrow(
      /^defineTask\("order"\): steps\["pick-up"\] is not JSON-serialisable/,
    );
  });

  it.each(unrepresentable)('as an event payload: %s', (_label, schema) => {
    expect(() => defineEvent({ name: 'picked', payload: schema })).toThrow(/^defineEvent\("picked"\): payload is not JSON-serialisable/);
  });

  it('accepts a string schema transformed into a Date (and other transforms whose input is JSON)', () => {
    const contract = defineTask({
      name: 'order',
      params: z.object({ at: z.iso.datetime().transform((s) => new Date(s)) }),
      result: z.string().transform((s) => BigInt(s)),
      steps: { when: z.iso.date().transform((s) => new Date(`${s}T00:00:00Z`)) },
    });
    expect(contract).toMatchObject({ kind: 'absurd.task', name: 'order', queue: 'default', version: 1 });
    expect(Object.isFrozen(contract)).toBe(true);
    expect(defineEvent({ name: 'e', payload: z.iso.datetime().transform((s) => new Date(s)) }).eventName('k')).toBe('e:k');
  });

  it('refuses values that are not Standard Schemas', () => {
    expect(() => defineTask({ name: 'order', params: { id: 'string' } as unknown as Schema, result: z.null() })).toThrow(
      'defineTask("order"): params must be a Standard Schema (e.g. a Zod schema)',
    );
  });
});

describe('another Standard Schema validator (Valibot) at run time', () => {
  const isoDate = v.pipe(
    v.string(),
    v.isoTimestamp(),
    v.transform((s) => new Date(s)),
  );
  const packed = defineEvent({ name: 'packed', payload: v.object({ box: v.pipe(v.number(), v.integer()) }) });

  function contract(queue: string) {
    return defineTask({
      name: 'v-order',
      queue,
      params: v.object({
        orderId: v.string(),
        amount: v.pipe(v.number(), v.integer(), v.minValue(1)),
        at: isoDate,
        lines: v.array(v.object({ sku: v.string() })),
      }),
      result: v.object({ total: v.number(), packedAt: isoDate }),
      steps: { price: v.object({ cents: v.pipe(v.number(), v.integer()) }) },
      defaults: { maxAttempts: 4 },
    });
  }
  const good = { orderId: 'o-1', amount: 2, at: '2024-05-01T10:00:00Z', lines: [{ sku: 'a' }] };

  it('refuses bad params at spawn (client and task), naming the path; nothing is written', async () => {
    const queue = queueName('valibot-spawn');
    const app = await clients.app(queue);
    const order = contract(queue);

    const error = await validationErrorOf(app.spawn(order, { ...good, amount: 0 }));
    expect(error).toMatchObject({ subject: 'v-order', boundary: 'params', issues: [{ path: 'amount' }], received: '0', retryable: true });
    expect(error.message).toMatch(/^v-order: params\.amount: .+, received 0$/);
    const nested = await validationErrorOf(app.spawn(order, { ...good, lines: [{ sku: 'a' }, { sku: 1 as unknown as string }] }));
    expect(nested.issues[0]?.path).toBe('lines[1].sku');
    const date = await validationErrorOf(app.spawn(order, { ...good, at: 'not a date' }));
    expect(date.issues[0]?.path).toBe('at');
    expect(await countRows(db.pool, queue, 't')).toBe(0);
  });

  it('parses params, steps, events and results like Zod does, with transforms', async () => {
    const queue = queueName('valibot-run');
    const app = await clients.app(queue);
    const order = contract(queue);
    const seen: unknown[] = [];
    const stepErrors: unknown[] = [];
    app.registerTask(order, async (params, ctx) => {
      seen.push(params);
      try {
        await ctx.step('price', () => ({ cents: 1.5 }));
      } catch (error) {
        stepErrors.push(error);
      }
      const price = await ctx.step('price', () => ({ cents: 150 }));
      const box = await ctx.awaitEvent(packed, params.orderId);
      return { total: (price.cents * params.amount) / 100 + box.box, packedAt: '2024-05-02T08:00:00Z' };
    });

    const handle = await app.spawn(order, good);
    expect((await taskRow(db.pool, queue, handle.taskID))?.params).toEqual(good);
    await workOnce(app);
    expect(seen).toEqual([{ ...good, at: new Date('2024-05-01T10:00:00Z') }]);
    expect(stepErrors).toHaveLength(1);
    expect(stepErrors[0]).toMatchObject({ boundary: 'step', detail: 'price', issues: [{ path: 'cents' }], retryable: true });

    await expect(app.emitEvent(packed, 'o-1', { box: 0.5 })).rejects.toMatchObject({ boundary: 'event', issues: [{ path: 'box' }] });
    expect(await countRows(db.pool, queue, 'e')).toBe(1); // only the waiter's sentinel row
    await app.emitEvent(packed, 'o-1', { box: 7 });
    await workOnce(app);
    expect(await app.fetchTaskResult(handle)).toEqual({
      state: 'completed',
      result: { total: 10, packedAt: new Date('2024-05-02T08:00:00Z') },
    });
  });

  it('refuses bad stored params and a bad stored event payload without retry', async () => {
    const queue = queueName('valibot-stored');
    const app = await clients.app(queue);
    const order = contract(queue);
    app.registerTask(order, async (params, ctx) => {
      const box = await ctx.awaitEvent(packed, params.orderId);
      return { total: box.box, packedAt: '2024-05-02T08:00:00Z' };
    });
    const badParams = await rawSpawn(db.pool, queue, 'v-order', { ...good, amount: 'two' }, { max_attempts: 4 });
    const badEvent = await app.spawn(order, { ...good, orderId: 'o-2' });
    await workOnce(app, 5);
    await rawEmit(db.pool, queue, 'packed:o-2', { box: 'large' });
    await workOnce(app, 5);

    for (const [id, boundary, path] of [
      [badParams.task_id, 'params', 'amount'],
      [badEvent.taskID, 'event', 'box'],
    ] as const) {
      const reason = await expectFailedWithoutRetry(db.pool, queue, id);
      expect(reason).toMatchObject({ subject: 'v-order', boundary, issues: [{ path }], retryable: false });
    }
  });
});

describe('a schema that validates asynchronously', () => {
  it('is awaited at spawn and at task start', async () => {
    const queue = queueName('async-schema');
    const app = await clients.app(queue);
    const coupon = defineTask({
      name: 'coupon',
      queue,
      params: z.object({
        code: z.string().refine(async (code) => {
          await new Promise((resolve) => setTimeout(resolve, 5));
          return code.startsWith('A');
        }, 'unknown coupon'),
      }),
      result: z.null(),
    });
    const seen: string[] = [];
    app.registerTask(coupon, async (params) => {
      seen.push(params.code);
      return null;
    });

    const refused = await validationErrorOf(app.spawn(coupon, { code: 'B-1' }));
    expect(refused).toMatchObject({ boundary: 'params', issues: [{ path: 'code', message: 'unknown coupon' }], received: '"B-1"' });
    expect(await countRows(db.pool, queue, 't')).toBe(0);
    await app.spawn(coupon, { code: 'A-1' });
    const raw = await rawSpawn(db.pool, queue, 'coupon', { code: 'C-1' }, { max_attempts: 3 });
    await workOnce(app, 5);
    expect(seen).toEqual(['A-1']);
    await expectFailedWithoutRetry(db.pool, queue, raw.task_id);
  });
});
