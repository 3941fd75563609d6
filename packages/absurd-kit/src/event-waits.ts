/**
 * A run's waits on events: `ctx.awaitEvent`, and `ctx.awaitTaskResult`, which waits for the event a
 * task's end is announced with (`$taskResult:<id>`). A wait suspends the run (absurd.await_event)
 * until the event, or its timeout, wakes it; the payload becomes the wait's checkpoint.
 *
 * A task of another queue that will not announce its end to the waiting task (spawned with a
 * client, by another service or by another task) is waited for by polling in-process instead, as
 * absurd-sdk does: the run keeps its slot and lease (renewed by heartbeats) and ends in the same
 * execution. A task of the waiter's own queue always suspends the waiter, so that a worker whose
 * slots are all waiting still runs it.
 */
import { withTaskState, type CheckpointStore } from './checkpoint-store.js';
import { TimeoutError } from './errors.js';
import type { JsonValue } from './json.js';
import { unguarded } from './lease.js';
import { awaitEvent as awaitEventQuery } from './queries/events.queries.js';
import { validateQueueName } from './queue-name.js';
import { currentTime } from './queries/runs.queries.js';
import { signalForTaskState, SuspendTask } from './signals.js';
import { pollTaskResult, timeoutMs as timeoutMsOf } from './task-result-polling.js';
import {
  isFinalState,
  readAwaitedTaskResult,
  readTaskParent,
  readTaskResult,
  taskResultEvent,
  throwUnlessTaskRunning,
  type TaskResultSnapshot,
} from './task-result.js';
import type { AwaitEventOptions, ClaimedTask, ContextAwaitTaskResultOptions, RunGuard, TaskContextRuntime, TaskRef } from './types.js';

/** The event waits of one run (see the module comment); a task context holds one. */
export class EventWaits {
  readonly #runtime: TaskContextRuntime;
  readonly #task: ClaimedTask;
  readonly #checkpoints: CheckpointStore;
  readonly #heartbeat: () => Promise<void>;

  /** `heartbeat` renews the run's lease by the claim timeout (the context's `heartbeat()`). */
  constructor(runtime: TaskContextRuntime, task: ClaimedTask, checkpoints: CheckpointStore, heartbeat: () => Promise<void>) {
    this.#runtime = runtime;
    this.#task = task;
    this.#checkpoints = checkpoints;
    this.#heartbeat = heartbeat;
  }

