/**
 * One page of the task list: the filters a request may carry, and keyset paging over the union of
 * index range reads that `TaskPageStatement` (src/queries/dashboard.sql) builds. Every part of that
 * union reads at most a fixed number of tasks, so a page costs the same with a thousand tasks
 * retained as with a million; a search by a params field, which no index serves, pages on from
 * where its parts stopped reading.
 */
import type pg from 'pg';
import { runStatement } from '../cli-database.js';
import { taskPageStatement } from '../queries/dashboard.queries.js';

/** The states of a task. */
export const TASK_STATES = ['pending', 'running', 'sleeping', 'completed', 'failed', 'cancelled'] as const;

/** A state of a task. */
export type TaskState = (typeof TASK_STATES)[number];

/** What the task list is filtered by; every field is optional. */
export interface TaskFilter {
  readonly queue?: string;
  readonly state?: TaskState;
  readonly name?: string;
  /** Created at or after (ISO time). */
  readonly since?: string;
  /** Created before (ISO time). */
  readonly until?: string;
  /** A params field, as dotted keys (`customer.id`), and the text it must equal. */
  readonly field?: string;
  readonly value?: string;
  /** Keyset cursors: tasks older than `after`, or newer than `before`. */
  readonly after?: string;
  readonly before?: string;
}

/** A task of the list. */
export interface ListedTask {
  readonly queue_name: string;
  readonly task_id: string;
  readonly task_name: string;
  readonly state: string;
  readonly attempts: number;
  readonly max_attempts: number | null;
  readonly enqueue_at: Date;
  readonly started_at: Date | null;
  readonly ended_at: Date | null;
  readonly last_attempt_run: string | null;
  /** Its last run is pending with available_at infinity: parked by a limit, when one names it (see ParkedRuns). */
  readonly held: boolean | null;
}

/** A page of tasks, newest first, with the cursors of the pages around it. */
export interface TaskPage {
  readonly tasks: readonly ListedTask[];
  /** `after` of the next (older) page, or null at the end. */
  readonly older: string | null;
  /** `before` of the previous (newer) page, or null on the first page. */
  readonly newer: string | null;
  /** With a params search that stopped at its budget: the task id it read down to. */
  readonly searchedTo: string | null;
}

interface PageRow extends ListedTask {
  readonly matched: boolean;
  readonly scan_full: boolean;
}

/** Tasks shown per page. */
export const PAGE_SIZE = 50;

/** Tasks each part of a params search reads per page at most (the search then goes on from there). */
export const SEARCH_BUDGET = 5_000;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Whether `text` is a UUID (task and run ids), checked before any query sees it.
 *
 * @example
 * isUuid('0190b6a2-5c1e-7000-8000-000000000000'); // true
 */
export function isUuid(text: string | undefined): text is string {
  return text !== undefined && UUID.test(text);
}

/**
 * The creation time a UUIDv7 task id carries (its first 48 bits, milliseconds since the epoch).
 *
 * @example
 * uuidTime('0190b6a2-5c1e-7000-8000-000000000000'); // 2024-07-01T…Z
 */
export function uuidTime(id: string): Date {
  return new Date(Number.parseInt(id.replaceAll('-', '').slice(0, 12), 16));
}

/** Sizes of a page: tasks shown, and tasks a part of a params search reads. */
export interface PageSize {
  readonly limit?: number;
  readonly searchBudget?: number;
}

/**
 * Reads one page. `limit` tasks at most; `after` pages to older tasks, `before` to newer ones
 * (not with a params search, which only goes older).
 *
 * @example
 * const page = await readTaskPage(db, { queue: 'orders', state: 'failed' });
 */
export async function readTaskPage(db: pg.ClientBase, filter: TaskFilter, size: PageSize = {}): Promise<TaskPage> {
  const limit = size.limit ?? PAGE_SIZE;
  const searching = filter.field !== undefined && filter.field !== '' && filter.value !== undefined;
  const newer = filter.before !== undefined && !searching;
  const [built] = await taskPageStatement.run(
    { queueName: filter.queue ?? null, byName: filter.name !== undefined, state: filter.state ?? null, newer },
    db,
  );
  if (!built?.statement) return { tasks: [], older: null, newer: null, searchedTo: null };
  const path = searching ? (filter.field ?? '').split('.').map((key) => key.trim()) : null;
  // In the order of the statement's parameters (see TaskPageStatement in dashboard.sql).
  const values = [
    filter.state ?? null,
    filter.name ?? null,
    filter.since ?? null,
    filter.until ?? null,
    newer ? null : (filter.after ?? null),
    newer ? (filter.before ?? null) : null,
    limit,
    path,
    searching ? (filter.value ?? '') : null,
    searching ? (size.searchBudget ?? SEARCH_BUDGET) : limit + 1,
  ];
  const rows = await runStatement<PageRow>(db, built.statement, values);
  return assemble(rows, filter, limit, newer, searching);
}

/**
 * Merges the parts of the union into one page. A part that stopped early (it read its budget, or
 * returned as many rows as it may) knows nothing below its last row, so the page ends at the
 * highest such point; the next page starts there.
 */
function assemble(rows: readonly PageRow[], filter: TaskFilter, limit: number, newer: boolean, searching: boolean): TaskPage {
  // One part per queue: one index range each (see TaskPageStatement).
  const parts = new Map<string, PageRow[]>();
  for (const row of rows) {
    const part = parts.get(row.queue_name) ?? [];
    part.push(row);
    parts.set(row.queue_name, part);
  }
  // Rows arrive ordered by task id (descending, or ascending for `newer`); UUIDs compare as text.
  const beyond = (a: string, b: string) => (newer ? a > b : a < b);
  let boundary: string | null = null;
  for (const part of parts.values()) {
    const stopped = part.some((r) => r.scan_full) || part.length >= limit + 2;
    const last = part.at(-1)?.task_id;
    if (stopped && last !== undefined && (boundary === null || beyond(boundary, last))) boundary = last;
  }
  const known = rows.filter((r) => r.matched && (boundary === null || !beyond(r.task_id, boundary)));
  const shown = known.slice(0, limit);
  const more = known.length > limit ? (shown.at(-1)?.task_id ?? null) : boundary;
  const tasks = (newer ? [...shown].reverse() : shown).map(({ matched: _m, scan_full: _s, ...task }) => task);
  if (newer) {
    return { tasks, newer: more === null ? null : (tasks[0]?.task_id ?? null), older: tasks.at(-1)?.task_id ?? null, searchedTo: null };
  }
  const searchedTo = searching && more !== null && known.length <= limit ? more : null;
  return {
    tasks,
    older: more,
    newer: filter.after !== undefined ? (tasks[0]?.task_id ?? filter.after) : null,
    searchedTo,
  };
}
