import { beforeEach, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import {
  awkwardQueueNames,
  backendPid,
  expectPgError,
  one,
  queueName,
  setNow,
  spawn,
  table,
  useSession,
  utcClient,
  waitUntilBlocked,
} from './helpers.js';
import {
  MONDAY,
  PARENT_PREFIXES,
  addDays,
  children,
  createPartitionedQueue,
  ensurePartitions,
  expectWeeklyPartitions,
  mondays,
  partitionOf,
  relationExists,
  setPolicy,
  weekStart,
  weekTag,
  weeklyBound,
} from './partitioned-helpers.js';

const db = useTestDatabase();
const c = useSession(db);

beforeEach(async () => {
  await c.query(`set timezone = 'UTC'`);
  await setNow(c, MONDAY);
});

describe('test helpers agree with the engine', () => {
  it('computes week tags like partition_week_tag', async () => {
    for (const at of ['2021-01-01T00:00:00Z', '2024-12-31T00:00:00Z', '2024-04-03T15:30:00Z', '2026-06-30T23:59:59Z']) {
      const { rows } = await c.query<{ tag: string }>('select absurd.partition_week_tag($1) as tag', [at]);
      expect(weekTag(weekStart(at))).toBe(one(rows).tag);
    }
    expect(weekTag(weekStart('2021-01-01T00:00:00Z'))).toBe('053');
    expect(weekTag(weekStart('2024-12-31T00:00:00Z'))).toBe('501');
  });
});

describe('ensure_partitions window', () => {
  it('creates, at 2024-04-01 00:30 UTC with the default policy, the previous ISO week through the week of now + 28 days', async () => {
    const q = await createPartitionedQueue(c, queueName('window'));
    const weeks = mondays('2024-03-25T00:00:00Z', '2024-04-29T00:00:00Z');
    expect(weeks.map(weekTag)).toEqual(['413', '414', '415', '416', '417', '418']);
    await expectWeeklyPartitions(c, q, weeks, true);
  });

  it('bounds each week by plain uuid literals from uuidv7_floor(monday) to uuidv7_floor(next monday)', async () => {
    const q = await createPartitionedQueue(c, queueName('bounds'));
    const [first] = await children(c, `t_${q}`);
    expect(first).toEqual({
      name: `t_${q}_413`,
      bound: "FOR VALUES FROM ('018e72e8-2400-7000-8000-000000000000') TO ('018e96f4-a800-7000-8000-000000000000')",
    });
    const { rows } = await c.query<{ lo: string; hi: string }>(
      `select absurd.uuidv7_floor('2024-03-25T00:00:00Z')::text as lo, absurd.uuidv7_floor('2024-04-01T00:00:00Z')::text as hi`,
    );
    expect(first?.bound).toBe(`FOR VALUES FROM ('${one(rows).lo}') TO ('${one(rows).hi}')`);
  });

  it('includes the previous week only when now - lookback falls into it', async () => {
    await setNow(c, '2024-04-02T00:30:00Z');
    const q = await createPartitionedQueue(c, queueName('tuesday'));
    await expectWeeklyPartitions(c, q, mondays('2024-04-01T00:00:00Z', '2024-04-30T00:30:00Z'), true);
  });

  it('creates the week of now + 56 days once the lookahead is 60 days', async () => {
    const q = await createPartitionedQueue(c, queueName('ahead'));
    await setPolicy(c, q, { partition_lookahead: '60 days' });
    expect(await relationExists(c, `t_${q}_${weekTag(weekStart(addDays(MONDAY, 56)))}`)).toBe(false);
    await ensurePartitions(c, q);
    const target = weekStart(addDays(MONDAY, 56));
    expect(weekTag(target)).toBe('422');
    await expectWeeklyPartitions(c, q, mondays(addDays(MONDAY, -1), addDays(MONDAY, 60)), true);
  });

  it('follows a longer lookback and a zero lookahead', async () => {
    const q = await createPartitionedQueue(c, queueName('back'));
    await setNow(c, '2024-09-18T10:00:00Z');
    await setPolicy(c, q, { partition_lookback: '21 days', partition_lookahead: '0 seconds' });
    await ensurePartitions(c, q);
    const created = mondays('2024-03-25T00:00:00Z', '2024-04-29T00:00:00Z');
    const added = mondays('2024-08-28T10:00:00Z', '2024-09-18T10:00:00Z');
    expect(added.map(weekTag)).toEqual(['435', '436', '437', '438']);
    await expectWeeklyPartitions(c, q, [...created, ...added], true);
  });

  it('keeps bounds on Monday 00:00 UTC whatever the session time zone (across a DST change)', async () => {
    await c.query(`set timezone = 'America/New_York'`);
    await setNow(c, '2024-03-05T12:00:00Z');
    const q = await createPartitionedQueue(c, queueName('dst'));
    await expectWeeklyPartitions(c, q, mondays('2024-03-04T12:00:00Z', '2024-04-02T12:00:00Z'), true);
    await c.query(`set timezone = 'Pacific/Chatham'`);
    await setNow(c, '2024-04-01T00:30:00+13:45');
    await ensurePartitions(c, q);
    const bounds = (await children(c, `r_${q}`)).map((child) => child.bound);
    for (const monday of mondays('2024-03-04T00:00:00Z', '2024-04-01T00:00:00Z')) {
      expect(bounds).toContain(weeklyBound(monday));
    }
  });

  it('is safe to re-run and leaves existing partitions and their rows alone', async () => {
    const q = await createPartitionedQueue(c, queueName('rerun'));
    const spawned = await spawn(c, q);
    const before = await Promise.all(PARENT_PREFIXES.map((p) => children(c, `${p}_${q}`)));
    await ensurePartitions(c, q);
    await ensurePartitions(c, null);
    expect(await Promise.all(PARENT_PREFIXES.map((p) => children(c, `${p}_${q}`)))).toEqual(before);
    expect(await partitionOf(c, 't', q, spawned.task_id)).toBe(`t_${q}_414`);
  });

  it('without a queue covers every partitioned queue and ignores unpartitioned ones', async () => {
    const a = await createPartitionedQueue(c, queueName('all_a'));
    const b = await createPartitionedQueue(c, queueName('all_b'));
    const plain = queueName('all_plain');
    await c.query('select absurd.create_queue($1)', [plain]);
    await setNow(c, addDays(MONDAY, 14));
    await ensurePartitions(c, null);
    const weeks = mondays(addDays(MONDAY, -1), addDays(MONDAY, 14 + 28));
    await expectWeeklyPartitions(c, a, weeks, true);
    await expectWeeklyPartitions(c, b, weeks, true);
    const { rows } = await c.query<{ relname: string }>(
      `select relname from pg_class
        where relnamespace = 'absurd'::regnamespace and relkind in ('r', 'p') and strpos(relname, $1) > 0`,
      [plain],
    );
    expect(rows.map((r) => r.relname).sort()).toEqual(
      [`c_${plain}`, `e_${plain}`, `t_${plain}`, `r_${plain}`, `w_${plain}`].sort(),
    );
  });

  it('with an unpartitioned queue does nothing', async () => {
    const q = queueName('plain');
    await c.query('select absurd.create_queue($1)', [q]);
    await ensurePartitions(c, q);
    expect(await relationExists(c, `t_${q}_d`)).toBe(false);
    expect(await relationExists(c, `t_${q}_414`)).toBe(false);
  });

  it('validates a given queue name and requires the queue to exist', async () => {
    await expectPgError(ensurePartitions(c, 'no_such_queue_x'), 'P0001', 'Queue "no_such_queue_x" does not exist');
    await expectPgError(ensurePartitions(c, ''), 'P0001', 'Queue name must be provided');
    await expectPgError(ensurePartitions(c, 'q'.repeat(58)), 'P0001', 'is too long');
  });

  it('works for queue names that need quoting', async () => {
    for (const q of awkwardQueueNames()) {
      await createPartitionedQueue(c, q);
      await setNow(c, addDays(MONDAY, 35));
      await ensurePartitions(c, q);
      await expectWeeklyPartitions(c, q, mondays(addDays(MONDAY, -1), addDays(MONDAY, 35 + 28)), true);
      await setNow(c, MONDAY);
    }
  });

  it('is transactional: a rolled-back call leaves no partition behind', async () => {
    const q = await createPartitionedQueue(c, queueName('tx'));
    await setNow(c, addDays(MONDAY, 70));
    await c.query('begin');
    await ensurePartitions(c, q);
    expect(await relationExists(c, `t_${q}_${weekTag(weekStart(addDays(MONDAY, 70)))}`)).toBe(true);
    await c.query('rollback');
    expect(await relationExists(c, `t_${q}_${weekTag(weekStart(addDays(MONDAY, 70)))}`)).toBe(false);
  });

  it('waits for a concurrent call on the same queue instead of failing on a duplicate partition', async () => {
    const q = await createPartitionedQueue(c, queueName('concurrent'));
    const other = await utcClient(db);
    const observer = await db.connect();
    const otherPid = await backendPid(other);
    await setNow(other, addDays(MONDAY, 70));
    await setNow(c, addDays(MONDAY, 70));
    await c.query('begin');
    await ensurePartitions(c, q);
    const second = ensurePartitions(other, q);
    await waitUntilBlocked(observer, otherPid);
    await c.query('commit');
    await second;
    const weeks = [...mondays(addDays(MONDAY, -1), addDays(MONDAY, 28)), ...mondays(addDays(MONDAY, 69), addDays(MONDAY, 98))];
    await expectWeeklyPartitions(c, q, weeks, true);
  });
});

describe('default partitions', () => {
  it('detaches and drops the four _d tables when disabled, and recreates them when enabled again', async () => {
    const q = await createPartitionedQueue(c, queueName('toggle'));
    const weeks = mondays(addDays(MONDAY, -1), addDays(MONDAY, 28));
    await setPolicy(c, q, { default_partition: 'disabled' });
    for (const p of PARENT_PREFIXES) expect(await relationExists(c, `${p}_${q}_d`)).toBe(false);
    await expectWeeklyPartitions(c, q, weeks, false);

    await ensurePartitions(c, q);
    for (const p of PARENT_PREFIXES) expect(await relationExists(c, `${p}_${q}_d`)).toBe(false);

    await setPolicy(c, q, { default_partition: 'enabled' });
    await expectWeeklyPartitions(c, q, weeks, true);
  });

  it('recreates a missing DEFAULT partition on the next ensure_partitions while enabled', async () => {
    const q = await createPartitionedQueue(c, queueName('recreate'));
    await c.query(`alter table ${table('w', q)} detach partition absurd."w_${q}_d"`);
    await c.query(`drop table absurd."w_${q}_d"`);
    await ensurePartitions(c, q);
    expect((await children(c, `w_${q}`)).filter((child) => child.bound === 'DEFAULT')).toEqual([
      { name: `w_${q}_d`, bound: 'DEFAULT' },
    ]);
  });

  it('refuses to disable the default partition while it holds rows, changing nothing', async () => {
    const q = await createPartitionedQueue(c, queueName('busy'));
    await setNow(c, addDays(MONDAY, 400));
    await spawn(c, q);
    await expectPgError(setPolicy(c, q, { default_partition: 'disabled' }), 'P0001');
    for (const p of PARENT_PREFIXES) expect(await relationExists(c, `${p}_${q}_d`)).toBe(true);
    const { rows } = await c.query<{ default_partition: string }>(
      'select default_partition from absurd.get_queue_policy($1)',
      [q],
    );
    expect(one(rows).default_partition).toBe('enabled');
  });
});
