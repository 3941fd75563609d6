import type { StandardSchemaV1 } from '@standard-schema/spec';
import type { Output, Schema } from './define.js';
import { ValidationError, type ValidationBoundary, type ValidationIssue } from './errors.js';

/** Longest excerpt of a refused value kept in messages and failure reasons. */
const MAX_RECEIVED = 200;

/** Where a value is being checked, for the error's message. */
export interface ValidationSite {
  subject: string;
  boundary: ValidationBoundary;
  detail?: string;
  /** Whether a retry could produce a different value (false for stored data). */
  retryable: boolean;
  /** The index of the value in a bulk spawn. */
  item?: number;
}

/**
 * Parses `value` with `schema` and returns the schema's output, or throws a {@link ValidationError}
 * naming the site, the path and the offending value.
 *
 * @example
 * const params = await parseWith(contract.params, raw, { subject: contract.name, boundary: 'params', retryable: false });
 */
export async function parseWith<S extends Schema>(schema: S, value: unknown, site: ValidationSite): Promise<Output<S>> {
  let result = schema['~standard'].validate(value);
  if (result instanceof Promise) result = await result;
  if (!result.issues) return result.value as Output<S>;
  throw refusal(result.issues, value, site);
}

/**
 * {@link parseWith} for a schema that validates synchronously, where a caller cannot wait (a
 * declaration at module load). A schema whose validation returns a Promise (an async refinement)
 * throws an Error saying so.
 *
 * @example
 * parseWithSync(task.params, params, { subject: 'schedule "nightly"', boundary: 'params', retryable: false });
 */
export function parseWithSync<S extends Schema>(schema: S, value: unknown, site: ValidationSite): Output<S> {
  const result = schema['~standard'].validate(value);
  if (result instanceof Promise) {
    result.catch(() => undefined);
    throw new Error(`${site.subject}: its ${site.boundary} schema validates asynchronously, which is not supported here — use a schema without async refinements`);
  }
  if (!result.issues) return result.value as Output<S>;
  throw refusal(result.issues, value, site);
}

function refusal(found: readonly StandardSchemaV1.Issue[], value: unknown, site: ValidationSite): ValidationError {
  const firstPath = found[0]?.path;
  return new ValidationError({
    ...site,
    issues: found.map(toIssue),
    received: excerpt(firstPath && firstPath.length > 0 ? valueAt(value, firstPath) : value),
  });
}

function toIssue(issue: StandardSchemaV1.Issue): ValidationIssue {
  return { path: formatPath(issue.path), message: issue.message };
}

function formatPath(path: StandardSchemaV1.Issue['path']): string {
  let out = '';
  for (const segment of path ?? []) {
    const key = typeof segment === 'object' && segment !== null ? segment.key : segment;
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'string' && /^[A-Za-z_$][\w$]*$/.test(key)) out += out === '' ? key : `.${key}`;
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out;
}

function valueAt(value: unknown, path: NonNullable<StandardSchemaV1.Issue['path']>): unknown {
  let current = value;
  for (const segment of path) {
    const key = typeof segment === 'object' && segment !== null ? segment.key : segment;
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key as PropertyKey];
  }
  return current;
}

function excerpt(value: unknown): string {
  let text: string;
  try {
    text = value === undefined ? 'undefined' : (JSON.stringify(value) ?? String(value));
  } catch {
    text = String(value);
  }
  return text.length > MAX_RECEIVED ? `${text.slice(0, MAX_RECEIVED)}…` : text;
}
