/**
 * The dashboard's pages and actions as a Hono app:
 *
 *   GET  /                          queues
 *   GET  /tasks?queue&state&name&since&until&field&value&after&before   the task list
 *   GET  /events?queue&name&since&until&after   the event log
 *   GET  /find?id=                  a task (or the task of a run) by id, in any queue
 *   GET  /task/:id?queue=           a task
 *   POST /task/:id/{retry,retry-new,cancel,wake,emit}?queue=   actions (CSRF-checked; not with --read-only)
 *   GET  /schedules, /limits, /limits/parked; POST /schedules/{pause,resume}   see flow-routes.ts
 *   GET  /assets/:name              the stylesheet, the script and htmx
 *   GET  /healthz                   `ok`
 *
 * Every request borrows one connection of the pool. After an action the browser is redirected to
 * the task's page (POST, redirect, GET), which shows what happened once.
 */
import type pg from 'pg';
import { Hono, type Context } from 'hono';
import { TaskNotFoundError } from '../cli-errors.js';
import { findTask } from '../task-lookup.js';
import type { Asset } from './assets.js';
import type { ContractSchemas } from './contract-schemas.js';
import { readEngineFeatures } from './engine-features.js';
import { readEventPage, parseEventCursor, type EventFilter } from './event-page.js';
import { Flash } from './flash.js';
import { addFlowRoutes } from './flow-routes.js';
import { readParkedRuns, type ParkedRun } from './limits.js';
import { h, layout, type Notice, type PageContext } from './html.js';
import { eventsView } from './pages/events-view.js';
import { queuesView } from './pages/queues-view.js';
import { taskView } from './pages/task-view.js';
import { tasksView } from './pages/tasks-view.js';
import { readQueueOverview } from './queue-overview.js';
import { pollUrl, queryParam, queueNames, unknownQueueNotice } from './request.js';
import { actionGuard, authenticate, hostCheck, securityHeaders, type SecurityOptions } from './security.js';
import { cancelTask, emitEvent, retryTask, wakeSleepingTask, type ActionOutcome } from './task-actions.js';
import { readTaskDetails } from './task-details.js';
import { isUuid, readTaskPage, TASK_STATES, type TaskFilter, type TaskState } from './task-page.js';

/** What the app works with. */
export interface DashboardDependencies {
  readonly pool: pg.Pool;
  readonly schemas: ContractSchemas;
  readonly assets: ReadonlyMap<string, Asset>;
  readonly security: SecurityOptions;
  /** Task names the contracts declare (suggestions in the filter form). */
  readonly taskNames: readonly string[];
  /** False on a schema installed by Absurd's own tools (no absurd.kit_wake_task). */
  readonly canWake: boolean;
}

async function withDb<T>(pool: pg.Pool, fn: (db: pg.PoolClient) => Promise<T>): Promise<T> {
  const db = await pool.connect();
  try {
    return await fn(db);
  } finally {
    db.release();
  }
}

/** A `datetime-local` value (UTC) or an ISO time as ISO text; undefined when empty; null when invalid. */
function timeParam(text: string | undefined): string | undefined | null {
  if (text === undefined || text.trim() === '') return undefined;
  const trimmed = text.trim();
  const withZone = /(Z|[+-]\d{2}:?\d{2})$/.test(trimmed) ? trimmed : `${trimmed}Z`;
  const ms = Date.parse(withZone);
  return /^\d{4}-\d{2}-\d{2}/.test(trimmed) && Number.isFinite(ms) ? new Date(ms).toISOString() : null;
}

