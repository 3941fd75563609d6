import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { absurdProcess } from '../support/cli-process.js';
import { migrations } from '../../packages/absurd-kit/src/engine/migrations.generated.js';
import { migrate } from '../../packages/absurd-kit/src/migrate.js';
import { useEmptyDatabases } from '../engine/empty-databases.js';

const empty = useEmptyDatabases();

/** Runs the real executable in a child process, with a clean database environment. */
async function absurd(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env };
  delete env.ABSURD_DATABASE_URL;
  delete env.PGDATABASE;
  const cli = absurdProcess(args);
  return promisify(execFile)(cli.command, cli.args, { env: { ...env, ...cli.env } }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code?: number; stdout?: string; stderr?: string }) => ({
      code: error.code ?? -1,
      stdout: error.stdout ?? '',
      stderr: error.stderr ?? '',
    }),
  );
}

describe('bin/absurd.js', () => {
  it('runs schema-version against a database and exits 0', async () => {
    const url = await empty.create();
    await migrate(url);
    const result = await absurd(['schema-version', '--json', '--database-url', url]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ contract: 'main', migration: migrations.at(-1)?.version, state: 'current' });
  }, 60_000);

  it('exits 2 on a usage error', async () => {
    const result = await absurd(['schema-version', '--no-such-flag']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unknown flag --no-such-flag');
  }, 60_000);
});
