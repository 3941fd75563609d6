/**
 * The body of a child process, shared by both sides: it opens the pool, lets the side's client
 * register the instrumented task handlers, and answers the orchestrator's requests. Only
 * `makeClient` differs between `worker-ours.ts` and `worker-peer.ts`.
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import type { ChildInit, FromChild, Request, StopReply, ToChild } from './protocol.js';
import { wallClockMs } from './protocol.js';
import { TASK } from './settings.js';
import { eventTask, noopTask, threeStepTask, type BenchContext, type BenchParams } from './tasks.js';

/** The handlers a side registers (under the names of {@link TASK}). */
export interface BenchHandlers {
  noop(params: BenchParams, ctx: BenchContext): Promise<unknown>;
  steps(params: BenchParams, ctx: BenchContext): Promise<unknown>;
  event(params: BenchParams, ctx: BenchContext): Promise<unknown>;
}

/** What a side provides: its client, set up on the pool with the handlers registered. */
export interface SideClient {
  spawn(task: string, params: BenchParams): Promise<string>;
  /** Many spawns in one call (ours only). */
  spawnMany?(task: string, params: BenchParams[]): Promise<string[]>;
  emit(event: string, payload: BenchParams): Promise<void>;
  startWorker(): Promise<unknown>;
  /** Stops the worker (waiting for runs in flight) and releases the client; not the pool. */
  close(): Promise<void>;
}

/** Log for both clients: quiet, but warnings and errors reach stderr. */
export const benchLog = {
  log() {},
  info() {},
  warn: (...args: unknown[]) => console.error('[bench child]', ...args),
  error: (...args: unknown[]) => console.error('[bench child]', ...args),
};

export function runChild(
  makeClient: (pool: pg.Pool, handlers: BenchHandlers, init: ChildInit) => SideClient | Promise<SideClient>,
): void {
  const send = (message: FromChild) => process.send?.(message);
  const fail = (error: unknown) => {
    send({ notice: 'fatal', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    setTimeout(() => process.exit(1), 50);
  };
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
  // The orchestrator went away (interrupted, crashed): nothing is left to report to.
  process.on('disconnect', () => process.exit(0));
  main(makeClient, send).catch(fail);
}

async function main(
  makeClient: (pool: pg.Pool, handlers: BenchHandlers, init: ChildInit) => SideClient | Promise<SideClient>,
  send: (message: FromChild) => void,
): Promise<void> {
  const init = JSON.parse(process.env.ABSURD_BENCH_CHILD ?? 'null') as ChildInit | null;
  if (!init) throw new Error('ABSURD_BENCH_CHILD is not set: this file is started by bench/run.ts');
  const pool = new pg.Pool({ connectionString: init.url, max: init.poolSize });
  pool.on('error', () => {});
  // Open every connection now, so that no figure times connection set-up.
  const clients = await Promise.all(Array.from({ length: init.poolSize }, () => pool.connect()));
  for (const client of clients) client.release();

  // Handler returns to count before the `drained` notice (none when not positive).
  let expected = 0;
  let finished = 0;
  let firstStartAt = NaN;
  let cpuAtFirstStart: NodeJS.CpuUsage | undefined;
  const started = (i: number) => {
    if (Number.isNaN(firstStartAt)) {
      firstStartAt = wallClockMs();
      cpuAtFirstStart = process.cpuUsage();
    }
    if (init.reportTasks) send({ notice: 'start', i, at: wallClockMs() });
  };
  const drainedNotice = (): void => {
    const used = process.cpuUsage(cpuAtFirstStart);
    send({ notice: 'drained', count: finished, firstStartAt, workerCpuMs: (used.user + used.system) / 1000 });
  };
  const done = <T>(value: T): T => {
    finished += 1;
    if (expected > 0 && finished === expected) drainedNotice();
    return value;
  };
  const onResumed = (i: number) => {
    if (init.reportTasks) send({ notice: 'resumed', i, at: wallClockMs() });
  };
  const handlers: BenchHandlers = {
    noop: async (params, ctx) => {
      started(params.i);
      return done(await noopTask(params, ctx));
    },
    steps: async (params, ctx) => {
      started(params.i);
      return done(await threeStepTask(params, ctx));
    },
    event: async (params, ctx) => {
      started(params.i);
      return done(await eventTask(params, ctx, onResumed));
    },
  };
  const client = await makeClient(pool, handlers, init);
  let spawned = 0;

  const handle = async (request: Request): Promise<unknown> => {
    switch (request.op) {
      case 'spawnLoad': {
        const batch = request.batch ?? 1;
        if (batch > 1 && !client.spawnMany) throw new Error(`${init.side} has no spawnMany`);
        const load = async (count: number) => {
          let issued = 0;
          await Promise.all(
            Array.from({ length: request.callers }, async () => {
              while (issued < count) {
                if (batch > 1) {
                  const n = Math.min(batch, count - issued);
                  issued += n;
                  await client.spawnMany!(TASK.noop, Array.from({ length: n }, () => ({ i: spawned++ })));
                } else {
                  issued += 1;
                  await client.spawn(TASK.noop, { i: spawned++ });
                }
              }
            }),
          );
        };
        await load(request.warmup);
        const t0 = performance.now();
        await load(request.total);
        return { seconds: (performance.now() - t0) / 1000 };
      }
      case 'spawnOne': {
        const taskID = await client.spawn(request.task, { i: request.i });
        return { taskID, at: wallClockMs() };
      }
      case 'emit': {
        await client.emit(request.event, { i: request.i });
        return { at: wallClockMs() };
      }
      case 'startWorker':
        expected = request.expected;
        await client.startWorker();
        if (expected > 0 && finished >= expected) drainedNotice();
        return null;
      case 'stop': {
        await client.close();
        await pool.end();
        return { peakRssKb: peakRssKb() } satisfies StopReply;
      }
    }
  };

  process.on('message', (message: ToChild) => {
    handle(message.request).then(
      (value) => {
        send({ id: message.id, ok: true, value });
        if (message.request.op === 'stop') {
          process.disconnect?.();
          setTimeout(() => process.exit(0), 20).unref();
        }
      },
      (error: unknown) => send({ id: message.id, ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
    );
  });
  send({ notice: 'ready' });
}

/** VmHWM from /proc (Linux), else the peak Node reports; in kB. */
function peakRssKb(): number {
  try {
    const match = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (match?.[1]) return Number(match[1]);
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS;
}
