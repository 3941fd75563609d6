/**
 * `absurd dashboard` in a real browser: headless Chromium (Debian's package) driven by
 * playwright-core. It lists queues and tasks, filters, opens a task, retries a failed one, cancels
 * and wakes sleeping ones, emits an event (refused first by the contract), sees a change without
 * reloading, shows names that hold markup as text, pauses and resumes a schedule, follows a
 * limit's parked count to a parked task, and asks for the token.
 *
 * Skipped, saying why, only when no Chromium is installed (`apt-get install chromium`; .ci/run
 * installs it). With ABSURD_DASHBOARD_SCREENSHOTS=<dir> it saves a screenshot of each main page.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDashboard, type RunningDashboard } from '../../packages/cli/src/dashboard/server.js';
import { uniqueQueue } from '../cli/helpers.js';
import { useTestDatabase } from '../support/db.js';
import { table } from '../sql/helpers.js';
import { seedFlowControl, seedQueue, writeManifest, type SeededTasks } from './fixtures.js';

const CANDIDATES = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter((p): p is string => !!p);
const executable = CANDIDATES.find((candidate) => existsSync(candidate));
const skipReason = `no Chromium found (looked for ${CANDIDATES.join(', ')}; install Debian's package: apt-get install chromium)`;
if (!executable) console.warn(`dashboard browser tests skipped: ${skipReason}`);

const screenshots = process.env.ABSURD_DASHBOARD_SCREENSHOTS;

/** Debian's Chromium, headless; as root it needs --no-sandbox, and the machine's closed network the rest. */
function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: executable!,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
const db = useTestDatabase();
const TOKEN = 'browser-test-token-0123456789abcdef';