/** The task list's filters from the query string, and what was wrong with them. */
function parseFilter(c: Context): { filter: TaskFilter; problems: string[] } {
  const q = (name: string) => queryParam(c, name);
  const problems: string[] = [];
  const filter: { -readonly [K in keyof TaskFilter]: TaskFilter[K] } = {};
  const queue = q('queue');
  if (queue !== undefined) filter.queue = queue;
  const state = q('state');
  if (state !== undefined) {
    if ((TASK_STATES as readonly string[]).includes(state)) filter.state = state as TaskState;
    else problems.push(`state must be one of ${TASK_STATES.join(', ')}`);
  }
  const name = q('name');
  if (name !== undefined) filter.name = name;
  for (const key of ['since', 'until'] as const) {
    const parsed = timeParam(q(key));
    if (parsed === null) problems.push(`${key} must be a time such as 2024-05-01T12:00`);
    else if (parsed !== undefined) filter[key] = parsed;
  }
  const field = q('field')?.trim();
  if (field !== undefined && field !== '') {
    if (field.split('.').some((k) => k.trim() === '')) problems.push('the params field is keys separated by dots, such as customer.id');
    else {
      filter.field = field;
      filter.value = c.req.query('value') ?? '';
    }
  }
  for (const key of ['after', 'before'] as const) {
    const id = q(key);
    if (id !== undefined) {
      if (isUuid(id)) filter[key] = id.toLowerCase();
      else problems.push(`${key} must be a task id`);
    }
  }
  return { filter, problems };
}

/**
 * The app.
 *
 * @example
 * const app = dashboardApp({ pool, schemas, assets, security, taskNames: [] });
 */
