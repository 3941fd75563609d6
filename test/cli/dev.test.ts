import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { absurdProcess, repoRoot } from '../support/cli-process.js';

const children: ChildProcess[] = [];
const dirs: string[] = [];

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

interface Dev {
  child: ChildProcess;
  url: string;
  output(): string;
  exited: Promise<number | null>;
}

/**
 * Starts `absurd dev` and waits until it is ready (its URL line, then "press Ctrl-C to stop", then
 * `readyLine` if given).
 */
async function startDev(args: string[], options: { cwd?: string; readyLine?: string } = {}): Promise<Dev> {
  const env = { ...process.env };
  delete env.ABSURD_DATABASE_URL;
  delete env.PGDATABASE;
  const proc = absurdProcess(['dev', ...args]);
  const child = spawn(proc.command, proc.args, { env: { ...env, ...proc.env }, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
      const match = /^ABSURD_DATABASE_URL=(.+)$/m.exec(stdout);
      const ready = stdout.includes('press Ctrl-C to stop\n') && stdout.includes(options.readyLine ?? '');
      if (match?.[1] && ready) resolve(match[1]);
    });
    void exited.then((code) => reject(new Error(`absurd dev exited ${code} before printing its URL:\n${stdout}\n${stderr}`)));
  });
  return { child, url, exited, output: () => stdout };
}

async function schemaVersion(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ v: string }>('select absurd.get_schema_version() as v');
    return rows[0]?.v ?? '';
  } finally {
    await client.end();
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

describe('absurd dev', () => {
  it('starts PostgreSQL with the schema and the dashboard, prints their URLs, and stops cleanly on SIGTERM and on SIGINT', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'absurd-dev-'));
    dirs.push(dir);
    await chmod(dir, 0o755); // the server may run as the unprivileged postgres user
    const dataDir = path.join(dir, 'data');

    const first = await startDev(['--data-dir', dataDir]);
    expect(await schemaVersion(first.url)).toBe('main');
    expect(first.output()).toMatch(/applied \d+ engine migration\(s\)/);
    const dashboard = /^dashboard: (http:\/\/127\.0\.0\.1:\d+\/)$/m.exec(first.output())?.[1];
    expect(dashboard).toBeDefined();
    expect(await (await fetch(`${dashboard}healthz`)).text()).toBe('ok');
    expect((await fetch(dashboard!)).status).toBe(200);
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(first.output()).toContain('stopped PostgreSQL');

    await expect(fetch(dashboard!)).rejects.toThrow();

    // Again on the same data: nothing to migrate; --port is honoured; no dashboard; Ctrl-C stops it too.
    const port = await freePort();
    const second = await startDev(['--data-dir', dataDir, '--port', String(port), '--no-dashboard']);
    expect(new URL(second.url).port).toBe(String(port));
    expect(second.output()).not.toContain('dashboard:');
    expect(second.output()).toContain('engine schema is current');
    expect(await schemaVersion(second.url)).toBe('main');
    second.child.kill('SIGINT');
    expect(await second.exited).toBe(0);
    await expect(schemaVersion(second.url)).rejects.toThrow();
  }, 180_000);

  it(
    '--generate runs `absurd generate --watch` in the project and stops it with the server',
    async () => {
      // A minimal project: a contract in workflows/, absurd-kit and zod resolvable from it.
      const project = await mkdtemp(path.join(tmpdir(), 'absurd-dev-project-'));
      dirs.push(project);
      await chmod(project, 0o755);
      await mkdir(path.join(project, 'node_modules'));
      await symlink(path.join(repoRoot, 'packages/absurd-kit'), path.join(project, 'node_modules', 'absurd-kit'));
      await symlink(path.join(repoRoot, 'node_modules', 'zod'), path.join(project, 'node_modules', 'zod'));
      await mkdir(path.join(project, 'workflows'));
      await writeFile(
        path.join(project, 'workflows', 'index.ts'),
        [
          "import { z } from 'zod';",
          "import { defineTask } from 'absurd-kit';",
          "export const ping = defineTask({ name: 'ping', params: z.object({ n: z.number() }), result: z.object({ ok: z.boolean() }) });",
          '',
        ].join('\n'),
      );
      const dev = await startDev(['--generate', '--data-dir', path.join(project, 'data')], {
        cwd: project,
        readyLine: 'watching for changes…',
      });
      expect(dev.output()).toContain('generated 2 files from 1 task and 0 events');
      expect(existsSync(path.join(project, 'generated', 'client.ts'))).toBe(true);
      expect(await schemaVersion(dev.url)).toBe('main');
      dev.child.kill('SIGTERM');
      expect(await dev.exited).toBe(0);
      expect(dev.output()).toContain('stopped PostgreSQL');
    },
    180_000,
  );
});
