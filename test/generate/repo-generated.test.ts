import { expect, inject, it } from 'vitest';
import { cli, repoRoot } from './generate-helpers.js';

// `absurd generate --check` for this repository, as CI would run it: the client and manifest for
// workflows/ and the typed query modules for sql/queries/ (checked on the test server) must match
// what is committed, and no contract may have changed incompatibly with generated/manifest.json.
it('absurd generate --check finds no drift in this repository', async () => {
  const result = await cli(['generate', '--check', '--root', repoRoot, '--database-url', inject('absurdTestServerUrl')]);
  expect(result.stderr).toBe('');
  expect(result.stdout).toMatch(/^generated files are up to date \(\d+ tasks?, \d+ events? and \d+ schedules? in workflows\/\)\n$/);
  expect(result.code).toBe(0);
}, 120_000);
