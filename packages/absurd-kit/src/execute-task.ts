/**
 * Executing one claimed run: its context, its handler, and its end (completed, failed, suspended,
 * cancelled, lost with its lease, or deferred when no handler is registered for it), under the
 * run's lease (`lease.ts`).
 */
import { performance } from 'node:perf_hooks';
import { errorLine } from './errors.js';
import { toJsonParam } from './json.js';
import { wakeChannel } from './notify.js';
import { announceEnd as announceEndQuery } from './queries/events.queries.js';
import { notifyQueue } from './queries/notifications.queries.js';
import { failRun as failRunQuery, failRunAndCancelTask, failTask, scheduleRunAfter } from './queries/runs.queries.js';
import type { Queryable } from './queryable.js';
import type { Registration } from './registration.js';
import { RunLease, unguarded } from './lease.js';
import type { OutageMonitor } from './outage.js';
import {
  CancelledTask,
  FailedTask,
  isControlFlowSignal,
  signalFromDatabaseError,
  signalFromOutcome,
  SuspendTask,
} from './signals.js';
import { runWithContext } from './current-context.js';
import { failureLogLine, isPermanentFailure, serializeError } from './run-failure.js';
import { TaskContext } from './task-context.js';
import { sendEvent } from './emit-event.js';
import { isFinalState, parentFromHeaders, readTaskResult, taskResultEvent, throwUnlessTaskRunning } from './task-result.js';
import type { ClaimedTask, EngineFeatures, ExecuteOptions, Log, RunGuard, RunTrace, TaskContextRuntime } from './types.js';
import { telemetryFor } from './telemetry.js';
import { failureReason } from './telemetry-metrics.js';
import { ATTR, type RunOutcome } from './telemetry-attributes.js';
import { RunSpans } from './telemetry-tracing.js';
import { parseWith } from './validation.js';

/** What {@link executeClaimedTask} needs from the client. */
export interface ExecutionHost {
  con: Queryable;
  queueName: string;
  log: Log;
  /** What the engine has: decides how a run fails without retry, and whether idle workers are told of suspends. */
  features: EngineFeatures;
  registration(name: string): Registration | undefined;
  /** Completes a run with its result (JSON text); resolves with `completed` or the run's state. */
  completeRun(runID: string, result: string): Promise<string>;
  wrapTaskExecution?: (<T>(ctx: TaskContext, execute: () => Promise<T>) => Promise<T>) | undefined;
  /** The client's view of its database; connection failures of runs are reported to it. */
  outage?: OutageMonitor | undefined;
  /** Whether runs make spans and metrics (when an OpenTelemetry SDK is registered); default false. */
  telemetry?: boolean | undefined;
  contextRuntime(
    claimTimeout: number,
    guard: RunGuard,
    registration: Registration | undefined,
    trace?: RunTrace | undefined,
  ): TaskContextRuntime;
}

/** How a run ended, filled in by {@link executeRun} for the run's span and metrics. */
interface RunEnd {
  outcome: RunOutcome;
  /** The error a failed or cancelled run ended with. */
  error?: unknown;
}

/**
 * Runs one claimed run to its end: builds the context (checkpoints preloaded), runs the handler,
 * and completes or fails the run. Suspends, cancellations and runs that already failed end quietly.
 * Unknown task names are deferred 15–30 s instead of failed (deploy workers before producers).
 * A task with a parent announces its end to the parent's queue.
 *
 * The run's lease (claim or last renewal + its length) is tracked: every statement of the run that
 * fails on its connection is sent again once the database is back, while the lease lasts. When the
 * lease runs out, one warning is logged, `ctx.signal` fires, and the run stops as lost: no new step,
 * no suspension, no failure written (another worker takes it over). With `fatalOnLeaseTimeout` the
 * process exits at twice the lease.
 */
