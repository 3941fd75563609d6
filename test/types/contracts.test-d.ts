/**
 * Compile-time guarantees of the contract layer: what may be passed to and returned from every
 * typed call. A `@ts-expect-error` line must be a real error (the project's tsc run fails on an
 * unused one); `expectTypeOf` pins the types callers see.
 */
import * as v from 'valibot';
import { describe, expectTypeOf, test } from 'vitest';
import { z } from 'zod';
import {
  Absurd,
  defineEvent,
  defineTask,
  taskHandle,
  type Input,
  type JsonValue,
  type Output,
  type ParamsOf,
  type PayloadOf,
  type ResultOf,
  type SpawnResult,
  type StepHandle,
  type StepsOf,
  type TaskContext,
  type TaskHandle,
  type TaskResultSnapshot,
  type TypedTaskResultSnapshot,
} from '../../packages/absurd-kit/src/index.js';

const shipmentPacked = defineEvent({
  name: 'shipment.packed',
  payload: z.object({ trackingNumber: z.string(), packedAt: z.iso.datetime().transform((s) => new Date(s)) }),
});

const sendReceipt = defineTask({
  name: 'send-receipt',
  queue: 'orders',
  params: z.object({ orderId: z.string() }),
  result: z.object({ sentAt: z.iso.datetime().transform((s) => new Date(s)), pages: z.number() }),
});

const fulfillOrder = defineTask({
  name: 'order-fulfillment',
  queue: 'orders',
  params: z.object({
    orderId: z.string(),
    amount: z.number().int().positive(),
    placedAt: z.iso.datetime().transform((s) => new Date(s)),
    priority: z.enum(['low', 'high']).default('low'),
  }),
  result: z.object({ orderId: z.string(), trackingNumber: z.string() }),
  steps: {
    'process-payment': z.object({ paymentId: z.string() }),
    quote: z.object({ cents: z.number() }).transform((q) => ({ ...q, euros: q.cents / 100 })),
  },
  defaults: { maxAttempts: 5 },
});

type FulfillInput = { orderId: string; amount: number; placedAt: string; priority?: 'low' | 'high' | undefined };
type FulfillOutput = { orderId: string; amount: number; placedAt: Date; priority: 'low' | 'high' };

declare const app: Absurd;
declare const ctx: TaskContext<StepsOf<typeof fulfillOrder>>;
declare const untypedCtx: TaskContext;

describe('contract types', () => {
  test('defineTask keeps the name and the schemas; the helpers extract input and output types', () => {
    expectTypeOf(fulfillOrder.name).toEqualTypeOf<'order-fulfillment'>();
    expectTypeOf<Input<ParamsOf<typeof fulfillOrder>>>().toEqualTypeOf<FulfillInput>();
    expectTypeOf<Output<ParamsOf<typeof fulfillOrder>>>().toEqualTypeOf<FulfillOutput>();
    expectTypeOf<Output<ResultOf<typeof sendReceipt>>>().toEqualTypeOf<{ sentAt: Date; pages: number }>();
    expectTypeOf<Input<ResultOf<typeof sendReceipt>>>().toEqualTypeOf<{ sentAt: string; pages: number }>();
    expectTypeOf<Output<PayloadOf<typeof shipmentPacked>>>().toEqualTypeOf<{ trackingNumber: string; packedAt: Date }>();
    expectTypeOf<keyof StepsOf<typeof fulfillOrder>>().toEqualTypeOf<'process-payment' | 'quote'>();
  });

  test('a Valibot contract is typed from its schemas too', () => {
    const valibotTask = defineTask({
      name: 'v',
      params: v.object({ at: v.pipe(v.string(), v.transform((s) => new Date(s))) }),
      result: v.number(),
    });
    expectTypeOf<Input<ParamsOf<typeof valibotTask>>>().toEqualTypeOf<{ at: string }>();
    expectTypeOf<Output<ParamsOf<typeof valibotTask>>>().toEqualTypeOf<{ at: Date }>();
    app.registerTask(valibotTask, async (params) => {
      expectTypeOf(params.at).toEqualTypeOf<Date>();
      return 1;
    });
    // @ts-expect-error the result schema is a number
    app.registerTask(valibotTask, async () => 'one');
  });
});

