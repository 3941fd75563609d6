/**
 * The compatibility check of two JSON Schemas (2020-12, as emitted into the manifest): would a
 * value that the old schema accepted still be accepted by the new one? Stored params, step
 * checkpoints, results and event payloads were written under the old schema and are parsed again
 * under the new one, so every way the new schema can refuse them is a breaking change. A removed
 * or renamed required field counts too: readers (other services, other languages) rely on it.
 *
 * The check is conservative: where it cannot prove that nothing old is refused (an `allOf`, a
 * changed `not`, a keyword it does not know), it reports a change.
 */
import type { JsonValue } from 'absurd-kit';

/** A JSON Schema (an object, or `true` / `false`). */
export type JsonSchema = JsonValue;

/** One breaking change: where (a path like `.items[].sku`, empty for the root) and what. */
export interface SchemaChange {
  readonly path: string;
  readonly message: string;
}

/** Keywords that only describe: changing them changes no value's validity. */
const ANNOTATIONS = new Set([
  '$comment',
  '$defs',
  '$id',
  '$schema',
  'default',
  'definitions',
  'deprecated',
  'description',
  'examples',
  'id',
  'readOnly',
  'title',
  'writeOnly',
]);

/** Keywords this module understands; any other one that changed is reported as unverifiable. */
const HANDLED = new Set([
  ...ANNOTATIONS,
  '$ref',
  'additionalProperties',
  'anyOf',
  'const',
  'enum',
  'exclusiveMaximum',
  'exclusiveMinimum',
  'format',
  'items',
  'maxItems',
  'maxLength',
  'maxProperties',
  'maximum',
  'minItems',
  'minLength',
  'minProperties',
  'minimum',
  'multipleOf',
  'oneOf',
  'pattern',
  'prefixItems',
  'properties',
  'propertyNames',
  'required',
  'type',
  'uniqueItems',
]);

/** Bounds at or beyond the safe-integer range are what `z.int()` adds; they refuse no JSON number that survives parsing. */
const SAFE = Number.MAX_SAFE_INTEGER;

type SchemaObject = { readonly [key: string]: JsonValue };

/**
 * Every way `after` refuses values that `before` accepted, or would break readers of them.
 * Pure: no I/O, no state.
 *
 * @example
 * breakingChanges({ type: 'number' }, { type: 'integer' });
 * // [{ path: '', message: 'type narrowed from number to integer' }]
 */
export function breakingChanges(before: JsonSchema, after: JsonSchema): SchemaChange[] {
  const changes: SchemaChange[] = [];
  new Comparison(before, after, changes).compare(before, after, '');
  return changes;
}

class Comparison {
  constructor(
    private readonly beforeRoot: JsonSchema,
    private readonly afterRoot: JsonSchema,
    private readonly changes: SchemaChange[],
    private readonly seenRefs = new Set<string>(),
  ) {}

  compare(beforeIn: JsonSchema, afterIn: JsonSchema, path: string): void {
    if (refOf(beforeIn) !== undefined || refOf(afterIn) !== undefined) {
      // Recursive schemas: a pair of references already compared (or being compared) is not
      // compared again, which ends the recursion and reports each change once.
      const refs = `${refOf(beforeIn) ?? ''}|${refOf(afterIn) ?? ''}`;
      if (this.seenRefs.has(refs)) return;
      this.seenRefs.add(refs);
    }
    const before = resolve(beforeIn, this.beforeRoot);
    const after = resolve(afterIn, this.afterRoot);
    if (deepEqual(before, after) || acceptsAll(after) || before === false) return;
    const report = (message: string): void => {
      this.changes.push({ path, message });
    };
    if (after === false) return report('no longer accepts any value');
    if (acceptsAll(before)) return report(`narrowed from any value to ${describeSchema(after)}`);
    if (typeof before !== 'object' || typeof after !== 'object' || before === null || after === null || Array.isArray(before) || Array.isArray(after)) {
      return report('changed (not a JSON Schema object)');
    }

    const beforeOptions = unionOptions(before);
    const afterOptions = unionOptions(after);
    if (beforeOptions) {
      // Every old option must still be accepted.
      for (const option of beforeOptions) this.compare(option, after, path);
      return;
    }
    if (afterOptions) {
      // The old schema must fit into one of the new options.
      const attempts = afterOptions.map((option) => this.trial(before, option, path));
      if (attempts.some((changes) => changes.length === 0)) return;
      const closest = attempts.reduce((best, changes) => (changes.length < best.length ? changes : best));
      this.changes.push(...closest);
      return;
    }

    this.compareKeywords(before, after, report);
    this.compareType(before, after, report);
    this.compareValues(before, after, report);
    this.compareNumbers(before, after, report);
    this.compareStrings(before, after, report);
    this.compareArrays(before, after, path, report);
    this.compareObjects(before, after, path, report);
  }

