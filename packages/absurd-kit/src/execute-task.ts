/**
 * Executing one claimed run: its context, its handler, and its end (completed, failed, suspended,
 * cancelled, or deferred when no handler is registered for it), with the lease timers around it.
 */
import { errorLine } from './errors.js';
import { toJsonParam } from './json.js';
import { wakeChannel } from './notify.js';
import { notifyQueue } from './queries/notifications.queries.js';
import { failRun as failRunQuery, failTask, scheduleRunAfter } from './queries/runs.queries.js';
import type { Queryable } from './queryable.js';
import type { Registration } from './registration.js';
import { CancelledTask, isControlFlowSignal, signalFromDatabaseError, signalFromOutcome, SuspendTask } from './signals.js';
import { runWithContext } from './current-context.js';
import { failureLogLine, isPermanentFailure, serializeError } from './run-failure.js';
import { TaskContext } from './task-context.js';
import { sendEvent } from './emit-event.js';
import { isFinalState, parentFromHeaders, readTaskResult, taskResultEvent } from './task-result.js';
import type { ClaimedTask, ExecuteOptions, Log, TaskContextRuntime } from './types.js';
import { parseWith } from './validation.js';

/** What {@link executeClaimedTask} needs from the client. */
export interface ExecutionHost {
  con: Queryable;
  queueName: string;
  log: Log;
  registration(name: string): Registration | undefined;
  /** Completes a run with its result (JSON text); resolves with `completed` or the run's state. */
  completeRun(runID: string, result: string): Promise<string>;
  wrapTaskExecution?: (<T>(ctx: TaskContext, execute: () => Promise<T>) => Promise<T>) | undefined;
  contextRuntime(
    claimTimeout: number,
    onLeaseExtended: (seconds: number) => void,
    registration: Registration | undefined,
  ): TaskContextRuntime;
}

/**
 * Runs one claimed run to its end: builds the context (checkpoints preloaded), runs the handler,
 * and completes or fails the run. Suspends, cancellations and runs that already failed end quietly.
 * Unknown task names are deferred 15–30 s instead of failed (deploy workers before producers).
 * A task with a parent announces its end to the parent's queue.
 *
 * Lease timers: a warning when the run outlives its lease, and with `fatalOnLeaseTimeout` a process
 * exit at twice the lease (another worker has taken the run over by then). Checkpoint writes and
 * heartbeats reset them.
 */
export async function executeClaimedTask(
  host: ExecutionHost,
  task: ClaimedTask,
  claimTimeout: number,
  options: ExecuteOptions = {},
): Promise<void> {
  const { log } = host;
  const handlerSettled = () => options.onHandlerSettled?.();
  // One timer at a time: the warning when the lease runs out, then (with fatalOnLeaseTimeout) the
  // exit one lease later. A checkpoint write or heartbeat starts the chain again.
  let leaseTimer: NodeJS.Timeout | undefined;
  const clearTimers = () => clearTimeout(leaseTimer);
  const scheduleLeaseTimers = (lease: number) => {
    clearTimeout(leaseTimer);
    if (!(lease > 0)) return;
    leaseTimer = setTimeout(() => {
      const label = `task ${task.task_name} (${task.task_id})`;
      log.warn(`${label} exceeded claim timeout of ${lease}s`);
      if (!options.fatalOnLeaseTimeout) return;
      leaseTimer = setTimeout(() => {
        log.error(`${label} exceeded claim timeout of ${lease}s by more than 100%; terminating process`);
        process.exit(1);
      }, lease * 1000);
    }, lease * 1000);
  };

  scheduleLeaseTimers(claimTimeout);
  try {
    const registration = host.registration(task.task_name);
    const ctx = await TaskContext.create(host.contextRuntime(claimTimeout, scheduleLeaseTimers, registration), task);
    if (!registration) {
      handlerSettled();
      await deferUnknownTask(host, task);
      return;
    }
    if (registration.queue !== host.queueName) throw new Error('Misconfigured task (queue mismatch)');
    const contract = registration.contract;
    const execute = async () => {
      // Stored params are checked again: the producer may be psql, another language or an old deploy.
      const params = contract
        ? await parseWith(contract.params, task.params, { subject: contract.name, boundary: 'params', retryable: false })
        : task.params;
      const result = await registration.handler(params as never, ctx);
      if (contract) {
        await parseWith(contract.result, result, { subject: contract.name, boundary: 'result', retryable: false });
      }
      handlerSettled();
      await completeRun(host, task, result);
      return result;
    };
    const wrap = host.wrapTaskExecution;
    await runWithContext(ctx, () => (wrap ? wrap(ctx, execute) : execute()));
  } catch (error) {
    handlerSettled();
    if (error instanceof SuspendTask) {
      await wakeIdleWorkers(host);
      return;
    }
    // Cancelled under this worker: the task has ended, so a waiting parent is told now rather
    // than at its next check.
    if (error instanceof CancelledTask) {
      await announceEnd(host, task);
      return;
    }
    if (isControlFlowSignal(error)) return;
    await failRun(host, task, error);
  } finally {
    clearTimers();
  }
}

