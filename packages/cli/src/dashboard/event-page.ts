/**
 * One page of the event log: emitted events of one queue or all of them, newest first, filtered
 * by a name prefix (`shipment.packed:` for every key of a contract's event) and a time window,
 * paged by keyset on (emitted_at, event_name, queue) over `EventPageStatement`
 * (src/queries/dashboard.sql).
 */
import type pg from 'pg';
import { runStatement } from '../cli-database.js';
import { eventPageStatement } from '../queries/dashboard.queries.js';

/** What the event log is filtered by. */
export interface EventFilter {
  readonly queue?: string;
  /** The start of the event name. */
  readonly name?: string;
  readonly since?: string;
  readonly until?: string;
  /** The cursor of the page: the events after (older than) it. */
  readonly after?: string;
}

/** An emitted event. */
export interface EmittedEvent {
  readonly queue_name: string;
  readonly event_name: string;
  readonly payload: unknown;
  readonly emitted_at: Date;
  /** `emitted_at` at the database's precision (microseconds), for the cursor. */
  readonly emitted_at_text: string;
}

/** A page of events and the cursor of the next (older) one. */
export interface EventPage {
  readonly events: readonly EmittedEvent[];
  readonly older: string | null;
}

/** Events shown per page. */
export const EVENT_PAGE_SIZE = 50;

interface Cursor {
  readonly at: string;
  readonly name: string;
  readonly queue: string;
}

/**
 * The cursor after `event`, as URL-safe text.
 *
 * @example
 * eventCursor(page.events.at(-1)!); // 'eyJhdCI6…'
 */
export function eventCursor(event: EmittedEvent): string {
  const cursor: Cursor = { at: event.emitted_at_text, name: event.event_name, queue: event.queue_name };
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

/** The cursor in `text`, or undefined when it is not one. */
export function parseEventCursor(text: string): Cursor | undefined {
  try {
    const value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as Partial<Cursor>;
    if (typeof value.at !== 'string' || typeof value.name !== 'string' || typeof value.queue !== 'string') return undefined;
    // A timestamptz as Postgres prints it: `2030-01-01 00:00:00.123456+00`.
    return /^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}(:?\d{2}){0,2}|Z)?$/.test(value.at) ? (value as Cursor) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Reads one page of the event log.
 *
 * @example
 * const page = await readEventPage(db, { queue: 'orders', name: 'shipment.packed:' });
 */
export async function readEventPage(db: pg.ClientBase, filter: EventFilter, limit = EVENT_PAGE_SIZE): Promise<EventPage> {
  const [built] = await eventPageStatement.run({ queueName: filter.queue ?? null }, db);
  if (!built?.statement) return { events: [], older: null };
  const cursor = filter.after === undefined ? undefined : parseEventCursor(filter.after);
  // In the order of the statement's parameters (see EventPageStatement in dashboard.sql).
  const values = [
    filter.name ?? null,
    filter.since ?? null,
    filter.until ?? null,
    cursor?.at ?? null,
    cursor?.name ?? null,
    cursor?.queue ?? null,
    limit + 1,
  ];
  const rows = await runStatement<EmittedEvent>(db, built.statement, values);
  const events = rows.slice(0, limit);
  const last = events.at(-1);
  return { events, older: rows.length > limit && last ? eventCursor(last) : null };
}
