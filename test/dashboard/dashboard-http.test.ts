/**
 * `absurd dashboard` over HTTP, without a browser: the security model (binding, host names, the
 * token, CSRF and Origin checks, read-only), escaping of names that hold markup, the pages' data,
 * and keyset paging of the task list across queues, filters and a params search.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDashboard, type RunningDashboard } from '../../packages/cli/src/dashboard/server.js';
import { missingFeature } from '../../packages/cli/src/dashboard/engine-features.js';
import { readEventPage } from '../../packages/cli/src/dashboard/event-page.js';
import { readTaskPage, type TaskFilter, type TaskPage } from '../../packages/cli/src/dashboard/task-page.js';
import { useTestDatabase } from '../support/db.js';
import { cli, uniqueQueue } from '../cli/helpers.js';
import { table } from '../sql/helpers.js';
import { useAbsurdDatabases } from '../support/absurd-schema.js';
import { seedFlowControl, seedQueue, writeManifest, type SeededFlowControl, type SeededTasks } from './fixtures.js';

const db = useTestDatabase();
const absurdDatabases = useAbsurdDatabases();
const TOKEN = 'a-token-of-32-characters-0123456';
let manifestFile: string;
let open: RunningDashboard;
let queue: string;
let tasks: SeededTasks;

/** A fetch that does not follow redirects. */
function get(url: string, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { redirect: 'manual', ...init });
}

/** The CSRF token of a page's forms. */
/** Text as the pages escape it. */
function escaped(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;').replaceAll("'", '&#39;');
}

/** A form POST from the dashboard's own pages (no Origin: as a same-origin form without one). */
function postForm(url: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
  return get(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form).toString(),
  });
}

function csrfOf(page: string): string {
  const token = /name="_csrf" value="([^"]+)"/.exec(page)?.[1];
  if (!token) throw new Error('no CSRF field on the page');
  return token;
}

beforeAll(async () => {
  manifestFile = await writeManifest();
  queue = uniqueQueue(`dash <b>"x"</b> it's`);
  tasks = await seedQueue(db.pool, queue);
  open = await startDashboard({ databaseUrl: db.url, port: 0, manifestFile });
});

afterAll(async () => {
  await open?.close();
});

