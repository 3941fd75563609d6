import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { compareManifests, formatReport } from '../../packages/cli/src/generate/compare-manifests.js';
import { breakingChanges, type JsonSchema } from '../../packages/cli/src/generate/compatibility.js';
import type { Manifest, ManifestTask } from '../../packages/cli/src/generate/emit-manifest.js';
import { schemaPair } from '../../packages/cli/src/generate/json-schema.js';

/** The input JSON Schema of a Zod schema, as the manifest holds it. */
const json = async (schema: z.ZodType): Promise<JsonSchema> => (await schemaPair(schema)).input!;

const order = z.object({ orderId: z.string(), amount: z.number() });

// [description, before, after, expected messages ([] = compatible)]
const table: Array<[string, z.ZodType, z.ZodType, Array<{ path: string; message: RegExp }>]> = [
  // Breaking: values the old schema accepted are refused, or readers lose a field.
  ['number → integer', order, z.object({ orderId: z.string(), amount: z.number().int() }), [{ path: '.amount', message: /type narrowed from number to integer/ }]],
  ['string → enum', z.object({ status: z.string() }), z.object({ status: z.enum(['new', 'paid']) }), [{ path: '.status', message: /narrowed from string to the values "new", "paid"/ }]],
  ['enum value removed', z.object({ s: z.enum(['a', 'b', 'c']) }), z.object({ s: z.enum(['a', 'b']) }), [{ path: '.s', message: /no longer accepts "c"/ }]],
  ['widened union narrowed', z.object({ id: z.union([z.string(), z.number()]) }), z.object({ id: z.string() }), [{ path: '.id', message: /type narrowed from string \| number to string/ }]],
  ['union option removed', z.union([z.object({ a: z.string() }), z.object({ b: z.number() })]), z.object({ a: z.string() }), [
    { path: '.b', message: /required field removed or renamed/ },
    { path: '.a', message: /new required field without a default/ },
  ]],
  ['nullable dropped', z.object({ x: z.string().nullable() }), z.object({ x: z.string() }), [{ path: '.x', message: /narrowed/ }]],
  ['required field removed', order, z.object({ orderId: z.string() }), [{ path: '.amount', message: /required field removed or renamed/ }]],
  ['required field renamed', order, z.object({ orderId: z.string(), total: z.number() }), [
    { path: '.amount', message: /required field removed or renamed/ },
    { path: '.total', message: /new required field without a default/ },
  ]],
  ['new required field without default', order, order.extend({ currency: z.string() }), [{ path: '.currency', message: /new required field without a default/ }]],
  ['optional became required', z.object({ note: z.string().optional() }), z.object({ note: z.string() }), [{ path: '.note', message: /optional field became required/ }]],
  ['minimum raised', z.object({ n: z.number().min(0) }), z.object({ n: z.number().min(1) }), [{ path: '.n', message: /lower bound raised from >= 0 to >= 1/ }]],
  ['maximum added', z.object({ n: z.number() }), z.object({ n: z.number().max(10) }), [{ path: '.n', message: /upper bound lowered from none to <= 10/ }]],
  ['minLength added', z.object({ s: z.string() }), z.object({ s: z.string().min(3) }), [{ path: '.s', message: /minLength raised from 0 to 3/ }]],
  ['format added', z.object({ e: z.string() }), z.object({ e: z.email() }), [
    { path: '.e', message: /pattern added/ },
    { path: '.e', message: /format added \("email"\)/ },
  ]],
  ['nested array item narrowed', z.object({ items: z.array(z.object({ qty: z.number() })) }), z.object({ items: z.array(z.object({ qty: z.number().int() })) }), [{ path: '.items[].qty', message: /type narrowed from number to integer/ }]],
  ['strict object refuses old extra fields', z.object({ a: z.string(), b: z.string().optional() }), z.strictObject({ a: z.string() }), [
    { path: '.b', message: /optional field removed while unknown fields are refused/ },
    { path: '', message: /unknown fields are now refused/ },
  ]],
  ['record values narrowed', z.record(z.string(), z.number()), z.record(z.string(), z.number().int()), [{ path: '.*', message: /type narrowed from number to integer/ }]],
  ['any → string', z.object({ v: z.unknown() }), z.object({ v: z.string() }), [{ path: '.v', message: /narrowed from any value to string/ }]],
  ['minItems raised', z.object({ l: z.array(z.string()) }), z.object({ l: z.array(z.string()).min(1) }), [{ path: '.l', message: /minItems raised from 0 to 1/ }]],
  ['odd keys are quoted in paths', z.object({ 'unit price': z.number() }), z.object({ 'unit price': z.number().int() }), [{ path: '["unit price"]', message: /integer/ }]],

  // Compatible: everything the old schema accepted still passes.
  ['identical', order, order, []],
  ['integer → number', z.object({ n: z.number().int() }), z.object({ n: z.number() }), []],
  ['enum → string', z.object({ s: z.enum(['a']) }), z.object({ s: z.string() }), []],
  ['enum value added', z.object({ s: z.enum(['a']) }), z.object({ s: z.enum(['a', 'b']) }), []],
  ['union widened', z.object({ id: z.string() }), z.object({ id: z.union([z.string(), z.number()]) }), []],
  ['nullable added', z.object({ x: z.string() }), z.object({ x: z.string().nullable() }), []],
  ['new optional field', order, order.extend({ note: z.string().optional() }), []],
  ['new field with a default', order, order.extend({ currency: z.string().default('EUR') }), []],
  ['required became optional', order, z.object({ orderId: z.string(), amount: z.number().optional() }), []],
  ['optional field removed', z.object({ a: z.string(), note: z.string().optional() }), z.object({ a: z.string() }), []],
  ['bounds relaxed', z.object({ n: z.number().min(1).max(5), s: z.string().min(2) }), z.object({ n: z.number().min(0), s: z.string() }), []],
  ['descriptions changed', z.object({ a: z.string().describe('old') }), z.object({ a: z.string().describe('new') }), []],
  ['transform added (input unchanged)', z.object({ at: z.string() }), z.object({ at: z.string().transform((s) => new Date(s)) }), []],
];

