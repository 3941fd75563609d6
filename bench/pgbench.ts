/**
 * The ceiling of the server itself, measured with `pgbench` on a scratch database of the same
 * server: the built-in simple-update script (`-N`: one account update, one select, one history
 * insert per transaction) and a one-statement insert script, with 1, 4 and 8 clients, prepared
 * statements. Skipped with a note when `pgbench` is not on PATH.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { BenchDatabases } from './databases.js';

const run = promisify(execFile);

export const PGBENCH_CLIENTS = [1, 4, 8] as const;

export interface PgbenchRun {
  script: 'simple-update' | 'single-insert';
  clients: number;
  threads: number;
  tps: number;
}

export interface PgbenchResult {
  /** Why nothing was measured, when nothing was. */
  skipped?: string;
  version?: string;
  seconds: number;
  runs: PgbenchRun[];
}

const INSERT_SCRIPT = `\\set aid random(1, 100000)
insert into pgbench_history (tid, bid, aid, delta, mtime) values (1, 1, :aid, 0, current_timestamp);
`;

export async function runPgbench(dbs: BenchDatabases, seconds: number, progress: (line: string) => void): Promise<PgbenchResult> {
  let version: string;
  try {
    version = (await run('pgbench', ['--version'])).stdout.trim();
  } catch {
    return { skipped: 'pgbench is not on PATH', seconds, runs: [] };
  }
  const db = await dbs.scratch('pgbench');
  const dir = await mkdtemp(path.join(tmpdir(), 'absurd-bench-'));
  try {
    const scriptFile = path.join(dir, 'single-insert.sql');
    await writeFile(scriptFile, INSERT_SCRIPT);
    progress('pgbench -i');
    await run('pgbench', ['-i', '-q', '-s', '1', db.url], { maxBuffer: 16 << 20 });
    const runs: PgbenchRun[] = [];
    for (const script of ['simple-update', 'single-insert'] as const) {
      for (const clients of PGBENCH_CLIENTS) {
        const threads = Math.min(clients, availableParallelism());
        progress(`pgbench ${script} -c ${clients}`);
        const workload = script === 'simple-update' ? ['-b', 'simple-update'] : ['-f', scriptFile];
        const { stdout } = await run(
          'pgbench',
          ['-n', '-M', 'prepared', ...workload, '-c', String(clients), '-j', String(threads), '-T', String(seconds), db.url],
          { maxBuffer: 16 << 20 },
        );
        const tps = /tps = ([\d.]+) \((?:without initial connection time|excluding connections establishing)\)/.exec(stdout)?.[1];
        if (!tps) throw new Error(`could not read tps from pgbench output:\n${stdout}`);
        runs.push({ script, clients, threads, tps: Number(tps) });
      }
    }
    return { version, seconds, runs };
  } finally {
    await rm(dir, { recursive: true, force: true });
    await db.drop().catch(() => undefined);
  }
}
