import { defineConfig } from '@absurd-kit/cli';

export default defineConfig({
  queryDirs: ['sql/queries'],
  queryRuntime: 'absurd-kit/query-runtime',
});
