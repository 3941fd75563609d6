/**
 * What the benchmark runs and with which settings. Everything the output documents comes from here,
 * so that the printed settings are the ones used.
 */

/**
 * The two sides compared: absurd-kit ("ours") on its own schema, and the `absurd-sdk` npm package
 * ("peer") on Absurd's own schema (test/fixtures/absurd-main.sql).
 */
export type Side = 'ours' | 'peer';

/** The job queues measured as references in the no-op figure, each on a database of its own. */
export type Reference = 'pgboss' | 'graphile';
export const REFERENCES: readonly Reference[] = ['pgboss', 'graphile'];

/** Every kind of child process: the two sides and the references. */
export type Runner = Side | Reference;

/** How each runner is named in the output. */
export const RUNNER_LABEL: Record<Runner, string> = {
  ours: 'ours',
  peer: 'peer',
  pgboss: 'pg-boss',
  graphile: 'graphile-worker',
};

/** The queue every figure works on (created in the template database). */
export const BENCH_QUEUE = 'bench';

/** Task names; the same on both sides. */
export const TASK = {
  noop: 'bench-noop',
  steps: 'bench-steps',
  event: 'bench-event',
  /** The completed tasks retained for the "with history" figure. */
  history: 'bench-history',
} as const;

/** The event a `bench-event` task with params `{ i }` waits for. */
export const wakeEventName = (i: number): string => `bench-wake:${i}`;

/** Spawn options the pre-spawned tasks get: what both clients send by default. */
export const PRESPAWN_OPTIONS = { max_attempts: 5 } as const;

/** Runs executed at once by each worker process. */
export const CONCURRENCY = 16;

/** `pg.Pool` size of every worker process, both sides (ours opens its LISTEN connection besides). */
export const WORKER_POOL_SIZE = 16;

/**
 * `startWorker` options. Ours: what a user would write (batchSize defaults to concurrency, the poll
 * interval to 0.25 s, LISTEN for wake-ups is on, claimTimeout 120 s). The peer at its best: a batch
 * as large as its concurrency and a 50 ms poll interval, since it has no wake-ups and an idle
 * worker starts new work only when it polls.
 */
export const WORKER_OPTIONS = {
  ours: { concurrency: CONCURRENCY },
  peer: { concurrency: CONCURRENCY, batchSize: CONCURRENCY, pollInterval: 0.05, claimTimeout: 120 },
} as const;

/**
 * The references at their best for this load, as their documentation tunes them for throughput:
 * pg-boss fetches batches of 16 and fetches again at once while batches come back full;
 * graphile-worker runs 16 jobs at once from a local queue of 16 (fetched in one query) and
 * batches its completions.
 */
export const REFERENCE_OPTIONS = {
  pgboss: { batchSize: CONCURRENCY, burstWhenBatchFull: true, poolMax: WORKER_POOL_SIZE, schedule: false, supervise: false },
  graphile: {
    concurrency: CONCURRENCY,
    localQueue: { size: CONCURRENCY },
    completeJobBatchDelay: 0,
    failJobBatchDelay: 0,
    maxPoolSize: WORKER_POOL_SIZE,
  },
} as const;

/** The pg-boss queue and the graphile-worker task identifier of the reference no-op jobs. */
export const REFERENCE_QUEUE = 'bench';

/** Sizes of one configuration. */
export interface Scale {
  readonly name: 'full' | 'quick';
  /** Repetitions per figure and side. */
  readonly reps: number;
  /** Spawns timed in the spawn figures (after `spawnWarmup` untimed ones). */
  readonly spawns: number;
  readonly spawnWarmup: number;
  /** Concurrent callers of the "over a pool" spawn figure (and the size of that pool). */
  readonly spawnCallers: number;
  /** Tasks per `spawnMany` call in the bulk spawn figure. */
  readonly bulkBatch: number;
  /** Pre-spawned tasks of the end-to-end figures. */
  readonly e2eTasks: number;
  /** Completed tasks retained in the queue for the "with history" figure. */
  readonly historyTasks: number;
  /** Tasks spawned one at a time for the pick-up latency (after `latencyWarmup` untimed ones). */
  readonly latencySamples: number;
  readonly latencyWarmup: number;
  /** Waiting tasks woken one at a time for the event latency. */
  readonly eventSamples: number;
  /** Seconds of each pgbench run. */
  readonly pgbenchSeconds: number;
}

export const FULL: Scale = {
  name: 'full',
  reps: 3,
  spawns: 5000,
  spawnWarmup: 100,
  spawnCallers: 8,
  bulkBatch: 100,
  e2eTasks: 5000,
  historyTasks: 50_000,
  latencySamples: 200,
  latencyWarmup: 5,
  eventSamples: 50,
  pgbenchSeconds: 5,
};

export const QUICK: Scale = {
  name: 'quick',
  reps: 1,
  spawns: 300,
  spawnWarmup: 20,
  spawnCallers: 8,
  bulkBatch: 100,
  e2eTasks: 300,
  historyTasks: 3000,
  latencySamples: 20,
  latencyWarmup: 2,
  eventSamples: 8,
  pgbenchSeconds: 1,
};

/** The figures, in the order they run; `--only` takes these ids. */
export const FIGURES = [
  'spawn-seq',
  'spawn-pool',
  'spawn-bulk',
  'noop',
  'step3',
  'pickup',
  'event',
  'validation',
  'history',
  'tracing',
  'list-indexes',
  'flow-control',
  'pgbench',
] as const;
export type FigureId = (typeof FIGURES)[number];

/**
 * Milliseconds between one latency sample and the next: 5 ms plus a spread over one full poll
 * interval of the peer (5–55 ms), stepped evenly rather than at random, so that spawns and emits
 * land at every phase of a polling worker's cycle and no side is favoured by the timing.
 */
export function sampleGapMs(i: number): number {
  const span = Math.max(20, Math.round(WORKER_OPTIONS.peer.pollInterval * 1000));
  return 5 + ((i * 37) % (span + 1));
}
