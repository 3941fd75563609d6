/**
 * The schedules page's data and actions: every cron schedule (engine migration 000015) as
 * `kit_list_schedules` returns it, with the state of the last task it spawned (a primary-key probe
 * per schedule), and pausing or resuming one through the runtime's client. Schedules are
 * definitions, a few rows, whatever history their queues keep.
 */
import type pg from 'pg';
import { ScheduleError } from 'absurd-kit';
import { engineClient, runStatement } from '../cli-database.js';
import { scheduleList, taskStatesStatement } from '../queries/dashboard.queries.js';
import type { ActionOutcome } from './task-actions.js';

/** A schedule as the page shows it. */
export interface ScheduleView {
  readonly name: string;
  readonly queue: string;
  /** False when the schedule's queue was dropped: it fires nothing until the queue is back. */
  readonly queueExists: boolean;
  readonly taskName: string;
  readonly cron: string;
  readonly timezone: string;
  readonly params: unknown;
  readonly catchUp: string;
  readonly paused: boolean;
  readonly nextFireAt: Date | null;
  readonly lastFiredAt: Date | null;
  readonly lastTaskID: string | null;
  /** The state of the last task spawned; null when it is gone (cleaned up) or there is none. */
  readonly lastTaskState: string | null;
  readonly lastError: string | null;
}

/**
 * Every schedule, or those of `queue`, by name.
 *
 * @example
 * const schedules = await readSchedules(db, 'reports');
 */
export async function readSchedules(db: pg.ClientBase, queue?: string): Promise<ScheduleView[]> {
  const rows = await scheduleList.run({ queueName: queue ?? null }, db);
  const spawned = rows.filter((r) => r.queue_exists && r.last_task_id !== null);
  const states = new Map<string, string>();
  if (spawned.length > 0) {
    const [built] = await taskStatesStatement.run({ queueNames: [...new Set(spawned.map((r) => r.queue_name))] }, db);
    const ids = spawned.map((r) => r.last_task_id);
    const found = built?.statement ? await runStatement<{ queue_name: string; task_id: string; state: string }>(db, built.statement, [ids]) : [];
    for (const row of found) states.set(`${row.queue_name}\u0000${row.task_id}`, row.state);
  }
  return rows.map((r) => ({
    name: r.schedule_name,
    queue: r.queue_name,
    queueExists: r.queue_exists,
    taskName: r.task_name,
    cron: r.cron,
    timezone: r.timezone,
    params: r.params,
    catchUp: r.catch_up,
    paused: r.paused,
    nextFireAt: r.next_fire_at,
    lastFiredAt: r.last_fired_at,
    lastTaskID: r.last_task_id,
    lastTaskState: r.last_task_id === null ? null : (states.get(`${r.queue_name}\u0000${r.last_task_id}`) ?? null),
    lastError: r.last_error,
  }));
}

/**
 * Pauses (`paused` true) or resumes schedule `name`. Resuming starts from its first tick after
 * now: the ticks that fell while it was paused never fire.
 *
 * @example
 * await setSchedulePaused(db, 'nightly-report', true); // { ok: true, message: 'paused nightly-report …' }
 */
export async function setSchedulePaused(db: pg.ClientBase, name: string, paused: boolean): Promise<ActionOutcome> {
  if (name.trim() === '') return { ok: false, message: 'give the name of the schedule' };
  const client = engineClient(db);
  try {
    const before = (await client.listSchedules()).find((s) => s.name === name);
    if (before?.paused === paused) return { ok: false, message: `${JSON.stringify(name)} is already ${paused ? 'paused' : 'running'}; nothing changed` };
    const after = paused ? await client.pauseSchedule(name) : await client.resumeSchedule(name);
    if (paused) return { ok: true, message: `paused ${JSON.stringify(name)}: it fires nothing until it is resumed` };
    const next = after.nextFireAt ? `; its next tick is ${after.nextFireAt.toISOString()}` : '';
    return { ok: true, message: `resumed ${JSON.stringify(name)} from its next tick (the ticks it missed while paused do not fire)${next}` };
  } catch (error) {
    if (error instanceof ScheduleError && error.code === 'SCHEDULE_NOT_FOUND') return { ok: false, message: `there is no schedule named ${JSON.stringify(name)}` };
    throw error;
  }
}
