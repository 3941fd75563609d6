import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { useEmptyDatabases } from '../engine/empty-databases.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const empty = useEmptyDatabases();
const SUMMARY = /^3 of 3 orders fulfilled in \d+\.\ds \(\d+ receipt retried after a simulated outage\)$/m;

/**
 * Runs `npm start` in the repository with ABSURD_DATABASE_URL set, or (without a URL) the same
 * script from another working directory, where it keeps its embedded database in `.absurd/`.
 */
async function npmStart(databaseUrl: string | undefined, cwd = repo): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env };
  delete env.ABSURD_DATABASE_URL;
  delete env.PGDATABASE;
  if (databaseUrl !== undefined) env.ABSURD_DATABASE_URL = databaseUrl;
  const [command, args] =
    cwd === repo
      ? ['npm', ['start', '--silent']]
      : [process.execPath, [path.join(repo, 'node_modules/tsx/dist/cli.mjs'), '--tsconfig', path.join(repo, 'tsconfig.json'), path.join(repo, 'scripts/main.ts')]];
  return promisify(execFile)(command, args, { cwd, env, timeout: 150_000 }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code?: number; stdout?: string; stderr?: string }) => ({
      code: typeof error.code === 'number' ? error.code : -1,
      stdout: error.stdout ?? '',
      stderr: error.stderr ?? '',
    }),
  );
}

describe('npm start (the main job)', () => {
  it('runs the order flow on ABSURD_DATABASE_URL, installing the schema itself, and exits 0', async () => {
    const result = await npmStart(await empty.create());
    expect(result.stdout).toMatch(SUMMARY);
    expect(result.code).toBe(0);
  }, 180_000);

  // A fresh working directory rather than the repository's own .absurd/, whose state (a server
  // already running, data from an older build) is not the test's to control.
  it('starts the embedded PostgreSQL in .absurd/ of the working directory when no database is configured', async () => {
    const cwd = await mkdtemp(path.join(tmpdir(), 'absurd-main-'));
    await chmod(cwd, 0o755); // the server may run as the unprivileged postgres user
    try {
      const result = await npmStart(undefined, cwd);
      expect(result.stdout).toMatch(SUMMARY);
      expect(result.code).toBe(0);
      expect(existsSync(path.join(cwd, '.absurd', 'pgdata', 'PG_VERSION'))).toBe(true);
    } finally {
      await rm(cwd, { recursive: true, force: true });
    }
  }, 180_000);
});
