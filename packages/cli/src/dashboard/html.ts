/**
 * HTML of the dashboard: Hono's `html` template tag, which escapes every interpolated value (queue
 * and task names, params, payloads, failure messages — all of it is data), and the page layout
 * and small pieces the pages share. Nothing here marks a string as safe HTML except what this
 * module builds itself.
 */
import { html } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import type { TaskFilter } from './task-page.js';

/** A piece of escaped HTML. */
export type Html = HtmlEscapedString;

/**
 * `html` for templates whose parts are all synchronous: escapes every value interpolated into it.
 *
 * @example
 * h`<td>${queueName}</td>`; // `<td>bad&#39;name</td>`
 */
export function h(strings: TemplateStringsArray, ...values: unknown[]): Html {
  const out = html(strings, ...values);
  if (out instanceof Promise) throw new Error('dashboard templates are synchronous');
  return out;
}

/** What every page needs besides its content. */
export interface PageContext {
  /** The token a form must carry (POST requests are refused without it). */
  readonly csrfToken: string;
  readonly readOnly: boolean;
  /**
   * Whether the engine can wake a sleeping task (absurd.kit_wake_task): false on a schema that
   * Absurd's own tools installed and absurd-kit has not adopted.
   */
  readonly canWake: boolean;
  /** The schema was installed by Absurd's own tools and not adopted (`absurd migrate --adopt` adds absurd-kit's parts). */
  readonly foreignSchema: boolean;
}

/** The sections of the navigation. */
export type Section = 'queues' | 'tasks' | 'events' | 'schedules' | 'limits';

/** A message shown at the top of a page after an action. */
export interface Notice {
  readonly ok: boolean;
  readonly message: string;
  readonly details?: readonly string[];
}

/**
 * A whole page: the header with navigation, the live-refresh switch, the notice, the content.
 *
 * @example
 * layout(ctx, { title: 'Queues', active: 'queues', body: h`<p>…</p>` });
 */
export function layout(ctx: PageContext, page: { title: string; active: Section; body: Html; notice?: Notice }): Html {
  const nav = (key: Section, href: string, label: string) =>
    h`<a href="${href}"${key === page.active ? h` aria-current="page"` : ''}>${label}</a>`;
  return h`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="htmx-config" content='{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"selfRequestsOnly":true,"historyCacheSize":0}'>
<title>${page.title} · absurd dashboard</title>
<link rel="stylesheet" href="/assets/dashboard.css">
<script src="/assets/htmx.min.js" defer></script>
<script src="/assets/dashboard.js" defer></script>
</head>
<body>
<header class="top">
  <a class="brand" href="/">absurd</a>
  <nav>${nav('queues', '/', 'Queues')}${nav('tasks', '/tasks', 'Tasks')}${nav('events', '/events', 'Events')}${nav('schedules', '/schedules', 'Schedules')}${nav('limits', '/limits', 'Limits')}</nav>
  <form class="find" method="get" action="/find" role="search">
    <input name="id" placeholder="Task or run id" aria-label="Task or run id" autocomplete="off" spellcheck="false">
  </form>
  <label class="live"><input type="checkbox" id="live-toggle" checked> Live</label>
  ${ctx.readOnly ? h`<span class="badge read-only" title="Started with --read-only: actions are hidden and refused">read-only</span>` : ''}
</header>
<main>
${page.notice ? noticeBox(page.notice) : ''}
${page.body}
</main>
</body>
</html>`;
}

function noticeBox(notice: Notice): Html {
  return h`<div class="notice ${notice.ok ? 'ok' : 'error'}" role="status">
  <p>${notice.message}</p>
  ${notice.details && notice.details.length > 0 ? h`<ul>${notice.details.map((d) => h`<li><code>${d}</code></li>`)}</ul>` : ''}
</div>`;
}

/**
 * A region that reloads itself every 2 seconds while "Live" is on: htmx requests the same page and
 * swaps in its element of the same id.
 */
export function liveRegion(id: string, url: string, body: Html, live = true): Html {
  return live
    ? h`<div id="${id}" class="live-region" hx-get="${url}" hx-trigger="every 2s" hx-select="#${id}" hx-swap="outerHTML">${body}</div>`
    : h`<div id="${id}">${body}</div>`;
}

/** A time as a `<time>` element: UTC ISO text, its age as the title; `–` for none, `never` for infinity. */
export function time(value: Date | number | string | null | undefined): Html {
  if (value === null || value === undefined) return h`<span class="muted">–</span>`;
  if (typeof value === 'number') return h`<span class="muted">${value > 0 ? 'never' : '–'}</span>`;
  const date = typeof value === 'string' ? new Date(value) : value;
  if (!Number.isFinite(date.getTime())) return h`<span class="muted">never</span>`;
  const iso = date.toISOString();
  return h`<time datetime="${iso}" title="${iso}">${iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}</time>`;
}

/** A JSON value, indented, in a `<pre>`. */
export function json(value: unknown): Html {
  return h`<pre class="json">${JSON.stringify(value, null, 2) ?? 'null'}</pre>`;
}

/** A state as a coloured badge. */
export function stateBadge(state: string | null): Html {
  return state === null ? h`<span class="badge gone">gone</span>` : h`<span class="badge state-${state}">${state}</span>`;
}

/** A hidden field with the CSRF token, for every form that POSTs. */
export function csrfField(ctx: PageContext): Html {
  return h`<input type="hidden" name="_csrf" value="${ctx.csrfToken}">`;
}

/**
 * The path of a task's page.
 *
 * @example
 * taskHref("bad'q", id); // /task/0190…?queue=bad%27q
 */
export function taskHref(queue: string, taskID: string): string {
  return `/task/${encodeURIComponent(taskID)}?queue=${encodeURIComponent(queue)}`;
}

/**
 * The path of the task list with these filters.
 *
 * @example
 * tasksHref({ queue: 'orders', state: 'failed' }); // /tasks?queue=orders&state=failed
 */
export function tasksHref(filter: TaskFilter): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(filter)) if (typeof value === 'string' && value !== '') params.set(key, value);
  const query = params.toString();
  return query === '' ? '/tasks' : `/tasks?${query}`;
}

/** A count, with `+` when it reached the cap. */
export function count(value: number, cap: number): string {
  return value >= cap ? `${cap.toLocaleString('en')}+` : value.toLocaleString('en');
}
