/**
 * The testing entry depends on no test runner: nothing it imports, at any depth, is vitest or
 * node:test (nor the code generator's toolchain), and a test file for Node's own runner passes.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const entry = path.join(repoRoot, 'packages/cli/src/testing/index.ts');

/** The bare module names (packages, node: builtins) imported by `file` and every relative import under it. */
async function bareImports(file: string, seen = new Set<string>(), found = new Set<string>()): Promise<Set<string>> {
  if (seen.has(file)) return found;
  seen.add(file);
  const { importedFiles } = ts.preProcessFile(await readFile(file, 'utf8'), true, true);
  for (const { fileName: specifier } of importedFiles) {
    if (specifier.startsWith('.')) {
      await bareImports(path.resolve(path.dirname(file), specifier.replace(/\.js$/, '.ts')), seen, found);
    } else {
      found.add(specifier);
    }
  }
  return found;
}

describe('the testing entry and test runners', () => {
  it('imports no test runner and none of the code generator', async () => {
    const imports = [...(await bareImports(entry))];
    expect(imports).toContain('pg');
    expect(imports).toContain('absurd-kit');
    const forbidden = /^(vitest|@vitest\/|node:test$|jest|mocha|ts-morph|tsx|@pgtyped\/|typescript$)/;
    expect(imports.filter((name) => forbidden.test(name))).toEqual([]);
  });

  it('runs a node:test file', async () => {
    const fixture = path.join(repoRoot, 'test/testing/fixtures/node-test-workflow.ts');
    const outcome = await new Promise<{ code: number; output: string }>((resolve) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', '--test', '--test-reporter=tap', fixture],
        { cwd: repoRoot, env: { ...process.env, NODE_OPTIONS: '' }, timeout: 60_000 },
        (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, output: stdout + stderr }),
      );
    });
    expect(outcome.code, outcome.output).toBe(0);
    expect(outcome.output).toMatch(/^# pass 1$/m);
    expect(outcome.output).toMatch(/^# fail 0$/m);
  }, 60_000);
});
