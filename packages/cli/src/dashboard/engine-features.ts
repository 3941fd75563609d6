/**
 * What the engine behind the dashboard can do beyond Absurd's contract: cron schedules (engine
 * migration 000015) and concurrency and rate limits (000016). A schema installed by Absurd's own
 * tools has neither, nor has an engine not yet migrated; the pages that need them say so and how to
 * get them, instead of failing. Asked on each request that needs it (two catalog lookups), so that
 * a migration made while the dashboard runs shows at once.
 */
import type pg from 'pg';
import { oneRow } from '../cli-database.js';
import { engineFeatures } from '../queries/dashboard.queries.js';

/** The optional parts of the engine that the database has. */
export interface EngineFeatures {
  /** absurd.kit_list_schedules and kit_set_schedule_paused (migration 000015). */
  readonly schedules: boolean;
  /** absurd.kit_list_limits and the table kit_limit_waiters (migration 000016). */
  readonly limits: boolean;
}

/**
 * Reads which optional parts the engine has.
 *
 * @example
 * const { schedules } = await readEngineFeatures(db);
 */
export async function readEngineFeatures(db: pg.ClientBase): Promise<EngineFeatures> {
  const row = oneRow(await engineFeatures.run(undefined, db), 'EngineFeatures');
  return { schedules: row.schedules, limits: row.limits };
}

/** What a page shows instead of its data when the engine lacks what it needs: the advice of {@link missingFeature}. */
export interface MissingFeature {
  readonly missing: string;
}

/**
 * Whether a page's data is the advice that the engine lacks a feature.
 *
 * @example
 * if (isMissing(schedules)) return adviceOnly(schedules.missing);
 */
export function isMissing(value: unknown): value is MissingFeature {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && typeof (value as { missing?: unknown }).missing === 'string';
}

/**
 * What to tell an operator whose engine lacks `feature`: on a schema that Absurd's own tools
 * installed (`foreign`), adopt it; otherwise migrate.
 *
 * @example
 * missingFeature('schedules', true); // 'This database's engine has no schedules: … run `absurd migrate` …'
 */
export function missingFeature(feature: 'schedules' | 'limits', foreign: boolean): string {
  const what =
    feature === 'schedules'
      ? 'no cron schedules (they come with absurd-kit engine migration 000015)'
      : 'no concurrency or rate limits (they come with absurd-kit engine migration 000016)';
  const how = foreign
    ? "This database has Absurd's own schema: adopt it with `absurd migrate --adopt`, which keeps its tasks and adds them."
    : 'Run `absurd migrate` to add them.';
  return `The engine of this database has ${what}. ${how}`;
}
