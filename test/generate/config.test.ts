import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../packages/cli/src/generate/load-config.js';
import { CONFIG_DEFAULTS, ConfigError, defineConfig, resolveConfig } from '../../packages/cli/src/config.js';
import { cli, useTempProjects } from './generate-helpers.js';

const projects = useTempProjects();

function problems(config: unknown): readonly string[] {
  try {
    resolveConfig(config);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('resolveConfig', () => {
  it('applies the defaults', () => {
    expect(resolveConfig({})).toEqual({
      workflowsDir: 'workflows',
      outDir: 'generated',
      queryDirs: ['sql/queries'],
      queryOutDir: undefined,
      queryRuntime: '@pgtyped/runtime',
      allowImports: [],
    });
    expect(resolveConfig(undefined)).toBe(CONFIG_DEFAULTS);
    expect(resolveConfig({ outDir: 'src/generated', queryDirs: [] })).toMatchObject({ workflowsDir: 'workflows', outDir: 'src/generated', queryDirs: [] });
  });

  it('refuses unknown keys, naming the known ones', () => {
    expect(problems({ outdir: 'x' })).toEqual(['unknown key "outdir" (known keys: workflowsDir, outDir, queryDirs, queryOutDir, queryRuntime, allowImports)']);
  });

  it('refuses values of the wrong type, every one of them', () => {
    expect(problems({ workflowsDir: 42, outDir: '', queryDirs: 'sql', allowImports: ['ok', 7], queryOutDir: null })).toEqual([
      'workflowsDir: expected a non-empty string, received number 42',
      'outDir: expected a non-empty string, received ""',
      'queryDirs: expected an array of strings, received "sql"',
      'queryOutDir: expected a non-empty string, received null',
      'allowImports[1]: expected a non-empty string, received number 7',
    ]);
  });

  it('refuses a configuration that is not an object', () => {
    expect(problems(['workflows'])).toEqual(['expected an object (export default defineConfig({ … })), received an array']);
  });

  it('defineConfig checks at once', () => {
    expect(() => defineConfig({ outDir: 1 } as never)).toThrow('defineConfig() is invalid:\n  - outDir: expected a non-empty string, received number 1');
    expect(defineConfig({ outDir: 'out' })).toEqual({ outDir: 'out' });
  });
});

describe('loadConfig', () => {
  it('uses the defaults without a config file', async () => {
    const root = projects.create({});
    expect(await loadConfig({ root })).toEqual({ ...CONFIG_DEFAULTS, root, file: undefined });
  });

  it('loads absurd.config.ts with defineConfig from @absurd-kit/cli', async () => {
    const root = projects.create({
      'absurd.config.ts': "import { defineConfig } from '@absurd-kit/cli';\nexport default defineConfig({ workflowsDir: 'contracts', queryDirs: [] });\n",
    });
    expect(await loadConfig({ root })).toMatchObject({ workflowsDir: 'contracts', outDir: 'generated', queryDirs: [], root, file: 'absurd.config.ts' });
  });

  it('takes --config: the file\'s folder becomes the root', async () => {
    const root = projects.create({ 'config/absurd.config.mts': "export default { outDir: 'out' };\n" });
    expect(await loadConfig({ root, configFile: 'config/absurd.config.mts' })).toMatchObject({ outDir: 'out', root: `${root}/config` });
  });

  it.each([
    ['defineConfig', "import { defineConfig } from '@absurd-kit/cli';\nexport default defineConfig({ outDir: 5 } as never);\n", 'absurd.config.ts is invalid:\n  - outDir: expected a non-empty string, received number 5'],
    ['a plain object', "export default { workflowsDir: 'w', extra: true };\n", 'absurd.config.ts is invalid:\n  - unknown key "extra"'],
    ['no default export', "export const config = {};\n", 'absurd.config.ts is invalid:\n  - has no default export'],
    ['a syntax error', 'export default {\n', 'absurd.config.ts is invalid:\n  - cannot be loaded:'],
  ])('reports a config file with %s naming the file', async (_case, text, message) => {
    const root = projects.create({ 'absurd.config.ts': text });
    const result = await cli(['generate', '--root', root, '--skip-queries']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`absurd generate: ${message}`);
  });

  it('reports a --config file that does not exist (exit 1)', async () => {
    const root = projects.create({});
    const result = await cli(['generate', '--root', root, '--config', 'nope.ts']);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('absurd generate: nope.ts is invalid:\n  - file not found\n');
  });
});
