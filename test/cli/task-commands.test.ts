import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { cli, cliJson, uniqueQueue } from './helpers.js';

const db = useTestDatabase();
const d = () => ['--database-url', db.url];
let clock: pg.Client;

beforeAll(async () => {
  clock = await db.connect();
});

interface Listed {
  queue: string;
  taskID: string;
  taskName: string;
  state: string;
  attempts: number;
  maxAttempts: number | null;
  createdAt: string;
  endedAt: string | null;
}

async function newQueue(prefix = 'tasks'): Promise<string> {
  const queue = uniqueQueue(prefix);
  expect((await cli(['queue', 'create', queue, ...d()])).code).toBe(0);
  return queue;
}

/** Runs engine calls on a session whose clock reads `at` (ISO, or null for real time). */
async function at<T>(time: string | null, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  if (time === null) await clock.query('set absurd.fake_now = default');
  else await clock.query(`select set_config('absurd.fake_now', $1, false)`, [time]);
  try {
    return await fn(clock);
  } finally {
    await clock.query('set absurd.fake_now = default');
  }
}

async function spawnAt(time: string | null, queue: string, name: string, params: unknown = {}, options: unknown = {}) {
  return at(time, async (c) => {
    const { rows } = await c.query<{ task_id: string; run_id: string }>(
      'select task_id, run_id from absurd.spawn_task($1, $2, $3, $4)',
      [queue, name, JSON.stringify(params), JSON.stringify(options)],
    );
    return rows[0]!;
  });
}

async function claim(queue: string, worker: string): Promise<{ run_id: string; task_id: string }> {
  const { rows } = await db.pool.query('select run_id, task_id from absurd.claim_task($1, $2, 60, 1)', [queue, worker]);
  return rows[0];
}

async function failRun(queue: string, runID: string, message: string): Promise<void> {
  const reason = { name: 'Error', message, stack: null };
  await db.pool.query('select absurd.fail_run($1, $2, $3, null)', [queue, runID, JSON.stringify(reason)]);
}

/** A task that failed its only attempt, alone in a new queue (so that the claim takes it). */
async function failedTask(name = 'doomed', params: unknown = { n: 1 }) {
  const queue = await newQueue('failed');
  const task = await spawnAt(null, queue, name, params, { max_attempts: 1 });
  expect((await claim(queue, 'w')).run_id).toBe(task.run_id);
  await failRun(queue, task.run_id, 'no luck');
  return { queue, ...task };
}

