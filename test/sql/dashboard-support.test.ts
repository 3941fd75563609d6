/**
 * Migration 000009, what `absurd dashboard` needs from the engine: kit_wake_task, and the task
 * list's indexes t_<q>_sti (state, task_id) and t_<q>_nsi (task_name, state, task_id), each against
 * the behaviour its header comment promises.
 */
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import {
  awaitEvent,
  awkwardQueueNames,
  checkpointRows,
  claim,
  claimOne,
  createQueue,
  ident,
  newQueue,
  plus,
  queueName,
  runRow,
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
  async function indexes(q: string): Promise<Record<string, string>> {
    const { rows } = await c.query<{ indexname: string; indexdef: string }>(
      `select indexname, indexdef from pg_indexes where schemaname = 'absurd' and tablename = $1`,
      [`t_${q}`],
    );
    return Object.fromEntries(rows.map((r) => [r.indexname, r.indexdef]));
  }

  it('exist on new queues of both storage modes, with names that fit for 57-byte queue names', async () => {
    for (const [name, mode] of [
      [queueName('list-idx'), 'unpartitioned'],
      [awkwardQueueNames().at(-1)!, 'unpartitioned'],
      [queueName('list-idx-p'), 'partitioned'],
    ] as const) {
      await c.query('select absurd.create_queue($1, $2)', [name, mode]);
      const found = await indexes(name);
      expect(found[`t_${name}_sti`]).toMatch(/\(state, task_id\)$/);
      expect(found[`t_${name}_nsi`]).toMatch(/\(task_name, state, task_id\)$/);
    }
  });

  it('are created again by kit_ensure_list_indexes when missing', async () => {
    const q = await newQueue(c, 'list-idx-again');
    await c.query(`drop index absurd.${ident(`t_${q}_sti`)}`);
    expect(Object.keys(await indexes(q))).not.toContain(`t_${q}_sti`);
    await c.query('select absurd.kit_ensure_list_indexes($1)', [q]);
    expect(Object.keys(await indexes(q))).toContain(`t_${q}_sti`);
  });

  it('serve a filtered page as a range read, newest first', async () => {
    const q = await newQueue(c, 'list-plan');
    await c.query(
      `insert into ${table('t', q)} (task_id, task_name, params, state)
       select absurd.portable_uuidv7(), 'job-' || (i % 7), '{}', (array['pending','completed','failed'])[1 + i % 3]
         from generate_series(1, 2000) i`,
    );
    await c.query(`analyze ${table('t', q)}`);
    const plan = async (where: string, args: unknown[]) => {
      const { rows } = await c.query<{ 'QUERY PLAN': string }>(
        `explain select task_id from ${table('t', q)} where ${where} order by task_id desc limit 50`,
        args,
      );
      return rows.map((r) => r['QUERY PLAN']).join('\n');
    };
    await c.query('set enable_seqscan = off');
    try {
      expect(await plan('state = $1', ['failed'])).toContain(`t_${q}_sti`);
      expect(await plan('task_name = $1 and state = $2', ['job-1', 'failed'])).toContain(`t_${q}_nsi`);
      expect(await plan('state = $1', ['failed'])).not.toMatch(/Sort/);
    } finally {
      await c.query('set enable_seqscan = on');
    }
  });
});
