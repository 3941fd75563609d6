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
  const issues = result.issues.map(toIssue);
  const firstPath = result.issues[0]?.path;
  throw new ValidationError({
    ...site,
    issues,
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
