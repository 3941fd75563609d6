import { AbsurdError } from './errors.js';

/** Why a schedule was refused, as {@link ScheduleError.code}. */
export type ScheduleErrorCode =
  | 'INVALID_CRON'
  | 'UNKNOWN_TIMEZONE'
  | 'SCHEDULE_NOT_FOUND'
  | 'QUEUE_NOT_FOUND'
  | 'INVALID_SCHEDULE'
  | 'SCHEDULES_UNSUPPORTED';

/** The engine's SQLSTATE for each code (migration 000015). */
const SQLSTATES: Readonly<Record<string, ScheduleErrorCode>> = {
  AB010: 'INVALID_CRON',
  AB011: 'UNKNOWN_TIMEZONE',
  AB012: 'SCHEDULE_NOT_FOUND',
  AB013: 'QUEUE_NOT_FOUND',
  AB014: 'INVALID_SCHEDULE',
};

/**
 * A schedule was refused: an invalid cron expression (the message names the field), an unknown
 * time zone, params its task's contract rejects, an unknown schedule or queue, an engine without
 * schedules (`SCHEDULES_UNSUPPORTED`: a schema installed by Absurd, or before migration 000015). Thrown by
 * `defineSchedule` at definition and by the client's schedule methods (the engine's `AB010`–`AB014`).
 *
 * @example
 * try { await app.pauseSchedule('nightly-report'); }
 * catch (error) { if (error instanceof ScheduleError && error.code === 'SCHEDULE_NOT_FOUND') console.error(error.message); }
 */
export class ScheduleError extends AbsurdError {
  declare readonly code: ScheduleErrorCode;

  constructor(code: ScheduleErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}

/**
 * The {@link ScheduleError} for a database error the engine raised with one of the schedule
 * SQLSTATEs (`AB010`–`AB014`), keeping the engine's message; anything else unchanged.
 *
 * @example
 * try { await upsert.run(args, con); } catch (error) { throw fromScheduleSqlState(error); }
 */
export function fromScheduleSqlState(error: unknown): unknown {
  const state = (error as { code?: unknown } | null)?.code;
  // undefined_function for one of the schedule functions: the engine predates them.
  if (state === '42883' && /absurd\.kit_\w*schedule/.test((error as Error).message)) {
    return new ScheduleError(
      'SCHEDULES_UNSUPPORTED',
      'the engine has no schedules (they come with absurd-kit migration 000015) — run `absurd migrate` (or `absurd migrate --adopt` on a schema installed by Absurd)',
      { cause: error },
    );
  }
  const code = typeof state === 'string' ? SQLSTATES[state] : undefined;
  if (code === undefined) return error;
  return new ScheduleError(code, (error as Error).message, { cause: error });
}
