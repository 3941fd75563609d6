/**
 * JSON Schema of a contract schema, in both directions: `input` (what producers send and what is
 * stored) and `output` (what readers get after parsing).
 */
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { toJSONSchema, type ZodType } from 'zod';
import type { JsonObject } from 'absurd-kit';

/** The two JSON Schemas of one schema; null where the validator cannot describe itself. */
export interface SchemaPair {
  readonly input: JsonObject | null;
  readonly output: JsonObject | null;
}

/** The dialect of every schema in the manifest (stated once there, not in each schema). */
export const JSON_SCHEMA_DIALECT = 'https://json-schema.org/draft/2020-12/schema';

type WithJsonSchema = StandardSchemaV1 & {
  readonly '~standard': { readonly jsonSchema?: { input(o: { target: string }): unknown; output(o: { target: string }): unknown } };
};

/**
 * Converts a schema: Zod with `z.toJSONSchema`; another validator through the Standard JSON
 * Schema interface when it implements it; otherwise null. Parts of an output that JSON Schema
 * cannot say (a transform's result) become `{}` (anything).
 *
 * @example
 * schemaPair(z.object({ n: z.string().transform(Number) })); // output: { properties: { n: {} } … }
 */
export function schemaPair(schema: StandardSchemaV1): SchemaPair {
  const standard = (schema as WithJsonSchema)['~standard'];
  const convert = (io: 'input' | 'output'): JsonObject | null => {
    let result: unknown;
    if (standard.vendor === 'zod') {
      result = toJSONSchema(schema as unknown as ZodType, {
        io,
        target: 'draft-2020-12',
        unrepresentable: io === 'output' ? 'any' : 'throw',
      });
    } else if (standard.jsonSchema) {
      result = standard.jsonSchema[io]({ target: 'draft-2020-12' });
    } else {
      return null;
    }
    const { $schema: _dialect, ...rest } = JSON.parse(JSON.stringify(result)) as JsonObject;
    return rest;
  };
  return { input: convert('input'), output: convert('output') };
}
