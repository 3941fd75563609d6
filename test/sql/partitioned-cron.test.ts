import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { awkwardQueueNames, expectPgError, ident, queueName, setNow, table, useSession } from './helpers.js';
import {
  MONDAY,
  addDays,
  children,
  createPartitionedQueue,
  cronJobs,
  detachCandidates,
  installMockCron,
  md5Prefix,
  relationExists,
  setPolicy,
  type CronJob,
} from './partitioned-helpers.js';

const db = useTestDatabase();
const c = useSession(db, { now: MONDAY });

interface Job {
  job_name: string;
  job_id: number;
}

interface DetachJob extends Job {
  queue_name: string;
  partition_table: string;
  job_kind: string;
}

async function enableCron(queue: string | null, ...schedules: (string | null)[]): Promise<Job[]> {
  const args = [queue, ...schedules];
  const placeholders = args.map((_, i) => (i === 0 ? '$1::text' : `$${i + 1}`)).join(', ');
  const { rows } = await c.query<Job>(
    `select job_name, job_id::int as job_id from absurd.enable_cron(${placeholders})`,
    args,
  );
  return rows;
}

async function disableCron(queue: string | null): Promise<Job[]> {
  const { rows } = await c.query<Job>('select job_name, job_id::int as job_id from absurd.disable_cron($1::text)', [queue]);
  return rows;
}

async function scheduleDetachJobs(queue: string | null): Promise<DetachJob[]> {
  const { rows } = await c.query<DetachJob>(
    `select job_name, job_id::int as job_id, queue_name, partition_table, job_kind
       from absurd.schedule_detach_jobs($1::text)`,
    [queue],
  );
  return rows;
}

/** The identifier as Postgres quotes it (only when needed). */
async function quoteIdent(name: string): Promise<string> {
  const { rows } = await c.query<{ q: string }>('select quote_ident($1) as q', [name]);
  return rows[0]?.q ?? '';
}

/** The jobs whose names end in the scope suffix of `queue` (or `_all`). */
async function scopedJobs(queue: string | null): Promise<CronJob[]> {
  const scope = queue === null ? 'all' : md5Prefix(queue);
  return (await cronJobs(c)).filter((j) => j.jobname.includes(`_${scope}`));
}

describe('without pg_cron', () => {
  it('enable_cron, disable_cron and schedule_detach_jobs fail with the missing piece named', async () => {
    const q = await createPartitionedQueue(c, queueName('nocron'));
    await expectPgError(enableCron(q), 'P0001', 'pg_cron is not available (missing cron.job)');
    await expectPgError(enableCron(null), 'P0001', 'pg_cron is not available (missing cron.job)');
    await expectPgError(disableCron(q), 'P0001', 'pg_cron is not available (missing cron.job)');
    await expectPgError(scheduleDetachJobs(q), 'P0001', 'pg_cron is not available (missing cron.job)');
  });

  it('names cron.schedule and cron.unschedule when only they are missing', async () => {
    const q = await createPartitionedQueue(c, queueName('partial'));
    await c.query('begin');
    try {
      await installMockCron(c);
      await c.query('drop function cron.schedule(text, text, text)');
      await c.query('savepoint s');
      await expectPgError(enableCron(q), 'P0001', 'pg_cron is not available (missing cron.schedule)');
      await c.query('rollback to savepoint s');
      await expectPgError(scheduleDetachJobs(q), 'P0001', 'pg_cron is not available (missing cron.schedule)');
      await c.query('rollback to savepoint s');
      // disable_cron only unschedules, so it does not need cron.schedule.
      expect(await disableCron(q)).toEqual([]);
      await c.query('drop function cron.unschedule(bigint)');
      await c.query('savepoint t');
      await expectPgError(disableCron(q), 'P0001', 'pg_cron is not available (missing cron.unschedule)');
      await c.query('rollback to savepoint t');
    } finally {
      await c.query('rollback');
    }
  });

  it('drop_detached_partition and drop_queue still work', async () => {
    const q = await createPartitionedQueue(c, queueName('plain_drop'));
    await c.query(`alter table ${table('c', q)} detach partition absurd.${ident(`c_${q}_413`)}`);
    const { rows } = await c.query('select absurd.drop_detached_partition($1, $2) as dropped', [
      `c_${q}_413`,
      'absurd_drop_run_all_00000000_000000000000',
    ]);
    expect(rows).toEqual([{ dropped: true }]);
    await c.query('select absurd.drop_queue($1)', [q]);
    expect(await relationExists(c, `t_${q}`)).toBe(false);
  });
});

