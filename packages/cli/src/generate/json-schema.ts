/**
 * JSON Schema of a contract schema, in both directions: `input` (what producers send and what is
 * stored) and `output` (what readers get after parsing).
 *
 * Zod is the user's (an optional peer dependency of the CLI), so nothing here imports it: a schema
 * that implements the Standard JSON Schema interface (Zod 4.2 and later, and other validators)
 * converts itself, and only a Zod schema without that interface (Zod before 4.2) makes this module
 * load Zod's own `toJSONSchema` — from the zod the project installed as the peer dependency.
 */
import type { StandardJSONSchemaV1, StandardSchemaV1 } from '@standard-schema/spec';
import type { JsonObject } from 'absurd-kit';

/** The two JSON Schemas of one schema; null where the validator cannot describe itself. */
export interface SchemaPair {
  readonly input: JsonObject | null;
  readonly output: JsonObject | null;
}

/** The dialect of every schema in the manifest (stated once there, not in each schema). */
export const JSON_SCHEMA_DIALECT = 'https://json-schema.org/draft/2020-12/schema';

const TARGET = 'draft-2020-12';

type Direction = 'input' | 'output';

/** A Standard Schema that may also implement the Standard JSON Schema interface. */
type MaybeJsonSchema = StandardSchemaV1 & { readonly '~standard': Partial<StandardJSONSchemaV1.Props> };

/**
 * Converts a schema: through its Standard JSON Schema interface when it has one; a Zod schema
 * without it with `z.toJSONSchema` (Zod loaded only then); otherwise null. Parts of a Zod output
 * that JSON Schema cannot say (a transform's result) become `{}` (anything).
 *
 * @example
 * await schemaPair(z.object({ n: z.string().transform(Number) })); // output: { properties: { n: {} } … }
 */
export async function schemaPair(schema: StandardSchemaV1): Promise<SchemaPair> {
  const convert = await converterFor(schema as MaybeJsonSchema);
  if (!convert) return { input: null, output: null };
  return { input: withoutDialect(convert('input')), output: withoutDialect(convert('output')) };
}

/** How to convert `schema` in either direction, or undefined when its validator cannot. */
async function converterFor(schema: MaybeJsonSchema): Promise<((io: Direction) => unknown) | undefined> {
  const standard = schema['~standard'];
  const isZod = standard.vendor === 'zod';
  // Zod's option for what JSON Schema cannot say: fail on inputs (the manifest would lie), allow
  // anything on outputs (a transform's result).
  const unrepresentable = (io: Direction) => (io === 'output' ? 'any' : 'throw');
  const converter = standard.jsonSchema;
  if (converter) {
    return (io) => converter[io](isZod ? { target: TARGET, libraryOptions: { unrepresentable: unrepresentable(io) } } : { target: TARGET });
  }
  if (!isZod) return undefined;
  const { toJSONSchema } = await loadZod();
  return (io) => toJSONSchema(schema as never, { io, target: TARGET, unrepresentable: unrepresentable(io) });
}

/** Zod's `toJSONSchema`, for Zod versions whose schemas do not convert themselves. */
async function loadZod(): Promise<{ toJSONSchema(schema: never, params: Record<string, unknown>): unknown }> {
  try {
    return await import('zod');
  } catch (error) {
    throw new Error(`a Zod schema needs the zod package to be converted to JSON Schema, and it cannot be loaded: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** The schema as plain JSON, without its `$schema` (the manifest states the dialect once). */
function withoutDialect(result: unknown): JsonObject {
  const { $schema: _dialect, ...rest } = JSON.parse(JSON.stringify(result)) as JsonObject;
  return rest;
}