describe('absurd tasks list', () => {
  it('lists every queue newest first when -q is omitted', async () => {
    const [a, b] = [await newQueue(), await newQueue("o'list")];
    const name = `across-${randomUUID()}`;
    const t1 = await spawnAt('2024-01-01T00:00:00Z', a, name);
    const t2 = await spawnAt('2024-01-02T00:00:00Z', b, name);
    const t3 = await spawnAt('2024-01-03T00:00:00Z', a, name);
    const { tasks, nextAfter } = await cliJson<{ tasks: Listed[]; nextAfter: string | null }>(['tasks', 'list', '--name', name, ...d()]);
    expect(tasks.map((t) => [t.taskID, t.queue])).toEqual([
      [t3.task_id, a],
      [t2.task_id, b],
      [t1.task_id, a],
    ]);
    expect(tasks[0]).toEqual({
      queue: a,
      taskID: t3.task_id,
      taskName: name,
      state: 'pending',
      attempts: 1,
      maxAttempts: null,
      createdAt: '2024-01-03T00:00:00.000Z',
      startedAt: null,
      endedAt: null,
    });
    expect(nextAfter).toBeNull();

    const text = await cli(['tasks', 'list', '--name', name, ...d()]);
    expect(text.code).toBe(0);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^TASK ID\s+QUEUE\s+NAME\s+STATE\s+ATTEMPTS\s+CREATED\s+ENDED$/);
    expect(lines[2]).toMatch(new RegExp(`^${t2.task_id}  ${JSON.stringify(b).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s+${name}\\s+pending\\s+1/∞\\s+2024-01-02T00:00:00.000Z\\s+-$`));
    expect(lines).toHaveLength(4);
  });

  it('filters by queue, state, name and creation time (times and ages)', async () => {
    const queue = await newQueue();
    const other = await newQueue();
    const old = await spawnAt('2024-03-01T00:00:00Z', queue, 'report');
    const middle = await spawnAt('2024-03-02T00:00:00Z', queue, 'report');
    await spawnAt('2024-03-02T00:00:00Z', other, 'report');
    const recent = await spawnAt(null, queue, 'report');
    const email = await spawnAt(null, queue, 'email');
    const running = await claim(queue, 'w'); // the oldest pending run: `old`
    expect(running.task_id).toBe(old.task_id);
    const ids = async (...flags: string[]) =>
      (await cliJson<{ tasks: Listed[] }>(['tasks', 'list', '-q', queue, ...flags, ...d()])).tasks.map((t) => t.taskID);

    expect(await ids()).toEqual([email.task_id, recent.task_id, middle.task_id, old.task_id]);
    expect(await ids('--state', 'running')).toEqual([old.task_id]);
    expect(await ids('-s', 'pending', '-n', 'report')).toEqual([recent.task_id, middle.task_id]);
    expect(await ids('--since', '2024-03-02', '--until', '2024-03-03T00:00:00Z')).toEqual([middle.task_id]);
    expect(await ids('--since', '1d')).toEqual([email.task_id, recent.task_id]);
    expect(await ids('--until', '2h', '--name', 'report')).toEqual([middle.task_id, old.task_id]);
    expect(await ids('--state', 'failed')).toEqual([]);
    expect((await cli(['tasks', 'list', '-q', queue, '--state', 'failed', ...d()])).stdout).toBe('no tasks match\n');
  });

  it('pages with --limit and --after (keyset) or --offset', async () => {
    const queue = await newQueue();
    const spawned = [];
    for (let day = 1; day <= 5; day++) spawned.push(await spawnAt(`2024-05-0${day}T00:00:00Z`, queue, 'page'));
    const newestFirst = spawned.map((t) => t.task_id).reverse();
    const page = (...flags: string[]) =>
      cliJson<{ tasks: Listed[]; nextAfter: string | null }>(['tasks', 'list', '-q', queue, '--limit', '2', ...flags, ...d()]);

    const first = await page();
    expect(first.tasks.map((t) => t.taskID)).toEqual(newestFirst.slice(0, 2));
    expect(first.nextAfter).toBe(newestFirst[1]);
    const second = await page('--after', first.nextAfter!);
    expect(second.tasks.map((t) => t.taskID)).toEqual(newestFirst.slice(2, 4));
    const third = await page('--after', second.nextAfter!);
    expect(third).toEqual({ tasks: [expect.objectContaining({ taskID: newestFirst[4] })], nextAfter: null });
    expect((await page('--offset', '2')).tasks.map((t) => t.taskID)).toEqual(newestFirst.slice(2, 4));
    // --after finds its anchor task in any queue when -q is omitted.
    const across = await cliJson<{ tasks: Listed[] }>(['tasks', 'list', '--name', 'page', '--after', newestFirst[3]!, ...d()]);
    expect(across.tasks.map((t) => t.taskID)).toEqual([newestFirst[4]]);

    const text = await cli(['tasks', 'list', '-q', queue, '-l', '2', ...d()]);
    expect(text.stdout.trimEnd().split('\n').at(-1)).toBe(`(2 shown; next page: --after ${newestFirst[1]})`);
  });

  it.each([
    [['--state', 'stuck'], '--state must be one of pending, running, sleeping, completed, failed, cancelled; got "stuck"'],
    [['--since', 'yesterday'], '--since must be a time (2024-05-01, 2024-05-01T12:00:00Z) or an age (30m, 2h, 7d); got "yesterday"'],
    [['--until', '2024-13-45'], '--until must be a time'],
    [['--limit', '0'], '--limit must be an integer from 1 to 10000, got "0"'],
    [['--offset', '1', '--after', randomUUID()], 'give --offset or --after, not both'],
  ])('%j is a usage error (exit 2)', async (flags, message) => {
    const result = await cli(['tasks', 'list', ...flags, ...d()]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
  });

  it('fails with exit 1 for an unknown queue or an unknown --after task', async () => {
    const unknown = await cli(['tasks', 'list', '-q', 'ghost', ...d()]);
    expect(unknown).toMatchObject({ code: 1, stderr: 'absurd tasks list: queue "ghost" does not exist — run `absurd queue create ghost`\n' });
    const id = randomUUID();
    const after = await cli(['tasks', 'list', '--after', id, ...d()]);
    expect(after.code).toBe(1);
    expect(after.stderr).toContain(`task ${id} not found in any queue`);
  });
});

