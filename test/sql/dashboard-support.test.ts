/**
 * What `absurd dashboard` and `absurd tasks list` need from the engine: kit_wake_task (migration
 * 000009), and the task list's indexes of migration 000028, r_<q>_lsi (state, task_id) over the
 * runs and t_<q>_nti (task_name, task_id), each against the behaviour its header comment promises;
 * then the lists and counts read through them (packages/cli/src/queries/dashboard.sql, tasks.sql),
 * which take a task's state from its last run, against a filter on the task rows.
 */
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { readQueueOverview } from '../../packages/cli/src/dashboard/queue-overview.js';
import { readTaskPage, TASK_STATES, type TaskFilter, type TaskPage, type TaskState } from '../../packages/cli/src/dashboard/task-page.js';
import { taskPageStatement } from '../../packages/cli/src/queries/dashboard.queries.js';
import { listTasksStatement } from '../../packages/cli/src/queries/tasks.queries.js';
import { cliJson } from '../cli/helpers.js';
import { useTestDatabase } from '../support/db.js';
import {
  awaitEvent,
  awkwardQueueNames,
  cancelTask,
  checkpointRows,
  claim,
  claimOne,
  completeRun,
  createQueue,
  failRun,
  ident,
  newQueue,
  plus,
  queueName,
  runRow,
  runRows,
  scheduleRun,
  setCheckpoint,
  setNow,
  snapshot,
  spawn,
  spawnAndClaim,
  table,
  taskRow,
  useSession,
  type Queryable,
} from './helpers.js';

const db = useTestDatabase();
const T0 = '2024-05-01T10:00:00.000Z';
const c = useSession(db, { outsideSchema: true, now: T0 });

async function wake(client: Queryable, q: string, taskId: string): Promise<string> {
  const { rows } = await client.query<{ outcome: string }>('select absurd.kit_wake_task($1, $2) as outcome', [q, taskId]);
  return rows[0]!.outcome;
}

/** A task that ran one step and then slept until `wakeAt` the way the SDKs sleep: checkpoint first, then schedule_run. */
async function sleepingTask(q: string, wakeAt: string) {
  const spawned = await spawnAndClaim(c, q);
  await setCheckpoint(c, q, spawned.task_id, 'charge', { paymentId: 'p-1' }, spawned.run_id);
  await setNow(c, plus(T0, 1));
  await setCheckpoint(c, q, spawned.task_id, 'cool-down', wakeAt, spawned.run_id);
  await scheduleRun(c, q, spawned.run_id, wakeAt);
  return spawned;
}

