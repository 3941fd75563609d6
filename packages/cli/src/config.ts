/**
 * The project configuration read by `absurd generate`: `absurd.config.ts` at the project root,
 * exported from `@absurd-kit/cli`. Pure: loading the file is the CLI's job.
 */
import { AbsurdError } from 'absurd-kit';

/** What `absurd.config.ts` may set. Paths are relative to the project root (the config file's folder). */
export interface AbsurdConfig {
  /** Folder holding the contract files (`defineTask` / `defineEvent` exports). Default `workflows`. */
  workflowsDir?: string;
  /** Folder the generated client and manifest are written to. Default `generated`. */
  outDir?: string;
  /** Folders of pgtyped-annotated `.sql` files to turn into typed query modules. Default `['sql/queries']`. */
  queryDirs?: string[];
  /**
   * Folder for the typed query modules (`<name>.queries.ts`, sub-folders kept). Default: each
   * module next to its `.sql` file.
   */
  queryOutDir?: string;
  /**
   * Module the typed query modules import `PreparedQuery` from. Default `@pgtyped/runtime`;
   * `absurd-kit/query-runtime` is lighter but supports scalar parameters only (no spreads/picks).
   */
  queryRuntime?: string;
  /**
   * Modules a contract file may import besides `zod`, `zod/*`, `absurd-kit`, `absurd-kit/*` and
   * files under `workflowsDir`. A bare name (`date-fns`) or a subpath pattern (`@acme/schemas/*`)
   * matches the import specifier; an entry starting with `./` or `../` names a file or folder
   * relative to the project root and matches what a relative import resolves to. Type-only
   * imports are always allowed (they are erased).
   */
  allowImports?: string[];
}

/** The configuration with every default applied. */
export interface ResolvedConfig {
  readonly workflowsDir: string;
  readonly outDir: string;
  readonly queryDirs: readonly string[];
  readonly queryOutDir: string | undefined;
  readonly queryRuntime: string;
  readonly allowImports: readonly string[];
}

/** The defaults of every {@link AbsurdConfig} key. */
export const CONFIG_DEFAULTS: ResolvedConfig = Object.freeze({
  workflowsDir: 'workflows',
  outDir: 'generated',
  queryDirs: Object.freeze(['sql/queries']),
  queryOutDir: undefined,
  queryRuntime: '@pgtyped/runtime',
  allowImports: Object.freeze([]),
});

/** An `absurd.config.ts` that has unknown keys or values of the wrong type. */
export class ConfigError extends AbsurdError {
  declare readonly code: 'CONFIG_INVALID';
  /** One line per problem, e.g. `outDir: expected a non-empty string, received 42`. */
  readonly problems: readonly string[];

  constructor(source: string, problems: readonly string[]) {
    super('CONFIG_INVALID', `${source} is invalid:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.problems = problems;
  }
}

/**
 * Declares the project configuration; checks it at once so that a mistake fails with the key's
 * name when the file is loaded.
 *
 * @example
 * // absurd.config.ts
 * import { defineConfig } from '@absurd-kit/cli';
 * export default defineConfig({ workflowsDir: 'src/workflows', outDir: 'src/generated' });
 */
export function defineConfig(config: AbsurdConfig): AbsurdConfig {
  resolveConfig(config, 'defineConfig()');
  return config;
}

const KEYS = ['workflowsDir', 'outDir', 'queryDirs', 'queryOutDir', 'queryRuntime', 'allowImports'] as const;

/**
 * Checks a configuration value (as loaded from a file: anything) and applies the defaults.
 * Throws a {@link ConfigError} listing every problem.
 *
 * @example
 * resolveConfig({ outDir: 'src/generated' }); // { workflowsDir: 'workflows', outDir: 'src/generated', … }
 */
export function resolveConfig(config: unknown, source = 'absurd config'): ResolvedConfig {
  if (config === undefined) return CONFIG_DEFAULTS;
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new ConfigError(source, [`expected an object (export default defineConfig({ … })), received ${describe(config)}`]);
  }
  const problems: string[] = [];
  const record = config as Record<string, unknown>;
  for (const key of Object.keys(record).sort()) {
    if (!(KEYS as readonly string[]).includes(key)) problems.push(`unknown key "${key}" (known keys: ${KEYS.join(', ')})`);
  }
  const optionalPath = (key: 'workflowsDir' | 'outDir' | 'queryOutDir' | 'queryRuntime'): string | undefined => {
    const value = record[key];
    if (value === undefined || (typeof value === 'string' && value.trim() !== '')) return value;
    problems.push(`${key}: expected a non-empty string, received ${describe(value)}`);
    return undefined;
  };
  const path = (key: 'workflowsDir' | 'outDir'): string => optionalPath(key) ?? CONFIG_DEFAULTS[key];
  const list = (key: 'queryDirs' | 'allowImports'): readonly string[] => {
    const value = record[key];
    if (value === undefined) return CONFIG_DEFAULTS[key];
    if (!Array.isArray(value)) {
      problems.push(`${key}: expected an array of strings, received ${describe(value)}`);
      return CONFIG_DEFAULTS[key];
    }
    value.forEach((item, i) => {
      if (typeof item !== 'string' || item.trim() === '') {
        problems.push(`${key}[${i}]: expected a non-empty string, received ${describe(item)}`);
      }
    });
    return Object.freeze(value.filter((item): item is string => typeof item === 'string'));
  };
  const resolved: ResolvedConfig = Object.freeze({
    workflowsDir: path('workflowsDir'),
    outDir: path('outDir'),
    queryDirs: list('queryDirs'),
    queryOutDir: optionalPath('queryOutDir'),
    queryRuntime: optionalPath('queryRuntime') ?? CONFIG_DEFAULTS.queryRuntime,
    allowImports: list('allowImports'),
  });
  if (problems.length > 0) throw new ConfigError(source, problems);
  return resolved;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}
