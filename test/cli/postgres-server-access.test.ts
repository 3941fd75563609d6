/**
 * The embedded PostgreSQL where an install left it unprepared (no install scripts run) and, as
 * root, where the server's unprivileged user cannot reach the binaries or the data directory.
 */
import { chmod, cp, lstat, mkdir, mkdtemp, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { findEmbeddedPackage } from '../../packages/cli/src/database/embedded-binaries.js';
import { startPostgresServer, type PostgresServer } from '../../packages/cli/src/database/postgres-server.js';

const isRoot = process.platform !== 'win32' && userInfo().uid === 0;
/** Said in the name of a root-only test that is skipped. */
const ROOT_ONLY = isRoot ? '' : ' — skipped: not running as root, so the server runs as this user';
const dirs: string[] = [];
const servers: PostgresServer[] = [];

afterAll(async () => {
  for (const server of servers) await server.stop().catch(() => undefined);
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function tempDir(mode: number): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'absurd-pg-access-'));
  dirs.push(dir);
  await chmod(dir, mode);
  return dir;
}

/** The links of `pg-symlinks.json`, as paths relative to the package folder. */
async function libraryLinks(packageDir: string): Promise<string[]> {
  const entries = JSON.parse(await readFile(path.join(packageDir, 'native/pg-symlinks.json'), 'utf8')) as { target: string }[];
  return entries.map((entry) => entry.target);
}

/**
 * A copy of the installed platform package at `<parent>/pkg` without its library links: what npm
 * leaves when it skips the package's install script.
 */
async function unpreparedPackage(parent: string): Promise<{ packageDir: string; links: string[] }> {
  const installed = await findEmbeddedPackage();
  const packageDir = path.join(parent, 'pkg');
  await cp(installed.packageDir, packageDir, { recursive: true, verbatimSymlinks: true });
  const links = await libraryLinks(packageDir);
  expect(links.length).toBeGreaterThan(0);
  for (const link of links) await rm(path.join(packageDir, link), { force: true });
  return { packageDir, links };
}

async function query(url: string, sql: string): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

describe('the embedded PostgreSQL', () => {
  it('makes the library links that the skipped install script would have made, and starts', async () => {
    const parent = await tempDir(0o755);
    const { packageDir, links } = await unpreparedPackage(parent);
    const notices: string[] = [];
    const server = await startPostgresServer({
      dataDir: path.join(parent, 'pgdata'),
      ephemeral: true,
      binaries: { kind: 'embedded', packageDir },
      sharedDir: path.join(parent, 'shared'),
      onNotice: (line) => notices.push(line),
    });
    servers.push(server);
    expect(await query(server.url, 'select 1 as one')).toEqual([{ one: 1 }]);
    for (const link of links) {
      expect((await lstat(path.join(packageDir, link))).isSymbolicLink(), link).toBe(true);
      expect(await readlink(path.join(packageDir, link))).not.toContain('/'); // relative, in the same folder
    }
    expect(notices).toEqual([]);
    expect(server.dataDir).toBe(path.join(parent, 'pgdata'));
    await server.stop();
  }, 120_000);

  it.skipIf(!isRoot)(
    `as root, runs a copy of the binaries and keeps the data in a folder the server user reaches, says where, and finds the data again${ROOT_ONLY}`,
    async () => {
      const locked = await tempDir(0o700); // like /root: the postgres user cannot enter it
      const shared = path.join(await tempDir(0o755), 'shared');
      const { packageDir } = await unpreparedPackage(locked);
      const dataDir = path.join(locked, 'app', '.absurd', 'pgdata');
      const start = async () => {
        const notices: string[] = [];
        const server = await startPostgresServer({
          dataDir,
          binaries: { kind: 'embedded', packageDir },
          sharedDir: shared,
          onNotice: (line) => notices.push(line),
        });
        servers.push(server);
        return { server, notices };
      };

      const first = await start();
      expect(first.notices).toHaveLength(1);
      const [notice] = first.notices;
      expect(notice).toBe(
        `PostgreSQL runs as user "postgres" (it refuses to run as root), which cannot reach ` +
          `${path.join(packageDir, 'native/bin/postgres')} (EACCES) nor ${dataDir}: ` +
          `running a copy of the binaries from ${path.join(shared, `postgres-${(await findEmbeddedPackage(packageDir)).label}`)} ` +
          `and keeping the data in ${first.server.dataDir}`,
      );
      expect(path.dirname(first.server.dataDir)).toBe(shared);
      await query(first.server.url, 'create table kept (id int); insert into kept values (42)');
      await first.server.stop();

      const second = await start();
      expect(second.server.dataDir).toBe(first.server.dataDir);
      expect(await query(second.server.url, 'select id from kept')).toEqual([{ id: 42 }]);
      expect(second.notices).toEqual(first.notices);
      await second.server.stop();
    },
    180_000,
  );

  it.skipIf(!isRoot)(
    `as root, refuses binaries of a given folder the server user cannot reach, saying what to do${ROOT_ONLY}`,
    async () => {
      const locked = await tempDir(0o700);
      const installed = await findEmbeddedPackage();
      await cp(installed.nativeDir, path.join(locked, 'native'), { recursive: true, verbatimSymlinks: true });
      const start = startPostgresServer({
        dataDir: path.join(await tempDir(0o755), 'pgdata'),
        binaries: { kind: 'directory', binDir: path.join(locked, 'native', 'bin') },
        onNotice: () => {},
      });
      await expect(start).rejects.toThrow(/user "postgres" cannot run .*postgres \(EACCES\) — let that user reach .* \(chmod o\+rx/);
    },
  );

  it.skipIf(!isRoot)(
    `as root, refuses a data directory with data that the server user cannot enter instead of starting an empty one${ROOT_ONLY}`,
    async () => {
      const locked = await tempDir(0o700);
      const dataDir = path.join(locked, 'pgdata');
      await mkdir(dataDir);
      await writeFile(path.join(dataDir, 'PG_VERSION'), '18\n');
      const start = startPostgresServer({ dataDir, sharedDir: path.join(await tempDir(0o755), 'shared'), onNotice: () => {} });
      await expect(start).rejects.toThrow(`user "postgres" cannot enter the data directory ${dataDir} — let it (chmod o+x`);
    },
  );
});
