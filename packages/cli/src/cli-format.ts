/**
 * Text output helpers of the operator commands: aligned tables, times, JSON and shell quoting.
 */

/**
 * A word quoted for a POSIX shell when it needs it, for commands suggested in messages.
 *
 * @example
 * shellQuote('orders');     // orders
 * shellQuote("bad 'name"); // 'bad '\''name'
 */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9._/:@%+=,-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * A name (queue, task) as is when it is plain, JSON-quoted when it holds spaces, quotes or the like.
 *
 * @example
 * displayName('orders');    // orders
 * displayName('bad name');  // "bad name"
 */
export function displayName(name: string): string {
  return /^[\w.:@-]+$/.test(name) ? name : JSON.stringify(name);
}

/**
 * Rows as aligned columns under a header; cells are single-line.
 *
 * @example
 * renderTable(['NAME', 'STATE'], [['a', 'pending']]); // ['NAME  STATE', 'a     pending']
 */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const flat = rows.map((row) => row.map((cell) => cell.replace(/\s+/g, ' ')));
  const widths = header.map((title, i) => Math.max(title.length, ...flat.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...flat.map(line)];
}

/** A `timestamptz` as node-postgres returns it (a Date, or ±Infinity for 'infinity'). */
export type DatabaseTime = Date | number | string | null | undefined;

/**
 * A timestamp as ISO 8601 UTC (`2024-05-01T12:00:00.000Z`); `-` when there is none, and
 * `never` for Postgres' `infinity`.
 *
 * @example
 * formatTime(new Date(0)); // '1970-01-01T00:00:00.000Z'
 */
export function formatTime(value: DatabaseTime): string {
  const json = jsonTime(value);
  return json === null ? '-' : json === 'infinity' ? 'never' : json;
}

/**
 * A timestamp for `--json` output: ISO string, `"infinity"`, or null.
 *
 * @example
 * jsonTime(null); // null
 */
export function jsonTime(value: DatabaseTime): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  // node-postgres reads 'infinity' as the number Infinity.
  if (typeof value === 'number') return value > 0 ? 'infinity' : '-infinity';
  return Number.isFinite(value.getTime()) ? value.toISOString() : 'infinity';
}

/**
 * JSON for people: compact when short, indented (by `indent`) otherwise.
 *
 * @example
 * prettyJson({ a: 1 }, '  '); // '{"a":1}'
 */
export function prettyJson(value: unknown, indent: string): string {
  const compact = JSON.stringify(value) ?? 'null';
  if (compact.length <= 72) return compact;
  return JSON.stringify(value, null, 2).split('\n').join(`\n${indent}`);
}