describe('client spawn', () => {
  test('takes the params schema input (defaults optional, transforms in their input type) and returns a typed handle', async () => {
    const handle = await app.spawn(fulfillOrder, { orderId: 'o-1', amount: 12, placedAt: '2024-05-01T10:00:00Z' });
    expectTypeOf(handle).toEqualTypeOf<TaskHandle<typeof fulfillOrder>>();
    expectTypeOf(handle.taskID).toEqualTypeOf<string>();
    expectTypeOf(handle.queue).toEqualTypeOf<string>();
  });

  test('refuses wrong params', async () => {
    // @ts-expect-error amount must be a number, not a string
    await app.spawn(fulfillOrder, { orderId: 'o-1', amount: '12', placedAt: '2024-05-01T10:00:00Z' });
    // @ts-expect-error placedAt is missing
    await app.spawn(fulfillOrder, { orderId: 'o-1', amount: 12 });
    // @ts-expect-error the input of placedAt is an ISO string, not the Date the handler gets
    await app.spawn(fulfillOrder, { orderId: 'o-1', amount: 12, placedAt: new Date() });
    // @ts-expect-error priority is one of 'low' | 'high'
    await app.spawn(fulfillOrder, { orderId: 'o-1', amount: 12, placedAt: '2024-05-01T10:00:00Z', priority: 'urgent' });
    // @ts-expect-error unknown fields are excess properties
    await app.spawn(fulfillOrder, { orderId: 'o-1', amount: 12, placedAt: '2024-05-01T10:00:00Z', coupon: 'X' });
  });

  test('spawnMany takes items of the params input and returns typed handles; wrong params do not compile', async () => {
    const handles = await app.spawnMany(fulfillOrder, [
      { params: { orderId: 'o-1', amount: 12, placedAt: '2024-05-01T10:00:00Z' }, options: { idempotencyKey: 'o-1' } },
    ]);
    expectTypeOf(handles).toEqualTypeOf<TaskHandle<typeof fulfillOrder>[]>();
    // @ts-expect-error amount must be a number, not a string
    await app.spawnMany(fulfillOrder, [{ params: { orderId: 'o-1', amount: '12', placedAt: '2024-05-01T10:00:00Z' } }]);
    // @ts-expect-error items carry params, not bare params
    await app.spawnMany(fulfillOrder, [{ orderId: 'o-1', amount: 12, placedAt: '2024-05-01T10:00:00Z' }]);
    const untyped = await app.spawnMany('anything', [{ params: 1 }], { queue: 'orders' });
    expectTypeOf(untyped).toEqualTypeOf<SpawnResult[]>();
  });

  test('the untyped API keeps working by name', async () => {
    const spawned = await app.spawn('anything', { whatever: [1, 2] }, { queue: 'orders' });
    expectTypeOf(spawned).not.toHaveProperty('contract');
    const snapshot = await app.fetchTaskResult(spawned.taskID);
    expectTypeOf(snapshot).toEqualTypeOf<TaskResultSnapshot | null>();
  });
});

