import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The repository root. */
export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The `absurd` command as a child process runs it from the workspace sources: node with tsx, and
 * the repository's tsconfig (whose `paths` map `absurd-kit` to its sources) whatever the working
 * directory. The packed, compiled bin is exercised by test/e2e.
 *
 * @example
 * const { command, args, env } = absurdProcess(['schema-version']);
 * execFile(command, args, { env: { ...process.env, ...env } });
 */
export function absurdProcess(argv: readonly string[]): { command: string; args: string[]; env: Record<string, string> } {
  return {
    command: process.execPath,
    // tsx by its file URL: a bare `tsx` would be resolved from the child's working directory.
    args: ['--import', pathToFileURL(path.join(repoRoot, 'node_modules/tsx/dist/loader.mjs')).href, path.join(repoRoot, 'packages/cli/src/main.ts'), ...argv],
    env: { TSX_TSCONFIG_PATH: path.join(repoRoot, 'tsconfig.json') },
  };
}
