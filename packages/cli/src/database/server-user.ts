/**
 * The user the PostgreSQL server runs as, and what that user can reach. PostgreSQL refuses to run
 * as root, so a root process runs it as the unprivileged `postgres` user, which cannot enter a
 * mode-0700 folder such as `/root` — where a clone, its node_modules and its `.absurd/` may well be.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';

/** Who runs the server. */
export interface ServerUser {
  /** The user's name, for messages. */
  readonly name: string;
  /** uid/gid to spawn the server's processes with; empty when it runs as this process's user. */
  readonly ids: { uid?: number; gid?: number };
}

const SERVER_USER = 'postgres';

/**
 * This process's user, or — as root — the unprivileged `postgres` user, created when missing.
 *
 * @example
 * const user = serverUser(); // { name: 'postgres', ids: { uid: 999, gid: 999 } } as root
 */
export function serverUser(): ServerUser {
  if (process.platform === 'win32' || userInfo().uid !== 0) return { name: userInfo().username, ids: {} };
  const lookup = () => {
    try {
      const uid = Number(execFileSync('id', ['-u', SERVER_USER], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', SERVER_USER], { encoding: 'utf8' }).trim());
      return { uid, gid };
    } catch {
      return undefined;
    }
  };
  let ids = lookup();
  if (!ids) {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', SERVER_USER], { stdio: 'ignore' });
    ids = lookup();
    if (!ids) throw new Error(`running as root and could not create the unprivileged "${SERVER_USER}" user`);
  }
  return { name: SERVER_USER, ids };
}

/** True when the server runs as another user than this process. */
export function isOtherUser(user: ServerUser): boolean {
  return user.ids.uid !== undefined;
}

/** The outcome of {@link runAs}. */
export type RunOutcome = { ok: true; stdout: string } | { ok: false; reason: string };

/**
 * Runs a program as the server's user and waits for it, e.g. `postgres --version`: the one check
 * that the user can reach the binary, its libraries and their folders.
 *
 * @example
 * const outcome = runAs(user, '/opt/pg/bin/postgres', ['--version']);
 */
export function runAs(user: ServerUser, file: string, args: readonly string[]): RunOutcome {
  const result = spawnSync(file, args, { ...user.ids, encoding: 'utf8', timeout: 30_000 });
  if (result.error) return { ok: false, reason: (result.error as NodeJS.ErrnoException).code ?? result.error.message };
  if (result.status !== 0) {
    const said = `${result.stderr}${result.stdout}`.trim().split('\n')[0];
    return { ok: false, reason: said || `exit ${result.status ?? result.signal}` };
  }
  return { ok: true, stdout: result.stdout };
}

/**
 * True when the server's user can enter `dir`, or — while `dir` does not exist yet — its nearest
 * existing parent (the folders made below it are searchable by all).
 *
 * @example
 * canEnter(user, '/root/app/.absurd/pgdata'); // false as root: `postgres` cannot enter /root
 */
export function canEnter(user: ServerUser, dir: string): boolean {
  if (!isOtherUser(user)) return true;
  let existing = path.resolve(dir);
  while (!existsSync(existing) && path.dirname(existing) !== existing) existing = path.dirname(existing);
  const result = spawnSync('/bin/sh', ['-c', 'cd -- "$1"', 'sh', existing], { ...user.ids, stdio: 'ignore', timeout: 30_000 });
  return result.status === 0;
}

/**
 * The default folder for what the server's user cannot reach where it is: `absurd-kit-<uid>` in
 * `/var/tmp` (kept across reboots on Linux), else in the system's temporary folder.
 *
 * @example
 * defaultSharedDir(); // '/var/tmp/absurd-kit-0' as root on Linux
 */
export function defaultSharedDir(): string {
  const parent = process.platform === 'linux' && existsSync('/var/tmp') ? '/var/tmp' : tmpdir();
  return path.join(parent, `absurd-kit-${userInfo().uid}`);
}