describe('kit_wake_task', () => {
  it('makes a sleeping run claimable now and moves the wake time of its sleep to now', async () => {
    const q = await newQueue(c, 'wake');
    const { task_id, run_id } = await sleepingTask(q, plus(T0, 3600));
    expect(await claim(c, q)).toEqual([]);

    await setNow(c, plus(T0, 60));
    expect(await wake(c, q, task_id)).toBe('woken');

    expect((await runRow(c, q, run_id)).available_at).toEqual(new Date(plus(T0, 60)));
    const checkpoints = await checkpointRows(c, q, task_id);
    expect(checkpoints.find((cp) => cp.checkpoint_name === 'cool-down')?.state).toBe(plus(T0, 60));
    // The step before the sleep keeps its value.
    expect(checkpoints.find((cp) => cp.checkpoint_name === 'charge')?.state).toEqual({ paymentId: 'p-1' });

    const claimed = await claimOne(c, q);
    expect(claimed.run_id).toBe(run_id);
    expect((await taskRow(c, q, task_id)).state).toBe('running');
  });

  it('works on queues whose names need quoting', async () => {
    for (const name of awkwardQueueNames()) {
      const q = await createQueue(c, name);
      const { task_id, run_id } = await sleepingTask(q, plus(T0, 600));
      expect(await wake(c, q, task_id)).toBe('woken');
      expect((await claimOne(c, q)).run_id).toBe(run_id);
    }
  });

  it('notifies the wake channel of the queue', async () => {
    const q = await newQueue(c, 'wake-notify');
    const { task_id } = await sleepingTask(q, plus(T0, 600));
    const listener = await db.connect();
    const channel = (await listener.query<{ ch: string }>(`select 'absurd_wake_' || md5($1) as ch`, [q])).rows[0]!.ch;
    const notified = new Promise<string>((resolve) => listener.on('notification', (n) => resolve(n.channel)));
    await listener.query(`listen ${ident(channel)}`);
    expect(await wake(c, q, task_id)).toBe('woken');
    await expect(notified).resolves.toBe(channel);
  });

  it('leaves a checkpoint alone that is not a future ISO time, or not the last one written', async () => {
    const q = await newQueue(c, 'wake-keep');
    const { task_id, run_id } = await spawnAndClaim(c, q);
    // A step that returned a future date, written before other steps: not the sleep.
    await setCheckpoint(c, q, task_id, 'deadline', plus(T0, 7200), run_id);
    await setNow(c, plus(T0, 1));
    await setCheckpoint(c, q, task_id, 'note', 'not a time', run_id);
    await scheduleRun(c, q, run_id, plus(T0, 3600));
    const before = await checkpointRows(c, q, task_id);
    expect(await wake(c, q, task_id)).toBe('woken');
    expect(await checkpointRows(c, q, task_id)).toEqual(before);
    expect((await claimOne(c, q)).run_id).toBe(run_id);
  });

  it('refuses a task waiting for an event, and changes nothing', async () => {
    const q = await newQueue(c, 'wake-event');
    const { task_id, run_id } = await spawnAndClaim(c, q);
    const waited = await awaitEvent(c, q, task_id, run_id, 'wait', 'shipment.packed:A-1', 600);
    expect(waited.should_suspend).toBe(true);
    const before = await snapshot(c, q);
    expect(await wake(c, q, task_id)).toBe('waiting_for_event');
    expect(await snapshot(c, q)).toEqual(before);
  });

  it('says not_sleeping for pending, running and ended tasks, and not_found for an unknown task', async () => {
    const q = await newQueue(c, 'wake-states');
    const pending = await spawn(c, q);
    expect(await wake(c, q, pending.task_id)).toBe('not_sleeping');
    const running = await claimOne(c, q);
    expect(await wake(c, q, running.task_id)).toBe('not_sleeping');
    await c.query('select absurd.complete_run($1, $2, $3)', [q, running.run_id, '{}']);
    expect(await wake(c, q, running.task_id)).toBe('not_sleeping');
    expect(await wake(c, q, '0190b6a2-0000-7000-8000-000000000000')).toBe('not_found');
  });

  it('fails for an unknown queue', async () => {
    await expect(wake(c, queueName('missing'), '0190b6a2-0000-7000-8000-000000000000')).rejects.toThrow(/does not exist/);
  });
});

