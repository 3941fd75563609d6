/**
 * The orchestrator's handle on a child process: start it, send requests, wait for notices.
 *
 * The children are bundled with esbuild into plain ESM (`bench/.build/`, node_modules left
 * external) and run by `node` without a loader, so that neither side's memory or start-up includes
 * a TypeScript loader. Without esbuild they run under tsx (both sides alike).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildInit, FromChild, Notice, Request, StopReply } from './protocol.js';
import { REFERENCES, type Runner } from './settings.js';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));

/** How children are started: the entry file of each side and the node flags. */
export interface ChildLauncher {
  readonly entries: Record<Runner, string>;
  readonly execArgv: string[];
  /** For the printed settings. */
  readonly description: string;
  /** When set, every child writes a V8 CPU profile under `<profileDir>/<side>-<role>/`. */
  readonly profileDir?: string;
}

/** Bundles both child entries (or falls back to tsx when esbuild cannot be loaded). */
export async function prepareChildren(options: { profileDir?: string } = {}): Promise<ChildLauncher> {
  const launcher = await bundleChildren();
  return options.profileDir ? { ...launcher, profileDir: path.resolve(options.profileDir) } : launcher;
}

async function bundleChildren(): Promise<ChildLauncher> {
  const outdir = path.join(BENCH_DIR, '.build');
  try {
    const esbuild = await import('esbuild');
    await mkdir(outdir, { recursive: true });
    await esbuild.build({
      entryPoints: Object.fromEntries(RUNNERS.map((runner) => [`worker-${runner}`, path.join(BENCH_DIR, `worker-${runner}.ts`)])),
      outdir,
      outExtension: { '.js': '.mjs' },
      bundle: true,
      // Dynamic imports stay separate chunks: the contracts (and so Zod) of the typed variant load
      // only when that variant runs, as they would in an application without contracts.
      splitting: true,
      packages: 'external',
      platform: 'node',
      format: 'esm',
      target: 'node20',
      logLevel: 'error',
    });
    return {
      entries: entriesIn(outdir, '.mjs'),
      execArgv: [],
      description: `node ${process.version}, children bundled by esbuild ${esbuild.version} (no loader)`,
    };
  } catch (error) {
    process.stderr.write(`esbuild unavailable (${(error as Error).message}); children run under tsx\n`);
    return {
      entries: entriesIn(BENCH_DIR, '.ts'),
      execArgv: ['--import', 'tsx'],
      description: `node ${process.version}, children under tsx`,
    };
  }
}

const RUNNERS: readonly Runner[] = ['ours', 'peer', ...REFERENCES];

function entriesIn(dir: string, extension: string): Record<Runner, string> {
  return Object.fromEntries(RUNNERS.map((runner) => [runner, path.join(dir, `worker-${runner}${extension}`)])) as Record<Runner, string>;
}

type Pending = { resolve: (value: unknown) => void; reject: (error: Error) => void };

/** A running child process of one side. */
export class BenchChild {
  readonly #process: ChildProcess;
  readonly #pending = new Map<number, Pending>();
  readonly #listeners = new Set<(notice: Notice) => void>();
  #nextId = 1;
  #exited: Error | undefined;

  private constructor(child: ChildProcess, readonly label: string) {
    this.#process = child;
    child.on('message', (message: FromChild) => {
      if ('notice' in message) {
        if (message.notice === 'fatal') this.#failAll(new Error(`${label} failed: ${message.message}`));
        for (const listener of this.#listeners) listener(message);
        return;
      }
      const pending = this.#pending.get(message.id);
      if (!pending) return;
      this.#pending.delete(message.id);
      if (message.ok) pending.resolve(message.value);
      else pending.reject(new Error(`${label}: ${message.error}`));
    });
    child.on('exit', (code, signal) => {
      this.#failAll(new Error(`${label} exited (code ${code}, signal ${signal})`));
    });
  }

  /** Starts a child and waits until it is connected and ready. */
  static async start(launcher: ChildLauncher, init: ChildInit, timeoutMs = 30_000): Promise<BenchChild> {
    const profile = launcher.profileDir
      ? ['--cpu-prof', `--cpu-prof-dir=${path.join(launcher.profileDir, `${init.side}-${init.role}`)}`]
      : [];
    const child = fork(launcher.entries[init.side], [init.role], {
      execArgv: [...launcher.execArgv, ...profile],
      env: { ...process.env, ABSURD_BENCH_CHILD: JSON.stringify(init) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const handle = new BenchChild(child, `${init.side} ${init.role}`);
    try {
      await handle.waitFor((n) => n.notice === 'ready', timeoutMs, 'to start');
    } catch (error) {
      handle.kill();
      throw error;
    }
    return handle;
  }

  /** Sends a request and resolves with the child's reply. */
  request<T>(request: Request, timeoutMs = 60_000): Promise<T> {
    if (this.#exited) return Promise.reject(this.#exited);
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${this.label}: no reply to ${request.op} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value as T);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.#process.send({ id, request });
    });
  }

  /** Calls `listener` on every notice until the returned function is called. */
  onNotice(listener: (notice: Notice) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Resolves with the first notice matching `predicate`. */
  waitFor<N extends Notice>(predicate: (notice: Notice) => notice is N, timeoutMs: number, what: string): Promise<N>;
  waitFor(predicate: (notice: Notice) => boolean, timeoutMs: number, what: string): Promise<Notice>;
  waitFor(predicate: (notice: Notice) => boolean, timeoutMs: number, what: string): Promise<Notice> {
    if (this.#exited) return Promise.reject(this.#exited);
    const waiting = new Promise<Notice>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        off();
        this.#pending.delete(-id);
      };
      const id = this.#nextId++;
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.label}: waited ${timeoutMs} ms ${what}`));
      }, timeoutMs);
      const off = this.onNotice((notice) => {
        if (!predicate(notice)) return;
        done();
        resolve(notice);
      });
      // Registered as pending so that a crash of the child rejects the wait at once.
      this.#pending.set(-id, {
        resolve: () => {},
        reject: (error) => {
          done();
          reject(error);
        },
      });
    });
    // Callers often start a wait before the request that causes it; if that request fails first,
    // this rejection must not count as unhandled.
    waiting.catch(() => undefined);
    return waiting;
  }

  /** Stops the worker/client, closes its pool, and returns the process's peak RSS. */
  async stop(timeoutMs = 120_000): Promise<StopReply> {
    const reply = await this.request<StopReply>({ op: 'stop' }, timeoutMs);
    await this.#exit(5_000);
    return reply;
  }

  /** Kills the process (after a failure). */
  kill(): void {
    if (this.#process.exitCode === null && this.#process.signalCode === null) this.#process.kill('SIGKILL');
  }

  #exit(timeoutMs: number): Promise<void> {
    if (this.#process.exitCode !== null || this.#process.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.kill();
        resolve();
      }, timeoutMs);
      this.#process.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  #failAll(error: Error): void {
    this.#exited ??= error;
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
  }
}
