/**
 * The exports of a module loaded with tsx. A `.ts` file outside a `"type": "module"` package runs
 * as CommonJS; importing it then yields its `module.exports` as `default`, which holds the real
 * `default` and named exports (marked `__esModule`).
 */

/**
 * The named exports (and `default`) of a loaded module namespace, whichever module system ran it.
 *
 * @example
 * const exports = moduleExports(await tsImport(url, import.meta.url));
 */
export function moduleExports(namespace: Record<string, unknown>): Record<string, unknown> {
  const commonJs = namespace.default as { __esModule?: unknown } | undefined;
  if (typeof commonJs === 'object' && commonJs !== null && commonJs.__esModule) return commonJs as Record<string, unknown>;
  return namespace;
}
