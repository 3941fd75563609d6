import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { awkwardQueues, cli, cliJson, uniqueQueue } from './helpers.js';

const db = useTestDatabase();
const d = () => ['--database-url', db.url];

/** A partitioned queue whose old weekly partitions (empty) are detach candidates. */
async function queueWithCandidates(queue: string, defaultPartition: 'enabled' | 'disabled'): Promise<void> {
  expect((await cli(['queue', 'create', queue, '--storage-mode', 'partitioned', ...d()])).code).toBe(0);
  await db.pool.query('select absurd.set_queue_policy($1, $2::jsonb)', [
    queue,
    JSON.stringify({ partition_lookback: '21 days', detach_mode: 'empty', detach_min_age: '0', default_partition: defaultPartition }),
  ]);
}

async function attachedPartitions(queue: string): Promise<string[]> {
  const { rows } = await db.pool.query<{ relname: string }>(
    `select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid
      where i.inhparent = any (array[format('absurd.%I', 't_' || $1::text)::regclass, format('absurd.%I', 'r_' || $1::text)::regclass,
                                     format('absurd.%I', 'c_' || $1::text)::regclass, format('absurd.%I', 'w_' || $1::text)::regclass])
      order by 1`,
    [queue],
  );
  return rows.map((r) => r.relname);
}

async function tableExists(name: string): Promise<boolean> {
  const { rows } = await db.pool.query(`select to_regclass(format('absurd.%I', $1::text)) is not null as present`, [name]);
  return rows[0]?.present === true;
}

interface Candidate {
  queue: string;
  parentTable: string;
  partitionTable: string;
  upperBound: string;
  sql: string;
}

