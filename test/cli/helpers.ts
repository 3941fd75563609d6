import { run } from '../../packages/cli/src/cli.js';

/** What one in-process CLI call printed and returned. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI in-process with captured output and an environment of our choosing (none of the
 * process's database variables leak in).
 */
export async function cli(argv: readonly string[], env: Record<string, string> = {}): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await run(argv, {
    stdout: { write: (s: string) => (stdout += s), isTTY: false },
    stderr: { write: (s: string) => (stderr += s), isTTY: false },
    env,
  });
  return { code, stdout, stderr };
}

/** Runs the CLI with `--json` and parses its one line of output; fails loudly otherwise. */
export async function cliJson<T = Record<string, unknown>>(argv: readonly string[]): Promise<T> {
  const result = await cli([...argv, '--json']);
  if (result.code !== 0) throw new Error(`absurd ${argv.join(' ')} exited ${result.code}: ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

let counter = 0;

/** A queue name unique within the test file. */
export function uniqueQueue(prefix = 'cli'): string {
  counter += 1;
  return `${prefix}_${counter}_${process.pid}`;
}

/** Names that only work when every identifier is quoted, each made unique. */
export function awkwardQueues(): string[] {
  counter += 1;
  const n = String(counter);
  const long = `é${n}`.padEnd(56, 'q'); // 56 characters, 57 bytes: 'é' takes two
  return [`bad'quote ${n}`, `Upper "Case" ${n}`, `with space ${n}`, long];
}
