/**
 * docs/testing.md shows its example whole; the repository runs the same test
 * (test/testing/orders-workflow.test.ts, its imports one folder deeper), and the packaging test
 * runs the page's files in an installed project (test/e2e/testing-example.test.ts).
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { docFiles } from '../support/doc-files.js';

describe('docs/testing.md', () => {
  it('shows the vitest config, the global setup and the order workflow test', async () => {
    const files = await docFiles('docs/testing.md');
    expect([...files.keys()]).toEqual(['vitest.config.ts', 'test/global-setup.ts', 'test/orders.test.ts']);
    expect(files.get('test/global-setup.ts')).toContain('await startTestServer()');
    expect(files.get('vitest.config.ts')).toContain("globalSetup: ['./test/global-setup.ts']");
  });

  it('shows the order workflow test exactly as the repository runs it', async () => {
    const shown = (await docFiles('docs/testing.md')).get('test/orders.test.ts');
    const repo = await readFile(new URL('./orders-workflow.test.ts', import.meta.url), 'utf8');
    // The repository's copy starts with a comment saying where it comes from, and imports from one folder deeper.
    const asShown = repo.replace(/^(\/\/.*\n)+/, '').replaceAll("from '../../", "from '../");
    expect(shown).toBe(asShown);
  });
});
