/** Any value that survives `JSON.stringify` → `JSON.parse` unchanged. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** A JSON object. */
export type JsonObject = { [key: string]: JsonValue };

/**
 * Serialises a value for a `jsonb` parameter. `undefined` becomes SQL NULL (the engine turns NULL
 * params and payloads into JSON `null`), exactly as the `absurd-sdk` package sends it.
 */
export function toJsonParam(value: unknown): string | null {
  const text = JSON.stringify(value);
  return text === undefined ? null : text;
}
