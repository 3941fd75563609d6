/**
 * The event log: emitted events newest first, each payload checked against its event's contract,
 * with a filter form (queue, name prefix, time window) and a link to older events.
 */
import type { SchemaCheck } from '../contract-schemas.js';
import type { EventFilter, EventPage } from '../event-page.js';
import { h, json, layout, liveRegion, time, type Html, type Notice, type PageContext } from '../html.js';

/**
 * The path of the event log with these filters.
 *
 * @example
 * eventsHref({ queue: 'orders' }); // /events?queue=orders
 */
export function eventsHref(filter: EventFilter): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(filter)) if (typeof value === 'string' && value !== '') params.set(key, value);
  const query = params.toString();
  return query === '' ? '/events' : `/events?${query}`;
}

function localInput(iso: string | undefined): string {
  return iso === undefined ? '' : iso.replace(/(\.\d+)?Z$/, '');
}

function checkBadge(check: SchemaCheck): Html {
  if (check.status === 'unchecked') return h`<span class="badge muted" title="No contract declares it">no schema</span>`;
  if (check.status === 'valid') return h`<span class="badge valid">valid</span>`;
  return h`<span class="badge invalid">invalid</span><ul class="issues">${check.issues.map((i) => h`<li><code>${i}</code></li>`)}</ul>`;
}

/**
 * The whole page; `checks` holds the schema check of each event, in order.
 *
 * @example
 * eventsView(ctx, url, filter, page, checks, queues, names);
 */
export function eventsView(
  ctx: PageContext,
  url: string,
  filter: EventFilter,
  page: EventPage,
  checks: readonly SchemaCheck[],
  queues: readonly string[],
  eventNames: readonly string[],
  notice?: Notice,
): Html {
  const option = (value: string, label: string, selected: boolean) => h`<option value="${value}"${selected ? h` selected` : ''}>${label}</option>`;
  const form = h`<form class="filters" method="get" action="/events">
  <label>Queue <select name="queue">${option('', 'all queues', filter.queue === undefined)}${queues.map((q) => option(q, q, q === filter.queue))}</select></label>
  <label>Event name starts with <input name="name" value="${filter.name ?? ''}" list="event-names" autocomplete="off" spellcheck="false"></label>
  <datalist id="event-names">${eventNames.map((n) => h`<option value="${n}">`)}</datalist>
  <label>Emitted since (UTC) <input type="datetime-local" step="1" name="since" value="${localInput(filter.since)}"></label>
  <label>until (UTC) <input type="datetime-local" step="1" name="until" value="${localInput(filter.until)}"></label>
  <button type="submit">Filter</button>
  <a class="button secondary" href="/events">Clear</a>
</form>`;
  const table =
    page.events.length === 0
      ? h`<p class="empty">No events match.</p>`
      : h`<table class="events">
<thead><tr><th scope="col">Emitted</th>${filter.queue === undefined ? h`<th scope="col">Queue</th>` : ''}<th scope="col">Event</th><th scope="col">Schema</th><th scope="col">Payload</th></tr></thead>
<tbody>${page.events.map(
          (e, i) => h`<tr data-event="${e.event_name}">
  <td>${time(e.emitted_at)}</td>
  ${filter.queue === undefined ? h`<td>${e.queue_name}</td>` : ''}
  <td><code>${e.event_name}</code></td>
  <td>${checks[i] ? checkBadge(checks[i]) : ''}</td>
  <td>${json(e.payload)}</td>
</tr>`,
        )}</tbody>
</table>`;
  const pager = h`<nav class="pager" aria-label="Pages">
  ${filter.after !== undefined ? h`<a href="${eventsHref({ ...filter, after: undefined })}" rel="first">« Newest</a>` : ''}
  ${page.older !== null ? h`<a href="${eventsHref({ ...filter, after: page.older })}" rel="next">Older ›</a>` : ''}
</nav>`;
  const body = h`<h1>Events${filter.queue !== undefined ? h` <small>in ${filter.queue}</small>` : ''}</h1>
${form}
${liveRegion('events-live', url, h`${table}${pager}`, filter.after === undefined)}`;
  return layout(ctx, { title: 'Events', active: 'events', body, ...(notice ? { notice } : {}) });
}
