/**
 * The schedules page: every cron schedule (or those of one queue) with its task, cron expression
 * and time zone, next tick, last tick and the task it spawned, last error, catch-up policy and
 * whether it is paused, with a button to pause or resume it. On an engine without schedules it says
 * how to get them.
 */
import { csrfField, h, json, layout, liveRegion, stateBadge, taskHref, tasksHref, time, type Html, type Notice, type PageContext } from '../html.js';
import { isMissing, type MissingFeature } from '../engine-features.js';
import type { ScheduleView } from '../schedules.js';

/**
 * The path of the schedules page, of one queue or all.
 *
 * @example
 * schedulesHref('reports'); // /schedules?queue=reports
 */
export function schedulesHref(queue?: string): string {
  return queue === undefined || queue === '' ? '/schedules' : `/schedules?queue=${encodeURIComponent(queue)}`;
}

function pauseButton(ctx: PageContext, s: ScheduleView, queueFilter: string | undefined): Html {
  if (ctx.readOnly) return h``;
  const action = s.paused ? 'resume' : 'pause';
  return h`<form method="post" action="/schedules/${action}" class="inline">${csrfField(ctx)}
<input type="hidden" name="name" value="${s.name}">${queueFilter !== undefined ? h`<input type="hidden" name="queue" value="${queueFilter}">` : ''}
<button type="submit" name="action" value="${action}">${s.paused ? 'Resume' : 'Pause'}</button></form>`;
}

function lastTick(s: ScheduleView): Html {
  if (s.lastFiredAt === null && s.lastTaskID === null) return h`<span class="muted">never fired</span>`;
  const task =
    s.lastTaskID === null
      ? ''
      : h`<div><a class="mono" href="${taskHref(s.queue, s.lastTaskID)}">${s.lastTaskID}</a> ${s.lastTaskState === null ? h`<span class="badge gone" title="Cleaned up, or its queue is gone">gone</span>` : stateBadge(s.lastTaskState)}</div>`;
  return h`${time(s.lastFiredAt)}${task}`;
}

function scheduleRow(ctx: PageContext, s: ScheduleView, queueFilter: string | undefined): Html {
  return h`<tr data-schedule="${s.name}">
  <th scope="row">${s.name}${s.params !== null ? h`<details><summary>params</summary>${json(s.params)}</details>` : ''}</th>
  <td><a href="${tasksHref({ queue: s.queue })}">${s.queue}</a>${s.queueExists ? '' : h`<div class="bad" title="The queue was dropped: the schedule fires nothing until it is created again">no such queue</div>`}</td>
  <td><a href="${tasksHref({ queue: s.queue, name: s.taskName })}">${s.taskName}</a></td>
  <td><code>${s.cron}</code><div class="muted">${s.timezone}</div></td>
  <td>${s.paused ? h`<span class="muted" title="Paused: resuming starts from the first tick after now">–</span>` : time(s.nextFireAt)}</td>
  <td>${lastTick(s)}</td>
  <td>${s.lastError === null ? h`<span class="muted">–</span>` : h`<span class="bad">${s.lastError}</span>`}</td>
  <td>${s.catchUp}</td>
  <td>${s.paused ? h`<span class="badge paused">paused</span>` : h`<span class="badge active">active</span>`} ${pauseButton(ctx, s, queueFilter)}</td>
</tr>`;
}

/**
 * The whole page. `schedules` is the advice of missingFeature when the engine has no schedules.
 *
 * @example
 * schedulesView(ctx, '/schedules', undefined, await readSchedules(db), queues);
 */
export function schedulesView(
  ctx: PageContext,
  url: string,
  queue: string | undefined,
  schedules: readonly ScheduleView[] | MissingFeature,
  queues: readonly string[],
  notice?: Notice,
): Html {
  if (isMissing(schedules)) {
    const body = h`<h1>Schedules</h1><p class="notice error missing-feature">${schedules.missing}</p>`;
    return layout(ctx, { title: 'Schedules', active: 'schedules', body, ...(notice ? { notice } : {}) });
  }
  const list = schedules;
  const option = (value: string, label: string, selected: boolean) => h`<option value="${value}"${selected ? h` selected` : ''}>${label}</option>`;
  const choices = [...new Set([...queues, ...(queue !== undefined ? [queue] : [])])].sort();
  const form = h`<form class="filters" method="get" action="/schedules">
  <label>Queue <select name="queue">${option('', 'all queues', queue === undefined)}${choices.map((q) => option(q, q, q === queue))}</select></label>
  <button type="submit">Filter</button>
</form>`;
  const table =
    list.length === 0
      ? h`<p class="empty">No schedules${queue !== undefined ? h` on ${queue}` : ''}. Declare one with <code>defineSchedule</code> and apply it with a worker or <code>absurd schedules sync</code> (docs/schedules.md).</p>`
      : h`<table class="schedules">
<thead><tr><th scope="col">Schedule</th><th scope="col">Queue</th><th scope="col">Task</th><th scope="col">Cron</th><th scope="col">Next tick</th>
<th scope="col">Last tick</th><th scope="col">Last error</th><th scope="col" title="What happens to ticks missed while no worker claimed">Catch-up</th><th scope="col">State</th></tr></thead>
<tbody>${list.map((s) => scheduleRow(ctx, s, queue))}</tbody>
</table>`;
  const body = h`<h1>Schedules${queue !== undefined ? h` <small>of ${queue}</small>` : ''}</h1>
${form}
${liveRegion('schedules-live', url, table)}
<p class="hint">Ticks fire when a worker claims on the schedule's queue. Times are UTC; the cron expression is read in the schedule's time zone.</p>`;
  return layout(ctx, { title: 'Schedules', active: 'schedules', body, ...(notice ? { notice } : {}) });
}
