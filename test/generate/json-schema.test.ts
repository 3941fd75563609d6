import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { schemaPair } from '../../packages/cli/src/generate/json-schema.js';

describe('schemaPair with Zod', () => {
  const schema = () =>
    z.object({ orderId: z.string().describe('the order'), at: z.string().transform((s) => new Date(s)), n: z.number().int().optional() });

  it('converts through the Standard JSON Schema interface: inputs exact, untranslatable outputs as {}', async () => {
    const pair = await schemaPair(schema());
    expect(pair.input).toMatchObject({
      type: 'object',
      properties: { orderId: { type: 'string', description: 'the order' }, at: { type: 'string' }, n: { type: 'integer' } },
      required: ['orderId', 'at'],
    });
    expect(pair.input).not.toHaveProperty('$schema');
    expect((pair.output as { properties: Record<string, unknown> }).properties.at).toEqual({});
    await expect(schemaPair(z.object({ d: z.date() }))).rejects.toThrow(/Date/);
  });

  it('gives the same result through z.toJSONSchema for a Zod without the interface (before 4.2)', async () => {
    const old = schema();
    const { jsonSchema: _interface, ...standard } = old['~standard'];
    // The setter of `~standard` keeps the value as the instance's own (see zod's ZodType).
    (old as { '~standard': unknown })['~standard'] = standard;
    expect('jsonSchema' in old['~standard']).toBe(false);
    expect(await schemaPair(old)).toEqual(await schemaPair(schema()));
  });
});
