/**
 * The dashboard's pages of schedules and limits, added to the app by {@link addFlowRoutes}:
 *
 *   GET  /schedules?queue                    cron schedules, of one queue or all
 *   POST /schedules/{pause,resume}           form fields name (and queue, the filter to go back to);
 *                                            CSRF-checked, refused with --read-only
 *   GET  /limits?queue                       concurrency and rate limits, with running and parked counts
 *   GET  /limits/parked?queue&limit&key      the tasks a limit parks (in one bucket, with key)
 *
 * Each asks the engine first whether it has schedules or limits (a schema installed by Absurd's
 * own tools, or not migrated yet, has neither) and says what to run when it does not. After an
 * action the browser is sent back to the schedules page (POST, redirect, GET), which shows what
 * happened once.
 */
import type pg from 'pg';
import type { Hono } from 'hono';
import { missingFeature, readEngineFeatures } from './engine-features.js';
import type { Flash } from './flash.js';
import type { PageContext } from './html.js';
import { readLimits, readParkedTasks } from './limits.js';
import { limitsView, parkedView } from './pages/limits-view.js';
import { schedulesHref, schedulesView } from './pages/schedules-view.js';
import { pollUrl, queryParam, queueNames, unknownQueueNotice } from './request.js';
import { readSchedules, setSchedulePaused } from './schedules.js';
import type { ActionOutcome } from './task-actions.js';

/** What the routes work with. */
export interface FlowRouteDependencies {
  readonly ctx: PageContext;
  readonly flash: Flash;
  /** Runs `fn` on a connection of the pool. */
  withDb<T>(fn: (db: pg.ClientBase) => Promise<T>): Promise<T>;
}

/**
 * Adds the schedule and limit pages and the pause and resume actions to `app` (whose middleware
 * already checks the host, the token, and the CSRF token and read-only mode of every POST).
 *
 * @example
 * addFlowRoutes(app, { ctx, flash, withDb: (fn) => withDb(pool, fn) });
 */
export function addFlowRoutes(app: Hono, deps: FlowRouteDependencies): void {
  const { ctx, flash } = deps;

  app.get('/schedules', async (c) => {
    const queue = queryParam(c, 'queue');
    const { schedules, queues } = await deps.withDb(async (db) => {
      const features = await readEngineFeatures(db);
      return {
        schedules: features.schedules ? await readSchedules(db, queue) : { missing: missingFeature('schedules', ctx.foreignSchema) },
        queues: await queueNames(db),
      };
    });
    return c.html(schedulesView(ctx, pollUrl(c), queue, schedules, queues, flash.take(queryParam(c, 'flash'))));
  });

  app.post('/schedules/:action', async (c) => {
    const action = c.req.param('action');
    if (action !== 'pause' && action !== 'resume') return c.text('unknown action', 404);
    const form = await c.req.parseBody();
    const text = (name: string) => (typeof form[name] === 'string' ? (form[name] as string) : '');
    const name = text('name');
    const queue = text('queue');
    const outcome: ActionOutcome = await deps.withDb(async (db) =>
      (await readEngineFeatures(db)).schedules
        ? setSchedulePaused(db, name, action === 'pause')
        : { ok: false, message: missingFeature('schedules', ctx.foreignSchema) },
    );
    const back = schedulesHref(queue === '' ? undefined : queue);
    return c.redirect(`${back}${back.includes('?') ? '&' : '?'}flash=${flash.put(outcome)}`, 303);
  });

  app.get('/limits', async (c) => {
    const queue = queryParam(c, 'queue');
    const { limits, queues } = await deps.withDb(async (db) => {
      const features = await readEngineFeatures(db);
      return {
        limits: features.limits ? await readLimits(db, queue) : { missing: missingFeature('limits', ctx.foreignSchema) },
        queues: await queueNames(db),
      };
    });
    return c.html(limitsView(ctx, pollUrl(c), queue, limits, queues, unknownQueueNotice(queue, queues)));
  });

  app.get('/limits/parked', async (c) => {
    const queue = queryParam(c, 'queue');
    const limit = queryParam(c, 'limit');
    if (queue === undefined || limit === undefined) return c.redirect('/limits', 303);
    const key = c.req.query('key');
    const tasks = await deps.withDb(async (db) =>
      (await readEngineFeatures(db)).limits ? readParkedTasks(db, queue, limit, key) : { missing: missingFeature('limits', ctx.foreignSchema) },
    );
    return c.html(parkedView(ctx, pollUrl(c), queue, limit, key, tasks));
  });
}