describe('the task list indexes', () => {
  async function indexes(tableName: string): Promise<Record<string, string>> {
    const { rows } = await c.query<{ indexname: string; indexdef: string }>(
      `select indexname, indexdef from pg_indexes where schemaname = 'absurd' and tablename = $1`,
      [tableName],
    );
    return Object.fromEntries(rows.map((r) => [r.indexname, r.indexdef]));
  }

  it('exist on new queues of both storage modes, with names that fit for 57-byte queue names, and the old ones do not', async () => {
    for (const [name, mode] of [
      [queueName('list-idx'), 'unpartitioned'],
      [awkwardQueueNames().at(-1)!, 'unpartitioned'],
      [queueName('list-idx-p'), 'partitioned'],
    ] as const) {
      await c.query('select absurd.create_queue($1, $2)', [name, mode]);
      const runs = await indexes(`r_${name}`);
      const tasks = await indexes(`t_${name}`);
      // The runs that carry their task's state, the cancelled tasks, and the task's name with its id.
      expect(runs[`r_${name}_lsi`]).toMatch(/ USING btree \(state, task_id\) WHERE \(NOT superseded\)$/);
      expect(tasks[`t_${name}_cli`]).toMatch(/ USING btree \(task_id\) WHERE \(cancelled_at IS NOT NULL\)$/);
      expect(tasks[`t_${name}_nti`]).toMatch(/ USING btree \(task_name, task_id\)$/);
      // No index of t_<q> names `state` any more (so that claims and completions can be HOT).
      expect(Object.keys(tasks)).not.toContain(`t_${name}_sti`);
      expect(Object.keys(tasks)).not.toContain(`t_${name}_nsi`);
      expect(Object.values(tasks).filter((definition) => /\bstate\b/.test(definition))).toEqual([]);
    }
  });

  it('are created again by kit_ensure_list_indexes when missing, which drops those of migration 000009', async () => {
    const q = await newQueue(c, 'list-idx-again');
    await c.query(`drop index absurd.${ident(`r_${q}_lsi`)}`);
    await c.query(`drop index absurd.${ident(`t_${q}_nti`)}`);
    await c.query(`drop index absurd.${ident(`t_${q}_cli`)}`);
    await c.query(`create index ${ident(`t_${q}_sti`)} on ${table('t', q)} (state, task_id)`);
    await c.query(`create index ${ident(`t_${q}_nsi`)} on ${table('t', q)} (task_name, state, task_id)`);
    expect(Object.keys(await indexes(`r_${q}`))).not.toContain(`r_${q}_lsi`);

    await c.query('select absurd.kit_ensure_list_indexes($1)', [q]);
    expect(await indexes(`r_${q}`)).toHaveProperty([`r_${q}_lsi`]);
    const tasks = await indexes(`t_${q}`);
    expect(tasks).toHaveProperty([`t_${q}_nti`]);
    expect(tasks).toHaveProperty([`t_${q}_cli`]);
    expect(Object.keys(tasks)).not.toContain(`t_${q}_sti`);
    expect(Object.keys(tasks)).not.toContain(`t_${q}_nsi`);
    // Idempotent.
    await c.query('select absurd.kit_ensure_list_indexes($1)', [q]);
    expect(Object.keys(await indexes(`t_${q}`)).sort()).toEqual(Object.keys(tasks).sort());
  });

  it('serve the lists: a state filter reads r_<q>_lsi, cancelled t_<q>_cli, a task name t_<q>_nti, as ordered range reads', async () => {
    const q = await createQueue(c, queueName('list-plan'));
    // 50,000 tasks with one run each, mostly completed, 5,000 cancelled (more than a page reads); `rare`
    // names only the oldest 200.
    await c.query(
      `insert into ${table('t', q)} (task_id, task_name, params, state, attempts, last_attempt_run, cancelled_at)
       select absurd.portable_uuidv7(), case when i <= 200 then 'rare' else 'job-' || (i % 7) end, '{}',
              case when i % 100 = 1 then 'failed' when i % 100 = 2 then 'running' when i % 10 = 3 then 'cancelled'
                   else 'completed' end,
              1, absurd.portable_uuidv7(), case when i % 10 = 3 then absurd.current_time() end
         from generate_series(1, 50000) i`,
    );
    await c.query(
      `insert into ${table('r', q)} (run_id, task_id, attempt, state, available_at)
       select last_attempt_run, task_id, 1, state, absurd.current_time() from ${table('t', q)}`,
    );
    await c.query(`analyze ${table('t', q)}`);
    await c.query(`analyze ${table('r', q)}`);
    const client = await db.pool.connect();
    const plan = async (built: string | null | undefined, values: unknown[]) => {
      const { rows } = await client.query<{ 'QUERY PLAN': string }>(`explain ${built!}`, values);
      return rows.map((r) => r['QUERY PLAN']).join('\n');
    };
    const page = async (state: TaskState | null, name: string | null) => {
      const [built] = await taskPageStatement.run({ queueName: q, byName: name !== null, state, newer: false }, client);
      return plan(built?.statement, [state, name, null, null, null, null, 50, null, null, 51]);
    };
    const list = async (state: TaskState | null, name: string | null) => {
      const [built] = await listTasksStatement.run({ queueName: q, byName: name !== null, state }, client);
      return plan(built?.statement, [state, name, null, null, null, null, null, 50, 0]);
    };
    try {
      await client.query('set enable_seqscan = off');
      for (const read of [page, list]) {
        for (const state of ['failed', 'running'] as const) {
          const byState = await read(state, null);
          expect(byState).toContain(`r_${q}_lsi`);
          expect(byState).not.toContain(`t_${q}_nti`);
          expect(byState).not.toMatch(/Sort|Bitmap/);
        }
        // Cancelled: the cancelled tasks' own index.
        const cancelled = await read('cancelled', null);
        expect(cancelled).toContain(`t_${q}_cli`);
        expect(cancelled).not.toContain(`r_${q}_lsi`);
        expect(cancelled).not.toMatch(/Sort|Bitmap/);
        const byName = await read(null, 'rare');
        expect(byName).toContain(`t_${q}_nti`);
        expect(byName).not.toMatch(/Sort|Bitmap/);
      }
    } finally {
      await client.query('set enable_seqscan = on');
      client.release();
    }
  });
});

