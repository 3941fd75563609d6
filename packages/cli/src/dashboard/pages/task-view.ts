/**
 * The task page: the task's settings, params and headers, its parent and children, every run
 * (attempt, times, failure with its stack), its checkpoints with whether each still validates
 * against today's step schema, its waits and the events they name, its outcome, and the actions
 * that apply to it. Everything but the emit form refreshes itself.
 */
import type { SchemaCheck } from '../contract-schemas.js';
import { csrfField, h, json, layout, liveRegion, stateBadge, taskHref, tasksHref, time, type Html, type Notice, type PageContext } from '../html.js';
import type { CheckpointView, RelatedTask, RunRow, TaskDetails } from '../task-details.js';
import { parkedNote } from './limits-view.js';

function checkBadge(check: SchemaCheck, internal = false): Html {
  if (internal) return h`<span class="badge muted" title="Kept by the runtime for itself">internal</span>`;
  if (check.status === 'unchecked') return h`<span class="badge muted" title="No schema declares it">no schema</span>`;
  const from = check.source === 'contract' ? 'the loaded contract' : 'generated/manifest.json';
  if (check.status === 'valid') return h`<span class="badge valid" title="Checked against ${from}">valid</span>`;
  return h`<span class="badge invalid" title="Checked against ${from}">invalid</span>
<ul class="issues">${check.issues.map((i) => h`<li><code>${i}</code></li>`)}</ul>`;
}

function related(task: RelatedTask): Html {
  return h`<a class="mono" href="${taskHref(task.queue, task.taskID)}">${task.taskID}</a> <span class="muted">in</span> ${task.queue} ${stateBadge(task.state)}`;
}

/** The failure of a run: `name: message`, and the stack folded away. */
function failure(reason: unknown): Html {
  if (reason === null || reason === undefined) return h``;
  const r = reason as { name?: unknown; message?: unknown; stack?: unknown };
  if (typeof r !== 'object' || typeof r.message !== 'string') return json(reason);
  const title = typeof r.name === 'string' && r.name !== '' ? `${r.name}: ${r.message}` : r.message;
  return h`<div class="failure"><strong>${title}</strong>
${typeof r.stack === 'string' && r.stack !== '' ? h`<details><summary>stack</summary><pre>${r.stack}</pre></details>` : ''}
<details><summary>failure as stored</summary>${json(reason)}</details></div>`;
}

/** When a run ended, or when it is due; for a parked run, the limit and bucket it waits for instead. */
function ended(d: TaskDetails, r: RunRow): Html {
  const parked = d.parked.get(r.run_id);
  if (parked) return parkedNote(d.queue, parked);
  return r.state === 'sleeping' || r.state === 'pending' ? h`<span class="muted">due</span> ${time(r.available_at)}` : time(r.completed_at ?? r.failed_at);
}

function runRows(d: TaskDetails): Html {
  const row = (r: RunRow) => h`<tr data-run-id="${r.run_id}">
  <td class="num">${r.attempt}</td>
  <td class="mono">${r.run_id}</td>
  <td>${stateBadge(r.state)}${r.wake_event !== null ? h`<div class="muted">waits for <code>${r.wake_event}</code></div>` : ''}</td>
  <td>${r.claimed_by ?? h`<span class="muted">–</span>`}</td>
  <td>${time(r.created_at)}</td>
  <td>${time(r.started_at)}</td>
  <td>${ended(d, r)}</td>
  <td>${r.state === 'running' ? time(r.claim_expires_at) : h`<span class="muted">–</span>`}</td>
  <td>${failure(r.failure_reason)}${r.result !== null ? json(r.result) : ''}</td>
</tr>`;
  return h`<table class="runs">
<thead><tr><th class="num">#</th><th>Run</th><th>State</th><th>Worker</th><th>Created</th><th>Started</th><th>Ended / due</th><th>Lease until</th><th>Failure / result</th></tr></thead>
<tbody>${d.runs.map(row)}</tbody></table>`;
}

