import * as v from 'valibot';
import { describe, expect, it, vi } from 'vitest';

// zod is an optional peer dependency of the CLI: here it is not installed.
vi.mock('zod', () => {
  throw new Error("Cannot find package 'zod'");
});

// After the mock, so that a static import of zod in the module would fail the whole file.
const { schemaPair } = await import('../../packages/cli/src/generate/json-schema.js');

/** A validator of another vendor that implements the Standard JSON Schema interface. */
function describedSchema(calls: unknown[]) {
  const convert = (io: string) => (options: unknown) => {
    calls.push({ io, options });
    return { $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object', properties: { [io]: { type: 'string' } } };
  };
  return {
    '~standard': {
      version: 1 as const,
      vendor: 'other',
      validate: (value: unknown) => ({ value }),
      jsonSchema: { input: convert('input'), output: convert('output') },
    },
  };
}

describe('schemaPair without zod installed', () => {
  it("converts a non-Zod schema through its own Standard JSON Schema interface", async () => {
    const calls: unknown[] = [];
    expect(await schemaPair(describedSchema(calls))).toEqual({
      input: { type: 'object', properties: { input: { type: 'string' } } },
      output: { type: 'object', properties: { output: { type: 'string' } } },
    });
    expect(calls).toEqual([
      { io: 'input', options: { target: 'draft-2020-12' } },
      { io: 'output', options: { target: 'draft-2020-12' } },
    ]);
  });

  it('gives null for a validator that cannot describe itself (valibot)', async () => {
    expect(await schemaPair(v.object({ a: v.string() }))).toEqual({ input: null, output: null });
  });

  it('says what is missing when a Zod schema without the interface needs zod itself', async () => {
    const oldZod = { '~standard': { version: 1 as const, vendor: 'zod', validate: (value: unknown) => ({ value }) } };
    await expect(schemaPair(oldZod)).rejects.toThrow(
      /^a Zod schema needs the zod package to be converted to JSON Schema, and it cannot be loaded: /,
    );
  });
});
