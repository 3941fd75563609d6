/**
 * `@absurd-kit/cli`: the `absurd` command (code generation, schema migrations, operator commands,
 * an embedded PostgreSQL for development) and the configuration of `absurd generate`.
 *
 * @example
 * // absurd.config.ts
 * import { defineConfig } from '@absurd-kit/cli';
 * export default defineConfig({ workflowsDir: 'src/workflows', outDir: 'src/generated' });
 */
export { defineConfig, CONFIG_DEFAULTS, ConfigError } from './config.js';
export type { AbsurdConfig, ResolvedConfig } from './config.js';
export { EXIT, run } from './cli.js';
export type { CliIo, OutputStream } from './cli.js';
