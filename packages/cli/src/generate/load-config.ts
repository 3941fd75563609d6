/**
 * Finds and loads `absurd.config.ts` (or `.mts`, `.js`, `.mjs`) at the project root. A project
 * without one gets the defaults.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, resolveConfig, type ResolvedConfig } from '../config.js';
import { importTsModule } from '../import-ts-module.js';
import { moduleExports } from './module-exports.js';

/** The names looked for at the project root, in this order. */
export const CONFIG_FILE_NAMES = ['absurd.config.ts', 'absurd.config.mts', 'absurd.config.js', 'absurd.config.mjs'] as const;

/** A resolved configuration and where it came from. */
export interface LoadedConfig extends ResolvedConfig {
  /** Absolute project root: paths of the configuration are relative to it. */
  readonly root: string;
  /** The config file relative to the root, or undefined when the defaults apply. */
  readonly file: string | undefined;
}

/**
 * Loads the configuration of the project at `root` (or the file `configFile`, whose folder is
 * then the root). Imports it with tsx, fresh on every call (so `--watch` sees edits).
 *
 * @example
 * const config = await loadConfig({ root: process.cwd() }); // { workflowsDir: 'workflows', … }
 */
export async function loadConfig(options: { root: string; configFile?: string | undefined }): Promise<LoadedConfig> {
  let file: string | undefined;
  let root = path.resolve(options.root);
  if (options.configFile !== undefined) {
    file = path.resolve(root, options.configFile);
    if (!existsSync(file)) throw new ConfigError(options.configFile, ['file not found']);
    root = path.dirname(file);
  } else {
    file = CONFIG_FILE_NAMES.map((name) => path.join(root, name)).find((candidate) => existsSync(candidate));
  }
  if (file === undefined) return { ...resolveConfig(undefined), root, file: undefined };
  const relative = path.relative(root, file);
  let loaded: { default?: unknown };
  try {
    loaded = moduleExports(await importTsModule(file));
  } catch (error) {
    // defineConfig() checked it while loading; tsx loads its own copy of the class, so go by the code.
    const problems = (error as { code?: unknown; problems?: unknown }).problems;
    if ((error as { code?: unknown }).code === 'CONFIG_INVALID' && Array.isArray(problems)) {
      throw new ConfigError(relative, problems as string[]);
    }
    throw new ConfigError(relative, [`cannot be loaded: ${(error as Error).message}`]);
  }
  if (loaded.default === undefined) {
    throw new ConfigError(relative, ['has no default export — write `export default defineConfig({ … })`']);
  }
  return { ...resolveConfig(loaded.default, relative), root, file: relative };
}