describe('with pg_cron', () => {
  beforeAll(async () => {
    await installMockCron(c);
  });

  beforeEach(async () => {
    await c.query('delete from cron.job');
  });

  describe('enable_cron', () => {
    it('schedules the partition, cleanup and detach-plan jobs of a queue', async () => {
      const q = await createPartitionedQueue(c, 'cron-partitioned');
      const sfx = md5Prefix(q);
      const jobs = await enableCron(q);
      expect(jobs.map((j) => j.job_name)).toEqual([
        `absurd_partitions_${sfx}`,
        `absurd_cleanup_${sfx}`,
        `absurd_detach_plan_${sfx}`,
      ]);
      expect(await cronJobs(c)).toEqual([
        {
          jobid: jobs[0]?.job_id,
          jobname: `absurd_partitions_${sfx}`,
          schedule: '5 * * * *',
          command: `select absurd.ensure_partitions('cron-partitioned');`,
        },
        {
          jobid: jobs[1]?.job_id,
          jobname: `absurd_cleanup_${sfx}`,
          schedule: '17 * * * *',
          command: `select * from absurd.cleanup_all_queues('cron-partitioned');`,
        },
        {
          jobid: jobs[2]?.job_id,
          jobname: `absurd_detach_plan_${sfx}`,
          schedule: '29 * * * *',
          command: `select * from absurd.schedule_detach_jobs('cron-partitioned');`,
        },
      ]);
      expect((await cronJobs(c)).some((j) => j.command.includes(`absurd.cleanup_all_queues('cron-partitioned')`))).toBe(true);
    });

    it('schedules jobs for all queues with the _all suffix, null::text and the given schedules', async () => {
      const jobs = await enableCron(null, '1 * * * *', '2 * * * *', '3 * * * *');
      expect(jobs.map((j) => j.job_name)).toEqual(['absurd_partitions_all', 'absurd_cleanup_all', 'absurd_detach_plan_all']);
      expect((await cronJobs(c)).map(({ jobname, schedule, command }) => ({ jobname, schedule, command }))).toEqual([
        { jobname: 'absurd_partitions_all', schedule: '1 * * * *', command: 'select absurd.ensure_partitions(null::text);' },
        { jobname: 'absurd_cleanup_all', schedule: '2 * * * *', command: 'select * from absurd.cleanup_all_queues(null::text);' },
        {
          jobname: 'absurd_detach_plan_all',
          schedule: '3 * * * *',
          command: 'select * from absurd.schedule_detach_jobs(null::text);',
        },
      ]);
    });

    it('replaces the jobs when enabled again instead of duplicating them', async () => {
      const q = await createPartitionedQueue(c, queueName('again'));
      const first = await enableCron(q);
      await enableCron(null);
      const second = await enableCron(q, '7 * * * *');
      expect(second.map((j) => j.job_name)).toEqual(first.map((j) => j.job_name));
      for (const j of second) expect(first.map((f) => f.job_id)).not.toContain(j.job_id);
      const jobs = await scopedJobs(q);
      expect(jobs.map((j) => j.jobid)).toEqual(second.map((j) => j.job_id));
      expect(jobs[0]?.schedule).toBe('7 * * * *');
      expect(await scopedJobs(null)).toHaveLength(3);
    });

    it('builds commands that run as they are, for queue names that need quoting', async () => {
      for (const q of awkwardQueueNames()) {
        await createPartitionedQueue(c, q);
        const jobs = await enableCron(q);
        expect(jobs.map((j) => j.job_name)).toEqual(
          ['absurd_partitions_', 'absurd_cleanup_', 'absurd_detach_plan_'].map((p) => p + md5Prefix(q)),
        );
        await setNow(c, addDays(MONDAY, 63));
        for (const job of await scopedJobs(q)) await c.query(job.command);
        expect(await relationExists(c, `w_${q}_${'419'}`)).toBe(false);
        expect((await children(c, `w_${q}`)).map((r) => r.name)).toContain(`w_${q}_423`);
        await setNow(c, MONDAY);
      }
    });

    it('rejects blank schedules, unknown queues and bad names', async () => {
      const q = await createPartitionedQueue(c, queueName('sched'));
      await expectPgError(enableCron(q, ' '), 'P0001', 'Partition schedule must be provided');
      await expectPgError(enableCron(q, '5 * * * *', null), 'P0001', 'Cleanup schedule must be provided');
      await expectPgError(enableCron(q, '5 * * * *', '6 * * * *', ''), 'P0001', 'Detach schedule must be provided');
      await expectPgError(enableCron('no_such_queue_z'), 'P0001', 'Queue "no_such_queue_z" does not exist');
      await expectPgError(enableCron('q'.repeat(58)), 'P0001', 'is too long');
      expect(await cronJobs(c)).toEqual([]);
    });
  });

  describe('disable_cron', () => {
    it("removes a queue's jobs, its detach and drop jobs included, ordered by name; a second call removes nothing", async () => {
      const q = await createPartitionedQueue(c, queueName('off'));
      const other = await createPartitionedQueue(c, queueName('keep'));
      await enableCron(q);
      await enableCron(other);
      await enableCron(null);
      await setPolicy(c, q, { detach_mode: 'empty' });
      await setNow(c, '2024-06-15T00:00:00Z');
      expect(await scheduleDetachJobs(q)).toHaveLength(8);

      const removed = await disableCron(q);
      expect(removed).toHaveLength(11);
      const names = removed.map((j) => j.job_name);
      expect(names).toEqual([...names].sort());
      expect(names.every((n) => n.includes(`_${md5Prefix(q)}`))).toBe(true);
      expect(await scopedJobs(q)).toEqual([]);
      expect(await scopedJobs(other)).toHaveLength(3);
      expect(await scopedJobs(null)).toHaveLength(3);
      expect(await disableCron(q)).toEqual([]);
    });

    it('without a queue removes only the _all jobs', async () => {
      const q = await createPartitionedQueue(c, queueName('scoped'));
      await enableCron(q);
      const all = await enableCron(null);
      const removed = await disableCron(null);
      expect(removed).toEqual(
        [...all].sort((a, b) => (a.job_name < b.job_name ? -1 : 1)).map((j) => ({ job_name: j.job_name, job_id: j.job_id })),
      );
      expect(await scopedJobs(q)).toHaveLength(3);
      expect(await disableCron(null)).toEqual([]);
    });

    it('does not require the queue to exist, but validates the name', async () => {
      const gone = queueName('gone');
      await createPartitionedQueue(c, gone);
      await enableCron(gone);
      await c.query('delete from absurd.queues where queue_name = $1', [gone]);
      expect((await disableCron(gone)).map((j) => j.job_name)).toEqual(
        ['absurd_cleanup_', 'absurd_detach_plan_', 'absurd_partitions_'].map((p) => p + md5Prefix(gone)),
      );
      await expectPgError(disableCron(''), 'P0001', 'Queue name must be provided');
      await expectPgError(disableCron('q'.repeat(58)), 'P0001', 'is too long');
    });

    it("is called by drop_queue, which removes that queue's jobs only", async () => {
      const q = await createPartitionedQueue(c, queueName('dropped'));
      const other = await createPartitionedQueue(c, queueName('stays'));
      await enableCron(q);
      await enableCron(other);
      await c.query('select absurd.drop_queue($1)', [q]);
      expect(await scopedJobs(q)).toEqual([]);
      expect(await scopedJobs(other)).toHaveLength(3);
    });
  });

  describe('schedule_detach_jobs', () => {
    async function oldQueue(label: string, policy: Record<string, unknown> = {}, name = queueName(label)): Promise<string> {
      await setNow(c, MONDAY);
      const q = await createPartitionedQueue(c, name);
      await setPolicy(c, q, { detach_mode: 'empty', ...policy });
      await setNow(c, '2024-06-15T00:00:00Z');
      return q;
    }

    it('schedules a detach and a drop job for the oldest candidate of each parent', async () => {
      const q = await oldQueue('plan');
      const scope = md5Prefix(q);
      const jobs = await scheduleDetachJobs(q);
      expect(jobs).toHaveLength(8);
      for (const prefix of ['c', 'r', 't', 'w']) {
        const parent = `${prefix}_${q}`;
        const partition = `${parent}_413`;
        const key = `${scope}_${md5Prefix(parent, 8)}_${md5Prefix(`${parent}:${partition}`)}`;
        const forParent = jobs.filter((j) => j.partition_table === partition);
        expect(forParent.map(({ job_name, queue_name, job_kind }) => ({ job_name, queue_name, job_kind }))).toEqual([
          { job_name: `absurd_detach_run_${key}`, queue_name: q, job_kind: 'detach' },
          { job_name: `absurd_drop_run_${key}`, queue_name: q, job_kind: 'drop' },
        ]);
      }
      const byName = new Map((await cronJobs(c)).map((j) => [j.jobname, j]));
      for (const job of jobs) {
        const stored = byName.get(job.job_name);
        expect(stored?.jobid).toBe(job.job_id);
        expect(stored?.schedule).toBe('* * * * *');
        const parent = job.partition_table.slice(0, -4);
        expect(stored?.command).toBe(
          job.job_kind === 'detach'
            ? `alter table absurd.${await quoteIdent(parent)} detach partition absurd.${await quoteIdent(job.partition_table)}`
            : `select absurd.drop_detached_partition('${job.partition_table}', '${job.job_name}');`,
        );
      }
    });

    it('keeps one pipeline per parent: running it again schedules nothing', async () => {
      const q = await oldQueue('once');
      expect(await scheduleDetachJobs(q)).toHaveLength(8);
      expect(await scheduleDetachJobs(q)).toEqual([]);
      // Another scope sees the same parents busy too.
      expect((await scheduleDetachJobs(null)).filter((j) => j.queue_name === q)).toEqual([]);
      expect((await cronJobs(c)).filter((j) => j.command.includes(q))).toHaveLength(8);
    });

    it('adds concurrently to the detach command only when the parent has no DEFAULT partition', async () => {
      const withDefault = await oldQueue('withdefault');
      const withoutDefault = await oldQueue('nodefault', { default_partition: 'disabled' });
      const detachJobs = (await scheduleDetachJobs(null)).filter(
        (j) => j.job_kind === 'detach' && [withDefault, withoutDefault].includes(j.queue_name),
      );
      expect(detachJobs).toHaveLength(8);
      const stored = await cronJobs(c);
      for (const job of detachJobs) {
        const command = stored.find((j) => j.jobid === job.job_id)?.command;
        if (job.queue_name === withDefault) expect(command).toMatch(/ detach partition absurd\.\w+_413$/);
        else expect(command).toMatch(/ detach partition absurd\.\w+_413 concurrently$/);
      }
    });

    it('runs the pipeline end to end: detach, then drop, which removes both jobs; the next week follows', async () => {
      const awkward = awkwardQueueNames();
      for (const [name, policy] of [
        [queueName('e2e'), {}],
        [queueName('e2e_conc'), { default_partition: 'disabled' }],
        [awkward[0] ?? '', {}],
        [awkward[3] ?? '', { default_partition: 'disabled' }],
      ] as const) {
        const q = await oldQueue('', policy, name);
        const jobs = (await scheduleDetachJobs(q)).filter((j) => j.partition_table === `t_${q}_413`);
        const [detach, drop] = jobs;
        const command = (id: number | undefined) => cronJobs(c).then((all) => all.find((j) => j.jobid === id)?.command ?? '');

        // Before the detach ran, the drop job leaves the attached partition alone.
        await c.query(await command(drop?.job_id));
        expect(await relationExists(c, `t_${q}_413`)).toBe(true);

        // Outside a transaction block, so the concurrent variant works too.
        await c.query(await command(detach?.job_id));
        expect((await children(c, `t_${q}`)).map((r) => r.name)).not.toContain(`t_${q}_413`);
        await c.query(await command(drop?.job_id));
        expect(await relationExists(c, `t_${q}_413`)).toBe(false);
        expect((await cronJobs(c)).filter((j) => j.jobname === detach?.job_name || j.jobname === drop?.job_name)).toEqual([]);

        const next = (await scheduleDetachJobs(q)).map((j) => j.partition_table);
        expect(next).toEqual([`t_${q}_414`, `t_${q}_414`]);
        expect((await detachCandidates(c, q)).map((r) => r.partition_table)).not.toContain(`t_${q}_413`);
      }
    });

    it('lets drop_detached_partition unschedule its jobs when the table is already gone', async () => {
      const q = await oldQueue('gone');
      const [detach, drop] = (await scheduleDetachJobs(q)).filter((j) => j.partition_table === `w_${q}_413`);
      await c.query(`alter table ${table('w', q)} detach partition absurd.${ident(`w_${q}_413`)}`);
      await c.query(`drop table absurd.${ident(`w_${q}_413`)}`);
      const { rows } = await c.query('select absurd.drop_detached_partition($1, $2) as dropped', [`w_${q}_413`, drop?.job_name]);
      expect(rows).toEqual([{ dropped: false }]);
      const names = (await cronJobs(c)).map((j) => j.jobname);
      expect(names).not.toContain(detach?.job_name);
      expect(names).not.toContain(drop?.job_name);
      expect(names).toHaveLength(6);
    });

    it('validates a given queue name and schedules nothing for queues without candidates', async () => {
      await expectPgError(scheduleDetachJobs(''), 'P0001', 'Queue name must be provided');
      await expectPgError(scheduleDetachJobs('no_such_queue_w'), 'P0001', 'Queue "no_such_queue_w" does not exist');
      const q = await createPartitionedQueue(c, queueName('young'));
      expect(await scheduleDetachJobs(q)).toEqual([]);
      expect(await cronJobs(c)).toEqual([]);
    });
  });
});