  /** The changes one comparison would report, without reporting them. */
  private trial(before: JsonSchema, after: JsonSchema, path: string): SchemaChange[] {
    const changes: SchemaChange[] = [];
    new Comparison(this.beforeRoot, this.afterRoot, changes, new Set(this.seenRefs)).compare(before, after, path);
    return changes;
  }

  private compareKeywords(before: SchemaObject, after: SchemaObject, report: (m: string) => void): void {
    for (const key of Object.keys(after).sort()) {
      if (HANDLED.has(key) || deepEqual(before[key], after[key])) continue;
      report(`keyword "${key}" ${key in before ? 'changed' : 'added'}; cannot verify that old values still pass`);
    }
  }

  private compareType(before: SchemaObject, after: SchemaObject, report: (m: string) => void): void {
    const afterTypes = typesOf(after);
    if (!afterTypes) return;
    const beforeTypes = typesOf(before);
    if (!beforeTypes) return report(`type narrowed from any type to ${afterTypes.join(' | ')}`);
    const covered = (type: string) => afterTypes.includes(type) || (type === 'integer' && afterTypes.includes('number'));
    if (!beforeTypes.every(covered)) report(`type narrowed from ${beforeTypes.join(' | ')} to ${afterTypes.join(' | ')}`);
  }

  private compareValues(before: SchemaObject, after: SchemaObject, report: (m: string) => void): void {
    const afterValues = valuesOf(after);
    if (!afterValues) return;
    const beforeValues = valuesOf(before);
    if (!beforeValues) {
      return report(`narrowed from ${describeSchema(before)} to ${afterValues.length === 1 ? 'the value' : 'the values'} ${afterValues.map(show).join(', ')}`);
    }
    const removed = beforeValues.filter((value) => !afterValues.some((candidate) => deepEqual(value, candidate)));
    if (removed.length > 0) report(`no longer accepts ${removed.map(show).join(', ')}`);
  }

  private compareNumbers(before: SchemaObject, after: SchemaObject, report: (m: string) => void): void {
    const [beforeLow, afterLow] = [lowerBound(before), lowerBound(after)];
    if (afterLow && (!beforeLow || afterLow.value > beforeLow.value || (afterLow.value === beforeLow.value && afterLow.exclusive && !beforeLow.exclusive))) {
      report(`lower bound raised from ${describeBound(beforeLow, '>')} to ${describeBound(afterLow, '>')}`);
    }
    const [beforeHigh, afterHigh] = [upperBound(before), upperBound(after)];
    if (afterHigh && (!beforeHigh || afterHigh.value < beforeHigh.value || (afterHigh.value === beforeHigh.value && afterHigh.exclusive && !beforeHigh.exclusive))) {
      report(`upper bound lowered from ${describeBound(beforeHigh, '<')} to ${describeBound(afterHigh, '<')}`);
    }
    const [beforeStep, afterStep] = [numberOf(before.multipleOf), numberOf(after.multipleOf)];
    if (afterStep !== undefined && (beforeStep === undefined || !isMultiple(beforeStep, afterStep))) {
      report(`multipleOf ${beforeStep === undefined ? 'added' : `changed from ${beforeStep}`} (${afterStep})`);
    }
  }

  private compareStrings(before: SchemaObject, after: SchemaObject, report: (m: string) => void): void {
    this.raised(before, after, 'minLength', report);
    this.lowered(before, after, 'maxLength', report);
    if (after.pattern !== undefined && after.pattern !== before.pattern) {
      report(before.pattern === undefined ? `pattern added (${show(after.pattern)})` : `pattern changed from ${show(before.pattern)} to ${show(after.pattern)}`);
    }
    if (after.format !== undefined && after.format !== before.format) {
      report(before.format === undefined ? `format added (${show(after.format)})` : `format changed from ${show(before.format)} to ${show(after.format)}`);
    }
  }