function checkpointRows(d: TaskDetails): Html {
  if (d.checkpoints.length === 0) return h`<p class="empty">No checkpoints.</p>`;
  const attempt = new Map(d.runs.map((r) => [r.run_id, r.attempt]));
  const row = (c: CheckpointView) => h`<tr class="${c.internal ? 'internal' : ''}" data-checkpoint="${c.checkpoint_name}">
  <td><code>${c.checkpoint_name}</code>${c.step !== c.checkpoint_name ? h`<div class="muted">step <code>${c.step}</code></div>` : ''}</td>
  <td>${checkBadge(c.check, c.internal)}</td>
  <td>${c.status}</td>
  <td>${c.owner_run_id === null ? '–' : `#${attempt.get(c.owner_run_id) ?? '?'}`}</td>
  <td>${time(c.updated_at)}</td>
  <td>${json(c.state)}</td>
</tr>`;
  return h`<table class="checkpoints">
<thead><tr><th>Checkpoint</th><th>Schema</th><th>Status</th><th>Run</th><th>Updated</th><th>Value</th></tr></thead>
<tbody>${d.checkpoints.map(row)}</tbody></table>`;
}

function waitsAndEvents(d: TaskDetails): Html {
  const waits =
    d.waits.length === 0
      ? h`<p class="empty">No open waits.</p>`
      : h`<table class="waits"><thead><tr><th>Step</th><th>Event</th><th>Timeout</th><th>Since</th><th>Emitted</th></tr></thead><tbody>
${d.waits.map((w) => h`<tr><td><code>${w.step_name}</code></td><td><code>${w.event_name}</code></td><td>${time(w.timeout_at)}</td><td>${time(w.created_at)}</td><td>${time(w.emitted_at)}</td></tr>`)}
</tbody></table>`;
  const events =
    d.events.length === 0
      ? ''
      : h`<h3>Events</h3><table class="events"><thead><tr><th>Event</th><th>Emitted</th><th>Payload</th></tr></thead><tbody>
${d.events.map((e) => h`<tr><td><code>${e.event_name}</code></td><td>${time(e.emitted_at)}</td><td>${json(e.payload)}</td></tr>`)}
</tbody></table>`;
  return h`${waits}${events}`;
}

function outcome(d: TaskDetails): Html {
  const t = d.task;
  if (t.state === 'completed') return h`<h2>Result</h2>${json(t.completed_payload)}`;
  if (t.state === 'failed') return h`<h2>Failure</h2>${failure(d.runs.find((r) => r.run_id === t.last_attempt_run)?.failure_reason ?? null)}`;
  return h``;
}

/** The buttons that apply to the task's state; none in read-only mode. */
function actionButtons(ctx: PageContext, d: TaskDetails): Html {
  if (ctx.readOnly) return h``;
  const t = d.task;
  const base = `/task/${encodeURIComponent(t.task_id)}`;
  const button = (action: string, label: string, extra: Html | string = '') =>
    h`<form method="post" action="${base}/${action}?queue=${encodeURIComponent(d.queue)}" class="inline">${csrfField(ctx)}${extra}<button type="submit" name="action" value="${action}">${label}</button></form>`;
  const liveRun = d.runs.find((r) => r.run_id === t.last_attempt_run);
  const buttons = [
    t.state === 'failed' ? button('retry', 'Retry') : '',
    t.state === 'failed' ? button('retry-new', 'Retry as a new task') : '',
    ['pending', 'running', 'sleeping'].includes(t.state) ? button('cancel', 'Cancel') : '',
    ctx.canWake && t.state === 'sleeping' && liveRun?.wake_event === null ? button('wake', 'Wake now') : '',
  ].filter((b) => b !== '');
  return buttons.length === 0 ? h`` : h`<div class="actions">${buttons}</div>`;
}

/** The emit form, outside the live region so that refreshes do not reset what is typed. */
function emitForm(ctx: PageContext, d: TaskDetails, eventNames: readonly string[]): Html {
  if (ctx.readOnly) return h``;
  const waitedFor = d.waits.find((w) => w.emitted_at === null)?.event_name ?? d.runs.find((r) => r.wake_event !== null && r.state === 'sleeping')?.wake_event ?? '';
  return h`<section class="emit">
<h2>Emit an event on ${d.queue}</h2>
<form method="post" action="/task/${encodeURIComponent(d.task.task_id)}/emit?queue=${encodeURIComponent(d.queue)}">
  ${csrfField(ctx)}
  <label>Event <input name="event" value="${waitedFor}" list="event-names" required autocomplete="off" spellcheck="false"></label>
  <datalist id="event-names">${eventNames.map((n) => h`<option value="${n}">`)}</datalist>
  <label>Payload (JSON) <textarea name="payload" rows="3" spellcheck="false">{}</textarea></label>
  <button type="submit">Emit</button>
  <p class="hint">A payload is checked against the event's contract (the manifest, or the contracts loaded with --workflows) before it is sent; events are first-write-wins.</p>
</form>
</section>`;
}

/**
 * The whole page.
 *
 * @example
 * taskView(ctx, url, details, schemas.eventNames());
 */
export function taskView(ctx: PageContext, url: string, d: TaskDetails, eventNames: readonly string[], notice?: Notice): Html {
  const t = d.task;
  const lastParked = t.last_attempt_run === null ? undefined : d.parked.get(t.last_attempt_run);
  const live = h`<div class="summary">
  <p>${stateBadge(t.state)} <span class="muted">attempt</span> ${t.attempts} <span class="muted">of</span> ${t.max_attempts ?? 'unlimited'}</p>
  ${lastParked ? h`<p class="parked-note">${parkedNote(d.queue, lastParked)}</p>` : ''}
  ${actionButtons(ctx, d)}
</div>
<dl class="facts">
  <dt>Queue</dt><dd><a href="${tasksHref({ queue: d.queue })}">${d.queue}</a></dd>
  <dt>Created</dt><dd>${time(t.enqueue_at)}</dd>
  <dt>First started</dt><dd>${time(t.first_started_at)}</dd>
  ${t.cancelled_at ? h`<dt>Cancelled</dt><dd>${time(t.cancelled_at)}</dd>` : ''}
  ${t.idempotency_key !== null ? h`<dt>Idempotency key</dt><dd><code>${t.idempotency_key}</code></dd>` : ''}
  <dt>Parent</dt><dd>${d.parent ? related(d.parent) : h`<span class="muted">none</span>`}</dd>
  <dt>Children</dt><dd>${d.children.length === 0 ? h`<span class="muted">none</span>` : h`<ul class="children">${d.children.map((c) => h`<li>${related(c)}</li>`)}</ul>`}</dd>
</dl>
<div class="columns">
  <section><h2>Params ${checkBadge(d.paramsCheck)}</h2>${json(t.params)}</section>
  <section><h2>Headers</h2>${json(t.headers)}</section>
  <section><h2>Retry strategy</h2>${json(t.retry_strategy)}<h2>Cancellation</h2>${json(t.cancellation)}</section>
</div>
<h2>Runs</h2>
${runRows(d)}
<h2>Checkpoints</h2>
${checkpointRows(d)}
<h2>Waits</h2>
${waitsAndEvents(d)}
${outcome(d)}`;
  const body = h`<h1><span class="task-name">${t.task_name}</span> <small class="mono">${t.task_id}</small></h1>
${liveRegion('task-live', url, live)}
${emitForm(ctx, d, eventNames)}`;
  return layout(ctx, { title: t.task_name, active: 'tasks', body, ...(notice ? { notice } : {}) });
}
