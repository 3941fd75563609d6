/**
 * JSON typed on a command line: parsing with a precise location on error, and building an object
 * from `key=value` / `key:=json` pairs with dotted paths (`-P customer.email=a@b.c`).
 */
import type { JsonObject, JsonValue } from 'absurd-kit';
import { UsageError } from './cli-args.js';
import { JsonInputError } from './cli-errors.js';

/**
 * Parses JSON given as the argument `source`; throws a {@link JsonInputError} that names the line,
 * the column and the text around the problem.
 *
 * @example
 * parseJsonArgument('--params', '{"orderId": "A-1"}'); // { orderId: 'A-1' }
 * parseJsonArgument('--params', '{"orderId": }');      // throws: --params is not valid JSON: expected a value (line 1, column 13) …
 */
export function parseJsonArgument(source: string, text: string): JsonValue {
  try {
    return JSON.parse(text) as JsonValue;
  } catch (error) {
    // V8's messages do not always carry a position, so the text is scanned again to find one.
    const found = locateJsonError(text);
    if (found) throw new JsonInputError(source, text, found.reason, found.position);
    throw new JsonInputError(source, text, (error as Error).message, undefined);
  }
}

/**
 * Where (zero-based offset) and why `text` is not JSON, or undefined when it is.
 *
 * @example
 * locateJsonError('[1, 2,]'); // { position: 6, reason: 'expected a value, found "]"' }
 */
export function locateJsonError(text: string): { position: number; reason: string } | undefined {
  let i = 0;
  const fail = (reason: string, at = i): never => {
    throw { position: at, reason } satisfies { position: number; reason: string };
  };
  const describe = (at: number) => (at >= text.length ? 'the end of the text' : JSON.stringify(text[at]));
  const skipSpace = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i] ?? '')) i++;
  };
  const literal = (word: string) => {
    for (let k = 0; k < word.length; k++) {
      if (text[i + k] !== word[k]) fail(`expected a value, found ${describe(i)}`);
    }
    i += word.length;
  };
  const string = () => {
    const start = i++;
    while (i < text.length) {
      const c = text[i] ?? '';
      if (c === '"') {
        i++;
        return;
      }
      if (c === '\\') {
        const e = text[i + 1] ?? '';
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) fail('bad \\u escape in a string');
          i += 6;
        } else if ('"\\/bfnrt'.includes(e) && e !== '') {
          i += 2;
        } else {
          fail(`bad escape \\${e} in a string`);
        }
        continue;
      }
      if (c < ' ') fail('control character in a string (escape it, e.g. \\n)');
      i++;
    }
    fail('unterminated string', start);
  };
  const number = () => {
    const match = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i));
    if (!match || match[0] === '-' || match[0] === '') fail(`expected a value, found ${describe(i)}`);
    i += match?.[0].length ?? 0;
  };
  const value = (depth: number): void => {
    skipSpace();
    if (depth > 512) fail('nested too deeply');
    const c = text[i];
    if (c === '{') {
      i++;
      skipSpace();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        skipSpace();
        if (text[i] !== '"') fail(`expected a property name in double quotes, found ${describe(i)}`);
        string();
        skipSpace();
        if (text[i] !== ':') fail(`expected ':' after a property name, found ${describe(i)}`);
        i++;
        value(depth + 1);
        skipSpace();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return;
        }
        fail(`expected ',' or '}' after a property value, found ${describe(i)}`);
      }
    }
    if (c === '[') {
      i++;
      skipSpace();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value(depth + 1);
        skipSpace();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return;
        }
        fail(`expected ',' or ']' after an array element, found ${describe(i)}`);
      }
    }
    if (c === '"') return string();
    if (c === 't') return literal('true');
    if (c === 'f') return literal('false');
    if (c === 'n') return literal('null');
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return number();
    fail(`expected a value, found ${describe(i)}`);
  };
  try {
    value(0);
    skipSpace();
    if (i < text.length) fail(`unexpected ${describe(i)} after the JSON value`);
    return undefined;
  } catch (error) {
    if (typeof error === 'object' && error !== null && 'position' in error) {
      return error as { position: number; reason: string };
    }
    throw error;
  }
}

/**
 * Builds a JSON object from a base object and `key=value` (string) or `key:=json` assignments;
 * dotted keys create nested objects (`customer.email=a@b.c`). Later assignments win.
 *
 * @example
 * assignParams({}, ['orderId=A-1', 'amount:=1999', 'customer.email=a@b.c'], '-P');
 * // { orderId: 'A-1', amount: 1999, customer: { email: 'a@b.c' } }
 */
export function assignParams(base: JsonObject, assignments: readonly string[], flag: string): JsonObject {
  const result = structuredClone(base);
  for (const assignment of assignments) {
    const json = assignment.indexOf(':=');
    const plain = assignment.indexOf('=');
    let key: string;
    let value: JsonValue;
    if (json !== -1 && json < plain) {
      key = assignment.slice(0, json);
      value = parseJsonArgument(`${flag} ${assignment}`, assignment.slice(json + 2));
    } else if (plain !== -1) {
      key = assignment.slice(0, plain);
      value = assignment.slice(plain + 1);
    } else {
      throw new UsageError(`${flag} ${JSON.stringify(assignment)}: expected key=value or key:=json`);
    }
    const path = key.split('.');
    if (path.some((part) => part === '')) {
      throw new UsageError(`${flag} ${JSON.stringify(assignment)}: the key must be a name or a dotted path (a.b.c)`);
    }
    let target: JsonObject = result;
    for (const [index, part] of path.slice(0, -1).entries()) {
      const next = target[part];
      if (next === undefined) {
        target = target[part] = {};
      } else if (typeof next === 'object' && next !== null && !Array.isArray(next)) {
        target = next;
      } else {
        const prefix = path.slice(0, index + 1).join('.');
        throw new UsageError(`${flag} ${JSON.stringify(assignment)}: "${prefix}" is already set to a non-object value`);
      }
    }
    target[path.at(-1) ?? key] = value;
  }
  return result;
}

/**
 * The JSON object given by a `--params`/`--payload` flag (absent: `{}`) combined with `-P`
 * assignments. A non-object base is allowed only without assignments.
 *
 * @example
 * jsonFromFlags('--params', '{"a":1}', ['b=2'], '-P'); // { a: 1, b: '2' }
 */
export function jsonFromFlags(
  source: string,
  text: string | undefined,
  assignments: readonly string[],
  flag: string,
): JsonValue {
  const base = text === undefined ? {} : parseJsonArgument(source, text);
  if (assignments.length === 0) return base;
  if (typeof base !== 'object' || base === null || Array.isArray(base)) {
    throw new UsageError(`${flag} needs ${source} to be a JSON object (got ${base === null ? 'null' : Array.isArray(base) ? 'an array' : `a ${typeof base}`})`);
  }
  return assignParams(base, assignments, flag);
}