  private compareArrays(before: SchemaObject, after: SchemaObject, path: string, report: (m: string) => void): void {
    this.raised(before, after, 'minItems', report);
    this.lowered(before, after, 'maxItems', report);
    if (after.uniqueItems === true && before.uniqueItems !== true) report('items must now be unique');
    const beforePrefix = Array.isArray(before.prefixItems) ? before.prefixItems : [];
    const afterPrefix = Array.isArray(after.prefixItems) ? after.prefixItems : [];
    const beforeRest = before.items ?? true;
    const afterRest = after.items ?? true;
    const length = Math.max(beforePrefix.length, afterPrefix.length);
    for (let i = 0; i < length; i++) {
      this.compare(beforePrefix[i] ?? beforeRest, afterPrefix[i] ?? afterRest, `${path}[${i}]`);
    }
    this.compare(beforeRest, afterRest, `${path}[]`);
  }

  private compareObjects(before: SchemaObject, after: SchemaObject, path: string, report: (m: string) => void): void {
    this.raised(before, after, 'minProperties', report);
    this.lowered(before, after, 'maxProperties', report);
    const beforeProps = objectOf(before.properties);
    const afterProps = objectOf(after.properties);
    const beforeRequired = stringsOf(before.required);
    const afterRequired = stringsOf(after.required);
    const afterExtra = after.additionalProperties ?? true;
    const beforeExtra = before.additionalProperties ?? true;
    for (const key of Object.keys(beforeProps)) {
      const at = childPath(path, key);
      if (key in afterProps) {
        this.compare(beforeProps[key]!, afterProps[key]!, at);
      } else if (beforeRequired.includes(key)) {
        this.changes.push({ path: at, message: 'required field removed or renamed' });
      } else if (afterExtra === false) {
        this.changes.push({ path: at, message: 'optional field removed while unknown fields are refused' });
      } else {
        this.compare(beforeProps[key]!, afterExtra, at);
      }
    }
    for (const key of afterRequired) {
      if (beforeRequired.includes(key)) continue;
      this.changes.push({
        path: childPath(path, key),
        message: key in beforeProps ? 'optional field became required' : 'new required field without a default',
      });
    }
    if (afterExtra === false && beforeExtra !== false) {
      report('unknown fields are now refused');
    } else if (afterExtra !== false) {
      this.compare(beforeExtra, afterExtra, `${path}.*`);
    }
    // Object keys are strings whatever the schema says.
    if (after.propertyNames !== undefined) this.compare(before.propertyNames ?? { type: 'string' }, after.propertyNames, `${path} (keys)`);
  }

  private raised(before: SchemaObject, after: SchemaObject, key: string, report: (m: string) => void): void {
    const [was, now] = [numberOf(before[key]), numberOf(after[key])];
    if (now !== undefined && now > 0 && (was === undefined || now > was)) report(`${key} raised from ${was ?? 0} to ${now}`);
  }

  private lowered(before: SchemaObject, after: SchemaObject, key: string, report: (m: string) => void): void {
    const [was, now] = [numberOf(before[key]), numberOf(after[key])];
    if (now !== undefined && (was === undefined || now < was)) report(`${key} lowered from ${was ?? 'none'} to ${now}`);
  }
}

function refOf(schema: JsonSchema): string | undefined {
  return isObject(schema) && typeof schema.$ref === 'string' ? schema.$ref : undefined;
}

/** Follows a local `$ref` (`#`, `#/$defs/x`, `#/definitions/x`), merging the referring schema's other keywords. */
function resolve(schema: JsonSchema, root: JsonSchema): JsonSchema {
  const ref = refOf(schema);
  if (ref === undefined || !isObject(schema)) return schema;
  if (!ref.startsWith('#')) return schema;
  let target: JsonValue | undefined = root;
  for (const part of ref.slice(1).split('/').filter((p) => p !== '')) {
    const key = decodeURIComponent(part).replace(/~1/g, '/').replace(/~0/g, '~');
    target = isObject(target) ? target[key] : undefined;
  }
  if (target === undefined) return schema;
  const { $ref: _ref, ...rest } = schema;
  const resolved = resolve(target, root);
  return isObject(resolved) ? { ...resolved, ...rest } : Object.keys(rest).length === 0 ? resolved : schema;
}

