/**
 * The limits page: per queue, each concurrency and rate limit (the task it applies to or all
 * tasks, its bucket key or one bucket, max running, rate) with the runs running and parked under
 * it now, each parked count a link to the tasks it parks; that list of parked tasks; and how a
 * parked run is shown on the task pages. On an engine without limits it says how to get them.
 */
import { h, layout, liveRegion, taskHref, tasksHref, time, type Html, type Notice, type PageContext } from '../html.js';
import { isMissing, type MissingFeature } from '../engine-features.js';
import { PARKED_PAGE, type LimitView, type ParkedRun, type ParkedTask } from '../limits.js';

/**
 * The path of the limits page, of one queue or all.
 *
 * @example
 * limitsHref('payments'); // /limits?queue=payments
 */
export function limitsHref(queue?: string): string {
  return queue === undefined || queue === '' ? '/limits' : `/limits?queue=${encodeURIComponent(queue)}`;
}

/**
 * The path of the list of tasks a limit parks, in one bucket or all.
 *
 * @example
 * parkedHref('payments', 'charge-card:concurrency', '"cust-1"'); // /limits/parked?queue=payments&limit=…&key=…
 */
export function parkedHref(queue: string, limit: string, key?: string): string {
  const params = new URLSearchParams({ queue, limit });
  if (key !== undefined) params.set('key', key);
  return `/limits/parked?${params.toString()}`;
}

/** A parked run, where the task pages would say "pending, due never": the limit and bucket it waits for. */
export function parkedNote(queue: string, parked: ParkedRun): Html {
  return h`<span class="badge parked" title="Its bucket of this limit is full: it is claimed once a run of the bucket stops running">parked</span>
<span class="muted">by</span> <a href="${parkedHref(queue, parked.limit)}">${parked.limit}</a>, <span class="muted">bucket</span> <a href="${parkedHref(queue, parked.limit, parked.key)}"><code>${parked.key}</code></a>`;
}

function rateText(limit: LimitView): Html {
  if (limit.rate === null) return h`<span class="muted">–</span>`;
  return h`${limit.rate.count} <span class="muted">per</span> ${limit.rate.periodSeconds} s`;
}

function limitRow(limit: LimitView): Html {
  const full = limit.maxRunning !== null && limit.keyPath === null && limit.running >= limit.maxRunning;
  return h`<tr data-limit="${limit.name}" data-queue="${limit.queue}">
  <th scope="row">${limit.name}</th>
  <td>${limit.taskName === null ? h`<span class="muted">all tasks</span>` : h`<a href="${tasksHref({ queue: limit.queue, name: limit.taskName })}">${limit.taskName}</a>`}</td>
  <td>${limit.keyPath === null ? h`<span class="muted">one bucket</span>` : h`<code>${limit.keyPath.join('.')}</code>`}</td>
  <td class="num">${limit.maxRunning ?? h`<span class="muted">–</span>`}</td>
  <td>${rateText(limit)}</td>
  <td class="num${full ? ' bad' : ''}">${limit.running}</td>
  <td class="num">${limit.parked === 0 ? h`<span class="muted">0</span>` : h`<a class="count parked" href="${parkedHref(limit.queue, limit.name)}">${limit.parked}</a>`}</td>
</tr>`;
}

/**
 * The limits page. `limits` is the advice of missingFeature when the engine has no limits.
 *
 * @example
 * limitsView(ctx, '/limits', undefined, await readLimits(db), queues);
 */
