/**
 * A chaos worker: a process of its own running the runtime from its sources (through tsx), which
 * the chaos test kills, freezes and runs through database restarts.
 *
 * Its task `chaos` runs `steps` steps with a pause between them (code outside any step, where a
 * frozen process resumes and would begin the next step) and sleeps once in the middle. Every step
 * body appends a line to the worker's journal when it begins — outside any transaction, so that a
 * step run twice shows twice however its checkpoint fared: `{"task","run","step","t","w"}` with `t`
 * the wall clock in ms. Log lines go to stdout as JSON: `{"level","msg"}`.
 *
 * Environment: CHAOS_URL, CHAOS_QUEUE, CHAOS_WORKER_ID, CHAOS_JOURNAL (file), CHAOS_CLAIM_TIMEOUT
 * (seconds), CHAOS_CONCURRENCY. Prints `ready` once the worker runs.
 */
import { appendFileSync } from 'node:fs';
import { Absurd } from '../../packages/absurd-kit/src/index.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
};
const workerId = env('CHAOS_WORKER_ID');
const journal = env('CHAOS_JOURNAL');

const line = (level: string) => (...args: unknown[]) => {
  process.stdout.write(`${JSON.stringify({ level, msg: args.map(String).join(' ') })}\n`);
};
const log = { log: line('log'), info: line('info'), warn: line('warn'), error: line('error') };

/** What the test spawns. */
export interface ChaosParams {
  steps: number;
  stepMs: number;
  gapMs: number;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const app = new Absurd({ db: env('CHAOS_URL'), queueName: env('CHAOS_QUEUE'), log });
app.registerTask({ name: 'chaos' }, async (params: ChaosParams, ctx) => {
  const done: number[] = [];
  for (let i = 1; i <= params.steps; i++) {
    const step = `s${i}`;
    done.push(
      await ctx.step(step, async () => {
        appendFileSync(journal, `${JSON.stringify({ task: ctx.taskID, run: ctx.runID, step, t: Date.now(), w: workerId })}\n`);
        await pause(params.stepMs);
        return i;
      }),
    );
    await pause(params.gapMs);
    if (i === Math.ceil(params.steps / 2)) await ctx.sleepFor('nap', 0.2);
  }
  return { done };
});

await app.startWorker({
  workerId,
  claimTimeout: Number(env('CHAOS_CLAIM_TIMEOUT')),
  concurrency: Number(env('CHAOS_CONCURRENCY')),
  pollInterval: 0.05,
});
process.stdout.write('ready\n');
