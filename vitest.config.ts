import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Package names (`absurd-kit`, `absurd-kit/query-runtime`, `@absurd-kit/cli`) resolve to the
  // workspace sources through tsconfig.json's `paths`, as they do for tsc and tsx.
  resolve: { tsconfigPaths: true },
  test: {
    globalSetup: ['./test/support/global-setup.ts'],
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: more forks only add contention on the one Postgres server.
    pool: 'forks',
    maxWorkers: 2,
    // Type tests (`expectTypeOf`, `@ts-expect-error`) run with tsc as part of every run; their own
    // tsconfig limits the check to them and what they import.
    typecheck: {
      enabled: true,
      include: ['test/types/**/*.test-d.ts'],
      tsconfig: './test/types/tsconfig.json',
    },
  },
});
