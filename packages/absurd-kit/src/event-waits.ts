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
import { awaitEvent as awaitEventQuery, awaitEvents as awaitEventsQuery } from './queries/events.queries.js';
import { validateQueueName } from './queue-name.js';
import { currentTime, scheduleRunAfter } from './queries/runs.queries.js';
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
import { WaitGroup, type GroupRow } from './wait-group.js';
import type { AwaitEventOptions, ClaimedTask, ContextAwaitTaskResultOptions, RunGuard, TaskContextRuntime, TaskRef, WaitResume } from './types.js';

/** The event waits of one run (see the module comment); a task context holds one. */
export class EventWaits {
  readonly #runtime: TaskContextRuntime;
  readonly #task: ClaimedTask;
  readonly #checkpoints: CheckpointStore;
  readonly #heartbeat: () => Promise<void>;
  /** The waits of this execution that start together (see `wait-group.ts`); sleeps count in too. */
  readonly group: WaitGroup;
  /** Tasks this execution spawned with `ctx.spawn` (`<queue> <task id>`): they announce their end here. */
  readonly #children = new Set<string>();

  /** `heartbeat` renews the run's lease by the claim timeout (the context's `heartbeat()`). */
  constructor(runtime: TaskContextRuntime, task: ClaimedTask, checkpoints: CheckpointStore, heartbeat: () => Promise<void>) {
    this.#runtime = runtime;
    this.#task = task;
    this.#checkpoints = checkpoints;
    this.#heartbeat = heartbeat;
    this.group = new WaitGroup({
      awaitEvents: runtime.groupedWaits === false ? null : (waits, timeout, wake) => this.#awaitEventsRows(waits, timeout, wake),
      awaitEvent: (step, event, timeout) => this.#awaitEventRow(step, event, timeout),
      sleep: (seconds) => this.#sleepRun(seconds),
    });
  }

  /** Notes a child spawned by `ctx.spawn`: waiting for it suspends this run without asking whose child it is. */
  noteChild(queue: string, taskID: string): void {
    this.#children.add(`${queue} ${taskID}`);
  }

  /**
   * Waits for `eventName` in the checkpoint named by `options.stepName` (default
   * `$awaitEvent:<eventName>`): its stored payload, the payload if the event was emitted already, or
   * a suspended run (SuspendTask) that the event, or the timeout, wakes. A wake by the timeout throws
   * TimeoutError. Started together with other waits, it suspends the run once with them.
   */
  async awaitEvent(eventName: string, options: AwaitEventOptions): Promise<JsonValue> {
    const leave = this.group.enter();
    try {
      const timeout =
        options.timeout !== undefined && Number.isFinite(options.timeout) && options.timeout >= 0
          ? Math.floor(options.timeout)
          : null;
      const checkpointName = this.#checkpoints.nameFor(options.stepName ?? `$awaitEvent:${eventName}`);
      const cached = this.#checkpoints.get(checkpointName);
      if (cached !== undefined) return cached;
      if (this.#consumeTimeoutWake(eventName)) throw new TimeoutError(`Timed out waiting for event "${eventName}"`);
      for (;;) {
        // A deadline stored when this wait suspended in a group counts from then.
        let remaining = timeout;
        const stored = this.#checkpoints.get(`${checkpointName}$deadline`);
        if (typeof stored === 'string') {
          const left = Date.parse(stored) - (await this.#dbNowMs());
          if (left <= 0) throw new TimeoutError(`Timed out waiting for event "${eventName}"`);
          remaining = Math.ceil(left / 1000);
        }
        const keepDeadline = timeout !== null && stored === undefined ? () => this.#deadline(checkpointName, timeout).then(() => undefined) : undefined;
        const look = await this.#lookOnce(checkpointName, eventName, remaining, options.resume, keepDeadline);
        if (look.again) {
          if (look.timedOut && timeout !== null && stored === undefined) throw new TimeoutError(`Timed out waiting for event "${eventName}"`);
          continue;
        }
        const payload = look.payload as JsonValue;
        this.#checkpoints.remember(checkpointName, payload);
        this.#task.event_payload = null;
        return payload;
      }
    } finally {
      leave();
    }
  }

  /**
   * Waits until the task ends and returns its final snapshot, checkpointed. Suspends on the event
   * its end is announced with, for at most `checkInterval` seconds at a time (a task nobody
   * announces is looked at again then), within the timeout's deadline (kept across suspends).
   */
  async awaitTaskResult(task: TaskRef, options: ContextAwaitTaskResultOptions): Promise<TaskResultSnapshot> {
    const leave = this.group.enter();
    try {
      return await this.#awaitTaskResult(task, options);
    } finally {
      leave();
    }
  }

  async #awaitTaskResult(task: TaskRef, options: ContextAwaitTaskResultOptions): Promise<TaskResultSnapshot> {
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
      const look = await this.#lookOnce(checkpointName, eventName, wait, options.resume);
      // No payload: this wait's own timeout woke the run (await_event reports it once); look again.
      if (look.again || look.payload === null) continue;
      this.#checkpoints.remember(checkpointName, look.payload);
      return look.payload as unknown as TaskResultSnapshot;
    }
  }

