/**
 * The queues page: one row per queue with its tasks per state (each a link to the filtered task
 * list), its completions and failures of the last 5 and 60 minutes, its storage mode and policy,
 * and links to its events, schedules and limits.
 */
import { COUNT_CAP, type QueueOverview } from '../queue-overview.js';
import { count, h, layout, liveRegion, tasksHref, time, type Html, type Notice, type PageContext } from '../html.js';
import { TASK_STATES } from '../task-page.js';
import { eventsHref } from './events-view.js';
import { limitsHref } from './limits-view.js';
import { schedulesHref } from './schedules-view.js';

function policyText(queue: QueueOverview): Html {
  const entries = Object.entries(queue.policy);
  if (entries.length === 0) return h`<span class="muted">–</span>`;
  return h`<dl class="policy">${entries.map(([key, value]) => h`<dt>${key}</dt><dd>${String(value)}</dd>`)}</dl>`;
}

function queueRow(queue: QueueOverview): Html {
  const c = queue.counts;
  return h`<tr data-queue="${queue.name}">
  <th scope="row"><a href="${tasksHref({ queue: queue.name })}">${queue.name}</a> <a class="small" href="${eventsHref({ queue: queue.name })}">events</a>
    <a class="small" href="${schedulesHref(queue.name)}">schedules</a> <a class="small" href="${limitsHref(queue.name)}">limits</a></th>
  ${TASK_STATES.map(
    (state) =>
      h`<td class="num"><a class="count state-${state}${c[state] === 0 ? ' zero' : ''}" href="${tasksHref({ queue: queue.name, state })}">${count(c[state], COUNT_CAP)}</a></td>`,
  )}
  <td class="num">${count(c.completed_5m, COUNT_CAP)} / ${count(c.completed_60m, COUNT_CAP)}</td>
  <td class="num${c.failed_60m > 0 ? ' bad' : ''}">${count(c.failed_5m, COUNT_CAP)} / ${count(c.failed_60m, COUNT_CAP)}</td>
  <td>${queue.storageMode}</td>
  <td>${policyText(queue)}</td>
  <td>${time(queue.createdAt)}</td>
</tr>`;
}

/**
 * The whole page.
 *
 * @example
 * queuesView(ctx, await readQueueOverview(db));
 */
export function queuesView(ctx: PageContext, queues: readonly QueueOverview[], notice?: Notice): Html {
  const table =
    queues.length === 0
      ? h`<p class="empty">No queues yet. Create one with <code>absurd queue create &lt;name&gt;</code>.</p>`
      : h`<table class="queues">
<thead><tr>
  <th scope="col">Queue</th>${TASK_STATES.map((s) => h`<th scope="col" class="num">${s}</th>`)}
  <th scope="col" class="num" title="Runs that completed, among those last claimed in the last 5 / 60 minutes">completed 5m / 1h</th>
  <th scope="col" class="num" title="Runs that failed, among those last claimed in the last 5 / 60 minutes">failed 5m / 1h</th>
  <th scope="col">storage</th><th scope="col">policy</th><th scope="col">created</th>
</tr></thead>
<tbody>${queues.map(queueRow)}</tbody>
</table>`;
  const body = h`<h1>Queues</h1>
${liveRegion('queues-live', '/', table)}
<p class="hint">Counts read at most ${COUNT_CAP.toLocaleString('en')} rows each (shown as ${COUNT_CAP.toLocaleString('en')}+ beyond).</p>`;
  return layout(ctx, { title: 'Queues', active: 'queues', body, ...(notice ? { notice } : {}) });
}