describe.skipIf(!executable)(`the dashboard in Chromium${executable ? '' : ` (skipped: ${skipReason})`}`, () => {
  let browser: Browser;
  let page: Page;
  let dashboard: RunningDashboard;
  let queue: string;
  let tasks: SeededTasks;
  const dialogs: string[] = [];

  const state = async (taskID: string) =>
    (await db.pool.query<{ state: string }>(`select state from ${table('t', queue)} where task_id = $1`, [taskID])).rows[0]?.state;
  const taskUrl = (taskID: string) => `${dashboard.url}task/${taskID}?queue=${encodeURIComponent(queue)}`;

  beforeAll(async () => {
    queue = uniqueQueue(`orders <img src=x onerror=alert(1)> it's`);
    tasks = await seedQueue(db.pool, queue);
    await seedQueue(db.pool, uniqueQueue('receipts'));
    dashboard = await startDashboard({ databaseUrl: db.url, port: 0, manifestFile: await writeManifest() });
    browser = await launch();
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    // A name that got interpreted as markup would run its onerror handler and open a dialog.
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await dashboard?.close();
  });

  it('lists the queues, names that hold markup shown as text', async () => {
    await page.goto(dashboard.url);
    const row = page.locator('tr', { has: page.getByRole('link', { name: queue, exact: true }) });
    await expect(row.locator('a.count.state-failed').textContent()).resolves.toBe('1');
    // One in a sleep, one waiting for an event.
    await expect(row.locator('a.count.state-sleeping').textContent()).resolves.toBe('2');
    expect(await page.locator('img[src="x"]').count()).toBe(0);
  });

  it('lists the tasks of a queue and filters them by state', async () => {
    await page.getByRole('link', { name: queue, exact: true }).click();
    await page.waitForURL(/\/tasks\?queue=/);
    expect(await page.locator('tbody tr').count()).toBe(6);
    await page.locator('select[name="state"]').selectOption('failed');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL(/state=failed/);
    const rows = page.locator('tbody tr');
    expect(await rows.count()).toBe(1);
    await expect(rows.first().getAttribute('data-task-id')).resolves.toBe(tasks.failed);
  });

  it('opens a task: its failure, its stack, and checkpoints checked against the contract', async () => {
    await page.locator(`a[href^="/task/${tasks.failed}"]`).click();
    await page.waitForURL(new RegExp(`/task/${tasks.failed}`));
    await expect(page.locator('.failure strong').first().textContent()).resolves.toBe('PaymentDeclined: card declined for order A-1');
    await page.locator('details summary', { hasText: 'stack' }).first().click();
    await expect(page.getByText('at charge (workflows/orders.ts:42:11)').first().isVisible()).resolves.toBe(true);
    await expect(page.locator('tr[data-checkpoint="reserve-inventory"] .badge.invalid').count()).resolves.toBe(1);
    await expect(page.locator('tr[data-checkpoint="process-payment"] .badge.valid').count()).resolves.toBe(1);
  });

  it('retries a failed task', async () => {
    await page.getByRole('button', { name: 'Retry', exact: true }).click();
    await page.waitForSelector('.notice.ok');
    await expect(page.locator('.notice').textContent()).resolves.toContain('retried');
    expect(await state(tasks.failed)).toBe('pending');
    expect(await page.locator('table.runs tbody tr').count()).toBe(2);
  });

  it('wakes a sleeping task now', async () => {
    await page.goto(taskUrl(tasks.sleeping));
    await page.getByRole('button', { name: 'Wake now' }).click();
    await page.waitForSelector('.notice');
    await expect(page.locator('.notice').textContent()).resolves.toContain('woken');
    const { rows } = await db.pool.query<{ due: boolean }>(
      `select available_at <= absurd.current_time() as due from ${table('r', queue)} where task_id = $1 and state = 'sleeping'`,
      [tasks.sleeping],
    );
    expect(rows[0]?.due).toBe(true);
  });

  it('cancels a sleeping task', async () => {
    await page.goto(taskUrl(tasks.sleeping));
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.waitForSelector('.notice.ok');
    expect(await state(tasks.sleeping)).toBe('cancelled');
    await expect(page.locator('.summary .badge').first().textContent()).resolves.toBe('cancelled');
  });

  it('emits an event only once its payload matches the contract', async () => {
    await page.goto(taskUrl(tasks.waiting));
    const event = page.locator('input[name="event"]');
    await expect(event.inputValue()).resolves.toBe('shipment.packed:A-7');
    await page.locator('textarea[name="payload"]').fill('{"trackingNumber": ""}');
    await page.getByRole('button', { name: 'Emit' }).click();
    await page.waitForSelector('.notice.error');
    await expect(page.locator('.notice').textContent()).resolves.toContain('does not match the contract');
    expect(await state(tasks.waiting)).toBe('sleeping');

    await page.locator('textarea[name="payload"]').fill('{"trackingNumber": "T-7"}');
    await page.getByRole('button', { name: 'Emit' }).click();
    await page.waitForSelector('.notice.ok');
    expect(await state(tasks.waiting)).toBe('pending');

    // The event log lists it, its payload checked against the contract.
    await page.getByRole('link', { name: 'Events' }).click();
    const row = page.locator('tr[data-event="shipment.packed:A-7"]');
    await expect(row.locator('.badge.valid').count()).resolves.toBe(1);
    await expect(row.locator('pre.json').textContent()).resolves.toContain('"trackingNumber": "T-7"');
  });

  it('shows a change made elsewhere without reloading', async () => {
    await page.goto(taskUrl(tasks.pending));
    await expect(page.locator('.summary .badge').first().textContent()).resolves.toBe('pending');
    await db.pool.query('select absurd.cancel_task($1, $2)', [queue, tasks.pending]);
    await page.locator('.summary .badge', { hasText: 'cancelled' }).waitFor({ timeout: 8_000 });
    expect(dialogs).toEqual([]);
  });

  it('lists the schedules, pauses one and resumes it', async () => {
    const flowQueue = uniqueQueue(`reports <img src=x onerror=alert(2)>`);
    const flow = await seedFlowControl(db.pool, flowQueue);
    const paused = async () =>
      (await db.pool.query<{ paused: boolean }>('select paused from absurd.kit_schedules where schedule_name = $1', [flow.schedule])).rows[0]?.paused;

    await page.goto(dashboard.url);
    await page.getByRole('link', { name: 'Schedules', exact: true }).click();
    await page.waitForURL(/\/schedules$/);
    await page.locator('select[name="queue"]').selectOption(flowQueue);
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL(/\/schedules\?queue=/);
    const rows = page.locator('tr[data-schedule]');
    expect(await rows.count()).toBe(2);
    const nightly = page.locator(`tr[data-schedule="${flow.schedule}"]`);
    await expect(nightly.locator('code').first().textContent()).resolves.toBe('0 2 * * *');
    await expect(nightly.locator(`a[href^="/task/${flow.fired}"]`).count()).resolves.toBe(1);
    await expect(nightly.locator('.badge.active').count()).resolves.toBe(1);

    await nightly.getByRole('button', { name: 'Pause' }).click();
    await page.waitForSelector('.notice.ok');
    await expect(page.locator('.notice').textContent()).resolves.toContain('paused');
    expect(await paused()).toBe(true);
    await expect(page.locator(`tr[data-schedule="${flow.schedule}"] .badge.paused`).count()).resolves.toBe(1);
    expect(new URL(page.url()).searchParams.get('queue')).toBe(flowQueue);

    await page.locator(`tr[data-schedule="${flow.schedule}"]`).getByRole('button', { name: 'Resume' }).click();
    await page.locator('.notice.ok', { hasText: 'resumed' }).waitFor();
    expect(await paused()).toBe(false);

    // The task link of the schedule lists the tasks of that name.
    await page.locator(`tr[data-schedule="${flow.schedule}"]`).getByRole('link', { name: 'send-report' }).click();
    await page.waitForURL(/\/tasks\?.*name=send-report/);
    await expect(page.locator('tbody tr').first().getAttribute('data-task-id')).resolves.toBe(flow.fired);

    // A limit's parked count opens the parked task, which says by which limit and bucket.
    await page.getByRole('link', { name: 'Limits', exact: true }).click();
    await page.waitForURL(/\/limits$/);
    await page.locator(`tr[data-limit="${flow.limit}"][data-queue="${flowQueue}"] a.count.parked`).click();
    await page.waitForURL(/\/limits\/parked\?/);
    await page.locator(`a[href^="/task/${flow.parked}"]`).click();
    await page.waitForURL(new RegExp(`/task/${flow.parked}`));
    await expect(page.locator('.summary .badge.parked').count()).resolves.toBe(1);
    await expect(page.locator('.summary').textContent()).resolves.toContain('"cust-1"');
    expect(await page.locator('img[src="x"]').count()).toBe(0);
    expect(dialogs).toEqual([]);
  });

  it('asks for the token when started with one, and opens with the printed link', async () => {
    const guarded = await startDashboard({ databaseUrl: db.url, port: 0, token: TOKEN });
    try {
      const refused = await page.goto(`${guarded.url}tasks`);
      expect(refused?.status()).toBe(401);
      await page.locator('input[name="token"]').fill('not-the-token-not-the-token');
      await page.getByRole('button', { name: 'Open' }).click();
      await expect(page.locator('.notice.error').textContent()).resolves.toContain('not the right one');

      await page.locator('input[name="token"]').fill(TOKEN);
      await page.getByRole('button', { name: 'Open' }).click();
      await page.waitForSelector('h1:has-text("Queues")');

      const fresh = await browser.newPage();
      const opened = await fresh.goto(guarded.openUrl);
      expect(opened?.status()).toBe(200);
      expect(new URL(fresh.url()).search).toBe('');
      await fresh.close();
    } finally {
      await guarded.close();
    }
  });
});

