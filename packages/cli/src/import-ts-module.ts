/**
 * Importing a TypeScript file of the user's project (`absurd.config.ts`, the contracts in
 * `workflows/`): the one thing the CLI needs a TypeScript loader for.
 */
import { pathToFileURL } from 'node:url';

/**
 * Imports `file` (an absolute path) with tsx and returns its module namespace. tsx is loaded here,
 * on first use, and not by the modules that call this: commands that read no TypeScript file
 * (`schema sql`, `queue list`, …) start without it. Every call imports the file afresh, so that
 * `--watch` sees edits.
 *
 * @example
 * const config = await importTsModule(path.resolve('absurd.config.ts'));
 */
export async function importTsModule(file: string): Promise<Record<string, unknown>> {
  const { tsImport } = await import('tsx/esm/api');
  return (await tsImport(pathToFileURL(file).href, import.meta.url)) as Record<string, unknown>;
}