  /**
   * One look of an event wait, with the waits started beside it (see `wait-group.ts`): the payload
   * its group found (null: none — a wake by this wait's own timeout, as await_event reports it), or
   * `again` (with whether the group's timeout woke the run) when the wait must look again. Alone,
   * it sends its own await_event. Throws SuspendTask when the run suspended.
   * `keepDeadline` stores a relative deadline before a group of several suspends.
   */
  async #lookOnce(
    step: string,
    eventName: string,
    timeout: number | null,
    resume: WaitResume | undefined,
    keepDeadline?: () => Promise<void>,
  ): Promise<{ again: true; timedOut: boolean } | { again: false; payload: JsonValue | null }> {
    const answer = await this.group.arrive({ event: { step, name: eventName }, timeout, resume: resume ?? 'all', keepDeadline });
    if (answer.kind === 'again') return { again: true, timedOut: answer.timedOut };
    if (answer.kind === 'answered') return { again: false, payload: answer.payload };
    const row = await this.#awaitEventRow(step, eventName, timeout);
    if (row.should_suspend) throw new SuspendTask();
    return { again: false, payload: row.payload as JsonValue | null };
  }

  /**
   * Whether waiting for task `taskID` of `queue` may suspend this run: a task of this run's own
   * queue (looked at again every `checkInterval` when nobody announces it), or one whose
   * `absurd.parent` header names this task (`ctx.spawn`): its end is announced to this task.
   */
  async #announcedHere(queue: string, taskID: string): Promise<boolean> {
    if (queue === this.#runtime.queueName || this.#children.has(`${queue} ${taskID}`)) return true;
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

  /** `kit_await_events` for a group of waits; sent again after a lost answer only while the task still runs. */
  async #awaitEventsRows(waits: { step: string; event: string }[], timeout: number | null, wake: 'all' | 'any'): Promise<GroupRow[]> {
    const params = { queueName: this.#runtime.queueName, taskId: this.#task.task_id, runId: this.#task.run_id, waits: JSON.stringify(waits), timeout, wake };
    const rows = await this.#guard.call(() => withTaskState(() => awaitEventsQuery.run(params, this.#runtime.con)), {
      beforeRetry: () => this.#unlessSuspended(),
    });
    return rows as GroupRow[];
  }

  /** Suspends the run for `seconds` (schedule_run); sent again only while the task still runs. */
  async #sleepRun(seconds: number): Promise<void> {
    const params = { queueName: this.#runtime.queueName, runId: this.#task.run_id, seconds };
    await this.#guard.call(() => scheduleRunAfter.run(params, this.#runtime.con), {
      beforeRetry: () => this.#unlessSuspended(),
    });
  }

  /**
   * Sleeps until the wake time `wakeTime` resolves to (it reads or writes the step's checkpoint):
   * returns at once when it has passed, else suspends the run until then (SuspendTask), together
   * with the waits that started with it. Counted in the group before `wakeTime` runs.
   */
  async sleepUntil(wakeTime: () => Promise<Date>): Promise<void> {
    const leave = this.group.enter();
    try {
      const wakeAt = await wakeTime();
      for (;;) {
        const remainingMs = wakeAt.getTime() - Date.now();
        if (remainingMs <= 0) return;
        const answer = await this.group.arrive({ timeout: remainingMs / 1000, resume: 'all' });
        if (answer.kind !== 'alone') continue;
        await this.#sleepRun(remainingMs / 1000);
        throw new SuspendTask();
      }
    } finally {
      leave();
    }
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
