/**
 * Chaos: worker processes on a private PostgreSQL (fsync and synchronous_commit on) run multi-step
 * tasks while workers are killed with SIGKILL, a worker is frozen with SIGSTOP past its lease and
 * let go, and PostgreSQL is restarted with `-m fast` and `-m immediate` in the middle of it all.
 *
 * What must hold afterwards:
 * - nothing is lost: every task completed, with every step's result;
 * - no step began again after its checkpoint had committed (commit times from the server's
 *   track_commit_timestamp, step starts from the workers' journals);
 * - no run ended by its lease but those of the killed and frozen workers: the restarts cost no
 *   attempt and no run failed for any other reason;
 * - no step began after its run's lease had ended;
 * - the logs: no ERROR line; the lease warning only from the frozen worker; every other worker
 *   saw each outage as one WARN and one INFO.
 *
 * `npm test` runs a short version (one round of disruptions). `ABSURD_CHAOS=long npx vitest run
 * test/chaos` runs several rounds over many more tasks.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Absurd } from '../../packages/absurd-kit/src/index.js';
import { startPrivateServer, type PrivateServer } from '../support/private-server.js';
import type { ChaosParams } from './worker.js';
import {
  collectEvidence,
  delay,
  freeze,
  kill,
  readJournal,
  recordCheckpointCommits,
  startWorker,
  type ChaosWorker,
  type StepStart,
  type WorkerSettings,
} from './harness.js';

const LONG = process.env.ABSURD_CHAOS === 'long';

const plan = LONG
  ? { rounds: 8, tasksPerRound: 120, workers: 4, concurrency: 6, claimTimeout: 5, timeoutMs: 600_000 }
  : { rounds: 1, tasksPerRound: 60, workers: 3, concurrency: 4, claimTimeout: 4, timeoutMs: 120_000 };
/**
 * Steps are short and the pauses between them long, and of different lengths from task to task, so
 * that a worker frozen at any moment has runs between two steps (where it would begin the next).
 */
const task = (i: number): ChaosParams => ({ steps: 6, stepMs: 20, gapMs: 150 + ((i * 53) % 200) });
const STEPS = 6;
const QUEUE = 'chaos';