function isObject(value: JsonValue | undefined): value is { [key: string]: JsonValue } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** True for `true` and for schemas without a constraining keyword. */
function acceptsAll(schema: JsonSchema): boolean {
  return schema === true || (isObject(schema) && Object.keys(schema).every((key) => ANNOTATIONS.has(key)));
}

/** The options of a union (`anyOf` / `oneOf`) when the schema is nothing but one. */
function unionOptions(schema: SchemaObject): readonly JsonSchema[] | undefined {
  const options = schema.anyOf ?? schema.oneOf;
  if (!Array.isArray(options)) return undefined;
  const others = Object.keys(schema).filter((key) => key !== 'anyOf' && key !== 'oneOf' && !ANNOTATIONS.has(key));
  return others.length === 0 ? options : undefined;
}

const JSON_TYPE = (value: JsonValue): string =>
  value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value === 'number' ? (Number.isInteger(value) ? 'integer' : 'number') : typeof value;

/** The JSON types a schema allows (from `type`, or from its `const` / `enum`); undefined when any. */
function typesOf(schema: SchemaObject): string[] | undefined {
  if (typeof schema.type === 'string') return [schema.type];
  if (Array.isArray(schema.type)) return schema.type.filter((t): t is string => typeof t === 'string');
  const values = valuesOf(schema);
  return values ? [...new Set(values.map(JSON_TYPE))] : undefined;
}

function valuesOf(schema: SchemaObject): readonly JsonValue[] | undefined {
  if (schema.const !== undefined) return [schema.const];
  return Array.isArray(schema.enum) ? schema.enum : undefined;
}

interface Bound {
  value: number;
  exclusive: boolean;
}

function lowerBound(schema: SchemaObject): Bound | undefined {
  const inclusive = numberOf(schema.minimum);
  const exclusive = numberOf(schema.exclusiveMinimum);
  const bounds: Bound[] = [];
  if (inclusive !== undefined && inclusive > -SAFE) bounds.push({ value: inclusive, exclusive: false });
  if (exclusive !== undefined && exclusive > -SAFE) bounds.push({ value: exclusive, exclusive: true });
  return bounds.sort((a, b) => b.value - a.value || Number(b.exclusive) - Number(a.exclusive))[0];
}

function upperBound(schema: SchemaObject): Bound | undefined {
  const inclusive = numberOf(schema.maximum);
  const exclusive = numberOf(schema.exclusiveMaximum);
  const bounds: Bound[] = [];
  if (inclusive !== undefined && inclusive < SAFE) bounds.push({ value: inclusive, exclusive: false });
  if (exclusive !== undefined && exclusive < SAFE) bounds.push({ value: exclusive, exclusive: true });
  return bounds.sort((a, b) => a.value - b.value || Number(b.exclusive) - Number(a.exclusive))[0];
}

function describeBound(bound: Bound | undefined, direction: '>' | '<'): string {
  if (!bound) return 'none';
  return `${direction}${bound.exclusive ? '' : '='} ${bound.value}`;
}

function isMultiple(value: number, of: number): boolean {
  const ratio = value / of;
  return Math.abs(ratio - Math.round(ratio)) < 1e-9;
}

function numberOf(value: JsonValue | undefined): number | undefined {
  return typeof value === 'number' ? value : undefined;
}

function objectOf(value: JsonValue | undefined): { readonly [key: string]: JsonValue } {
  return isObject(value) ? value : {};
}

function stringsOf(value: JsonValue | undefined): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

/** `.name` for identifiers, `["odd key"]` otherwise. */
export function childPath(path: string, key: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

function describeSchema(schema: JsonSchema): string {
  if (!isObject(schema)) return String(schema);
  const types = typesOf(schema);
  return types ? types.join(' | ') : 'any value';
}

function show(value: JsonValue | undefined): string {
  const text = JSON.stringify(value) ?? 'undefined';
  return text.length > 40 ? `${text.slice(0, 37)}…` : text;
}

/** Structural equality of JSON values (object key order ignored). */
export function deepEqual(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
  }
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => key in b && deepEqual(a[key], b[key]));
}
