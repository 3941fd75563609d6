import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';
import { run } from '../../packages/cli/src/cli.js';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
export const fixturesDir = fileURLToPath(new URL('./fixtures/generate', import.meta.url));

/**
 * Temporary projects outside the repository that still resolve `absurd-kit` (this repository)
 * and `zod`, through symlinks in their own node_modules. Removed after the file.
 */
export function useTempProjects(): { create(files?: Record<string, string>): string; copyFixture(name: string): string } {
  const roots: string[] = [];
  afterAll(() => {
    for (const root of roots) rmSync(root, { recursive: true, force: true });
  });
  const create = (files: Record<string, string> = {}) => {
    const root = mkdtempSync(path.join(tmpdir(), 'absurd-generate-test-'));
    roots.push(root);
    mkdirSync(path.join(root, 'node_modules'));
    symlinkSync(repoRoot, path.join(root, 'node_modules', 'absurd-kit'), 'dir');
    symlinkSync(path.join(repoRoot, 'node_modules', 'zod'), path.join(root, 'node_modules', 'zod'), 'dir');
    for (const [name, text] of Object.entries(files)) writeProjectFile(root, name, text);
    return root;
  };
  return {
    create,
    copyFixture(name) {
      const root = create();
      cpSync(path.join(fixturesDir, name), root, { recursive: true });
      return root;
    },
  };
}

/** Writes (or overwrites) one file of a project. */
export function writeProjectFile(root: string, name: string, text: string): void {
  mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
  writeFileSync(path.join(root, name), text);
}

/** Runs the CLI in-process with captured output. */
export async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await run(argv, {
    stdout: { write: (s: string) => (stdout += s), isTTY: false },
    stderr: { write: (s: string) => (stderr += s), isTTY: false },
    env: {},
  });
  return { code, stdout, stderr };
}