describe('client results', () => {
  test('are typed by the contract, and result is only typed after narrowing state to completed', async () => {
    const handle = await app.spawn(sendReceipt, { orderId: 'o-1' });
    const snapshot = await app.awaitTaskResult(handle);
    expectTypeOf(snapshot).toEqualTypeOf<TypedTaskResultSnapshot<{ sentAt: Date; pages: number }>>();
    // @ts-expect-error result may be undefined before narrowing
    snapshot.result.pages;
    if (snapshot.state === 'completed') {
      expectTypeOf(snapshot.result).toEqualTypeOf<{ sentAt: Date; pages: number }>();
      expectTypeOf(snapshot.result.sentAt).toEqualTypeOf<Date>();
    }
    if (snapshot.state === 'failed') expectTypeOf(snapshot.failure).toEqualTypeOf<JsonValue | null>();

    const fetched = await app.fetchTaskResult(taskHandle(sendReceipt, handle.taskID));
    expectTypeOf(fetched).toEqualTypeOf<TypedTaskResultSnapshot<{ sentAt: Date; pages: number }> | null>();
    expectTypeOf(taskHandle(sendReceipt, 'id')).toEqualTypeOf<TaskHandle<typeof sendReceipt>>();
  });
});

describe('events', () => {
  test('client emitEvent takes the payload input and refuses wrong payloads', async () => {
    await app.emitEvent(shipmentPacked, 'o-1', { trackingNumber: 'T-1', packedAt: '2024-05-01T10:00:00Z' });
    await app.emitEvent(shipmentPacked, undefined, { trackingNumber: 'T-1', packedAt: '2024-05-01T10:00:00Z' }, 'orders');
    // @ts-expect-error trackingNumber must be a string
    await app.emitEvent(shipmentPacked, 'o-1', { trackingNumber: 5, packedAt: '2024-05-01T10:00:00Z' });
    // @ts-expect-error packedAt's input is a string, not a Date
    await app.emitEvent(shipmentPacked, 'o-1', { trackingNumber: 'T-1', packedAt: new Date() });
    // @ts-expect-error the key comes before the payload
    await app.emitEvent(shipmentPacked, { trackingNumber: 'T-1', packedAt: '2024-05-01T10:00:00Z' });
    // The untyped API: any JSON payload by name.
    await app.emitEvent('shipment.packed:o-1', { anything: true });
  });

  test('ctx.emitEvent takes the payload input and refuses wrong payloads', async () => {
    await ctx.emitEvent(shipmentPacked, 'o-1', { trackingNumber: 'T-1', packedAt: '2024-05-01T10:00:00Z' });
    // @ts-expect-error trackingNumber is missing
    await ctx.emitEvent(shipmentPacked, 'o-1', { packedAt: '2024-05-01T10:00:00Z' });
    // @ts-expect-error there is no queue argument inside a task
    await ctx.emitEvent(shipmentPacked, 'o-1', { trackingNumber: 'T-1', packedAt: '2024-05-01T10:00:00Z' }, 'orders');
  });

  test('ctx.awaitEvent returns the payload output', async () => {
    const payload = await ctx.awaitEvent(shipmentPacked, 'o-1', { timeout: 60 });
    expectTypeOf(payload).toEqualTypeOf<{ trackingNumber: string; packedAt: Date }>();
    expectTypeOf(await ctx.awaitEvent('shipment.packed:o-1')).toEqualTypeOf<JsonValue>();
  });
});

describe('handlers', () => {
  test('get the params output and must return the result input', () => {
    app.registerTask(fulfillOrder, async (params, taskCtx) => {
      expectTypeOf(params).toEqualTypeOf<FulfillOutput>();
      expectTypeOf(params.placedAt).toEqualTypeOf<Date>();
      expectTypeOf(taskCtx).toEqualTypeOf<TaskContext<StepsOf<typeof fulfillOrder>>>();
      return { orderId: params.orderId, trackingNumber: 'T-1' };
    });
    // The result input: an ISO string where the output is a Date.
    app.registerTask(sendReceipt, async () => ({ sentAt: '2024-05-01T10:00:00Z', pages: 1 }));
  });

  test('refuse a wrong result', () => {
    // @ts-expect-error trackingNumber must be a string
    app.registerTask(fulfillOrder, async (params) => ({ orderId: params.orderId, trackingNumber: 5 }));
    // @ts-expect-error trackingNumber is missing
    app.registerTask(fulfillOrder, async (params) => ({ orderId: params.orderId }));
    // @ts-expect-error the result input of sentAt is a string, not a Date
    app.registerTask(sendReceipt, async () => ({ sentAt: new Date(), pages: 1 }));
  });

  test('cannot claim a params type other than the contract output', () => {
    // @ts-expect-error amount is a number in the contract
    app.registerTask(fulfillOrder, async (params: { orderId: string; amount: string }) => ({
      orderId: params.orderId,
      trackingNumber: params.amount,
    }));
  });
});