  /**
   * Waits for `eventName` in the checkpoint named by `options.stepName` (default
   * `$awaitEvent:<eventName>`): its stored payload, the payload if the event was emitted already, or
   * a suspended run (SuspendTask) that the event, or the timeout, wakes. A wake by the timeout throws
   * TimeoutError.
   */
  async awaitEvent(eventName: string, options: AwaitEventOptions): Promise<JsonValue> {
    const timeout =
      options.timeout !== undefined && Number.isFinite(options.timeout) && options.timeout >= 0
        ? Math.floor(options.timeout)
        : null;
    const checkpointName = this.#checkpoints.nameFor(options.stepName ?? `$awaitEvent:${eventName}`);
    const cached = this.#checkpoints.get(checkpointName);
    if (cached !== undefined) return cached;
    if (this.#consumeTimeoutWake(eventName)) throw new TimeoutError(`Timed out waiting for event "${eventName}"`);
    const row = await this.#awaitEventRow(checkpointName, eventName, timeout);
    if (row.should_suspend) throw new SuspendTask();
    this.#checkpoints.remember(checkpointName, row.payload);
    this.#task.event_payload = null;
    return row.payload;
  }

  /**
   * Waits until the task ends and returns its final snapshot, checkpointed. Suspends on the event
   * its end is announced with, for at most `checkInterval` seconds at a time (a task nobody
   * announces is looked at again then), within the timeout's deadline (kept across suspends).
   */
  async awaitTaskResult(task: TaskRef, options: ContextAwaitTaskResultOptions): Promise<TaskResultSnapshot> {
    const taskID = typeof task === 'string' ? task : task.taskID;
    const queue = validateQueueName(options.queue ?? (typeof task === 'string' ? undefined : task.queue) ?? this.#runtime.queueName);
    const checkInterval = Math.max(1, Math.floor(options.checkInterval ?? 60));
    const checkpointName = this.#checkpoints.nameFor(options.stepName ?? `$awaitTaskResult:${taskID}`);
    const cached = this.#checkpoints.get(checkpointName);
    if (cached !== undefined) return cached as unknown as TaskResultSnapshot;

    if (!(await this.#announcedHere(queue, taskID))) {
      const snapshot = await this.#pollTaskResult(queue, taskID, checkpointName, options.timeout);
      await this.#checkpoints.write(checkpointName, snapshot, false);
      return snapshot;
    }
    const deadline = await this.#deadline(checkpointName, options.timeout);
    const eventName = taskResultEvent(taskID);
    for (;;) {
      // Woken by this wait's own timeout: the await_event below reports it; the next one waits again.
      this.#consumeTimeoutWake(eventName);
      const snapshot = await this.#guard.call(() => readTaskResult(this.#runtime.con, queue, taskID));
      if (!snapshot) throw new Error(`Task "${taskID}" not found in queue "${queue}"`);
      if (isFinalState(snapshot.state)) {
        await this.#checkpoints.write(checkpointName, snapshot, false);
        return snapshot;
      }
      const remaining = deadline === null ? null : Math.ceil((deadline - (await this.#dbNowMs())) / 1000);
      if (remaining !== null && remaining <= 0) {
        throw new TimeoutError(`Timed out waiting for task "${taskID}"`);
      }
      const wait = remaining === null ? checkInterval : Math.min(checkInterval, remaining);
      const row = await this.#awaitEventRow(checkpointName, eventName, wait);
      if (row.should_suspend) throw new SuspendTask();
      if (row.payload !== null) {
        this.#checkpoints.remember(checkpointName, row.payload);
        return row.payload as unknown as TaskResultSnapshot;
      }
    }
  }

  /**
   * Whether waiting for task `taskID` of `queue` may suspend this run: a task of this run's own
   * queue (looked at again every `checkInterval` when nobody announces it), or one whose
   * `absurd.parent` header names this task (`ctx.spawn`): its end is announced to this task.
   */
  async #announcedHere(queue: string, taskID: string): Promise<boolean> {
    if (queue === this.#runtime.queueName) return true;
    const parent = await this.#guard.call(() => readTaskParent(this.#runtime.con, queue, taskID));
    return parent?.queue === this.#runtime.queueName && parent.taskId === this.#task.task_id;
  }

  /**
   * Polls the task until it ends (see `task-result-polling.ts`), reading this task's own state in
   * the same statement: a cancellation, or a lease lost, ends the wait at once. Heartbeats keep
   * the lease while it lasts. A deadline stored by an earlier execution's suspended wait is kept;
   * otherwise the timeout counts from now and is not stored.
   */
  async #pollTaskResult(queue: string, taskID: string, checkpointName: string, timeout: number | undefined): Promise<TaskResultSnapshot> {
    const stored = this.#checkpoints.get(`${checkpointName}$deadline`);
    let timeoutMs = timeoutMsOf(timeout);
    if (typeof stored === 'string' && Number.isFinite(timeoutMs)) timeoutMs = Date.parse(stored) - (await this.#dbNowMs());
    const { con, queueName, claimTimeout } = this.#runtime;
    const awaited = { queueName: queue, taskID };
    const waiter = { queueName, taskID: this.#task.task_id };
    const read = () =>
      this.#guard.call(async () => {
        const { snapshot, waiterState } = await readAwaitedTaskResult(con, awaited, waiter);
        const stop = signalForTaskState(waiterState ?? undefined);
        if (stop) throw stop;
        if (!snapshot) throw new Error(`Task "${taskID}" not found in queue "${queue}"`);
        return snapshot;
      });
    // Renewed whenever a pause would end past half of the lease since the last renewal.
    let renewedAt = -Infinity;
    const beforePause = async (pauseMs: number) => {
      if (!(claimTimeout > 0) || performance.now() + pauseMs - renewedAt < (claimTimeout * 1000) / 2) return;
      const sentAt = performance.now();
      await this.#heartbeat();
      renewedAt = sentAt;
    };
    return pollTaskResult(taskID, read, { timeoutMs: Math.max(0, timeoutMs), beforePause, signal: this.#guard.signal });
  }

  /**
   * True (once) when this run was woken because its wait for `eventName` timed out: the claim
   * names the event and carries no payload. The local copy is cleared so that it is not seen again.
   */
  #consumeTimeoutWake(eventName: string): boolean {
    if (this.#task.wake_event !== eventName || this.#task.event_payload != null) return false;
    this.#task.wake_event = null;
    this.#task.event_payload = null;
    return true;
  }

  /**
   * Calls absurd.await_event. Sent again after a lost answer only while the task still runs: a
   * first call that committed unseen may have suspended the run (then this execution ends here), or
   * found the event and written the checkpoint (then the repeat returns that checkpoint).
   */
  async #awaitEventRow(checkpointName: string, eventName: string, timeout: number | null) {
    const params = { queueName: this.#runtime.queueName, taskId: this.#task.task_id, runId: this.#task.run_id, stepName: checkpointName, eventName, timeout };
    const [row] = await this.#guard.call(() => withTaskState(() => awaitEventQuery.run(params, this.#runtime.con)), {
      beforeRetry: () => this.#unlessSuspended(),
    });
    if (!row) throw new Error(`absurd.await_event returned no row for event "${eventName}"`);
    return row;
  }

  /** The absolute deadline (ms, database clock) of a timed wait; null without a timeout. */
  async #deadline(checkpointName: string, timeout: number | undefined): Promise<number | null> {
    if (timeout === undefined || timeout === Infinity) return null;
    if (!Number.isFinite(timeout) || timeout < 0) throw new Error('timeout must be a finite non-negative number');
    return this.#checkpoints.deadline(checkpointName, timeout, () => this.#dbNowMs());
  }

  /** Before a suspending statement is sent again: ends this execution if the first one suspended the run unseen. */
  #unlessSuspended(): Promise<void> {
    return throwUnlessTaskRunning(this.#runtime.con, this.#runtime.queueName, this.#task.task_id);
  }

  get #guard(): RunGuard {
    return this.#runtime.guard ?? unguarded;
  }

  async #dbNowMs(): Promise<number> {
    const [row] = await this.#guard.call(() => currentTime.run(undefined, this.#runtime.con));
    if (!row) throw new Error("the engine's clock (current_time) returned no row");
    return new Date(row.now).getTime();
  }
}