describe('breakingChanges', () => {
  it.each(table)('%s', async (_name, before, after, expected) => {
    const changes = breakingChanges(await json(before), await json(after));
    expect(changes).toHaveLength(expected.length);
    for (const [i, want] of expected.entries()) {
      expect(changes[i]?.path).toBe(want.path);
      expect(changes[i]?.message).toMatch(want.message);
    }
  });

  it('compares recursive schemas ($ref) without looping', async () => {
    const node = (leaf: z.ZodType) => {
      const tree: z.ZodType = z.lazy(() => z.object({ value: leaf, children: z.array(tree) }));
      return tree;
    };
    expect(breakingChanges(await json(node(z.number())), await json(node(z.number())))).toEqual([]);
    const changes = breakingChanges(await json(node(z.number())), await json(node(z.number().int())));
    expect(changes.length).toBeGreaterThan(0);
    expect(changes[0]?.message).toMatch(/integer/);
  });

  it('reports keywords it cannot verify instead of passing them', () => {
    const changes = breakingChanges({ type: 'string' }, { type: 'string', not: { const: 'x' } });
    expect(changes).toEqual([{ path: '', message: 'keyword "not" added; cannot verify that old values still pass' }]);
  });
});

// Converted once, up front: schemaPair is asynchronous (it may have to load zod).
const defaults = {
  params: await schemaPair(order),
  result: await schemaPair(z.object({ ok: z.boolean() })),
  steps: { charge: await schemaPair(z.object({ id: z.string() })) },
};
const task = (over: Partial<ManifestTask> = {}): ManifestTask => ({
  queue: 'orders',
  version: 1,
  export: { module: 'orders.ts', name: 'fulfillOrder' },
  defaults: {},
  ...defaults,
  ...over,
});
const manifest = (tasks: Record<string, ManifestTask>, events: Manifest['events'] = {}): Manifest => ({
  generatedBy: 'absurd generate',
  format: 1,
  jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
  tasks,
  events,
});

describe('compareManifests', () => {
  it('reports a changed queue, narrowed params and a narrowed step as breaking', async () => {
    const after = task({
      queue: 'orders-v2',
      params: await schemaPair(z.object({ orderId: z.string(), amount: z.number().int() })),
      steps: { charge: await schemaPair(z.object({ id: z.uuid() })) },
    });
    const report = compareManifests(manifest({ fulfil: task() }), manifest({ fulfil: after }));
    expect(report.breaking.map((c) => c.path)).toEqual(['queue', 'params.amount', 'steps.charge.id', 'steps.charge.id']);
    expect(formatReport(report)[0]).toBe('task "fulfil": queue: queue changed from "orders" to "orders-v2": tasks already on "orders" would not be run');
    expect(report.accepted).toEqual([]);
  });

  it('accepts breaking changes when the version was bumped', async () => {
    const after = task({ version: 2, params: await schemaPair(z.object({ orderId: z.string() })) });
    const report = compareManifests(manifest({ fulfil: task() }), manifest({ fulfil: after }));
    expect(report.breaking).toEqual([]);
    expect(report.accepted).toEqual([
      { kind: 'task', name: 'fulfil', path: 'params.amount', message: 'required field removed or renamed', version: { from: 1, to: 2 } },
    ]);
  });

  it('refuses a version that went down', () => {
    const report = compareManifests(manifest({ fulfil: task({ version: 3 }) }), manifest({ fulfil: task({ version: 2 }) }));
    expect(report.breaking).toEqual([{ kind: 'task', name: 'fulfil', path: 'version', message: 'version went down from 3 to 2' }]);
  });

  it('checks event payloads; removed contracts and new ones are notes or nothing', async () => {
    const event = async (payload: z.ZodType, version = 1) => ({ version, export: { module: 'e.ts', name: 'packed' }, payload: await schemaPair(payload) });
    const report = compareManifests(
      manifest({ gone: task() }, { packed: await event(z.object({ tracking: z.string() })) }),
      manifest({ fresh: task() }, { packed: await event(z.object({ tracking: z.string(), carrier: z.string() })) }),
    );
    expect(report.breaking).toEqual([{ kind: 'event', name: 'packed', path: 'payload.carrier', message: 'new required field without a default' }]);
    expect(report.notes).toEqual(['task "gone" was removed: make sure none is still queued, running or sleeping']);
  });

  it('passes an unchanged manifest', () => {
    expect(compareManifests(manifest({ fulfil: task() }), manifest({ fulfil: task() }))).toEqual({ breaking: [], accepted: [], notes: [] });
  });
});
