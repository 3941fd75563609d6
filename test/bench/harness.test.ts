import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, inject, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Runs `bench/run.ts` as `npm run bench` would, against the test server. */
function runBench(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args], {
      cwd: ROOT,
      env: { ...process.env, ABSURD_BENCH_DATABASE_URL: inject('absurdTestServerUrl') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const RATIO_KEYS = [
  'noop_tps',
  'step3_tps',
  'history_keep',
  'pickup_p50_ms',
  'peer_pickup_p50_ms',
  'validation_overhead_pct',
  'tracing_ratio',
  'spawn_seq',
  'spawn_pool',
  'spawn_bulk',
  'pickup_p99_ms',
  'pgboss_noop',
  'graphile_noop',
  'listidx_spawn',
  'listidx_noop',
  'limits_noop_ratio',
  'priority_noop_ratio',
  'validation_cpu_pct',
] as const;

/** Read from /proc: `na` where the server is not a process of this machine (a container, say). */
const CPU_KEY = 'noop_pg_cpu_ms';

describe('npm run bench', () => {
  let dir: string | undefined;
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  // No speed is asserted: only that every figure ran on both sides and was reported.
  it(
    '--quick prints the table, the settings and, last, a RATIOS line with a number for every ratio',
    async () => {
      dir = await mkdtemp(path.join(tmpdir(), 'absurd-bench-test-'));
      const out = path.join(dir, 'results.json');
      const { code, stdout, stderr } = await runBench(['--quick', '--out', out]);
      expect(code, `${stdout}\n${stderr}`).toBe(0);

      const lines = stdout.trimEnd().split('\n');
      const last = lines.at(-1) ?? '';
      expect(last).toMatch(new RegExp(`^RATIOS ${[...RATIO_KEYS, CPU_KEY].map((k) => `${k}=\\S+`).join(' ')}$`));
      const ratios = Object.fromEntries(
        last
          .slice('RATIOS '.length)
          .split(' ')
          .map((pair) => pair.split('=') as [string, string]),
      );
      for (const key of RATIO_KEYS) expect(Number.isFinite(Number(ratios[key])), `${key}=${ratios[key]}`).toBe(true);
      expect(ratios[CPU_KEY]).toMatch(/^(\d+\.\d{3}|na)$/);

      for (const figure of [
        'spawn/s, one connection',
        'spawn/s, 8 concurrent callers',
        'spawn/s, spawnMany of 100',
        'end-to-end no-op tasks/s',
        'against pg-boss',
        'against graphile-worker',
        'Postgres CPU per no-op task',
        'dashboard list indexes',
        'end-to-end 3-step tasks/s',
        'pick-up latency p50',
        'event wake latency p50',
        'validation overhead',
        'worker CPU per 3-step task',
        'tracing on / off',
        'completed retained',
        'worker peak RSS',
      ]) {
        expect(stdout).toContain(figure);
      }
      expect(stdout).toMatch(/^settings:$/m);
      expect(stdout).toMatch(/pgbench/);

      const results = JSON.parse(await readFile(out, 'utf8')) as {
        errors: unknown[];
        ratios: Record<string, number | null>;
        rows: { key: string; values: [number[], number[]] }[];
        runs: { figure: string; side: string }[];
      };
      expect(results.errors).toEqual([]);
      for (const key of RATIO_KEYS) expect(results.ratios[key]).toBeTypeOf('number');
      for (const row of results.rows) {
        expect(row.values[0].length, row.key).toBeGreaterThan(0);
        expect(row.values[1].length, row.key).toBeGreaterThan(0);
      }
      // Both sides ran every side-by-side figure.
      for (const figure of ['spawn-seq', 'spawn-pool', 'noop', 'step3', 'pickup', 'event', 'history']) {
        const sides = results.runs.filter((run) => run.figure === figure).map((run) => run.side);
        expect(sides, figure).toEqual(expect.arrayContaining(['ours', 'peer']));
      }
      const noopRunners = results.runs.filter((run) => run.figure === 'noop').map((run) => run.side);
      expect(noopRunners).toEqual(expect.arrayContaining(['pgboss', 'graphile']));
    },
    300_000,
  );

  it('refuses an unknown figure with the usage and exit code 2', async () => {
    const { code, stderr } = await runBench(['--only', 'nope']);
    expect(code).toBe(2);
    expect(stderr).toContain('unknown figure "nope"');
    expect(stderr).toContain('usage: npm run bench');
  }, 60_000);
});
