import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { awkwardQueueNames, expectPgError, ident, one, queueName, setNow, spawn, table, useSession } from './helpers.js';
import {
  MONDAY,
  PARENT_PREFIXES,
  addDays,
  children,
  createPartitionedQueue,
  detachCandidates,
  mondays,
  relationExists,
  setPolicy,
  weekStart,
  weekTag,
  type Candidate,
} from './partitioned-helpers.js';

const db = useTestDatabase();
const c = useSession(db, { now: MONDAY });

/** The weeks a queue created at MONDAY has: 2024-03-25 (413) through 2024-04-29 (418). */
const CREATED_WEEKS = mondays(addDays(MONDAY, -1), addDays(MONDAY, 28));

function candidatesFor(queue: string, weeks: readonly Date[], prefixes: readonly string[] = PARENT_PREFIXES): Candidate[] {
  const out: Candidate[] = [];
  for (const prefix of prefixes) {
    for (const week of weeks) {
      out.push({ queue_name: queue, parent_table: `${prefix}_${queue}`, partition_table: `${prefix}_${queue}_${weekTag(week)}` });
    }
  }
  return out.sort((a, b) =>
    a.parent_table === b.parent_table
      ? a.partition_table < b.partition_table ? -1 : 1
      : a.parent_table < b.parent_table ? -1 : 1,
  );
}

async function dropDetached(partition: string | null, job?: string | null): Promise<boolean> {
  const { rows } = await c.query<{ dropped: boolean }>(
    job === undefined
      ? 'select absurd.drop_detached_partition($1) as dropped'
      : 'select absurd.drop_detached_partition($1, $2) as dropped',
    job === undefined ? [partition] : [partition, job],
  );
  return one(rows).dropped;
}

describe('list_detach_candidates', () => {
  it('lists nothing under the default policy (detach_mode none), however old the partitions', async () => {
    const q = await createPartitionedQueue(c, queueName('none'));
    await setNow(c, addDays(MONDAY, 400));
    expect(await detachCandidates(c, q)).toEqual([]);
    expect((await detachCandidates(c, null)).filter((r) => r.queue_name === q)).toEqual([]);
  });

  it("lists old empty weekly partitions of every parent with detach_mode 'empty', never the DEFAULT ones", async () => {
    const q = await createPartitionedQueue(c, queueName('empty'));
    await setPolicy(c, q, { detach_mode: 'empty' });
    // Under the default 30-day minimum age, at 2024-06-15 every week ending before 2024-05-16 qualifies.
    await setNow(c, '2024-06-15T00:00:00Z');
    const rows = await detachCandidates(c, q);
    expect(rows).toEqual(candidatesFor(q, CREATED_WEEKS));
    expect(rows.some((r) => r.partition_table.endsWith('_d'))).toBe(false);
  });

  it('excludes non-empty partitions (e.g. the current week with a task) but keeps the empty siblings', async () => {
    const q = await createPartitionedQueue(c, queueName('busy'));
    await setPolicy(c, q, { detach_mode: 'empty', detach_min_age: '0 seconds' });
    await spawn(c, q);
    // At the start of the next week the week of the task (414) is old enough, but t_ and r_ hold rows.
    await setNow(c, '2024-04-08T00:00:00.001Z');
    const rows = await detachCandidates(c, q);
    const weeks = mondays('2024-03-25T00:00:00Z', '2024-04-01T00:00:00Z');
    expect(rows).toEqual(
      [...candidatesFor(q, weeks.slice(0, 1), ['r', 't']), ...candidatesFor(q, weeks, ['c', 'w'])].sort((a, b) =>
        a.parent_table === b.parent_table
          ? a.partition_table < b.partition_table ? -1 : 1
          : a.parent_table < b.parent_table ? -1 : 1,
      ),
    );
    expect(rows.map((r) => r.partition_table)).not.toContain(`t_${q}_414`);
    expect(rows.map((r) => r.partition_table)).not.toContain(`r_${q}_414`);
  });

  it('only lists weeks whose upper bound is strictly older than now - detach_min_age', async () => {
    const q = await createPartitionedQueue(c, queueName('age'));
    await setPolicy(c, q, { detach_mode: 'empty', detach_min_age: '10 days' });
    // Week 413 ends at 2024-04-01 00:00; it becomes a candidate right after 2024-04-11 00:00.
    await setNow(c, '2024-04-11T00:00:00.000Z');
    expect(await detachCandidates(c, q)).toEqual([]);
    await setNow(c, '2024-04-11T00:00:00.001Z');
    expect(await detachCandidates(c, q)).toEqual(candidatesFor(q, CREATED_WEEKS.slice(0, 1)));
  });

  it('skips partitions whose upper bound is not a parsable version-7 uuid', async () => {
    const q = await createPartitionedQueue(c, queueName('odd'));
    await setPolicy(c, q, { detach_mode: 'empty', default_partition: 'disabled' });
    await c.query(
      `create table absurd.${ident(`t_${q}_low`)} partition of ${table('t', q)}
         for values from (minvalue) to ('00000000-0000-4000-8000-000000000000')`,
    );
    await c.query(
      `create table absurd.${ident(`t_${q}_high`)} partition of ${table('t', q)}
         for values from ('ffff0000-0000-7000-8000-000000000000') to (maxvalue)`,
    );
    await setNow(c, '2030-01-01T00:00:00Z');
    const names = (await detachCandidates(c, q)).map((r) => r.partition_table);
    expect(names).not.toContain(`t_${q}_low`);
    expect(names).not.toContain(`t_${q}_high`);
    expect(names).toContain(`t_${q}_413`);
  });

  it('without a queue covers every partitioned queue whose policy allows it', async () => {
    const a = await createPartitionedQueue(c, queueName('all_a'));
    const b = await createPartitionedQueue(c, queueName('all_b'));
    await setPolicy(c, a, { detach_mode: 'empty' });
    await setNow(c, '2024-06-15T00:00:00Z');
    const rows = await detachCandidates(c, null);
    expect(rows.filter((r) => r.queue_name === a)).toEqual(candidatesFor(a, CREATED_WEEKS));
    expect(rows.filter((r) => r.queue_name === b)).toEqual([]);
  });

  it('validates a given queue name and requires the queue to exist', async () => {
    await expectPgError(detachCandidates(c, 'missing_queue_y'), 'P0001', 'Queue "missing_queue_y" does not exist');
    await expectPgError(detachCandidates(c, ''), 'P0001', 'Queue name must be provided');
    await expectPgError(detachCandidates(c, 'q'.repeat(58)), 'P0001', 'is too long');
  });

  it('works for queue names that need quoting', async () => {
    for (const q of awkwardQueueNames()) {
      await setNow(c, MONDAY);
      await createPartitionedQueue(c, q);
      await setPolicy(c, q, { detach_mode: 'empty' });
      await setNow(c, '2024-06-15T00:00:00Z');
      expect(await detachCandidates(c, q)).toEqual(candidatesFor(q, CREATED_WEEKS));
    }
  });
});

