import { defineConfig } from '@absurd-kit/cli';

// `absurd generate` for this repository: the example contracts in workflows/ give generated/, and
// the statements of each package (packages/*/src/queries/*.sql) give the typed query modules next
// to them.
export default defineConfig({
  workflowsDir: 'workflows',
  outDir: 'generated',
  queryDirs: ['packages/absurd-kit/src/queries', 'packages/cli/src/queries'],
  // The light scalar-only runtime keeps pgtyped's parser out of workers.
  queryRuntime: 'absurd-kit/query-runtime',
});
