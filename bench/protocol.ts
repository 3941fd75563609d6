/**
 * Messages between the orchestrator and its child processes (one worker or one producing client
 * each), over the IPC channel of `child_process.fork`.
 */
import type { Runner } from './settings.js';

/** What a child is told at start (JSON in the `ABSURD_BENCH_CHILD` environment variable). */
export interface ChildInit {
  side: Runner;
  /** A worker runs `startWorker`; a client spawns and emits. */
  role: 'worker' | 'client';
  url: string;
  poolSize: number;
  /** The three-step task registered by contract (ours only) or by name. */
  variant: 'untyped' | 'typed';
  /** Send a notice when a handler starts and when an event wait returns (latency figures). */
  reportTasks: boolean;
  /** Register the OpenTelemetry SDK before the client is made (ours only; the `tracing` figure). */
  tracing?: boolean;
}

export type Request =
  /**
   * Spawns `warmup` no-op tasks untimed, then `total` timed, from `callers` concurrent callers; with
   * `batch`, in `spawnMany` calls of that many tasks each.
   */
  | { op: 'spawnLoad'; total: number; warmup: number; callers: number; batch?: number }
  | { op: 'spawnOne'; task: string; i: number }
  | { op: 'emit'; event: string; i: number }
  /** Starts the worker; a `drained` notice follows when `expected` (> 0) handlers have returned. */
  | { op: 'startWorker'; expected: number }
  /** Closes the worker/client and the pool, replies, then exits. */
  | { op: 'stop' };

export interface SpawnLoadReply {
  seconds: number;
}
/** `at`: wall-clock milliseconds (`performance.timeOrigin + performance.now()`). */
export interface SpawnOneReply {
  taskID: string;
  at: number;
}
export interface EmitReply {
  at: number;
}
export interface StopReply {
  /** Peak resident set size of the process (VmHWM), in kB. */
  peakRssKb: number;
}

export type Notice =
  | { notice: 'ready' }
  | { notice: 'start'; i: number; at: number }
  | { notice: 'resumed'; i: number; at: number }
  /**
   * `firstStartAt`: when the first handler started (wall clock); `workerCpuMs`: the CPU time (user
   * and system) the process spent from then until the last handler returned.
   */
  | { notice: 'drained'; count: number; firstStartAt: number; workerCpuMs: number }
  | { notice: 'fatal'; message: string };

export type ToChild = { id: number; request: Request };
export type FromChild = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string } | Notice;

/** The clock every child and the orchestrator stamp events with: wall-clock ms, sub-ms resolution. */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}