describe('binding', () => {
  it('binds to 127.0.0.1 by default and refuses another host without a token', async () => {
    expect(open.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    await expect(startDashboard({ databaseUrl: db.url, port: 0, host: '0.0.0.0' })).rejects.toThrow(/needs|--token/);
    const result = await cli(['dashboard', '--host', '0.0.0.0', '--port', '0', '--database-url', db.url]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--token');
  });

  it('refuses a short token', async () => {
    await expect(startDashboard({ databaseUrl: db.url, port: 0, token: 'short' })).rejects.toThrow(/16 characters/);
  });

  it('answers to loopback host names only, so that DNS rebinding cannot reach it', async () => {
    // fetch cannot send another Host header; node:http can.
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(open.url, { headers: { host: 'evil.example:80' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(403);
    expect((await get(open.url)).status).toBe(200);
  });
});

describe('pages', () => {
  it('lists queues with counts per state, escaping names that hold markup', async () => {
    const page = await (await get(open.url)).text();
    expect(page).not.toContain('<b>"x"</b>');
    expect(page).toContain('dash &lt;b&gt;&quot;x&quot;&lt;/b&gt; it&#39;s');
    const row = page.slice(page.indexOf(`data-queue="${queue.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;').replaceAll("'", '&#39;')}"`));
    // pending: the child and the last one; failed: one.
    expect(row).toMatch(/state-pending"[^>]*>2</);
    expect(row).toMatch(/state-failed"[^>]*>1</);
    expect(row).toContain(`href="${escaped(`/schedules?queue=${encodeURIComponent(queue)}`)}"`);
    expect(row).toContain(`href="${escaped(`/limits?queue=${encodeURIComponent(queue)}`)}"`);
  });

  it('shows a task with its runs, failure, checkpoints checked against the manifest, and its child', async () => {
    const page = await (await get(`${open.url}task/${tasks.failed}?queue=${encodeURIComponent(queue)}`)).text();
    expect(page).toContain('PaymentDeclined: card declined for order A-1');
    expect(page).toContain('at charge (workflows/orders.ts:42:11)');
    const reserve = page.slice(page.indexOf('data-checkpoint="reserve-inventory"'));
    expect(reserve).toMatch(/badge invalid/);
    expect(reserve).toContain('reserved: Instance type');
    const payment = page.slice(page.indexOf('data-checkpoint="process-payment"'));
    expect(payment).toMatch(/badge valid/);

    const parent = await (await get(`${open.url}task/${tasks.completed}?queue=${encodeURIComponent(queue)}`)).text();
    expect(parent).toContain(`/task/${tasks.child}?queue=`);
    const child = await (await get(`${open.url}task/${tasks.child}?queue=${encodeURIComponent(queue)}`)).text();
    expect(child).toContain(`/task/${tasks.completed}?queue=`);
  });

  it('finds a task by its id or the id of a run, in any queue', async () => {
    const found = await get(`${open.url}find?id=${tasks.sleeping}`);
    expect(found.status).toBe(303);
    expect(found.headers.get('location')).toContain(`/task/${tasks.sleeping}?queue=`);
    const missing = await get(`${open.url}find?id=00000000-0000-7000-8000-000000000000`);
    expect(missing.headers.get('location')).toMatch(/^\/tasks\?flash=/);
  });

  it('refuses filters that do not parse instead of sending them to the database', async () => {
    const page = await (await get(`${open.url}tasks?state=${encodeURIComponent("failed' or 1=1 --")}&after=nope`)).text();
    expect(page).toContain('Some filters were left out');
    expect(page).toContain('state must be one of');
  });
});

describe('actions', () => {
  async function post(path: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
    return get(`${open.url}${path.replace(/^\//, '')}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams(form).toString(),
    });
  }
  const taskPath = (id: string, action: string) => `/task/${id}/${action}?queue=${encodeURIComponent(queue)}`;

  it('refuses a POST without the CSRF token, or from another origin', async () => {
    const page = await (await get(`${open.url}task/${tasks.pending}?queue=${encodeURIComponent(queue)}`)).text();
    const csrf = csrfOf(page);
    expect((await post(taskPath(tasks.pending, 'cancel'), {})).status).toBe(403);
    expect((await post(taskPath(tasks.pending, 'cancel'), { _csrf: 'x'.repeat(csrf.length) })).status).toBe(403);
    expect((await post(taskPath(tasks.pending, 'cancel'), { _csrf: csrf }, { origin: 'http://evil.example' })).status).toBe(403);
    expect((await post(taskPath(tasks.pending, 'cancel'), { _csrf: csrf }, { 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    const { rows } = await db.pool.query(`select state from ${table('t', queue)} where task_id = $1`, [tasks.pending]);
    expect(rows[0].state).toBe('pending');
  });

  it('emits an event only when its payload matches the contract', async () => {
    const page = await (await get(`${open.url}task/${tasks.waiting}?queue=${encodeURIComponent(queue)}`)).text();
    const csrf = csrfOf(page);
    const refused = await post(taskPath(tasks.waiting, 'emit'), { _csrf: csrf, event: 'shipment.packed:A-7', payload: '{"trackingNumber": ""}' });
    expect(refused.status).toBe(303);
    const shown = await (await get(`${open.url}${refused.headers.get('location')!.slice(1)}`)).text();
    expect(shown).toContain('does not match the contract');
    const events = table('e', queue);
    expect((await db.pool.query(`select payload from ${events} where event_name = 'shipment.packed:A-7'`)).rows[0]?.payload ?? null).toBeNull();

    const sent = await post(taskPath(tasks.waiting, 'emit'), { _csrf: csrf, event: 'shipment.packed:A-7', payload: '{"trackingNumber": "T-7"}' });
    const after = await (await get(`${open.url}${sent.headers.get('location')!.slice(1)}`)).text();
    expect(after).toContain('emitted');
    expect((await db.pool.query(`select payload from ${events} where event_name = 'shipment.packed:A-7'`)).rows[0].payload).toEqual({ trackingNumber: 'T-7' });
  });

  it('refuses every action with --read-only, and shows none', async () => {
    const readOnly = await startDashboard({ databaseUrl: db.url, port: 0, manifestFile, readOnly: true });
    try {
      const page = await (await get(`${readOnly.url}task/${tasks.pending}?queue=${encodeURIComponent(queue)}`)).text();
      expect(page).not.toContain('<form method="post"');
      expect(page).toContain('read-only');
      const response = await fetch(`${readOnly.url}task/${tasks.pending}/cancel?queue=${encodeURIComponent(queue)}`, {
        method: 'POST',
        redirect: 'manual',
        body: new URLSearchParams({ _csrf: 'anything' }),
      });
      expect(response.status).toBe(403);
    } finally {
      await readOnly.close();
    }
  });
});

describe('with a token', () => {
  let guarded: RunningDashboard;
  beforeAll(async () => {
    guarded = await startDashboard({ databaseUrl: db.url, port: 0, manifestFile, token: TOKEN });
  });
  afterAll(async () => {
    await guarded?.close();
  });

  it('refuses requests without it, takes it as a bearer header or from the printed link', async () => {
    expect(guarded.openUrl).toBe(`${guarded.url}?token=${TOKEN}`);
    const refused = await get(`${guarded.url}tasks`);
    expect(refused.status).toBe(401);
    expect(await refused.text()).toContain('needs its token');
    expect((await get(`${guarded.url}tasks?token=wrong-token-wrong-token-wrong-tok`)).status).toBe(401);
    expect((await get(`${guarded.url}tasks`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);

    const link = await get(guarded.openUrl);
    expect(link.status).toBe(303);
    expect(link.headers.get('location')).toBe('/');
    const cookie = link.headers.get('set-cookie')!;
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    expect(cookie).not.toContain(TOKEN);
    expect((await get(`${guarded.url}tasks`, { headers: { cookie: cookie.split(';')[0]! } })).status).toBe(200);
  });

  it('redirects after the link only within the dashboard', async () => {
    const response = await get(`${guarded.url.replace(/\/$/, '')}//evil.example/x?token=${TOKEN}`);
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/evil.example/x');
  });
});

describe('the task list', () => {
  const pageQueues: string[] = [];
  const created: { queue: string; id: string; name: string; state: string; n: number }[] = [];

  beforeAll(async () => {
    for (const label of ['page-a', 'page-b']) {
      const q = uniqueQueue(label);
      pageQueues.push(q);
      await db.pool.query('select absurd.create_queue($1)', [q]);
    }
    // 60 tasks over two queues, alternating, with names and states in cycles and a params field.
    for (let n = 0; n < 60; n++) {
      const q = pageQueues[n % 2]!;
      const name = n % 3 === 0 ? 'charge' : 'ship';
      const { rows } = await db.pool.query<{ task_id: string }>('select task_id from absurd.spawn_task($1, $2, $3)', [
        q,
        name,
        JSON.stringify({ n, customer: { id: `c-${n % 7}` } }),
      ]);
      created.push({ queue: q, id: rows[0]!.task_id, name, state: 'pending', n });
    }
  });

  async function all(filter: TaskFilter, limit: number, searchBudget?: number): Promise<TaskPage[]> {
    const pages: TaskPage[] = [];
    const client = await db.pool.connect();
    try {
      let after: string | undefined;
      for (let i = 0; i < 100; i++) {
        const page = await readTaskPage(client, { ...filter, ...(after ? { after } : {}) }, { limit, ...(searchBudget ? { searchBudget } : {}) });
        pages.push(page);
        if (page.older === null) break;
        after = page.older;
      }
    } finally {
      client.release();
    }
    return pages;
  }

  const newestFirst = (list: typeof created) => [...list].sort((a, b) => (a.id < b.id ? 1 : -1)).map((t) => t.id);
  const inQueues = () => created.filter((t) => pageQueues.includes(t.queue));

  it('pages through every queue newest first, each task once', async () => {
    const pages = await all({}, 7);
    const ids = pages.flatMap((p) => p.tasks).filter((t) => pageQueues.includes(t.queue_name)).map((t) => t.task_id);
    expect(ids).toEqual(newestFirst(inQueues()));
  });

  it('pages by task name, and by name and state, through the index parts', async () => {
    const pages = await all({ queue: pageQueues[0]!, name: 'charge' }, 4);
    expect(pages.flatMap((p) => p.tasks).map((t) => t.task_id)).toEqual(
      newestFirst(inQueues().filter((t) => t.queue === pageQueues[0] && t.name === 'charge')),
    );
    expect((await all({ queue: pageQueues[0]!, name: 'charge', state: 'failed' }, 4)).flatMap((p) => p.tasks)).toEqual([]);
  });

  it('goes back to newer pages with `before`', async () => {
    const client = await db.pool.connect();
    try {
      const first = await readTaskPage(client, { queue: pageQueues[1]! }, { limit: 5 });
      const second = await readTaskPage(client, { queue: pageQueues[1]!, after: first.older! }, { limit: 5 });
      expect(second.newer).not.toBeNull();
      const back = await readTaskPage(client, { queue: pageQueues[1]!, before: second.newer! }, { limit: 5 });
      expect(back.tasks.map((t) => t.task_id)).toEqual(first.tasks.map((t) => t.task_id));
      expect(back.newer).toBeNull();
    } finally {
      client.release();
    }
  });

  it('searches a params field, and finds every match across pages', async () => {
    const pages = await all({ field: 'customer.id', value: 'c-3' }, 3);
    const expected = newestFirst(inQueues().filter((t) => t.n % 7 === 3));
    expect(pages.flatMap((p) => p.tasks).map((t) => t.task_id).filter((id) => expected.includes(id))).toEqual(expected);
  });

  it('reads at most its budget per page when searching, and goes on from where it stopped', async () => {
    const filter: TaskFilter = { queue: pageQueues[0]!, field: 'n', value: '0' };
    const pages = await all(filter, 10, 4);
    // 30 tasks in the queue, 4 read per page: the one match (n = 0, the oldest) is on the last page.
    expect(pages.length).toBeGreaterThanOrEqual(8);
    expect(pages.slice(0, -1).every((p) => p.tasks.length === 0 && p.searchedTo !== null)).toBe(true);
    expect(pages.flatMap((p) => p.tasks).map((t) => t.task_id)).toEqual([created[0]!.id]);
  });
});

describe('the event log', () => {
  it('pages through the emitted events of every queue newest first, each once, by name prefix too', async () => {
    const queues = [uniqueQueue('events-a'), uniqueQueue('events-b')];
    const emitted: string[] = [];
    const session = await db.connect();
    for (const q of queues) await session.query('select absurd.create_queue($1)', [q]);
    for (let n = 0; n < 9; n++) {
      // Two events share each instant, so that the cursor's tie-breakers are needed.
      await session.query(`select set_config('absurd.fake_now', $1, false)`, [new Date(Date.UTC(2030, 0, 1, 0, 0, Math.floor(n / 2))).toISOString()]);
      const name = `${n % 3 === 0 ? 'shipment.packed' : 'invoice.paid'}:K-${n}`;
      await session.query('select absurd.emit_event($1, $2, $3)', [queues[n % 2], name, JSON.stringify({ n })]);
      emitted.push(`${queues[n % 2]} ${name}`);
    }
    await session.query('set absurd.fake_now = default');
    // An event awaited but not emitted is not in the log.
    await session.query(`insert into ${table('e', queues[0]!)} (event_name, payload, emitted_at) values ('never:1', null, 'epoch')`);

    const client = await db.pool.connect();
    try {
      const read = async (filter: { name?: string }) => {
        const seen: string[] = [];
        let after: string | undefined;
        for (let i = 0; i < 20; i++) {
          const page = await readEventPage(client, { ...filter, ...(after ? { after } : {}) }, 2);
          seen.push(...page.events.filter((e) => queues.includes(e.queue_name)).map((e) => `${e.queue_name} ${e.event_name}`));
          if (page.older === null) break;
          after = page.older;
        }
        return seen;
      };
      const all = await read({});
      expect([...all].sort()).toEqual([...emitted].sort());
      expect(new Set(all).size).toBe(emitted.length);
      expect(all.at(-1)).toMatch(/K-[01]$/);
      expect((await read({ name: 'shipment.packed:' })).sort()).toEqual(emitted.filter((e) => e.includes('shipment.packed')).sort());
    } finally {
      client.release();
    }

    const page = await (await get(`${open.url}events?queue=${encodeURIComponent(queues[0]!)}`)).text();
    expect(page).toContain('shipment.packed:K-0');
    expect(page).not.toContain('never:1');
  });
});

describe('schedules and limits', () => {
  let flowQueue: string;
  let flow: SeededFlowControl;
  const paused = async (name: string) =>
    (await db.pool.query<{ paused: boolean; next_fire_at: Date }>('select paused, next_fire_at from absurd.kit_schedules where schedule_name = $1', [name])).rows[0]!;

  beforeAll(async () => {
    flowQueue = uniqueQueue(`flow <i>"y"</i> it's`);
    flow = await seedFlowControl(db.pool, flowQueue);
  });

  /** The `<tr>` of the page whose attribute `attr` is `value`, up to its end. */
  function row(page: string, attr: string, value: string): string {
    const start = page.indexOf(`${attr}="${escaped(value)}"`);
    expect(start, `no row with ${attr}=${value}`).toBeGreaterThan(-1);
    return page.slice(start, page.indexOf('</tr>', start));
  }

  it('lists the schedules of a queue: task, cron and zone, ticks, the last task spawned, catch-up, paused', async () => {
    const response = await get(`${open.url}schedules?queue=${encodeURIComponent(flowQueue)}`);
    expect(response.status).toBe(200);
    const page = await response.text();
    expect(page).toContain('aria-current="page">Schedules<');
    expect(page).not.toContain('<i>"y"</i>');
    const nightly = row(page, 'data-schedule', flow.schedule);
    expect(nightly).toContain(`href="${escaped(`/tasks?${new URLSearchParams({ queue: flowQueue, name: 'send-report' })}`)}"`);
    expect(nightly).toContain('<code>0 2 * * *</code>');
    expect(nightly).toContain('Europe/Berlin');
    expect(nightly).toContain(`href="${escaped(`/task/${flow.fired}?queue=${encodeURIComponent(flowQueue)}`)}"`);
    expect(nightly).toContain('badge state-pending');
    expect(nightly).toContain('latest');
    expect(nightly).toContain('badge active');
    expect(nightly).toContain('>Pause</button>');
    const fiveMinutes = row(page, 'data-schedule', flow.pausedSchedule);
    expect(fiveMinutes).toContain('badge paused');
    expect(fiveMinutes).toContain('never fired');
    expect(fiveMinutes).toContain('>Resume</button>');

    // Filtered by another queue, none of them.
    const other = await (await get(`${open.url}schedules?queue=${encodeURIComponent(queue)}`)).text();
    expect(other).not.toContain(escaped(flow.schedule));
    expect(other).toContain('No schedules');
  });

  it('pauses and resumes a schedule, then shows what it did once', async () => {
    const page = await (await get(`${open.url}schedules?queue=${encodeURIComponent(flowQueue)}`)).text();
    const csrf = csrfOf(page);
    const pausedResponse = await postForm(`${open.url}schedules/pause`, { _csrf: csrf, name: flow.schedule, queue: flowQueue });
    expect(pausedResponse.status).toBe(303);
    const location = pausedResponse.headers.get('location')!;
    expect(location).toMatch(new RegExp(`^/schedules\\?queue=${encodeURIComponent(flowQueue).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}&flash=`));
    expect((await paused(flow.schedule)).paused).toBe(true);
    const shown = await (await get(`${open.url}${location.slice(1)}`)).text();
    expect(shown).toContain('notice ok');
    expect(shown).toContain('paused');
    expect(row(shown, 'data-schedule', flow.schedule)).toContain('>Resume</button>');
    // The notice is shown once.
    expect(await (await get(`${open.url}${location.slice(1)}`)).text()).not.toContain('notice ok');

    const again = await postForm(`${open.url}schedules/pause`, { _csrf: csrf, name: flow.schedule });
    expect(await (await get(`${open.url}${again.headers.get('location')!.slice(1)}`)).text()).toContain('already paused');

    const resumed = await postForm(`${open.url}schedules/resume`, { _csrf: csrf, name: flow.schedule, queue: flowQueue });
    const after = await paused(flow.schedule);
    expect(after.paused).toBe(false);
    expect(after.next_fire_at.getTime()).toBeGreaterThan(Date.now());
    expect(await (await get(`${open.url}${resumed.headers.get('location')!.slice(1)}`)).text()).toContain('resumed');

    const unknown = await postForm(`${open.url}schedules/pause`, { _csrf: csrf, name: 'no-such-schedule' });
    const refused = await (await get(`${open.url}${unknown.headers.get('location')!.slice(1)}`)).text();
    expect(refused).toContain('notice error');
    expect(refused).toContain('there is no schedule named');
  });

  it('refuses to pause without the CSRF token, from another origin, and with --read-only', async () => {
    const page = await (await get(`${open.url}schedules`)).text();
    const csrf = csrfOf(page);
    expect((await postForm(`${open.url}schedules/pause`, { name: flow.schedule })).status).toBe(403);
    expect((await postForm(`${open.url}schedules/pause`, { name: flow.schedule, _csrf: 'y'.repeat(csrf.length) })).status).toBe(403);
    expect((await postForm(`${open.url}schedules/pause`, { name: flow.schedule, _csrf: csrf }, { origin: 'http://evil.example' })).status).toBe(403);
    expect((await paused(flow.schedule)).paused).toBe(false);

    const readOnly = await startDashboard({ databaseUrl: db.url, port: 0, manifestFile, readOnly: true });
    try {
      const shown = await (await get(`${readOnly.url}schedules?queue=${encodeURIComponent(flowQueue)}`)).text();
      expect(shown).toContain(escaped(flow.schedule));
      expect(shown).not.toContain('<form method="post"');
      expect((await postForm(`${readOnly.url}schedules/pause`, { name: flow.schedule, _csrf: 'anything' })).status).toBe(403);
      expect((await paused(flow.schedule)).paused).toBe(false);
    } finally {
      await readOnly.close();
    }
  });

  it('lists the limits of a queue with the runs running and parked, and the parked tasks behind a count', async () => {
    const page = await (await get(`${open.url}limits?queue=${encodeURIComponent(flowQueue)}`)).text();
    expect(page).toContain('aria-current="page">Limits<');
    const limit = row(page, 'data-limit', flow.limit);
    expect(limit).toContain('>charge-card</a>');
    expect(limit).toContain('<code>customerId</code>');
    const cells = [...limit.matchAll(/<td class="num[^"]*">(.*?)<\/td>/g)].map((m) => m[1]);
    expect(cells[0]).toBe('1'); // max running
    expect(cells[1]).toBe('1'); // running now
    const parkedLink = `/limits/parked?${new URLSearchParams({ queue: flowQueue, limit: flow.limit })}`;
    expect(cells[2]).toContain(`href="${escaped(parkedLink)}"`);
    expect(cells[2]).toContain('>1</a>');

    const list = await (await get(`${open.url}${parkedLink.slice(1)}`)).text();
    expect(list).toContain(`data-task-id="${flow.parked}"`);
    expect(list).not.toContain(`data-task-id="${flow.running}"`);
    expect(list).toContain('<code>&quot;cust-1&quot;</code>');
    const other = await (await get(`${open.url}limits/parked?queue=${encodeURIComponent(flowQueue)}&limit=${flow.limit}&key=${encodeURIComponent('"cust-2"')}`)).text();
    expect(other).not.toContain(`data-task-id="${flow.parked}"`);
    expect(other).toContain('No task is parked');

    // Every queue: the seeded one has no limits, so it is not listed.
    const all = await (await get(`${open.url}limits`)).text();
    expect(all).toContain(`data-queue="${escaped(flowQueue)}"`);
    expect(all).not.toContain(`<section class="queue-limits" data-queue="${escaped(queue)}"`);
  });

  it('shows a parked run as parked, by which limit and bucket, on its task page and in the task list', async () => {
    const page = await (await get(`${open.url}task/${flow.parked}?queue=${encodeURIComponent(flowQueue)}`)).text();
    const summary = page.slice(page.indexOf('class="summary"'), page.indexOf('</dl>'));
    expect(summary).toContain('badge parked');
    expect(summary).toContain(`>${flow.limit}</a>`);
    expect(summary).toContain('<code>&quot;cust-1&quot;</code>');
    const runs = page.slice(page.indexOf('<table class="runs">'), page.indexOf('</table>', page.indexOf('<table class="runs">')));
    expect(runs).toContain('badge parked');
    expect(runs).not.toContain('never');

    const running = await (await get(`${open.url}task/${flow.running}?queue=${encodeURIComponent(flowQueue)}`)).text();
    expect(running).not.toContain('badge parked');

    const list = await (await get(`${open.url}tasks?queue=${encodeURIComponent(flowQueue)}`)).text();
    expect(row(list, 'data-task-id', flow.parked)).toContain('badge parked');
    expect(row(list, 'data-task-id', flow.running)).not.toContain('badge parked');
    expect(row(list, 'data-task-id', flow.fired)).not.toContain('badge parked');
  });

  it('no longer shows a run as parked once its bucket frees it', async () => {
    const q = uniqueQueue('flow-release');
    const seeded = await seedFlowControl(db.pool, q);
    const { rows } = await db.pool.query<{ run_id: string }>(`select run_id from ${table('r', q)} where task_id = $1`, [seeded.running]);
    await db.pool.query('select absurd.complete_run($1, $2, $3)', [q, rows[0]!.run_id, '{}']);
    const page = await (await get(`${open.url}task/${seeded.parked}?queue=${encodeURIComponent(q)}`)).text();
    expect(page).not.toContain('badge parked');
    const list = await (await get(`${open.url}tasks?queue=${encodeURIComponent(q)}`)).text();
    expect(list).not.toContain('badge parked');
  });
});

describe("on a schema installed by Absurd's own tools", () => {
  it('serves the pages, and leaves out waking, which needs absurd-kit', async () => {
    const url = await absurdDatabases.create();
    const { Client } = (await import('pg')).default;
    const client = new Client({ connectionString: url });
    await client.connect();
    let seeded: SeededTasks;
    try {
      seeded = await seedQueue(client, 'orders');
    } finally {
      await client.end();
    }
    const served = await startDashboard({ databaseUrl: url, port: 0, manifestFile });
    try {
      expect(await (await get(served.url)).text()).toContain('orders');
      expect(await (await get(`${served.url}tasks?queue=orders&state=failed`)).text()).toContain(seeded.failed);
      const page = await (await get(`${served.url}task/${seeded.sleeping}?queue=orders`)).text();
      expect(page).toContain('Cancel');
      expect(page).not.toContain('Wake now');
      const response = await get(`${served.url}task/${seeded.sleeping}/wake?queue=orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ _csrf: csrfOf(page) }).toString(),
      });
      const after = await (await get(`${served.url}${response.headers.get('location')!.slice(1)}`)).text();
      expect(after).toContain('absurd migrate --adopt');
    } finally {
      await served.close();
    }
  });

  it('tells an absurd-kit engine not migrated yet to migrate, and a schema of Absurd to be adopted', () => {
    expect(missingFeature('limits', false)).toContain('Run `absurd migrate`');
    expect(missingFeature('limits', false)).not.toContain('--adopt');
    expect(missingFeature('schedules', true)).toContain('`absurd migrate --adopt`');
  });

  it('says that schedules and limits need absurd-kit, and how to adopt the schema, instead of failing', async () => {
    const url = await absurdDatabases.create();
    const { Client } = (await import('pg')).default;
    const client = new Client({ connectionString: url });
    await client.connect();
    let seeded: SeededTasks;
    try {
      seeded = await seedQueue(client, 'orders');
    } finally {
      await client.end();
    }
    const served = await startDashboard({ databaseUrl: url, port: 0, manifestFile });
    try {
      for (const path of ['schedules', 'schedules?queue=orders', 'limits', 'limits?queue=orders', 'limits/parked?queue=orders&limit=x']) {
        const response = await get(`${served.url}${path}`);
        expect(response.status, path).toBe(200);
        const page = await response.text();
        expect(page, path).toContain('missing-feature');
        expect(page, path).toContain('absurd migrate --adopt');
      }
      expect(await (await get(`${served.url}schedules`)).text()).toContain('000015');
      expect(await (await get(`${served.url}limits`)).text()).toContain('000016');
      // The task list and a pending task's page do not look for parked runs there.
      const list = await get(`${served.url}tasks?queue=orders`);
      expect(list.status).toBe(200);
      expect(await list.text()).not.toContain('badge parked');

      // A pause sent anyway (from an older page, say) is answered with the same advice.
      const taskPage = await (await get(`${served.url}task/${seeded.pending}?queue=orders`)).text();
      const response = await postForm(`${served.url}schedules/pause`, { _csrf: csrfOf(taskPage), name: 'nightly' });
      expect(response.status).toBe(303);
      const after = await (await get(`${served.url}${response.headers.get('location')!.slice(1)}`)).text();
      expect(after).toContain('notice error');
      expect(after).toContain('absurd migrate --adopt');
    } finally {
      await served.close();
    }
  });
});
