/**
 * How long a test of a long-lived workflow takes with `@absurd-kit/cli/testing`: a task that sleeps
 * 30 days, then fails 5 times and is retried with exponential backoff (60 s, 120 s, … 960 s), then
 * completes — driven once with explicit `advance` calls and once with `runUntilIdle({ skipTime })`.
 * Prints the median and range over the repetitions, per phase.
 *
 *   npx tsx bench/testing-time-skip.ts            10 repetitions of each way
 *   npx tsx bench/testing-time-skip.ts --reps 30
 *
 * Server: ABSURD_TEST_DATABASE_URL, otherwise the embedded PostgreSQL (started once, not timed).
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { createTestEnvironment, startTestServer, type TestEnvironment } from '@absurd-kit/cli/testing';

const { values } = parseArgs({ options: { reps: { type: 'string', default: '10' } } });
const reps = Number(values.reps);

const DAY = 86_400;
const BACKOFFS = [60, 120, 240, 480, 960];

/** Registers the workflow and spawns one task of it; returns its id. */
async function spawnRenewal(t: TestEnvironment): Promise<string> {
  const app = await t.client('renewals');
  app.registerTask({ name: 'renew-subscription' }, async (_params, ctx) => {
    await ctx.sleepFor('grace period', 30 * DAY);
    return ctx.step('charge', () => {
      if (ctx.attempt <= BACKOFFS.length) throw new Error(`card declined (attempt ${ctx.attempt})`);
      return { chargedOnAttempt: ctx.attempt };
    });
  });
  const { taskID } = await app.spawn('renew-subscription', null, {
    maxAttempts: BACKOFFS.length + 1,
    retryStrategy: { kind: 'exponential', baseSeconds: 60, factor: 2 },
  });
  return taskID;
}

async function explicitAdvances(t: TestEnvironment): Promise<number> {
  let runs = (await t.runUntilIdle()).length;
  await t.advance('30 days');
  runs += (await t.runUntilIdle()).length;
  for (const seconds of BACKOFFS) {
    await t.advance(seconds);
    runs += (await t.runUntilIdle()).length;
  }
  return runs;
}

async function skippedTime(t: TestEnvironment): Promise<number> {
  return (await t.runUntilIdle({ skipTime: '60 days' })).length;
}

interface Sample {
  setup: number;
  workflow: number;
  total: number;
}

async function measure(drive: (t: TestEnvironment) => Promise<number>): Promise<Sample> {
  const started = performance.now();
  const t = await createTestEnvironment({ now: '2030-01-01T00:00:00Z' });
  try {
    const ready = performance.now();
    const taskID = await spawnRenewal(t);
    const runs = await drive(t);
    const done = performance.now();
    const task = await t.inspect(taskID);
    if (task.state !== 'completed' || task.attempts !== 6 || runs !== 7) {
      throw new Error(`unexpected end: ${task.state} after ${task.attempts} attempts and ${runs} runs`);
    }
    return { setup: ready - started, workflow: done - ready, total: done - started };
  } finally {
    await t.close();
  }
}

function summary(label: string, samples: readonly number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)] ?? NaN;
  return `${label.padEnd(52)} median ${median.toFixed(1).padStart(7)} ms   (${sorted[0]?.toFixed(1)}–${sorted.at(-1)?.toFixed(1)})`;
}

const server = await startTestServer({ containers: false });
try {
  // One untimed round warms up the template and the modules.
  await measure(explicitAdvances);
  for (const [name, drive] of [
    ['explicit advance', explicitAdvances],
    ['runUntilIdle({ skipTime })', skippedTime],
  ] as const) {
    const samples: Sample[] = [];
    for (let i = 0; i < reps; i++) samples.push(await measure(drive));
    console.log(`${name}: 30-day sleep + 5 retries with exponential backoff, ${reps} repetitions (${server.source} server)`);
    console.log(summary('  fresh database + connection + clock', samples.map((s) => s.setup)));
    console.log(summary('  spawn → completed (7 runs, 36 days of fake time)', samples.map((s) => s.workflow)));
    console.log(summary('  both', samples.map((s) => s.total)));
  }
} finally {
  await server.stop();
}