export function dashboardApp(deps: DashboardDependencies): Hono {
  const { pool, schemas, security } = deps;
  const flash = new Flash();
  // canWake is false exactly on a schema that Absurd's own tools installed (see server.ts).
  const ctx: PageContext = { csrfToken: security.csrfToken, readOnly: security.readOnly, canWake: deps.canWake, foreignSchema: !deps.canWake };
  const app = new Hono();

  app.use('*', securityHeaders());
  app.get('/healthz', (c) => c.text('ok'));
  app.get('/favicon.ico', (c) => c.body(null, 204));
  app.get('/assets/:name', (c) => {
    const asset = deps.assets.get(c.req.param('name'));
    if (!asset) return c.text('not found', 404);
    c.header('Cache-Control', 'no-cache');
    return c.body(asset.body, 200, { 'Content-Type': asset.contentType });
  });
  app.use('*', hostCheck(security));
  app.use('*', authenticate(security));
  app.use('*', actionGuard(security));

  app.get('/', async (c) => {
    const queues = await withDb(pool, (db) => readQueueOverview(db));
    return c.html(queuesView(ctx, queues, flash.take(c.req.query('flash'))));
  });

  app.get('/tasks', async (c) => {
    const { filter, problems } = parseFilter(c);
    const notice: Notice | undefined =
      problems.length > 0 ? { ok: false, message: 'Some filters were left out:', details: problems } : flash.take(c.req.query('flash'));
    const { page, queues, parked } = await withDb(pool, async (db) => {
      const found = await readTaskPage(db, filter);
      // Only tasks whose last run is pending at infinity can be parked; their waiters are read by primary key.
      const held = found.tasks.filter((t) => t.held === true && t.last_attempt_run !== null);
      return {
        page: found,
        queues: await queueNames(db),
        parked:
          held.length > 0 && (await readEngineFeatures(db)).limits
            ? await readParkedRuns(db, held.map((t) => ({ queue: t.queue_name, runID: t.last_attempt_run! })))
            : new Map<string, ParkedRun>(),
      };
    });
    const unknownQueue = unknownQueueNotice(filter.queue, queues);
    const url = new URL(c.req.url);
    return c.html(
      tasksView(ctx, `${url.pathname}${url.search}`, filter, page, { queues, taskNames: deps.taskNames }, parked, notice ?? unknownQueue),
    );
  });

  app.get('/events', async (c) => {
    const q = (name: string) => queryParam(c, name);
    const problems: string[] = [];
    const filter: { -readonly [K in keyof EventFilter]: EventFilter[K] } = {};
    const queue = q('queue');
    if (queue !== undefined) filter.queue = queue;
    const name = q('name');
    if (name !== undefined) filter.name = name;
    for (const key of ['since', 'until'] as const) {
      const parsed = timeParam(q(key));
      if (parsed === null) problems.push(`${key} must be a time such as 2024-05-01T12:00`);
      else if (parsed !== undefined) filter[key] = parsed;
    }
    const after = q('after');
    if (after !== undefined) {
      if (parseEventCursor(after)) filter.after = after;
      else problems.push('after is not a cursor of this page');
    }
    const { page, queues } = await withDb(pool, async (db) => ({
      page: await readEventPage(db, filter),
      queues: await queueNames(db),
    }));
    const checks = await Promise.all(page.events.map((e) => schemas.checkEvent(e.event_name, e.payload)));
    const notice: Notice | undefined = problems.length > 0 ? { ok: false, message: 'Some filters were left out:', details: problems } : undefined;
    const url = new URL(c.req.url);
    return c.html(eventsView(ctx, `${url.pathname}${url.search}`, filter, page, checks, queues, schemas.eventNames(), notice));
  });

  app.get('/find', async (c) => {
    const id = (c.req.query('id') ?? '').trim();
    if (!isUuid(id)) return c.redirect(`/tasks?flash=${flash.put({ ok: false, message: `${JSON.stringify(id)} is not a task or run id (a UUID).` })}`, 303);
    try {
      const found = await withDb(pool, (db) => findTask(db, id, undefined, { byRun: true }));
      return c.redirect(`/task/${encodeURIComponent(found.taskID)}?queue=${encodeURIComponent(found.queue)}`, 303);
    } catch (error) {
      if (!(error instanceof TaskNotFoundError)) throw error;
      return c.redirect(`/tasks?flash=${flash.put({ ok: false, message: `No queue holds a task or run ${id}.` })}`, 303);
    }
  });

  app.get('/task/:id', async (c) => {
    const id = c.req.param('id');
    const queue = c.req.query('queue');
    if (!isUuid(id)) return c.html(notFound(ctx, `${JSON.stringify(id)} is not a task id.`), 404);
    if (queue === undefined) return c.redirect(`/find?id=${encodeURIComponent(id)}`, 303);
    const details = await withDb(pool, async (db) => {
      const known = (await queueNames(db)).includes(queue);
      return known ? readTaskDetails(db, queue, id.toLowerCase(), schemas, { limits: (await readEngineFeatures(db)).limits }) : undefined;
    });
    if (!details) return c.html(notFound(ctx, `No task ${id} in queue ${JSON.stringify(queue)}.`), 404);
    return c.html(taskView(ctx, pollUrl(c), details, schemas.eventNames(), flash.take(c.req.query('flash'))));
  });

  app.post('/task/:id/:action', async (c) => {
    const id = c.req.param('id');
    const queue = c.req.query('queue');
    if (!isUuid(id) || queue === undefined) return c.text('a task id and ?queue= are needed', 400);
    const taskID = id.toLowerCase();
    const form = await c.req.parseBody();
    const text = (name: string) => (typeof form[name] === 'string' ? (form[name] as string) : '');
    const outcome: ActionOutcome | undefined = await withDb(pool, async (db) => {
      const unknown = unknownQueueNotice(queue, await queueNames(db));
      if (unknown) return unknown;
      switch (c.req.param('action')) {
        case 'retry':
          return retryTask(db, queue, taskID, false);
        case 'retry-new':
          return retryTask(db, queue, taskID, true);
        case 'cancel':
          return cancelTask(db, queue, taskID);
        case 'wake':
          return deps.canWake
            ? wakeSleepingTask(db, queue, taskID)
            : { ok: false, message: "this database has Absurd's own schema, which cannot wake a task: adopt it with `absurd migrate --adopt`" };
        case 'emit':
          return emitEvent(db, schemas, queue, text('event').trim(), text('payload'));
        default:
          return undefined;
      }
    });
    if (!outcome) return c.text('unknown action', 404);
    const target = outcome.taskID ?? taskID;
    return c.redirect(`/task/${encodeURIComponent(target)}?queue=${encodeURIComponent(queue)}&flash=${flash.put(outcome)}`, 303);
  });

  addFlowRoutes(app, { ctx, flash, withDb: (fn) => withDb(pool, fn) });

  app.notFound((c) => c.html(notFound(ctx, 'No such page.'), 404));
  app.onError((error, c) => {
    const message = error instanceof Error ? error.message : String(error);
    return c.html(layout(ctx, { title: 'Error', active: 'queues', body: h`<h1>Something went wrong</h1><p class="notice error">${message}</p>` }), 500);
  });
  return app;
}

function notFound(ctx: PageContext, message: string) {
  return layout(ctx, { title: 'Not found', active: 'tasks', body: h`<h1>Not found</h1><p>${message}</p>` });
}
