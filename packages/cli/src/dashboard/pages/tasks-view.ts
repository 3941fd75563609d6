/**
 * The task list: a filter form (queue, state, task name, creation window, a params field), one
 * page of tasks newest first, and links to the newer and older pages.
 */
import { h, layout, liveRegion, stateBadge, taskHref, tasksHref, time, type Html, type Notice, type PageContext } from '../html.js';
import { parkedKey, type ParkedRun } from '../limits.js';
import { TASK_STATES, uuidTime, type TaskFilter, type TaskPage } from '../task-page.js';
import { parkedHref } from './limits-view.js';

/** What the form offers to choose from. */
export interface TaskListChoices {
  readonly queues: readonly string[];
  /** Task names the contracts declare, offered as suggestions. */
  readonly taskNames: readonly string[];
}

/** `2024-05-01T10:00` for a `datetime-local` input, from the filter's ISO time (UTC). */
function localInput(iso: string | undefined): string {
  return iso === undefined ? '' : iso.replace(/(:\d{2})?(\.\d+)?Z$/, (_, seconds: string | undefined) => seconds ?? '').slice(0, 19);
}

function filterForm(filter: TaskFilter, choices: TaskListChoices): Html {
  const option = (value: string, label: string, selected: boolean) => h`<option value="${value}"${selected ? h` selected` : ''}>${label}</option>`;
  return h`<form class="filters" method="get" action="/tasks">
  <label>Queue <select name="queue">${option('', 'all queues', filter.queue === undefined)}${choices.queues.map((q) => option(q, q, q === filter.queue))}</select></label>
  <label>State <select name="state">${option('', 'any state', filter.state === undefined)}${TASK_STATES.map((s) => option(s, s, s === filter.state))}</select></label>
  <label>Task name <input name="name" value="${filter.name ?? ''}" list="task-names" autocomplete="off" spellcheck="false"></label>
  <datalist id="task-names">${choices.taskNames.map((n) => h`<option value="${n}">`)}</datalist>
  <label>Created since (UTC) <input type="datetime-local" step="1" name="since" value="${localInput(filter.since)}"></label>
  <label>until (UTC) <input type="datetime-local" step="1" name="until" value="${localInput(filter.until)}"></label>
  <label>Params field <input name="field" value="${filter.field ?? ''}" placeholder="customer.id" autocomplete="off" spellcheck="false"></label>
  <label>equals <input name="value" value="${filter.value ?? ''}" autocomplete="off" spellcheck="false"></label>
  <button type="submit">Filter</button>
  <a class="button secondary" href="/tasks">Clear</a>
</form>`;
}

function pager(filter: TaskFilter, page: TaskPage): Html {
  const base: TaskFilter = { ...filter, after: undefined, before: undefined };
  const searching = filter.field !== undefined && filter.field !== '';
  const links = [
    filter.after !== undefined || filter.before !== undefined ? h`<a href="${tasksHref(base)}" rel="first">« Newest</a>` : '',
    page.newer !== null && !searching ? h`<a href="${tasksHref({ ...base, before: page.newer })}" rel="prev">‹ Newer</a>` : '',
    page.older !== null ? h`<a href="${tasksHref({ ...base, after: page.older })}" rel="next">Older ›</a>` : '',
  ];
  const searched =
    page.searchedTo !== null
      ? h`<span class="hint">Searched the tasks created down to ${time(uuidTime(page.searchedTo))}; “Older” searches on.</span>`
      : '';
  return h`<nav class="pager" aria-label="Pages">${links}${searched}</nav>`;
}

function taskRow(task: TaskPage['tasks'][number], showQueue: boolean, parked: ReadonlyMap<string, ParkedRun>): Html {
  const p = task.last_attempt_run === null ? undefined : parked.get(parkedKey(task.queue_name, task.last_attempt_run));
  return h`<tr data-task-id="${task.task_id}">
  <td><a class="mono" href="${taskHref(task.queue_name, task.task_id)}">${task.task_id}</a></td>
  ${showQueue ? h`<td>${task.queue_name}</td>` : ''}
  <td>${task.task_name}</td>
  <td>${stateBadge(task.state)}${p ? h` <a class="badge parked" href="${parkedHref(task.queue_name, p.limit, p.key)}" title="Parked by limit ${p.limit}, bucket ${p.key}">parked</a>` : ''}</td>
  <td class="num">${task.attempts}/${task.max_attempts ?? '∞'}</td>
  <td>${time(task.enqueue_at)}</td>
  <td>${time(task.started_at)}</td>
  <td>${time(task.ended_at)}</td>
</tr>`;
}

/**
 * The whole page. It refreshes itself while it shows the newest tasks. `parked` holds the runs a
 * limit parks among the tasks' last runs (see readParkedRuns), shown as such.
 *
 * @example
 * tasksView(ctx, '/tasks?state=failed', filter, page, choices, new Map());
 */
export function tasksView(
  ctx: PageContext,
  url: string,
  filter: TaskFilter,
  page: TaskPage,
  choices: TaskListChoices,
  parked: ReadonlyMap<string, ParkedRun>,
  notice?: Notice,
): Html {
  const showQueue = filter.queue === undefined;
  const table =
    page.tasks.length === 0
      ? h`<p class="empty">No tasks match.</p>`
      : h`<table class="tasks">
<thead><tr><th scope="col">Task</th>${showQueue ? h`<th scope="col">Queue</th>` : ''}<th scope="col">Name</th><th scope="col">State</th><th scope="col" class="num">Attempts</th><th scope="col">Created</th><th scope="col">Started</th><th scope="col">Ended</th></tr></thead>
<tbody>${page.tasks.map((t) => taskRow(t, showQueue, parked))}</tbody>
</table>`;
  const firstPage = filter.after === undefined && filter.before === undefined;
  const body = h`<h1>Tasks${filter.queue !== undefined ? h` <small>in ${filter.queue}</small>` : ''}</h1>
${filterForm(filter, choices)}
${liveRegion('tasks-live', url, h`${table}${pager(filter, page)}`, firstPage)}`;
  return layout(ctx, { title: 'Tasks', active: 'tasks', body, ...(notice ? { notice } : {}) });
}
