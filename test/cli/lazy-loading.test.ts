import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { useTestDatabase } from '../support/db.js';

/** The heavy or optional modules imported so far by the code under test. */
const loaded = vi.hoisted(() => new Set<string>());
vi.mock('tsx/esm/api', async (importOriginal) => {
  loaded.add('tsx/esm/api');
  return importOriginal();
});
vi.mock('ts-morph', async (importOriginal) => {
  loaded.add('ts-morph');
  return importOriginal();
});

// After the mocks: the whole command table loads here, as `absurd` does at start.
const { cli } = await import('./helpers.js');
const { loadWorkflowContracts } = await import('../../packages/cli/src/workflow-contracts.js');

const db = useTestDatabase();
const fixtures = fileURLToPath(new URL('./fixtures/workflows', import.meta.url));

describe('what the CLI loads', () => {
  it('loads neither tsx nor the code generator for commands that read no TypeScript file', async () => {
    expect([...loaded]).toEqual([]);
    for (const argv of [['--help'], ['schema', 'sql'], ['generate', '--help'], ['queue', 'list'], ['tasks', 'list'], ['schema-version']]) {
      const result = await cli([...argv, '--database-url', db.url]);
      expect(result.code, `absurd ${argv.join(' ')}: ${result.stderr}`).toBe(0);
    }
    expect([...loaded]).toEqual([]);
  });

  it('loads tsx once a command reads TypeScript contracts', async () => {
    const { tasks } = await loadWorkflowContracts(fixtures);
    expect(tasks.size).toBeGreaterThan(0);
    expect(loaded.has('tsx/esm/api')).toBe(true);
  });
});
