/**
 * What the dashboard's routes read from a request and need of every page: query parameters, the
 * URL a page's live region polls, the queue names and the notice for a queue that does not exist.
 */
import type pg from 'pg';
import type { Context } from 'hono';
import { queueRows } from '../queries/queues.queries.js';
import type { Notice } from './html.js';

/**
 * A query parameter; undefined when absent or empty.
 *
 * @example
 * const queue = queryParam(c, 'queue');
 */
export function queryParam(c: Context, name: string): string | undefined {
  const value = c.req.query(name);
  return value === undefined || value === '' ? undefined : value;
}

/**
 * The request's path and query without `flash` (a notice is shown once), for the live region to poll.
 *
 * @example
 * taskView(ctx, pollUrl(c), …);
 */
export function pollUrl(c: Context): string {
  const url = new URL(c.req.url);
  url.searchParams.delete('flash');
  return `${url.pathname}${url.search}`;
}

/**
 * The names of the queues, by name.
 *
 * @example
 * const queues = await queueNames(db);
 */
export async function queueNames(db: pg.ClientBase): Promise<string[]> {
  return (await queueRows.run(undefined, db)).map((r) => r.queue_name);
}

/**
 * The notice for a queue named in a request that is not among `queues`; undefined for none or a known one.
 *
 * @example
 * const notice = unknownQueueNotice(queue, await queueNames(db));
 */
export function unknownQueueNotice(queue: string | undefined, queues: readonly string[]): Notice | undefined {
  return queue !== undefined && !queues.includes(queue) ? { ok: false, message: `There is no queue named ${JSON.stringify(queue)}.` } : undefined;
}
