/**
 * What a ValidationError says: `<subject>: <boundary>[ "<detail>"].<path>: <issue>, received <value>`,
 * each fact once (the validator's own prefix and its "received <type>" give way to the value),
 * paths in JavaScript notation, the refused value as JSON cut at 200 characters, every issue in
 * `issues` as the validator wrote it, and a `toJSON` that is what a failed task stores.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ValidationError, defineTask, type Absurd } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import { queueName, rawSpawn, runRows, useClients, validationErrorOf, workOnce } from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);

const order = defineTask({
  name: 'order-fulfillment',
  queue: 'validation-errors',
  params: z.object({
    orderId: z.string(),
    amount: z.number().int().positive(),
    items: z.array(z.object({ sku: z.string() })).min(1),
    extras: z.record(z.string(), z.object({ code: z.string() })).optional(),
    note: z.string().max(10).optional(),
  }),
  result: z.null(),
});
type OrderParams = z.input<typeof order.params>;
const good: OrderParams = { orderId: 'o-1', amount: 12, items: [{ sku: 'a' }] };

let producer: Promise<Absurd> | undefined;
async function refusal(params: unknown): Promise<ValidationError> {
  const app = await (producer ??= clients.app('validation-errors'));
  return validationErrorOf(app.spawn(order, params as OrderParams));
}

describe('message', () => {
  it('names a missing field once: `<task>: params.orderId: expected string, received undefined`', async () => {
    const { orderId: _orderId, ...missing } = good;
    const error = await refusal(missing);
    expect(error.message).toBe('order-fulfillment: params.orderId: expected string, received undefined');
    expect(error.received).toBe('undefined');
    expect(error.issues).toEqual([{ path: 'orderId', message: 'Invalid input: expected string, received undefined' }]);
    expect(error.name).toBe('ValidationError');
    expect(error.code).toBe('VALIDATION');
  });

  it('names the value of a wrong type, not only its type: `params.amount: expected number, received "12"`', async () => {
    const error = await refusal({ ...good, amount: '12' });
    expect(error.message).toBe('order-fulfillment: params.amount: expected number, received "12"');
    expect(error.issues).toEqual([{ path: 'amount', message: 'Invalid input: expected number, received string' }]);
  });

  it('names a nested path and the value found there', async () => {
    const error = await refusal({ ...good, items: [{ sku: 'a' }, { sku: 7 }] });
    expect(error.message).toBe('order-fulfillment: params.items[1].sku: expected string, received 7');
  });

  it('keeps a check that does not say what it received, and adds the value', async () => {
    const error = await refusal({ ...good, amount: -1 });
    expect(error.message).toMatch(/^order-fulfillment: params\.amount: Too small: .+, received -1$/);
    expect(error.message.match(/received/g)).toHaveLength(1);
  });

  it("treats another validator's wording the same way (Valibot: `Invalid type: Expected … but received …`)", () => {
    const error = new ValidationError({
      subject: 'order-fulfillment',
      boundary: 'params',
      issues: [{ path: 'orderId', message: 'Invalid type: Expected string but received 7' }],
      received: '7',
      retryable: true,
    });
    expect(error.message).toBe('order-fulfillment: params.orderId: Expected string, received 7');
  });

  it.each([
    [{ ...good, items: [{ sku: 'a' }, { sku: 7 }] }, 'items[1].sku', '7'],
    [{ ...good, extras: { 'gift card': { code: 1 } } }, 'extras["gift card"].code', '1'],
    [{ ...good, extras: { voucher: { code: null } } }, 'extras.voucher.code', 'null'],
    [{ ...good, items: 'a' }, 'items', '"a"'],
    [{ ...good, amount: -1 }, 'amount', '-1'],
    [{ ...good, note: 'far too long a note' }, 'note', '"far too long a note"'],
    [[good], '', `[${JSON.stringify(good)}]`],
  ])('names the path and the value found there, once (%j)', async (params, path, received) => {
    const error = await refusal(params);
    expect(error.issues[0]?.path).toBe(path);
    expect(error.received).toBe(received);
    const where = path === '' ? 'params' : path.startsWith('[') ? `params${path}` : `params.${path}`;
    expect(error.message.startsWith(`order-fulfillment: ${where}: `)).toBe(true);
    expect(error.message.endsWith(`, received ${received}`)).toBe(true);
    expect(error.message.match(/received/g)).toHaveLength(1);
    expect(error.message).not.toContain('Invalid input');
  });

  it('counts the other issues and lists them all in `issues`', async () => {
    const error = await refusal({ orderId: 5, amount: 1.5, items: [] });
    expect(error.issues.map((issue) => issue.path)).toEqual(['orderId', 'amount', 'items']);
    expect(error.message).toBe('order-fulfillment: params.orderId: expected string, received 5 (and 2 more issue(s))');
  });

  it('cuts a long refused value at 200 characters', async () => {
    const long = 'x'.repeat(5000);
    const error = await refusal({ ...good, note: long });
    expect(error.received).toBe(`"${'x'.repeat(199)}…`);
    expect(error.received).toHaveLength(201);
    expect(error.message.endsWith(`, received ${error.received}`)).toBe(true);
    expect(error.message.length).toBeLessThan(400);

    const shortEnough = await refusal({ ...good, note: 'y'.repeat(198) });
    expect(shortEnough.received).toBe(`"${'y'.repeat(198)}"`);
  });

  it('cuts the value stored in a failed task too', async () => {
    const queue = queueName('truncate');
    const app = await clients.app(queue);
    const contract = defineTask({ name: 'big', queue, params: z.object({ n: z.number() }), result: z.null() });
    app.registerTask(contract, async () => null);
    const huge = Array.from({ length: 2000 }, (_, i) => i);
    const { task_id } = await rawSpawn(db.pool, queue, 'big', huge, { max_attempts: 3 });
    await workOnce(app);
    const [run] = await runRows(db.pool, queue, task_id);
    const reason = run?.failure_reason as { received: string; message: string };
    expect(reason.received).toBe(`${JSON.stringify(huge).slice(0, 200)}…`);
    expect(reason.message.endsWith(`, received ${reason.received}`)).toBe(true);
  });
});

describe('toJSON', () => {
  it('is the failure reason shape: every field, detail null when absent', () => {
    const error = new ValidationError({
      subject: 'receipt',
      boundary: 'step',
      detail: 'print',
      issues: [{ path: 'pages', message: 'Expected number' }],
      received: '"three"',
      retryable: false,
    });
    expect(JSON.parse(JSON.stringify(error))).toEqual({
      name: 'ValidationError',
      message: 'receipt: step "print".pages: Expected number, received "three"',
      code: 'VALIDATION',
      subject: 'receipt',
      boundary: 'step',
      detail: 'print',
      issues: [{ path: 'pages', message: 'Expected number' }],
      received: '"three"',
      retryable: false,
    });
    const rootLevel = new ValidationError({
      subject: 'receipt',
      boundary: 'result',
      issues: [],
      received: 'null',
      retryable: true,
    });
    expect(rootLevel.message).toBe('receipt: result: invalid value, received null');
    expect(rootLevel.toJSON()).toMatchObject({ detail: null, issues: [], retryable: true });
  });
});