describe(`chaos (${LONG ? 'long' : 'short'}): workers killed and frozen, PostgreSQL restarted fast and immediate`, () => {
  let db: PrivateServer;
  let pool: pg.Pool;
  let dir: string;
  const workers: ChaosWorker[] = [];
  /** Workers killed or frozen: the only ones whose runs may end by their lease. */
  const killed = new Set<string>();
  const frozen = new Set<string>();
  const restarts: number[] = [];
  /** How many restarts each worker lived through unfrozen: it must have logged each as one outage. */
  const restartsSeen = new Map<string, number>();

  beforeAll(async () => {
    db = await startPrivateServer({ settings: { track_commit_timestamp: 'on' } });
    pool = new pg.Pool({ connectionString: db.url, max: 2 });
    pool.on('error', () => undefined);
    dir = await mkdtemp(path.join(tmpdir(), 'absurd-chaos-'));
  }, 60_000);

  afterAll(async () => {
    for (const worker of workers) worker.child.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
    await pool?.end().catch(() => undefined);
    await db?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('loses nothing, repeats no committed step, and costs the restarts no lease', { timeout: plan.timeoutMs + 60_000 }, async () => {
    const producer = new Absurd({ db: db.url, queueName: QUEUE, log: silentLog });
    await producer.createQueue();
    await recordCheckpointCommits(pool, QUEUE);
    const settings: WorkerSettings = { url: db.url, queue: QUEUE, dir, claimTimeout: plan.claimTimeout, concurrency: plan.concurrency };
    let generation = 0;
    const launch = async () => {
      const worker = await startWorker(`chaos-${++generation}`, settings);
      workers.push(worker);
      return worker;
    };
    const live = () => workers.filter((w) => !killed.has(w.id));
    await Promise.all(Array.from({ length: plan.workers }, launch));

    const taskIDs: string[] = [];
    const spawnRound = async () => {
      for (let i = 0; i < plan.tasksPerRound; i++) {
        taskIDs.push((await producer.spawn('chaos', task(taskIDs.length), { queue: QUEUE, maxAttempts: 50 })).taskID);
      }
    };
    const restart = async (mode: 'fast' | 'immediate') => {
      restarts.push(Date.now());
      for (const worker of live()) if (!frozen.has(worker.id)) restartsSeen.set(worker.id, (restartsSeen.get(worker.id) ?? 0) + 1);
      await db.server.restart({ mode, downFor: 300 });
    };

    for (let round = 0; round < plan.rounds; round++) {
      await spawnRound();
      await delay(800);
      // SIGKILL one worker mid-run; a replacement takes its place.
      const victim = live()[round % live().length]!;
      killed.add(victim.id);
      await kill(victim);
      await launch();
      await delay(700);
      await restart('fast');
      // Once the runs are under way again, freeze another worker past its lease; meanwhile the
      // server is restarted without a checkpoint (crash recovery).
      await delay(1500);
      const sleeper = live()[(round + 1) % live().length]!;
      frozen.add(sleeper.id);
      const thawed = freeze(sleeper, plan.claimTimeout * 1000 + 1500);
      await delay(800);
      await restart('immediate');
      await thawed;
      await delay(500);
      const second = live().find((w) => w.id !== sleeper.id)!;
      killed.add(second.id);
      await kill(second);
      await launch();
    }

    const deadline = Date.now() + plan.timeoutMs;
    for (;;) {
      const { rows } = await pool.query<{ open: string }>(
        `select count(*) as open from absurd.t_chaos where state <> 'completed'`,
      ).catch(() => ({ rows: [{ open: '-1' }] }));
      if (rows[0]?.open === '0') break;
      if (Date.now() > deadline) throw new Error(`tasks still open after ${plan.timeoutMs} ms: ${rows[0]?.open}`);
      await delay(200);
    }
    await producer.close();
    // A worker logs its INFO line once the database has stayed reachable for a second.
    await delay(1200);

    const evidence = await collectEvidence(pool, QUEUE);
    const starts: StepStart[] = workers.flatMap((w) => readJournal(w.journal));
    const steps = Array.from({ length: STEPS }, (_, i) => `s${i + 1}`);

    // Nothing lost.
    expect(evidence.tasks).toHaveLength(taskIDs.length);
    const expected = { done: Array.from({ length: STEPS }, (_, i) => i + 1) };
    expect(evidence.tasks.filter((t) => t.state !== 'completed' || !isEqual(t.completed_payload, expected))).toEqual([]);

    // No step began again once its checkpoint had committed.
    const rerun = starts.filter((s) => {
      const committed = evidence.firstCommit.get(`${s.task}/${s.step}`);
      return committed === undefined || s.t >= committed + 1;
    });
    expect(rerun).toEqual([]);
    for (const id of taskIDs) for (const step of steps) expect(evidence.firstCommit.has(`${id}/${step}`)).toBe(true);

    // Runs ended only by the leases of killed and frozen workers; the restarts cost nothing.
    const failed = evidence.runs.filter((r) => r.state === 'failed');
    const unexplained = failed.filter(
      (r) => r.failure_reason?.name !== '$ClaimTimeout' || !(killed.has(r.failure_reason.workerId!) || frozen.has(r.failure_reason.workerId!)),
    );
    expect(unexplained).toEqual([]);
    // The disruptions happened mid-run: the frozen and killed workers left runs to their leases.
    const lostBy = new Set(failed.map((r) => r.failure_reason?.workerId));
    for (const id of frozen) expect(lostBy.has(id), `runs of frozen worker ${id} taken over`).toBe(true);

    // No step began after its run's lease had ended.
    const leases = new Map(evidence.runs.map((r) => [r.run_id, r.lease_ms]));
    const late = starts.filter((s) => {
      const lease = leases.get(s.run);
      return lease === undefined || lease === null || s.t >= lease;
    });
    expect(late).toEqual([]);

    process.stderr.write(
      `chaos (${LONG ? 'long' : 'short'}): ${taskIDs.length} tasks, ${evidence.runs.length} runs (${failed.length} ended by ` +
        `the leases of killed or frozen workers), ${starts.length} step starts, ${workers.length} worker processes, ` +
        `${restarts.length} restarts\n`,
    );

    // Logs: no ERROR; the lease warning only where a worker was frozen; one WARN and one INFO per outage.
    for (const worker of workers) {
      const logs = worker.logs();
      expect(logs.filter((l) => l.level === 'error'), `${worker.id} errors`).toEqual([]);
      const leaseWarnings = logs.filter((l) => /exceeded claim timeout/.test(l.msg));
      if (!frozen.has(worker.id)) expect(leaseWarnings, `${worker.id} lease warnings`).toEqual([]);
      else expect(leaseWarnings.length, `${worker.id} lease warnings`).toBeGreaterThan(0);
      if (killed.has(worker.id) || frozen.has(worker.id)) continue;
      const down = logs.filter((l) => l.level === 'warn' && l.msg.startsWith('database unreachable'));
      const back = logs.filter((l) => l.level === 'info' && l.msg.startsWith('database reachable again'));
      expect(down.length, `${worker.id}: one WARN per restart`).toBe(restartsSeen.get(worker.id) ?? 0);
      expect(back.length, `${worker.id}: one INFO per restart`).toBe(down.length);
    }
  });
});

const silentLog = { log() {}, info() {}, warn() {}, error() {} };

function isEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