/** Tasks as a worker leaves them, made with the engine's functions, one per `outcome`. */
const OUTCOMES = [
  'pending',
  'running',
  'sleeping',
  'completed',
  'completed after a failed attempt',
  'failed',
  'cancelled while pending',
  'cancelled by max_duration at a failure',
  'failed twice, then retried by hand (pending)',
  'cancelled while running',
] as const;
type Outcome = (typeof OUTCOMES)[number];

interface Made {
  readonly task_id: string;
  readonly name: string;
  readonly outcome: Outcome;
}

/**
 * Fills `q` with `count` tasks, spawned 10 s apart from T0, their outcomes in turn and names
 * alternating (`alpha`, `beta`, `gamma`), params `{ k: i % 2 }`. The claims happen one task at a
 * time, so that each takes the task just spawned: the tasks left pending, and the hand retry, come
 * last, at their own times.
 */
async function fill(q: string, count: number, outcomes: readonly Outcome[] = OUTCOMES): Promise<Made[]> {
  const made: Made[] = [];
  const later: (() => Promise<void>)[] = [];
  const at = (i: number, seconds = 0) => plus(T0, i * 10 + seconds);
  const claimed = async (taskId: string) => {
    const run = await claimOne(c, q, 'worker-1', 86_400);
    expect(run.task_id).toBe(taskId);
    return run.run_id;
  };
  for (let i = 0; i < count; i++) {
    const outcome = outcomes[i % outcomes.length]!;
    const name = ['alpha', 'beta', 'gamma'][i % 3]!;
    const params = { k: String(i % 2) };
    const spawnNow = async (options: unknown = {}) => {
      await setNow(c, at(i));
      const spawned = await spawn(c, q, name, params, options);
      made.push({ task_id: spawned.task_id, name, outcome });
      return spawned;
    };
    switch (outcome) {
      case 'pending':
        later.push(async () => void (await spawnNow()));
        break;
      case 'running':
        await claimed((await spawnNow()).task_id);
        break;
      case 'sleeping': {
        const { task_id } = await spawnNow();
        await scheduleRun(c, q, await claimed(task_id), plus(T0, 86_400));
        break;
      }
      case 'completed': {
        const { task_id } = await spawnNow();
        await completeRun(c, q, await claimed(task_id), { ok: true });
        break;
      }
      case 'completed after a failed attempt': {
        const { task_id } = await spawnNow({ max_attempts: 3 });
        await failRun(c, q, await claimed(task_id));
        await completeRun(c, q, await claimed(task_id), { ok: true });
        break;
      }
      case 'failed': {
        const { task_id } = await spawnNow({ max_attempts: 1 });
        await failRun(c, q, await claimed(task_id));
        break;
      }
      case 'cancelled while pending':
        await cancelTask(c, q, (await spawnNow()).task_id);
        break;
      case 'cancelled by max_duration at a failure': {
        // The retry would start 6 s after the first start, past max_duration: fail_run cancels
        // the task and its last run stays failed.
        const { task_id } = await spawnNow({ max_attempts: 3, cancellation: { max_duration: 5 } });
        const run = await claimed(task_id);
        await setNow(c, at(i, 6));
        await failRun(c, q, run);
        break;
      }
      case 'failed twice, then retried by hand (pending)': {
        const { task_id } = await spawnNow({ max_attempts: 2 });
        await failRun(c, q, await claimed(task_id));
        await failRun(c, q, await claimed(task_id));
        later.push(async () => {
          await setNow(c, at(i, 5));
          await c.query('select * from absurd.retry_task($1, $2)', [q, task_id]);
        });
        break;
      }
      case 'cancelled while running': {
        const { task_id } = await spawnNow();
        await claimed(task_id);
        await cancelTask(c, q, task_id);
        break;
      }
    }
  }
  for (const step of later) await step();
  await setNow(c, T0);
  return made;
}

/** Task ids of `q` newest first, filtered on the task rows themselves (no index involved). */
async function expected(
  q: string,
  filter: { state?: string; name?: string; since?: string; until?: string; k?: string },
  time: 'task id' | 'enqueue_at' = 'task id',
): Promise<string[]> {
  const { rows } = await c.query<{ task_id: string }>(
    `select task_id from ${table('t', q)}
      where ($1::text is null or state = $1) and ($2::text is null or task_name = $2)
        and ($3::timestamptz is null or case when $6::boolean then task_id >= absurd.uuidv7_floor($3) else enqueue_at >= $3 end)
        and ($4::timestamptz is null or case when $6::boolean then task_id < absurd.uuidv7_floor($4) else enqueue_at < $4 end)
        and ($5::text is null or params ->> 'k' = $5)
      order by task_id desc`,
    [filter.state ?? null, filter.name ?? null, filter.since ?? null, filter.until ?? null, filter.k ?? null, time === 'task id'],
  );
  return rows.map((r) => r.task_id);
}

