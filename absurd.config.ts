import { defineConfig } from 'absurd-kit/config';

// `absurd generate` for this repository: the example contracts in workflows/ give generated/, and
// the runtime's own statements in sql/queries/ give the typed query modules in src/queries/.
export default defineConfig({
  workflowsDir: 'workflows',
  outDir: 'generated',
  queryDirs: ['sql/queries'],
  queryOutDir: 'src/queries',
  // The runtime's own modules use the light scalar-only runtime, keeping pgtyped's parser out of workers.
  queryRuntime: './src/query-runtime.js',
});