describe('drop_detached_partition', () => {
  it('requires a table name', async () => {
    for (const name of [null, '', '   ']) {
      await expectPgError(dropDetached(name), 'P0001', 'partition table must be provided');
    }
  });

  it('returns false for a table that does not exist', async () => {
    expect(await dropDetached('t_no_such_queue_413')).toBe(false);
    expect(await dropDetached('t_no_such_queue_413', 'absurd_drop_run_all_00000000_000000000000')).toBe(false);
  });

  it('returns false and keeps a partition that is still attached', async () => {
    const q = await createPartitionedQueue(c, queueName('attached'));
    expect(await dropDetached(`t_${q}_413`)).toBe(false);
    expect((await children(c, `t_${q}`)).map((r) => r.name)).toContain(`t_${q}_413`);
    expect(await dropDetached(`t_${q}_d`)).toBe(false);
    expect(await relationExists(c, `t_${q}_d`)).toBe(true);
  });

  it('drops a detached partition and returns true; a second call returns false', async () => {
    for (const q of [queueName('detached'), ...awkwardQueueNames().slice(0, 2)]) {
      await createPartitionedQueue(c, q);
      const partition = `r_${q}_${weekTag(weekStart(addDays(MONDAY, -1)))}`;
      await c.query(`alter table ${table('r', q)} detach partition absurd.${ident(partition)}`);
      expect(await relationExists(c, partition)).toBe(true);
      expect(await dropDetached(partition)).toBe(true);
      expect(await relationExists(c, partition)).toBe(false);
      expect(await dropDetached(partition)).toBe(false);
    }
  });

  it('refuses to drop a detached partition that still holds rows', async () => {
    const q = await createPartitionedQueue(c, queueName('rows'));
    const spawned = await spawn(c, q);
    const partition = `t_${q}_414`;
    await c.query(`alter table ${table('t', q)} detach partition absurd.${ident(partition)}`);
    await expectPgError(dropDetached(partition), 'P0001', 'is not empty');
    const { rows } = await c.query(`select task_id from absurd.${ident(partition)}`);
    expect(rows).toEqual([{ task_id: spawned.task_id }]);
  });

  it("refuses to drop a queue's own tables or the queue registry", async () => {
    const q = queueName('plain');
    await c.query('select absurd.create_queue($1)', [q]);
    for (const name of [`t_${q}`, `w_${q}`, 'queues']) {
      await expectPgError(dropDetached(name), 'P0001', 'refusing to drop');
      expect(await relationExists(c, name)).toBe(true);
    }
  });
});