/** Every page of the dashboard's task list for `filter`, following `older` from the newest. */
async function pagesOf(client: pg.ClientBase, filter: TaskFilter, limit: number, searchBudget?: number): Promise<TaskPage[]> {
  const pages: TaskPage[] = [];
  let after: string | undefined;
  for (let i = 0; i < 200; i++) {
    const page = await readTaskPage(client, { ...filter, ...(after ? { after } : {}) }, { limit, ...(searchBudget ? { searchBudget } : {}) });
    pages.push(page);
    if (page.older === null) return pages;
    after = page.older;
  }
  throw new Error('the task list did not end');
}

/** Every task `absurd tasks list` gives for `flags`, `--limit 3` a page, following `nextAfter`. */
async function listed(flags: string[]): Promise<{ taskID: string; state: string }[]> {
  const tasks: { taskID: string; state: string }[] = [];
  let after: string[] = [];
  for (let i = 0; i < 200; i++) {
    const page = await cliJson<{ tasks: { taskID: string; state: string }[]; nextAfter: string | null }>([
      'tasks', 'list', ...flags, '--limit', '3', ...after, '--database-url', db.url,
    ]);
    tasks.push(...page.tasks);
    if (page.nextAfter === null) return tasks;
    after = ['--after', page.nextAfter];
  }
  throw new Error('the task list did not end');
}

async function countsOf(client: pg.ClientBase, q: string): Promise<Record<string, number>> {
  const queue = (await readQueueOverview(client)).find((o) => o.name === q);
  const { pending, running, sleeping, completed, failed, cancelled } = queue!.counts;
  return { pending, running, sleeping, completed, failed, cancelled };
}

