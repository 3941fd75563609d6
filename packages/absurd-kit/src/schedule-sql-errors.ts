import { fromDatabaseError, ScheduleError } from './errors.js';

/**
 * The error a schedule call throws for a database error: the engine's schedule SQLSTATEs become
 * {@link ScheduleError}s through the SQLSTATE table of errors.ts, and a missing schedule function
 * (an engine without migration 000015) becomes `SCHEDULES_UNSUPPORTED`, saying what to run.
 *
 * @example
 * try { await upsertSchedule.run(args, con); } catch (error) { throw scheduleCallError(error); }
 */
export function scheduleCallError(error: unknown): unknown {
  const state = (error as { code?: unknown } | null)?.code;
  // undefined_function for one of the schedule functions: the engine predates them.
  if (state === '42883' && /absurd\.kit_\w*schedule/.test((error as Error).message)) {
    return new ScheduleError(
      'SCHEDULES_UNSUPPORTED',
      'the engine has no schedules (they come with absurd-kit migration 000015) — run `absurd migrate` (or `absurd migrate --adopt` on a schema installed by Absurd)',
      { cause: error },
    );
  }
  return fromDatabaseError(error);
}
