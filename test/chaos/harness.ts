/**
 * The chaos harness: worker processes on a private server, the disruptions (SIGKILL, SIGSTOP past
 * the lease, PostgreSQL restarts), and the evidence collected afterwards — task and run rows, the
 * commit time of every checkpoint write, the workers' journals of step starts and their logs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { table } from '../sql/helpers.js';

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'worker.ts');

/** One worker process and what it printed. */
export interface ChaosWorker {
  readonly id: string;
  readonly child: ChildProcess;
  readonly journal: string;
  /** Log lines the worker printed (`{"level","msg"}`). */
  logs(): { level: string; msg: string }[];
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>;
}

export interface WorkerSettings {
  url: string;
  queue: string;
  dir: string;
  claimTimeout: number;
  concurrency: number;
}

/** Starts a worker process (`worker.ts` through tsx) and resolves once it runs. */
export async function startWorker(id: string, settings: WorkerSettings): Promise<ChaosWorker> {
  const journal = path.join(settings.dir, `${id}.jsonl`);
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER], {
    env: {
      ...process.env,
      CHAOS_URL: settings.url,
      CHAOS_QUEUE: settings.queue,
      CHAOS_WORKER_ID: id,
      CHAOS_JOURNAL: journal,
      CHAOS_CLAIM_TIMEOUT: String(settings.claimTimeout),
      CHAOS_CONCURRENCY: String(settings.concurrency),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const deadline = Date.now() + 30_000;
  while (!/^ready$/m.test(out)) {
    if (gone) throw new Error(`chaos worker ${id} exited during start-up: ${out}`);
    if (Date.now() > deadline) throw new Error(`chaos worker ${id} did not start: ${out}`);
    await delay(20);
  }
  return {
    id,
    child,
    journal,
    exited,
    logs: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { level: string; msg: string }),
  };
}

export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Kills a worker with SIGKILL and waits until it is gone. */
export async function kill(worker: ChaosWorker): Promise<void> {
  worker.child.kill('SIGKILL');
  await worker.exited;
}

/** Freezes a worker (SIGSTOP) for `ms`, then lets it go on (SIGCONT). */
export async function freeze(worker: ChaosWorker, ms: number): Promise<void> {
  worker.child.kill('SIGSTOP');
  await delay(ms);
  worker.child.kill('SIGCONT');
}

/**
 * Records every checkpoint write that commits: a trigger on the queue's checkpoint table inserts
 * a row into `chaos_checkpoint_commits` in the same transaction, and the server's
 * track_commit_timestamp gives that row's commit time.
 */
export async function recordCheckpointCommits(con: pg.Pool, queue: string): Promise<void> {
  await con.query(`
    create table chaos_checkpoint_commits (task_id uuid not null, checkpoint_name text not null, owner_run_id uuid);
    create function chaos_record_checkpoint() returns trigger language plpgsql as $$
    begin
      insert into chaos_checkpoint_commits values (new.task_id, new.checkpoint_name, new.owner_run_id);
      return new;
    end $$;
    create trigger chaos_record_checkpoint after insert or update on ${table('c', queue)}
      for each row execute function chaos_record_checkpoint();
  `);
}

/** A step start as a worker's journal has it. */
export interface StepStart {
  task: string;
  run: string;
  step: string;
  /** Wall clock, ms. */
  t: number;
  w: string;
}

export function readJournal(file: string): StepStart[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as StepStart);
}

/** What the database holds after a chaos run. */
export interface Evidence {
  tasks: { task_id: string; state: string; completed_payload: unknown }[];
  runs: {
    run_id: string;
    task_id: string;
    attempt: number;
    state: string;
    claimed_by: string | null;
    lease_ms: number | null;
    failure_reason: { name?: string; workerId?: string } | null;
  }[];
  /** The first commit (ms) of each checkpoint, by `task_id/checkpoint_name`. */
  firstCommit: Map<string, number>;
}

export async function collectEvidence(con: pg.Pool, queue: string): Promise<Evidence> {
  const tasks = (await con.query(`select task_id, state, completed_payload from ${table('t', queue)}`)).rows;
  const runs = (
    await con.query(
      `select run_id, task_id, attempt, state, claimed_by, failure_reason,
              extract(epoch from claim_expires_at) * 1000 as lease_ms
         from ${table('r', queue)} order by task_id, attempt`,
    )
  ).rows.map((r: { lease_ms: string | null }) => ({ ...r, lease_ms: r.lease_ms === null ? null : Number(r.lease_ms) }));
  const commits = await con.query<{ key: string; first_ms: string }>(
    `select task_id || '/' || checkpoint_name as key,
            min(extract(epoch from pg_xact_commit_timestamp(xmin)) * 1000) as first_ms
       from chaos_checkpoint_commits group by 1`,
  );
  return {
    tasks,
    runs: runs as Evidence['runs'],
    firstCommit: new Map(commits.rows.map((r) => [r.key, Number(r.first_ms)])),
  };
}