describe('the task list and counts, which take a task state from its last run', () => {
  it('list and count a task cancelled by max_duration at a failure as cancelled, not as failed', async () => {
    const q = await newQueue(c, 'list-cancel-at-failure');
    const [task] = await fill(q, 1, ['cancelled by max_duration at a failure']);
    // What makes it the exception: the task is cancelled, its last run failed.
    const row = await taskRow(c, q, task!.task_id);
    expect(row.state).toBe('cancelled');
    expect((await runRow(c, q, row.last_attempt_run!)).state).toBe('failed');

    const client = await db.pool.connect();
    try {
      const ids = async (filter: TaskFilter) => (await readTaskPage(client, { queue: q, ...filter })).tasks.map((t) => [t.task_id, t.state]);
      expect(await ids({ state: 'cancelled' })).toEqual([[task!.task_id, 'cancelled']]);
      expect(await ids({ state: 'cancelled', name: 'alpha' })).toEqual([[task!.task_id, 'cancelled']]);
      expect(await ids({ state: 'failed' })).toEqual([]);
      expect(await ids({ state: 'failed', name: 'alpha' })).toEqual([]);
      expect(await countsOf(client, q)).toEqual({ pending: 0, running: 0, sleeping: 0, completed: 0, failed: 0, cancelled: 1 });
    } finally {
      client.release();
    }
    expect(await listed(['-q', q, '--state', 'cancelled'])).toEqual([expect.objectContaining({ taskID: task!.task_id, state: 'cancelled' })]);
    expect(await listed(['-q', q, '--state', 'failed'])).toEqual([]);
    expect(await listed(['-q', q, '--state', 'cancelled', '--name', 'alpha'])).toHaveLength(1);
  });

  it('list a task that failed, was retried and completed once, as completed, and not under failed', async () => {
    const q = await newQueue(c, 'list-retried');
    const [task] = await fill(q, 1, ['completed after a failed attempt']);
    expect((await runRows(c, q, task!.task_id)).map((r) => r.state)).toEqual(['failed', 'completed']);

    const client = await db.pool.connect();
    try {
      const ids = async (filter: TaskFilter) => (await readTaskPage(client, { queue: q, ...filter })).tasks.map((t) => [t.task_id, t.state]);
      expect(await ids({ state: 'completed' })).toEqual([[task!.task_id, 'completed']]);
      expect(await ids({ state: 'completed', name: 'alpha' })).toEqual([[task!.task_id, 'completed']]);
      expect(await ids({ state: 'failed' })).toEqual([]);
      expect(await ids({ state: 'cancelled' })).toEqual([]);
      expect(await ids({})).toEqual([[task!.task_id, 'completed']]);
      expect(await countsOf(client, q)).toEqual({ pending: 0, running: 0, sleeping: 0, completed: 1, failed: 0, cancelled: 0 });
    } finally {
      client.release();
    }
    expect(await listed(['-q', q, '--state', 'completed'])).toEqual([expect.objectContaining({ taskID: task!.task_id, state: 'completed' })]);
    expect(await listed(['-q', q, '--state', 'failed'])).toEqual([]);
  });

  it.each(['unpartitioned', 'partitioned'] as const)(
    'give, on a %s queue, the tasks a filter on the task rows gives, in the same order and pages, both ways',
    async (mode) => {
      const q = queueName(`list-same-${mode.slice(0, 1)}`, 'rotating');
      await c.query('select absurd.create_queue($1, $2)', [q, mode]);
      const made = await fill(q, 50);
      // Every outcome happened as intended: the states the rows hold.
      const states = new Map((await c.query<{ task_id: string; state: string }>(`select task_id, state from ${table('t', q)}`)).rows.map((r) => [r.task_id, r.state]));
      for (const m of made) {
        expect(states.get(m.task_id), m.outcome).toBe(
          m.outcome.startsWith('cancelled') ? 'cancelled' : m.outcome.startsWith('completed') ? 'completed' : m.outcome.startsWith('failed twice') ? 'pending' : m.outcome,
        );
      }
      const since = plus(T0, 105);
      const until = plus(T0, 385);
      const filters: TaskFilter[] = [{}, { since, until }, { name: 'beta' }, { name: 'beta', since, until }];
      for (const state of TASK_STATES) {
        filters.push({ state }, { state, since, until });
        for (const name of ['alpha', 'gamma']) filters.push({ state, name });
      }

      const client = await db.pool.connect();
      try {
        for (const filter of filters) {
          const want = await expected(q, filter);
          const label = JSON.stringify(filter);
          for (const limit of [1, 4]) {
            const pages = await pagesOf(client, { queue: q, ...filter }, limit);
            expect(pages.flatMap((p) => p.tasks.map((t) => t.task_id)), `${label} by ${limit}`).toEqual(want);
            expect(pages.flatMap((p) => p.tasks).every((t) => filter.state === undefined || t.state === filter.state)).toBe(true);
            // Back from the last page with `before`: the same pages, newest last.
            for (let k = pages.length - 1; k > 0; k--) {
              const back = await readTaskPage(client, { queue: q, ...filter, before: pages[k]!.newer! }, { limit });
              expect(back.tasks.map((t) => t.task_id), `${label} back to page ${k - 1}`).toEqual(pages[k - 1]!.tasks.map((t) => t.task_id));
            }
          }
          // A params search that reads 3 tasks per part and page finds every match, in order.
          const searched = await pagesOf(client, { queue: q, ...filter, field: 'k', value: '1' }, 4, 3);
          expect(searched.flatMap((p) => p.tasks.map((t) => t.task_id)), `${label} searching`).toEqual(await expected(q, { ...filter, k: '1' }));
        }
        const counted = await countsOf(client, q);
        const { rows } = await c.query<{ state: string; n: number }>(`select state, count(*)::int as n from ${table('t', q)} group by state`);
        expect(counted).toEqual({ ...Object.fromEntries(TASK_STATES.map((s) => [s, 0])), ...Object.fromEntries(rows.map((r) => [r.state, r.n])) });
        expect(counted.cancelled).toBeGreaterThan(0);
        expect(counted.failed).toBeGreaterThan(0);
      } finally {
        client.release();
      }

      // `absurd tasks list`: creation times on enqueue_at, pages of 3 by --after.
      for (const filter of filters.filter((f) => f.since === undefined || f.state === undefined || f.state === 'cancelled')) {
        const flags = ['-q', q];
        if (filter.state) flags.push('--state', filter.state);
        if (filter.name) flags.push('--name', filter.name);
        if (filter.since) flags.push('--since', filter.since, '--until', filter.until!);
        expect((await listed(flags)).map((t) => t.taskID), JSON.stringify(filter)).toEqual(await expected(q, filter, 'enqueue_at'));
      }
    },
  );
});
