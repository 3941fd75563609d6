import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import {
  awkwardQueueNames,
  claimOne,
  completeRun,
  countRows,
  expectPgError,
  one,
  queueName,
  setNow,
  spawn,
  table,
  taskRow,
  useSession,
} from './helpers.js';
import {
  MONDAY,
  PARENT_PREFIXES,
  addDays,
  createPartitionedQueue,
  partitionOf,
  relationExists,
  setPolicy,
  weekStart,
  weekTag,
} from './partitioned-helpers.js';

const db = useTestDatabase();
const c = useSession(db, { now: MONDAY });

async function relkinds(queue: string): Promise<Record<string, string>> {
  const { rows } = await c.query<{ relname: string; relkind: string }>(
    `select c.relname, c.relkind::text as relkind
       from pg_class c
      where c.relnamespace = 'absurd'::regnamespace and c.relname = any($1::text[])`,
    [['t', 'r', 'c', 'e', 'w', 'i'].map((p) => `${p}_${queue}`)],
  );
  return Object.fromEntries(rows.map((r) => [r.relname.slice(0, 1), r.relkind]));
}

describe('partitioned storage', () => {
  it('makes t_/r_/c_/w_ partitioned parents and keeps e_ and i_ plain tables', async () => {
    const q = await createPartitionedQueue(c, queueName('kinds'));
    expect(await relkinds(q)).toEqual({ t: 'p', r: 'p', c: 'p', w: 'p', e: 'r', i: 'r' });
  });

  it('keys each parent by its UUIDv7 column', async () => {
    const q = await createPartitionedQueue(c, queueName('keys'));
    const { rows } = await c.query<{ relname: string; key: string }>(
      `select c.relname, pg_get_partkeydef(c.oid) as key
         from pg_class c
        where c.relnamespace = 'absurd'::regnamespace and c.relname = any($1::text[])
        order by c.relname`,
      [PARENT_PREFIXES.map((p) => `${p}_${q}`)],
    );
    expect(Object.fromEntries(rows.map((r) => [r.relname.slice(0, 1), r.key]))).toEqual({
      t: 'RANGE (task_id)',
      r: 'RANGE (run_id)',
      c: 'RANGE (task_id)',
      w: 'RANGE (run_id)',
    });
  });

  it('creates the idempotency registry i_<q> with its i_<q>_ti index, and no unique key on t_', async () => {
    const q = await createPartitionedQueue(c, queueName('registry'));
    const { rows } = await c.query<{ indexname: string; indexdef: string }>(
      `select indexname, indexdef from pg_indexes where schemaname = 'absurd' and tablename = $1 order by indexname`,
      [`i_${q}`],
    );
    expect(rows.map((r) => r.indexname)).toEqual([`i_${q}_pkey`, `i_${q}_ti`]);
    expect(rows[1]?.indexdef).toContain('(task_id)');
    const unique = await c.query<{ n: number }>(
      `select count(*)::int as n from pg_constraint where conrelid = $1::regclass and contype = 'u'`,
      [table('t', q)],
    );
    expect(one(unique.rows).n).toBe(0);
  });

  it('propagates the contract indexes of the parents to every weekly partition', async () => {
    const q = await createPartitionedQueue(c, queueName('idx'));
    const child = `r_${q}_${weekTag(weekStart(MONDAY))}`;
    const { rows } = await c.query<{ indexdef: string }>(
      `select indexdef from pg_indexes where schemaname = 'absurd' and tablename = $1`,
      [child],
    );
    const defs = rows.map((r) => r.indexdef);
    expect(defs.some((d) => d.includes('(state, available_at)'))).toBe(true);
    expect(defs.some((d) => d.includes('(task_id)'))).toBe(true);
    expect(defs.some((d) => d.includes('(claim_expires_at)') && d.includes("'running'"))).toBe(true);
  });

  it('works for queue names that need quoting, up to 57 UTF-8 bytes (63-byte partition names)', async () => {
    for (const q of awkwardQueueNames()) {
      await createPartitionedQueue(c, q);
      const spawned = await spawn(c, q, 'job', { n: 1 }, { idempotency_key: 'k' });
      const tag = weekTag(weekStart(MONDAY));
      expect(await partitionOf(c, 't', q, spawned.task_id)).toBe(`t_${q}_${tag}`);
      expect(await partitionOf(c, 'r', q, spawned.run_id)).toBe(`r_${q}_${tag}`);
      const again = await spawn(c, q, 'job', { n: 2 }, { idempotency_key: 'k' });
      expect(again).toEqual({ ...spawned, created: false });
    }
  });
});