describe('steps', () => {
  test('a declared step takes the schema input from its function and returns the schema output', async () => {
    const payment = await ctx.step('process-payment', async () => ({ paymentId: 'p-1' }));
    expectTypeOf(payment).toEqualTypeOf<{ paymentId: string }>();
    const quote = await ctx.step('quote', () => ({ cents: 120 }));
    expectTypeOf(quote).toEqualTypeOf<{ cents: number; euros: number }>();
  });

  test('a declared step refuses a function returning the wrong type', async () => {
    // @ts-expect-error paymentId must be a string
    await ctx.step('process-payment', async () => ({ paymentId: 42 }));
    // @ts-expect-error the step function returns the schema input, which has no euros
    await ctx.step('quote', () => ({ euros: 1.2 }));
  });

  test('the untyped overloads cannot bypass a declared step name', async () => {
    // @ts-expect-error an explicit result type does not turn a declared step into an untyped one
    await ctx.step<{ paymentId: number }>('process-payment', async () => ({ paymentId: 42 }));
    // @ts-expect-error neither with both type arguments
    await ctx.step<number, 'process-payment'>('process-payment', () => 42);
    // @ts-expect-error beginStep with an explicit type cannot either
    await ctx.beginStep<number>('process-payment');
    // Undeclared names are untyped steps, as in the untyped API.
    expectTypeOf(await ctx.step('audit', () => 42)).toEqualTypeOf<number>();
    expectTypeOf(await ctx.step<number, 'audit'>('audit', () => 42)).toEqualTypeOf<number>();
    expectTypeOf(await untypedCtx.step<number>('process-payment', () => 42)).toEqualTypeOf<number>();
    expectTypeOf(await untypedCtx.beginStep<number>('process-payment')).toEqualTypeOf<StepHandle<number>>();
  });

  test('beginStep/completeStep use the schema input and output, also on a handle narrowed to not done', async () => {
    const handle = await ctx.beginStep('quote');
    if (handle.done) {
      expectTypeOf(handle.state).toEqualTypeOf<{ cents: number; euros: number }>();
      return;
    }
    const quote = await ctx.completeStep(handle, { cents: 120 });
    expectTypeOf(quote).toEqualTypeOf<{ cents: number; euros: number }>();
    // @ts-expect-error completeStep takes the schema input
    await ctx.completeStep(handle, { cents: '120' });
  });
});

describe('child tasks', () => {
  test("ctx.spawn takes the child's params input; its result is typed by the child's contract after narrowing", async () => {
    const child = await ctx.spawn(sendReceipt, { orderId: 'o-1' }, { stepName: 'receipt' });
    expectTypeOf(child).toEqualTypeOf<TaskHandle<typeof sendReceipt>>();
    const snapshot = await ctx.awaitTaskResult(child, { timeout: 60 });
    expectTypeOf(snapshot).toEqualTypeOf<TypedTaskResultSnapshot<{ sentAt: Date; pages: number }>>();
    // @ts-expect-error result may be undefined until state is narrowed to completed
    snapshot.result.sentAt;
    if (snapshot.state === 'completed') expectTypeOf(snapshot.result.sentAt).toEqualTypeOf<Date>();
    // By id (no contract): the untyped JSON snapshot.
    expectTypeOf(await ctx.awaitTaskResult(child.taskID)).toEqualTypeOf<TaskResultSnapshot>();
  });

  test('ctx.spawn refuses wrong params', async () => {
    // @ts-expect-error orderId must be a string
    await ctx.spawn(sendReceipt, { orderId: 1 });
    // @ts-expect-error orderId is missing
    await ctx.spawn(sendReceipt, {});
    // @ts-expect-error placedAt takes the input type (a string)
    await ctx.spawn(fulfillOrder, { orderId: 'o', amount: 1, placedAt: new Date() });
  });
});