export async function executeClaimedTask(
  host: ExecutionHost,
  task: ClaimedTask,
  claimTimeout: number,
  options: ExecuteOptions = {},
): Promise<void> {
  const telemetry = await telemetryFor(host.telemetry ?? false);
  if (!telemetry) return executeRun(host, task, claimTimeout, options, { outcome: 'completed' }, undefined);
  const startedAt = performance.now();
  const end: RunEnd = { outcome: 'completed' };
  const tracing = telemetry.tracing;
  const run = tracing?.startRun(task, host.queueName);
  const trace = tracing && run ? new RunSpans(tracing, run.context, host.queueName) : undefined;
  try {
    await (tracing && run
      ? tracing.withContext(run.context, () => executeRun(host, task, claimTimeout, options, end, trace))
      : executeRun(host, task, claimTimeout, options, end, undefined));
  } catch (error) {
    end.outcome = 'failed';
    end.error ??= error;
    throw error;
  } finally {
    if (run && tracing) {
      run.span.setAttribute(ATTR.outcome, end.outcome);
      if (end.error !== undefined) tracing.recordError(run.span, end.error);
      else if (end.outcome === 'failed') tracing.setError(run.span, 'run failed');
      run.span.end();
    }
    const reason = end.outcome === 'failed' || end.outcome === 'cancelled' ? failureReason(end.outcome === 'cancelled' ? new CancelledTask() : end.error) : undefined;
    telemetry.metrics?.runEnded(host.queueName, task.task_name, end.outcome, (performance.now() - startedAt) / 1000, reason);
  }
}

/** {@link executeClaimedTask} itself; says in `end` how the run ended. */
async function executeRun(
  host: ExecutionHost,
  task: ClaimedTask,
  claimTimeout: number,
  options: ExecuteOptions,
  end: RunEnd,
  trace: RunTrace | undefined,
): Promise<void> {
  const handlerSettled = () => options.onHandlerSettled?.();
  const lease = new RunLease({
    runID: task.run_id,
    claimTimeout,
    claimedAt: options.claimedAt,
    label: `task ${task.task_name} (${task.task_id})`,
    log: host.log,
    outage: host.outage,
    fatalOnLeaseTimeout: options.fatalOnLeaseTimeout,
    workerSignal: options.workerSignal,
  });
  try {
    const registration = host.registration(task.task_name);
    const ctx = await TaskContext.create(host.contextRuntime(claimTimeout, lease, registration, trace), task);
    if (!registration) {
      handlerSettled();
      end.outcome = 'deferred';
      await deferUnknownTask(host, task, lease, end);
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
      await completeRun(host, task, result, lease);
      return result;
    };
    const wrap = host.wrapTaskExecution;
    await runWithContext(ctx, () => (wrap ? wrap(ctx, execute) : execute()));
  } catch (error) {
    handlerSettled();
    if (error instanceof SuspendTask) {
      end.outcome = 'suspended';
      await wakeIdleWorkers(host);
      return;
    }
    // Cancelled under this worker: the task has ended, so a waiting parent is told now rather
    // than at its next check.
    if (error instanceof CancelledTask || lease.signal.reason instanceof CancelledTask) {
      end.outcome = 'cancelled';
      await announceEnd(host, task);
      return;
    }
    end.outcome = 'lost';
    if (isControlFlowSignal(error)) return;
    // The run had to stop before the handler failed (its lease ran out, the worker was closed):
    // it is not this worker's to fail any more, and the failure may only be the stop itself.
    if (lease.lost || lease.signal.aborted) return;
    end.outcome = 'failed';
    end.error = error;
    await failRun(host, task, error, lease);
  } finally {
    lease.end();
  }
}

/**
 * Completes the run, sending the completion again after a lost answer while the lease lasts: a
 * completion that committed unseen is reported as `completed` by the repeat (kit_complete_runs
 * reports a completed run's state; where Absurd's complete_run refuses the repeat instead, the
 * task's state says it). Offered once even when the run had to stop: the engine completes it only
 * while it is still running under this claim, and refuses it once swept.
 */
async function completeRun(host: ExecutionHost, task: ClaimedTask, result: unknown, lease: RunGuard): Promise<void> {
  const text = toJsonParam(result ?? null) ?? 'null';
  let repeated = false;
  let outcome: string;
  try {
    outcome = await lease.call(() => host.completeRun(task.run_id, text), {
      evenIfStopped: true,
      beforeRetry: async () => {
        repeated = true;
      },
    });
  } catch (error) {
    if (!repeated || (await readTaskResult(host.con, host.queueName, task.task_id))?.state !== 'completed') throw error;
    outcome = 'completed';
  }
  if (outcome !== 'completed') {
    // What absurd.complete_run would have raised for this run.
    const signal = signalFromOutcome(outcome);
    if (signal) throw signal;
    if (outcome === 'not_found') throw new Error(`Run "${task.run_id}" not found in queue "${host.queueName}"`);
    throw new Error(`Run "${task.run_id}" is not currently running in queue "${host.queueName}"`);
  }
  // kit_complete_runs (migration 000014) announced it in the completion's own transaction.
  if (host.features.batchedCompletions && host.features.completionsAnnounced) return;
  await announceEnd(host, task);
}