async function completeRun(host: ExecutionHost, task: ClaimedTask, result: unknown): Promise<void> {
  const outcome = await host.completeRun(task.run_id, toJsonParam(result ?? null) ?? 'null');
  if (outcome !== 'completed') {
    // What absurd.complete_run would have raised for this run.
    const signal = signalFromOutcome(outcome);
    if (signal) throw signal;
    if (outcome === 'not_found') throw new Error(`Run "${task.run_id}" not found in queue "${host.queueName}"`);
    throw new Error(`Run "${task.run_id}" is not currently running in queue "${host.queueName}"`);
  }
  await announceEnd(host, task);
}

/**
 * Logs the failure (one line) and fails the run (retry rules apply; a permanent failure fails the
 * task without retry); a run already cancelled or failed (AB001/AB002) is left as it is.
 */
export async function failRun(host: ExecutionHost, task: ClaimedTask, error: unknown): Promise<void> {
  const { level, line } = failureLogLine(task, error);
  host.log[level](line);
  try {
    const reason = toJsonParam(serializeError(error));
    const failure = { queueName: host.queueName, runId: task.run_id, reason };
    if (isPermanentFailure(error)) await failTask.run(failure, host.con);
    else await failRunQuery.run({ ...failure, retryAt: null }, host.con);
  } catch (failError) {
    if (isControlFlowSignal(signalFromDatabaseError(failError))) return;
    throw failError;
  }
  await wakeIdleWorkers(host);
  await announceEnd(host, task);
}

/**
 * Tells the queue's idle workers that a run now waits for a time (a sleep, a timed wait, a retry
 * backoff), so that they work out again when to look next. Without it, a worker idling with a long
 * poll interval would not know of a run that another, busy worker put to sleep. Best effort.
 */
async function wakeIdleWorkers(host: ExecutionHost): Promise<void> {
  await notifyQueue.run({ channel: wakeChannel(host.queueName) }, host.con).catch(() => undefined);
}

async function deferUnknownTask(host: ExecutionHost, task: ClaimedTask): Promise<void> {
  const delay = 15 + deferJitter(task.run_id);
  try {
    await scheduleRunAfter.run({ queueName: host.queueName, runId: task.run_id, seconds: delay }, host.con);
    host.log.warn(`claimed unknown task "${task.task_name}" (${task.task_id}); deferred run ${task.run_id} by ${delay}s`);
  } catch (deferError) {
    await failRun(host, task, deferError);
    return;
  }
  await wakeIdleWorkers(host);
}

/** A deterministic 0–15 from the run id (FNV-1a), so that deferred runs spread out. */
export function deferJitter(runID: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < runID.length; i++) {
    hash ^= runID.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return Math.abs(hash) % 16;
}

/**
 * When a task spawned by a parent ends, emits the parent's wake-up event with the final snapshot.
 * Best effort: the parent also checks on its own, so a failure here is only logged.
 */
async function announceEnd(host: ExecutionHost, task: ClaimedTask): Promise<void> {
  const parent = parentFromHeaders(task.headers);
  if (!parent) return;
  try {
    const snapshot = await readTaskResult(host.con, host.queueName, task.task_id);
    if (!snapshot || !isFinalState(snapshot.state)) return;
    await sendEvent(host.con, parent.queue, taskResultEvent(task.task_id), snapshot);
  } catch (error) {
    host.log.warn(`task "${task.task_name}" run ${task.run_id}: could not tell parent task ${parent.taskId} that it ended: ${errorLine(error)}`);
  }
}