describe('fan-out', () => {
  test('ctx.awaitAll types each snapshot by its handle, in order; completed only unless failures are returned', async () => {
    const receipt = await ctx.spawn(sendReceipt, { orderId: 'o-1' }, { stepName: 'receipt' });
    const order = await ctx.spawn(fulfillOrder, { orderId: 'o-1', amount: 1, placedAt: '2026-01-01T00:00:00Z' }, { stepName: 'order' });
    const [r, o, byId] = await ctx.awaitAll([receipt, order, receipt.taskID]);
    expectTypeOf(r.result.sentAt).toEqualTypeOf<Date>();
    expectTypeOf(o.result.trackingNumber).toEqualTypeOf<string>();
    expectTypeOf(byId.result).toEqualTypeOf<JsonValue | null>();
    const receipts = await ctx.awaitAll([receipt, receipt], { failures: 'return' });
    expectTypeOf(receipts).toEqualTypeOf<[TypedTaskResultSnapshot<{ sentAt: Date; pages: number }>, TypedTaskResultSnapshot<{ sentAt: Date; pages: number }>]>();
    const many: TaskHandle<typeof sendReceipt>[] = [receipt];
    const all = await ctx.awaitAll(many);
    expectTypeOf(all[0]!.result.pages).toEqualTypeOf<number>();
    // @ts-expect-error failures is 'throw' or 'return'
    await ctx.awaitAll(many, { failures: 'ignore' });
    const spawned = await ctx.spawnMany(sendReceipt, [{ orderId: 'a' }, { orderId: 'b' }], { cancelWithParent: true });
    expectTypeOf(spawned).toEqualTypeOf<TaskHandle<typeof sendReceipt>[]>();
    expectTypeOf((await ctx.awaitAll(spawned))[0]!.result.pages).toEqualTypeOf<number>();
    // @ts-expect-error orderId must be a string
    await ctx.spawnMany(sendReceipt, [{ orderId: 1 }]);
    await ctx.awaitEvent(shipmentPacked, 'o-1', { resume: 'each' });
    // @ts-expect-error resume is 'all' or 'each'
    await ctx.awaitEvent('x', { resume: 'first' });
  });
});

describe('flow control', () => {
  test('a declared limit key names a field of the params (or a dotted path under one, or a list)', () => {
    const params = z.object({ customer: z.object({ id: z.string() }), cents: z.number() });
    defineTask({ name: 'a', params, result: z.null(), concurrency: { limit: 1, key: 'customer' } });
    defineTask({ name: 'b', params, result: z.null(), concurrency: { limit: 1, key: 'customer.id' } });
    defineTask({ name: 'c', params, result: z.null(), rateLimit: { limit: 5, periodSeconds: 1, key: ['customer', 'id'] } });
    // @ts-expect-error customerId is not a field of the params
    defineTask({ name: 'd', params, result: z.null(), concurrency: { limit: 1, key: 'customerId' } });
    // @ts-expect-error a rate limit needs its period
    defineTask({ name: 'e', params, result: z.null(), rateLimit: { limit: 5 } });
  });

  test('priority is a spawn option', async () => {
    const app = new Absurd({ queueName: 'q' });
    await app.spawn(sendReceipt, { orderId: 'o' }, { priority: 3 });
    // @ts-expect-error priority is a number
    await app.spawn(sendReceipt, { orderId: 'o' }, { priority: 'high' });
  });
});