export function limitsView(
  ctx: PageContext,
  url: string,
  queue: string | undefined,
  limits: readonly LimitView[] | MissingFeature,
  queues: readonly string[],
  notice?: Notice,
): Html {
  if (isMissing(limits)) {
    const body = h`<h1>Limits</h1><p class="notice error missing-feature">${limits.missing}</p>`;
    return layout(ctx, { title: 'Limits', active: 'limits', body, ...(notice ? { notice } : {}) });
  }
  const list = limits;
  const option = (value: string, label: string, selected: boolean) => h`<option value="${value}"${selected ? h` selected` : ''}>${label}</option>`;
  const form = h`<form class="filters" method="get" action="/limits">
  <label>Queue <select name="queue">${option('', 'all queues', queue === undefined)}${queues.map((q) => option(q, q, q === queue))}</select></label>
  <button type="submit">Filter</button>
</form>`;
  const byQueue = new Map<string, LimitView[]>();
  for (const limit of list) byQueue.set(limit.queue, [...(byQueue.get(limit.queue) ?? []), limit]);
  const head = h`<thead><tr><th scope="col">Limit</th><th scope="col">Applies to</th><th scope="col">Bucket key</th><th scope="col" class="num">Max running</th>
<th scope="col">Rate</th><th scope="col" class="num" title="Runs holding a slot of the limit now">Running</th><th scope="col" class="num" title="Runs waiting for a slot of their bucket">Parked</th></tr></thead>`;
  const tables =
    list.length === 0
      ? h`<p class="empty">No limits${queue !== undefined ? h` on ${queue}` : ''}. Declare <code>concurrency</code> or <code>rateLimit</code> on a task contract, or set one with <code>absurd limits set</code> (docs/flow-control.md).</p>`
      : h`${[...byQueue].map(
          ([q, rows]) => h`<section class="queue-limits" data-queue="${q}"><h2><a href="${tasksHref({ queue: q })}">${q}</a></h2>
<table class="limits">${head}<tbody>${rows.map(limitRow)}</tbody></table></section>`,
        )}`;
  const body = h`<h1>Limits${queue !== undefined ? h` <small>of ${queue}</small>` : ''}</h1>
${form}
${liveRegion('limits-live', url, tables)}
<p class="hint">A run holds a slot of each of its buckets while it runs; a due run whose bucket is full is parked until a run of that bucket stops running. Running and parked count every bucket of the limit.</p>`;
  return layout(ctx, { title: 'Limits', active: 'limits', body, ...(notice ? { notice } : {}) });
}

/**
 * The tasks a limit parks, in one bucket or all, {@link PARKED_PAGE} at most.
 *
 * @example
 * parkedView(ctx, url, 'payments', 'charge-card:concurrency', undefined, await readParkedTasks(db, …));
 */
export function parkedView(
  ctx: PageContext,
  url: string,
  queue: string,
  limit: string,
  key: string | undefined,
  tasks: readonly ParkedTask[] | MissingFeature,
  notice?: Notice,
): Html {
  const title = h`<h1>Parked by ${limit} <small>in ${queue}${key !== undefined ? h`, bucket <code>${key}</code>` : ''}</small></h1>
<p><a href="${limitsHref(queue)}">‹ Limits of ${queue}</a>${key !== undefined ? h` · <a href="${parkedHref(queue, limit)}">every bucket</a>` : ''}</p>`;
  if (isMissing(tasks)) {
    const body = h`${title}<p class="notice error missing-feature">${tasks.missing}</p>`;
    return layout(ctx, { title: 'Parked tasks', active: 'limits', body, ...(notice ? { notice } : {}) });
  }
  const list = tasks;
  const table =
    list.length === 0
      ? h`<p class="empty">No task is parked by this limit${key !== undefined ? ' in this bucket' : ''} now.</p>`
      : h`<table class="parked">
<thead><tr><th scope="col">Task</th><th scope="col">Name</th><th scope="col">Bucket</th><th scope="col" class="num">Attempt</th><th scope="col">Created</th></tr></thead>
<tbody>${list.map(
          (t) => h`<tr data-task-id="${t.task_id}">
  <td><a class="mono" href="${taskHref(queue, t.task_id)}">${t.task_id}</a></td>
  <td>${t.task_name}</td>
  <td><a href="${parkedHref(queue, limit, t.key)}"><code>${t.key}</code></a></td>
  <td class="num">${t.attempt}</td>
  <td>${time(t.enqueue_at)}</td>
</tr>`,
        )}</tbody></table>
${list.length >= PARKED_PAGE ? h`<p class="hint">The first ${PARKED_PAGE} by bucket; the limits page counts them all.</p>` : ''}`;
  const body = h`${title}${liveRegion('parked-live', url, table)}`;
  return layout(ctx, { title: 'Parked tasks', active: 'limits', body, ...(notice ? { notice } : {}) });
}