describe('absurd tasks show', () => {
  it('shows settings, runs, checkpoints and waits of a task in flight, then its result', async () => {
    const queue = await newQueue();
    const task = await spawnAt('2024-06-01T10:00:00Z', queue, 'ship-order', { orderId: 'O-9' }, {
      max_attempts: 3,
      retry_strategy: { kind: 'none' },
      headers: { trace: 't-1' },
      cancellation: { max_duration: 3600 },
      idempotency_key: 'ship-O-9',
    });
    await claim(queue, 'worker-1');
    await db.pool.query(`select absurd.set_task_checkpoint_state($1, $2, 'charge', '{"paymentId": "p-1"}', $3, null)`, [
      queue,
      task.task_id,
      task.run_id,
    ]);
    await failRun(queue, task.run_id, 'card declined');
    const second = await claim(queue, 'worker-2');
    await db.pool.query(`select * from absurd.await_event($1, $2, $3, 'await-ship', 'shipped:O-9', 3600)`, [
      queue,
      task.task_id,
      second.run_id,
    ]);

    const shown = await cliJson<Record<string, any>>(['tasks', 'show', task.task_id, ...d()]);
    expect(shown.queue).toBe(queue);
    expect(shown.task).toMatchObject({
      taskID: task.task_id,
      taskName: 'ship-order',
      state: 'sleeping',
      attempts: 2,
      maxAttempts: 3,
      params: { orderId: 'O-9' },
      headers: { trace: 't-1' },
      retryStrategy: { kind: 'none' },
      cancellation: { max_duration: 3600 },
      idempotencyKey: 'ship-O-9',
      createdAt: '2024-06-01T10:00:00.000Z',
      lastAttemptRun: second.run_id,
    });
    expect(shown.runs).toEqual([
      expect.objectContaining({ runID: task.run_id, attempt: 1, state: 'failed', claimedBy: 'worker-1', failureReason: { name: 'Error', message: 'card declined', stack: null } }),
      expect.objectContaining({ runID: second.run_id, attempt: 2, state: 'sleeping', wakeEvent: 'shipped:O-9', failureReason: null }),
    ]);
    expect(shown.runs[0].failedAt).toMatch(/Z$/);
    expect(shown.checkpoints).toEqual([expect.objectContaining({ name: 'charge', status: 'committed', ownerRunID: task.run_id, state: { paymentId: 'p-1' } })]);
    expect(shown.waits).toEqual([
      expect.objectContaining({ runID: second.run_id, stepName: 'await-ship', eventName: 'shipped:O-9', eventEmittedAt: null, timeoutAt: expect.stringMatching(/Z$/) }),
    ]);
    expect(shown).toMatchObject({ result: null, failure: null });

    const text = await cli(['tasks', 'show', task.task_id, '-q', queue, ...d()]);
    expect(text.code).toBe(0);
    for (const line of [
      `task:            ${task.task_id}\n`,
      'state:           sleeping\n',
      'attempts:        2 of 3\n',
      'idempotency key: "ship-O-9"\n',
      'retry strategy:  {"kind":"none"}\n',
      'headers:         {"trace":"t-1"}\n',
      'params:          {"orderId":"O-9"}\n',
      'runs (2):\n',
      `  #1 ${task.run_id}  failed  by worker-1\n`,
      '     failure: Error: card declined\n',
      `  #2 ${second.run_id}  sleeping\n`,
      '     waiting for event "shipped:O-9"\n',
      'checkpoints (1):\n  "charge"  committed  run #1  ',
      '     {"paymentId":"p-1"}\n',
      'waits (1):\n  step "await-ship" waits for event "shipped:O-9" (not emitted yet), timeout 20',
      'outcome: none yet (sleeping)\n',
    ]) {
      expect(text.stdout).toContain(line);
    }

    await cli(['emit', 'shipped', '--key', 'O-9', '-q', queue, '-P', 'tracking=T-1', ...d()]);
    await claim(queue, 'worker-2');
    await db.pool.query(`select absurd.complete_run($1, $2, '{"done": true}')`, [queue, second.run_id]);
    const done = await cliJson<Record<string, any>>(['tasks', 'show', task.task_id, ...d()]);
    expect(done).toMatchObject({ task: { state: 'completed' }, result: { done: true }, failure: null, waits: [] });
    expect(done.checkpoints.map((c: { name: string }) => c.name)).toEqual(['charge', 'await-ship']);
    expect((await cli(['tasks', 'show', task.task_id, ...d()])).stdout).toContain('result: {"done":true}\n');
  });

  it('shows the failure of a failed task, and finds a task by one of its run ids', async () => {
    const { queue, ...task } = await failedTask();
    const shown = await cliJson<Record<string, any>>(['tasks', 'show', task.run_id, ...d()]);
    expect(shown).toMatchObject({
      queue,
      task: { taskID: task.task_id, state: 'failed' },
      failure: { name: 'Error', message: 'no luck' },
      result: null,
    });
    const text = (await cli(['tasks', 'show', task.task_id, ...d()])).stdout;
    const failure = /^failure: (.*)$/m.exec(text)?.[1] ?? '';
    expect(JSON.parse(failure)).toEqual({ name: 'Error', message: 'no luck', stack: null });
  });

  it("hides the runtime's internal checkpoints unless --internal shows them, marked", async () => {
    const queue = await newQueue();
    const task = await spawnAt(null, queue, 'parent');
    await claim(queue, 'w');
    const child = randomUUID();
    const names = ['charge', `$spawn:child`, `$awaitTaskResult:${child}`, `$awaitTaskResult:${child}$deadline`, 'wait-child$deadline'];
    for (const name of names) {
      await db.pool.query(`select absurd.set_task_checkpoint_state($1, $2, $3, '"x"', $4, null)`, [queue, task.task_id, name, task.run_id]);
    }
    const internal = names.filter((name) => name !== 'charge');

    const text = (await cli(['tasks', 'show', task.task_id, ...d()])).stdout;
    expect(text).toContain('checkpoints (1; 4 internal hidden, see --internal):\n  "charge"  committed  run #1  ');
    for (const name of internal) expect(text).not.toContain(JSON.stringify(name));
    const json = await cliJson<Record<string, any>>(['tasks', 'show', task.task_id, ...d()]);
    expect(json.checkpoints).toEqual([expect.objectContaining({ name: 'charge', internal: false })]);
    expect(json.hiddenInternalCheckpoints).toBe(4);

    const all = (await cli(['tasks', 'show', task.task_id, '--internal', ...d()])).stdout;
    expect(all).toContain('checkpoints (5, 4 of them internal):\n');
    expect(all).toMatch(/^ {2}"charge" {2}committed {2}run #1 {2}\S+$/m);
    for (const name of internal) {
      expect(all).toMatch(new RegExp(`^  ${JSON.stringify(name).replace(/[$]/g, '\\$')}  committed  run #1  \\S+  \\(internal\\)$`, 'm'));
    }
    const allJson = await cliJson<Record<string, any>>(['tasks', 'show', task.task_id, '--internal', ...d()]);
    expect(Object.fromEntries(allJson.checkpoints.map((c: { name: string; internal: boolean }) => [c.name, c.internal]))).toEqual(
      Object.fromEntries(names.map((name) => [name, name !== 'charge'])),
    );
    expect(allJson.hiddenInternalCheckpoints).toBe(0);
  });

  it('fails with exit 1 for an unknown task, a malformed id and an unknown queue', async () => {
    const queue = await newQueue();
    const id = randomUUID();
    expect(await cli(['tasks', 'show', id, ...d()])).toEqual({
      code: 1,
      stdout: '',
      stderr: `absurd tasks show: task ${id} not found in any queue — see \`absurd tasks list\`\n`,
    });
    expect((await cli(['tasks', 'show', id, '-q', queue, ...d()])).stderr).toBe(
      `absurd tasks show: task ${id} not found in queue "${queue}" — see \`absurd tasks list -q ${queue}\`\n`,
    );
    const malformed = await cli(['tasks', 'show', 'task-1', ...d()]);
    expect(malformed.code).toBe(1);
    expect(malformed.stderr).toContain('"task-1" is not a task id (task ids are UUIDs');
    expect((await cli(['tasks', 'show', id, '-q', 'ghost', ...d()])).stderr).toContain('queue "ghost" does not exist');
  });
});

describe('absurd cancel', () => {
  it('cancels a pending task, then reports that it had already ended', async () => {
    const queue = await newQueue();
    const task = await spawnAt(null, queue, 'cancel-me');
    expect(await cliJson(['cancel', task.task_id, '-q', queue, ...d()])).toEqual({
      queue,
      taskID: task.task_id,
      previousState: 'pending',
      state: 'cancelled',
      cancelled: true,
    });
    const { rows } = await db.pool.query(`select state, cancelled_at from absurd."t_${queue}" where task_id = $1`, [task.task_id]);
    expect(rows[0]?.state).toBe('cancelled');
    expect(rows[0]?.cancelled_at).toBeInstanceOf(Date);
    const again = await cli(['cancel', task.task_id, ...d()]);
    expect(again).toEqual({
      code: 0,
      stdout: `task ${task.task_id} on queue "${queue}" had already ended (cancelled); nothing to cancel\n`,
      stderr: '',
    });
  });

  it('finds the task in any queue and says what it cancelled', async () => {
    const queue = await newQueue();
    const task = await spawnAt(null, queue, 'cancel-me');
    await claim(queue, 'w');
    const result = await cli(['cancel', task.task_id, ...d()]);
    expect(result.stdout).toBe(`cancelled task ${task.task_id} on queue "${queue}" (was running)\n`);
  });

  it('fails with exit 1 for an unknown task', async () => {
    const id = randomUUID();
    const result = await cli(['cancel', id, ...d()]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`absurd cancel: task ${id} not found in any queue — see \`absurd tasks list\`\n`);
  });
});

describe('absurd retry', () => {
  it('retries a failed task in place: one more attempt by default, or up to --max-attempts', async () => {
    const { queue, ...task } = await failedTask();
    const retried = await cliJson(['retry', task.task_id, '-q', queue, ...d()]);
    expect(retried).toMatchObject({ queue, retriedTaskID: task.task_id, taskID: task.task_id, attempt: 2, created: false });
    const { rows } = await db.pool.query(`select state, max_attempts from absurd."t_${queue}" where task_id = $1`, [task.task_id]);
    expect(rows[0]).toEqual({ state: 'pending', max_attempts: 2 });

    const other = await failedTask();
    const text = await cli(['retry', other.task_id, '--max-attempts', '5', ...d()]);
    expect(text.stdout).toMatch(new RegExp(`^retried task ${other.task_id} on queue "${other.queue}": run [0-9a-f-]{36}, attempt 2\\n$`));
    const after = await db.pool.query(`select max_attempts from absurd."t_${other.queue}" where task_id = $1`, [other.task_id]);
    expect(after.rows[0]?.max_attempts).toBe(5);
  });

  it('--spawn-new spawns a new task with the same params', async () => {
    const { queue, ...task } = await failedTask('import', { file: 'a.csv' });
    const retried = await cliJson<{ taskID: string; created: boolean; attempt: number }>(['retry', task.task_id, '--spawn-new', '--max-attempts', '4', ...d()]);
    expect(retried).toMatchObject({ created: true, attempt: 1, retriedTaskID: task.task_id });
    expect(retried.taskID).not.toBe(task.task_id);
    const { rows } = await db.pool.query(`select task_name, params, max_attempts, state from absurd."t_${queue}" where task_id = $1`, [retried.taskID]);
    expect(rows[0]).toEqual({ task_name: 'import', params: { file: 'a.csv' }, max_attempts: 4, state: 'pending' });
  });

  it('refuses tasks that are not failed and a --max-attempts that is not above the attempts so far (exit 1)', async () => {
    const queue = await newQueue();
    const pending = await spawnAt(null, queue, 'fine');
    const notFailed = await cli(['retry', pending.task_id, ...d()]);
    expect(notFailed.code).toBe(1);
    expect(notFailed.stderr).toContain(`task ${pending.task_id} on queue "${queue}" is pending, not failed; only failed tasks can be retried`);

    const failed = await failedTask();
    const tooFew = await cli(['retry', failed.task_id, '--max-attempts', '1', ...d()]);
    expect(tooFew.code).toBe(1);
    expect(tooFew.stderr).toContain('--max-attempts 1 must be greater than the 1 attempt(s)');
    const { rows } = await db.pool.query(`select count(*)::int as n from absurd."r_${failed.queue}" where task_id = $1`, [failed.task_id]);
    expect(rows[0]?.n).toBe(1);

    const unknown = await cli(['retry', randomUUID(), '-q', queue, ...d()]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain(`not found in queue "${queue}"`);
  });
});