describe('rows and partitions', () => {
  it('routes a task and its run to the partition of the week their UUIDv7 was made in', async () => {
    const q = await createPartitionedQueue(c, queueName('route'));
    await setNow(c, '2024-04-10T12:00:00Z');
    const spawned = await spawn(c, q);
    const tag = weekTag(weekStart('2024-04-10T12:00:00Z'));
    expect(tag).toBe('415');
    expect(await partitionOf(c, 't', q, spawned.task_id)).toBe(`t_${q}_415`);
    expect(await partitionOf(c, 'r', q, spawned.run_id)).toBe(`r_${q}_415`);
  });

  it('sends rows outside the weekly window to the DEFAULT partitions', async () => {
    const q = await createPartitionedQueue(c, queueName('default'));
    await setNow(c, addDays(MONDAY, 365));
    const spawned = await spawn(c, q);
    expect(await partitionOf(c, 't', q, spawned.task_id)).toBe(`t_${q}_d`);
    expect(await partitionOf(c, 'r', q, spawned.run_id)).toBe(`r_${q}_d`);
    await setNow(c, addDays(MONDAY, -365));
    const old = await spawn(c, q);
    expect(await partitionOf(c, 't', q, old.task_id)).toBe(`t_${q}_d`);
  });

  it('fails with "no partition of relation" outside the window once the DEFAULT partitions are gone', async () => {
    const q = await createPartitionedQueue(c, queueName('nodefault'));
    await setPolicy(c, q, { default_partition: 'disabled' });
    await setNow(c, addDays(MONDAY, 365));
    await expectPgError(spawn(c, q), '23514', 'no partition of relation');
    expect(await countRows(c, q, 't')).toBe(0);
    // Inside the window spawning still works.
    await setNow(c, addDays(MONDAY, 2));
    expect((await spawn(c, q)).created).toBe(true);
  });

  it('also rejects a checkpoint of a task whose week has no partition any more', async () => {
    const q = await createPartitionedQueue(c, queueName('cp'));
    await setPolicy(c, q, { default_partition: 'disabled' });
    const spawned = await spawn(c, q);
    await c.query(`alter table ${table('c', q)} detach partition absurd."c_${q}_${weekTag(weekStart(MONDAY))}"`);
    const claimed = await claimOne(c, q);
    await expectPgError(
      c.query('select absurd.set_task_checkpoint_state($1, $2, $3, $4, $5, $6)', [
        q,
        spawned.task_id,
        'step',
        '1',
        claimed.run_id,
        null,
      ]),
      '23514',
      'no partition of relation',
    );
  });
});

describe('idempotency keys in partitioned queues', () => {
  it('registers the key in i_<q> and writes it on the task too', async () => {
    const q = await createPartitionedQueue(c, queueName('idem'));
    const spawned = await spawn(c, q, 'job', {}, { idempotency_key: 'order-1' });
    expect(spawned).toMatchObject({ attempt: 1, created: true });
    const { rows } = await c.query(`select idempotency_key, task_id from ${table('i', q)}`);
    expect(rows).toEqual([{ idempotency_key: 'order-1', task_id: spawned.task_id }]);
    expect((await taskRow(c, q, spawned.task_id)).idempotency_key).toBe('order-1');
  });

  it('returns the existing task with its current run and attempts for a duplicate key, whatever the task name', async () => {
    const q = await createPartitionedQueue(c, queueName('dup'));
    const first = await spawn(c, q, 'job', {}, { idempotency_key: 'k1', retry_strategy: { kind: 'none' } });
    const claimed = await claimOne(c, q);
    await c.query('select absurd.fail_run($1, $2, $3, null)', [q, claimed.run_id, JSON.stringify({ message: 'x' })]);
    const current = await taskRow(c, q, first.task_id);
    expect(current.attempts).toBe(2);

    const dup = await spawn(c, q, 'other-name', { other: true }, { idempotency_key: 'k1' });
    expect(dup).toEqual({ task_id: first.task_id, run_id: current.last_attempt_run, attempt: 2, created: false });
    expect(await countRows(c, q, 't')).toBe(1);
    expect(await countRows(c, q, 'r')).toBe(2);
  });

  it('keeps the key after completion and releases it only when cleanup_tasks deletes the task', async () => {
    const q = await createPartitionedQueue(c, queueName('release'));
    const first = await spawn(c, q, 'job', {}, { idempotency_key: 'once' });
    const claimed = await claimOne(c, q);
    await completeRun(c, q, claimed.run_id, { ok: true });
    expect((await spawn(c, q, 'job', {}, { idempotency_key: 'once' })).created).toBe(false);

    await setNow(c, addDays(MONDAY, 2));
    expect(one((await c.query<{ n: number }>('select absurd.cleanup_tasks($1, 3600) as n', [q])).rows).n).toBe(1);
    expect(await countRows(c, q, 't')).toBe(0);
    expect((await c.query(`select * from ${table('i', q)}`)).rows).toEqual([]);

    const second = await spawn(c, q, 'job', {}, { idempotency_key: 'once' });
    expect(second.created).toBe(true);
    expect(second.task_id).not.toBe(first.task_id);
  });

  it('raises 40001 when the key is registered but its task is gone (released concurrently)', async () => {
    const q = await createPartitionedQueue(c, queueName('race'));
    await c.query(`insert into ${table('i', q)} (idempotency_key, task_id) values ('k', absurd.portable_uuidv7())`);
    await expectPgError(spawn(c, q, 'job', {}, { idempotency_key: 'k' }), '40001');
    expect(await countRows(c, q, 't')).toBe(0);
  });

  it('does not give unpartitioned queues an i_ table', async () => {
    const q = queueName('plain');
    await c.query('select absurd.create_queue($1)', [q]);
    await spawn(c, q, 'job', {}, { idempotency_key: 'k' });
    expect(await relationExists(c, `i_${q}`)).toBe(false);
  });
});