describe.runIf(executable && screenshots)('screenshots of the main pages, for docs/dashboard.md', () => {
  it('writes dashboard-queues.png, dashboard-tasks.png, dashboard-task.png and dashboard-events.png', async () => {
    const orders = await seedQueue(db.pool, 'orders');
    for (const queue of ['receipts', 'emails']) await seedQueue(db.pool, queue);
    for (const [queue, name, payload] of [
      ['orders', 'shipment.packed:A-7', { trackingNumber: 'T-7' }],
      ['orders', 'shipment.packed:B-2', { trackingNumber: '' }],
      ['receipts', 'receipt.sent:A-3', { to: 'a@example.com' }],
    ] as const) {
      await db.pool.query('select absurd.emit_event($1, $2, $3)', [queue, name, JSON.stringify(payload)]);
    }
    for (let n = 0; n < 12; n++) {
      await db.pool.query(`select absurd.spawn_task('orders', 'order-fulfillment', $1)`, [JSON.stringify({ orderId: `B-${n}`, amount: 10 + n })]);
      const { rows } = await db.pool.query<{ run_id: string; params: { orderId?: string } }>(
        `select run_id, params from absurd.claim_task('orders', 'worker-3', 300, 1)`,
      );
      const claimed = rows[0]!;
      await db.pool.query(`select absurd.complete_run('orders', $1, $2)`, [claimed.run_id, JSON.stringify({ orderId: claimed.params.orderId ?? null })]);
    }
    const dashboard = await startDashboard({ databaseUrl: db.url, port: 0, manifestFile: await writeManifest() });
    const browser = await launch();
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 800 } });
      const shoot = (name: string) => page.screenshot({ path: path.resolve(screenshots!, `dashboard-${name}.png`), fullPage: true });
      await page.goto(dashboard.url);
      await shoot('queues');
      await page.goto(`${dashboard.url}tasks?queue=orders`);
      await shoot('tasks');
      await page.goto(`${dashboard.url}task/${orders.failed}?queue=orders`);
      await page.locator('details summary', { hasText: 'stack' }).first().click();
      await shoot('task');
      await page.goto(`${dashboard.url}events`);
      await shoot('events');
    } finally {
      await browser.close();
      await dashboard.close();
    }
  }, 60_000);
});