describe('absurd cron', () => {
  it('fails with the engine message when pg_cron is not installed (exit 1)', async () => {
    const result = await cli(['cron', '--enable', ...d()]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('pg_cron is not available (missing cron.job)');
    const off = await cli(['cron', '--disable', ...d()]);
    expect(off.code).toBe(1);
    expect(off.stderr).toContain('pg_cron is not available');
  });

  it('needs exactly one of --enable and --disable, and schedules only with --enable (exit 2)', async () => {
    for (const argv of [['cron'], ['cron', '--enable', '--disable'], ['cron', '--disable', '--cleanup-schedule', '* * * * *']]) {
      const result = await cli([...argv, ...d()]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/give exactly one of --enable and --disable|only applies with --enable/);
      expect(result.stderr).toContain('Usage: absurd cron');
    }
  });

  it('enables, replaces and disables the jobs against a cron schema', async () => {
    await db.pool.query(`
      create schema cron;
      create table cron.job(jobid bigint generated always as identity, jobname text, schedule text, command text);
      create function cron.schedule(p_name text, p_schedule text, p_command text) returns bigint language sql as
        $$ insert into cron.job(jobname, schedule, command) values (p_name, p_schedule, p_command) returning jobid $$;
      create function cron.unschedule(p_id bigint) returns boolean language sql as
        $$ with gone as (delete from cron.job where jobid = p_id returning 1) select exists (select 1 from gone) $$;`);
    const queue = awkwardQueues()[1] ?? '';
    expect((await cli(['queue', 'create', queue, '--storage-mode', 'partitioned', ...d()])).code).toBe(0);

    const text = await cli(['cron', '--enable', '-q', queue, '--cleanup-schedule', '*/5 * * * *', ...d()]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`scheduled 3 pg_cron job(s) for queue ${JSON.stringify(queue)}:`);
    const { rows } = await db.pool.query<{ jobid: string; jobname: string; schedule: string; command: string }>(
      'select jobid::text as jobid, jobname, schedule, command from cron.job order by jobid',
    );
    expect(rows.map((r) => r.schedule)).toEqual(['5 * * * *', '*/5 * * * *', '29 * * * *']);
    expect(rows[1]?.command).toContain(`absurd.cleanup_all_queues('${queue}')`);
    for (const r of rows) expect(text.stdout).toMatch(new RegExp(`${r.jobname}\\s+${r.jobid}\\n`));

    const all = await cliJson<{ action: string; queue: null; jobs: { name: string; id: number }[] }>(['cron', '--enable', ...d()]);
    expect(all.action).toBe('enable');
    expect(all.queue).toBeNull();
    expect(all.jobs.map((j) => j.name)).toEqual(['absurd_partitions_all', 'absurd_cleanup_all', 'absurd_detach_plan_all']);
    expect(all.jobs.every((j) => typeof j.id === 'number')).toBe(true);
    // Enabling again replaces the jobs instead of adding more.
    const again = await cliJson<{ jobs: { name: string; id: number }[] }>(['cron', '--enable', ...d()]);
    expect(again.jobs.map((j) => j.id)).not.toEqual(all.jobs.map((j) => j.id));
    expect((await db.pool.query('select count(*)::int as n from cron.job')).rows[0]?.n).toBe(6);

    const off = await cliJson<{ action: string; jobs: { name: string; id: number }[] }>(['cron', '--disable', ...d()]);
    expect(off.action).toBe('disable');
    expect(off.jobs).toEqual(
      [...again.jobs].sort((a, b) => (a.name < b.name ? -1 : 1)),
    );
    const offQueue = await cli(['cron', '--disable', '--queue', queue, ...d()]);
    expect(offQueue.code).toBe(0);
    expect(offQueue.stdout).toContain(`removed 3 pg_cron job(s) for queue ${JSON.stringify(queue)}:`);
    expect((await db.pool.query('select count(*)::int as n from cron.job')).rows[0]?.n).toBe(0);
    const none = await cli(['cron', '--disable', ...d()]);
    expect(none).toMatchObject({ code: 0, stdout: 'no pg_cron jobs of all queues to remove\n' });
  });

  it('reports a missing queue (exit 1)', async () => {
    const result = await cli(['cron', '--enable', '-q', uniqueQueue('nope'), ...d()]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('does not exist');
  });
});

describe('absurd partitions ensure', () => {
  it('creates the missing weekly partitions and reports them, then nothing', async () => {
    const queue = uniqueQueue('ens');
    await queueWithCandidates(queue, 'enabled');
    const before = await attachedPartitions(queue);
    const first = await cliJson<{ queue: string; created: string[] }>(['partitions', 'ensure', '-q', queue, ...d()]);
    const after = await attachedPartitions(queue);
    expect(first.created.length).toBeGreaterThan(0);
    expect(first.created).toEqual(after.filter((p) => !before.includes(p)).sort());
    const second = await cli(['partitions', 'ensure', '--queue', queue, ...d()]);
    expect(second).toMatchObject({ code: 0, stdout: `the partitions of queue "${queue}" are all there; nothing to do\n` });
    const plain = uniqueQueue('ens_plain');
    await cli(['queue', 'create', plain, ...d()]);
    expect((await cli(['partitions', 'ensure', '-q', plain, ...d()])).stdout).toBe(`queue "${plain}" is unpartitioned; nothing to do\n`);
    expect((await cli(['partitions', 'ensure', '-q', uniqueQueue('missing'), ...d()])).code).toBe(1);
  });
});

describe('absurd partitions candidates and detach', () => {
  it('lists old empty partitions sorted, with detach SQL that is concurrent only without a DEFAULT partition', async () => {
    const [withDefault, withoutDefault] = [awkwardQueues()[0] ?? '', uniqueQueue('nodef')];
    await queueWithCandidates(withDefault, 'enabled');
    await queueWithCandidates(withoutDefault, 'disabled');
    await cli(['partitions', 'ensure', ...d()]);

    const json = await cliJson<{ candidates: Candidate[] }>(['partitions', 'candidates', '-q', withDefault, ...d()]);
    expect(json.candidates.length).toBeGreaterThanOrEqual(8); // three past weeks × four tables, at least two of them ended
    const keys = json.candidates.map((c) => [c.parentTable, c.upperBound, c.partitionTable].join('|'));
    expect(keys).toEqual([...keys].sort());
    expect(new Set(json.candidates.map((c) => c.parentTable))).toEqual(
      new Set(['t_', 'r_', 'c_', 'w_'].map((p) => `${p}${withDefault}`)),
    );
    expect(json.candidates.some((c) => c.partitionTable.endsWith('_d'))).toBe(false);
    const first = json.candidates[0];
    if (!first) throw new Error('no candidate');
    const quoted = (n: string) => `"${n.replaceAll('"', '""')}"`;
    expect(first.sql).toBe(`alter table absurd.${quoted(first.parentTable)} detach partition absurd.${quoted(first.partitionTable)}`);
    expect(json.candidates.every((c) => c.upperBound < new Date().toISOString())).toBe(true);

    const sql = await cli(['partitions', 'candidates', '-q', withoutDefault, '--show-sql', ...d()]);
    expect(sql.code).toBe(0);
    const lines = sql.stdout.trimEnd().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(8);
    for (const line of lines) expect(line).toMatch(/^alter table absurd\."[trcw]_nodef_[^"]+" detach partition absurd\."[^"]+" concurrently;$/);

    const text = await cli(['partitions', 'candidates', ...d()]);
    expect(text.stdout.split('\n')[0]).toMatch(/^QUEUE\s+PARENT\s+PARTITION\s+ENDS$/);
    expect(text.stdout).toContain(withoutDefault);

    const plain = uniqueQueue('none');
    await cli(['queue', 'create', plain, '--storage-mode', 'partitioned', ...d()]);
    const none = await cli(['partitions', 'candidates', '-q', plain, ...d()]);
    expect(none.stdout).toContain('no detach candidates in queue');
  });

  it('detaches and drops a candidate, and refuses other tables without --yes', async () => {
    for (const defaultPartition of ['enabled', 'disabled'] as const) {
      const queue = uniqueQueue(`det_${defaultPartition}`);
      await queueWithCandidates(queue, defaultPartition);
      await cli(['partitions', 'ensure', '-q', queue, ...d()]);
      const { candidates } = await cliJson<{ candidates: Candidate[] }>(['partitions', 'candidates', '-q', queue, ...d()]);
      const [a, b] = candidates;
      if (!a || !b) throw new Error('expected two candidates');

      const detached = await cli(['partitions', 'detach', a.partitionTable, '-q', queue, ...d()]);
      expect(detached).toMatchObject({ code: 0, stdout: `detached absurd."${a.partitionTable}" from absurd."${a.parentTable}"\n` });
      expect(await attachedPartitions(queue)).not.toContain(a.partitionTable);
      expect(await tableExists(a.partitionTable)).toBe(true);

      // Detached earlier: no longer a candidate, so dropping it needs --yes.
      const refused = await cli(['partitions', 'detach', a.partitionTable, '--drop', ...d()]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('is not a detach candidate');
      const dropLater = await cliJson(['partitions', 'detach', a.partitionTable, '--drop', '--yes', ...d()]);
      expect(dropLater).toEqual({ partitionTable: a.partitionTable, parentTable: null, queue: null, detached: false, dropped: true });
      expect(await tableExists(a.partitionTable)).toBe(false);

      const both = await cli(['partitions', 'detach', b.partitionTable, '--drop', ...d()]);
      expect(both.code).toBe(0);
      expect(both.stdout).toBe(`detached absurd."${b.partitionTable}" from absurd."${b.parentTable}"\ndropped absurd."${b.partitionTable}"\n`);
      expect(await tableExists(b.partitionTable)).toBe(false);
    }
  });

  it('refuses non-candidates, tables of another queue and unknown tables; --yes detaches a live partition', async () => {
    const queue = uniqueQueue('live');
    const other = uniqueQueue('other');
    await queueWithCandidates(queue, 'enabled');
    await queueWithCandidates(other, 'enabled');
    await cli(['partitions', 'ensure', ...d()]);
    const { rows } = await db.pool.query<{ tag: string }>('select absurd.partition_week_tag(now()) as tag');
    const current = `t_${queue}_${rows[0]?.tag ?? ''}`;
    expect(await attachedPartitions(queue)).toContain(current);

    const refused = await cli(['partitions', 'detach', current, ...d()]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`absurd."${current}" is not a detach candidate`);
    expect(refused.stderr).toContain('--yes');
    expect(await attachedPartitions(queue)).toContain(current);

    const wrongQueue = await cli(['partitions', 'detach', current, '-q', other, '--yes', ...d()]);
    expect(wrongQueue.code).toBe(1);
    expect(wrongQueue.stderr).toContain(`not of queue "${other}"`);

    const unknown = await cli(['partitions', 'detach', 'no_such_table_419', '--yes', ...d()]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('does not exist');

    const queues = await cli(['partitions', 'detach', 'queues', '--drop', '--yes', ...d()]);
    expect(queues.code).toBe(1);
    expect(await tableExists('queues')).toBe(true);

    const forced = await cliJson(['partitions', 'detach', current, '--yes', ...d()]);
    expect(forced).toMatchObject({ partitionTable: current, parentTable: `t_${queue}`, detached: true, dropped: null });
    expect(await attachedPartitions(queue)).not.toContain(current);

    const usage = await cli(['partitions', 'detach', ...d()]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('missing argument <partition-table>');
  });
});