/**
 * Logs the failure (one line) and fails the run (retry rules apply; a permanent failure fails the
 * task without retry); a run already cancelled or failed (AB001/AB002) is left as it is. The
 * failure is sent again after a lost answer while the lease lasts; a repeat of one that committed
 * unseen finds the run failed (AB002), which counts as done.
 *
 * Absurd's contract cannot fail a task without retry: there a permanent failure fails the run and
 * cancels the task in the same transaction (the retry fail_run scheduled never starts), so the task
 * ends `cancelled`, its run `failed` with the reason, unless its attempts were used up anyway.
 */
export async function failRun(host: ExecutionHost, task: ClaimedTask, error: unknown, lease: RunGuard = unguarded): Promise<void> {
  const permanent = isPermanentFailure(error);
  const { level, line } = failureLogLine(task, error);
  const cancels = permanent && !host.features.failWithoutRetry && (task.max_attempts === null || task.attempt < task.max_attempts);
  host.log[level](cancels ? `${line}; its task is cancelled` : line);
  let repeated = false;
  try {
    const reason = toJsonParam(serializeError(error));
    const failure = { queueName: host.queueName, runId: task.run_id, reason };
    const send = (): Promise<unknown> => {
      if (!permanent) return failRunQuery.run({ ...failure, retryAt: null }, host.con);
      if (host.features.failWithoutRetry) return failTask.run(failure, host.con);
      return failRunAndCancelTask.run({ ...failure, taskId: task.task_id }, host.con);
    };
    await lease.call<unknown>(send, {
      beforeRetry: async () => {
        repeated = true;
      },
    });
  } catch (failError) {
    const signal = signalFromDatabaseError(failError);
    // A repeat that finds the run failed (AB002, not a lost lease): the first attempt committed unseen.
    const doneUnseen = repeated && signal !== failError && signal instanceof FailedTask;
    if (!doneUnseen) {
      if (isControlFlowSignal(signal)) return;
      throw failError;
    }
  }
  await wakeIdleWorkers(host);
  await announceEnd(host, task);
}

/**
 * Tells the queue's idle workers that a run now waits for a time (a sleep, a timed wait, a retry
 * backoff), so that they work out again when to look next. Without it, a worker idling with a long
 * poll interval would not know of a run that another, busy worker put to sleep. Best effort; not
 * sent where workers do not listen (an engine without absurd-kit's additions).
 */
async function wakeIdleWorkers(host: ExecutionHost): Promise<void> {
  if (!host.features.wakeups) return;
  await notifyQueue.run({ channel: wakeChannel(host.queueName) }, host.con).catch(() => undefined);
}

async function deferUnknownTask(host: ExecutionHost, task: ClaimedTask, lease: RunGuard, end: RunEnd): Promise<void> {
  const delay = 15 + deferJitter(task.run_id);
  try {
    const params = { queueName: host.queueName, runId: task.run_id, seconds: delay };
    await lease.call(() => scheduleRunAfter.run(params, host.con), {
      beforeRetry: () => throwUnlessTaskRunning(host.con, host.queueName, task.task_id),
    });
  } catch (deferError) {
    // SuspendTask: a first attempt whose answer was lost did defer the run.
    if (!(deferError instanceof SuspendTask)) {
      if (!isControlFlowSignal(deferError)) {
        end.outcome = 'failed';
        end.error = deferError;
        await failRun(host, task, deferError, lease);
      }
      return;
    }
  }
  host.log.warn(`claimed unknown task "${task.task_name}" (${task.task_id}); deferred run ${task.run_id} by ${delay}s`);
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
    // The engine reads the snapshot and emits it in one statement where it can (migration 000014).
    if (host.features.completionsAnnounced) {
      await announceEndQuery.run({ queueName: host.queueName, taskId: task.task_id }, host.con);
      return;
    }
    const snapshot = await readTaskResult(host.con, host.queueName, task.task_id);
    if (!snapshot || !isFinalState(snapshot.state)) return;
    await sendEvent(host.con, parent.queue, taskResultEvent(task.task_id), snapshot, host.features.eventWakeups);
  } catch (error) {
    host.log.warn(`task "${task.task_name}" run ${task.run_id}: could not tell parent task ${parent.taskId} that it ended: ${errorLine(error)}`);
  }
}
