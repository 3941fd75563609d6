import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { awkwardQueues, cli, cliJson, uniqueQueue } from './helpers.js';

const db = useTestDatabase();
const d = () => ['--database-url', db.url];

async function queueRow(queue: string): Promise<Record<string, unknown> | undefined> {
  const { rows } = await db.pool.query(
    `select storage_mode, default_partition, cleanup_ttl::text as cleanup_ttl, cleanup_limit, detach_mode,
            detach_min_age::text as detach_min_age
       from absurd.queues where queue_name = $1`,
    [queue],
  );
  return rows[0];
}

describe('absurd queue create', () => {
  it('creates a queue, then says it exists', async () => {
    const queue = uniqueQueue();
    const first = await cli(['queue', 'create', queue, ...d()]);
    expect(first).toEqual({ code: 0, stdout: `created queue "${queue}" (unpartitioned)\n`, stderr: '' });
    expect(await queueRow(queue)).toMatchObject({ storage_mode: 'unpartitioned' });
    const second = await cli(['queue', 'create', queue, ...d()]);
    expect(second).toEqual({ code: 0, stdout: `queue "${queue}" already exists (unpartitioned); nothing to do\n`, stderr: '' });
  });

  it('--storage-mode partitioned creates a partitioned queue and reports it as JSON', async () => {
    const queue = uniqueQueue();
    expect(await cliJson(['queue', 'create', queue, '--storage-mode', 'partitioned', ...d()])).toEqual({
      queue,
      storageMode: 'partitioned',
      created: true,
    });
    expect(await queueRow(queue)).toMatchObject({ storage_mode: 'partitioned' });
    const { rows } = await db.pool.query(`select relkind from pg_class where oid = to_regclass($1)`, [`absurd."t_${queue}"`]);
    expect(rows[0]?.relkind).toBe('p');
  });

  it('fails with exit 1 when the queue exists with another storage mode', async () => {
    const queue = uniqueQueue();
    expect((await cli(['queue', 'create', queue, ...d()])).code).toBe(0);
    const result = await cli(['queue', 'create', queue, '--storage-mode', 'partitioned', ...d()]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`already exists with storage mode "unpartitioned"`);
    expect(await queueRow(queue)).toMatchObject({ storage_mode: 'unpartitioned' });
  });

  it('refuses a bad storage mode (exit 2) and a name over 57 bytes (exit 1)', async () => {
    const bad = await cli(['queue', 'create', uniqueQueue(), '--storage-mode', 'timescale', ...d()]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--storage-mode must be one of unpartitioned, partitioned; got "timescale"');
    const long = 'q'.repeat(58);
    const tooLong = await cli(['queue', 'create', long, ...d()]);
    expect(tooLong.code).toBe(1);
    expect(tooLong.stderr).toContain('is too long (max 57 bytes)');
    expect(await queueRow(long)).toBeUndefined();
  });
});

describe('absurd queue list', () => {
  it('lists queues as a table and as JSON', async () => {
    const [a, b] = [uniqueQueue('list_a'), uniqueQueue('list_b')];
    await cli(['queue', 'create', a, ...d()]);
    await cli(['queue', 'create', b, '--storage-mode', 'partitioned', ...d()]);
    const text = await cli(['queue', 'list', ...d()]);
    expect(text.code).toBe(0);
    const lines = text.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^QUEUE\s+STORAGE\s+CREATED$/);
    expect(lines.find((l) => l.startsWith(`${a} `))).toMatch(/unpartitioned\s+\d{4}-\d{2}-\d{2}T/);
    expect(lines.find((l) => l.startsWith(`${b} `))).toMatch(/ partitioned\s+\d{4}-/);
    const { queues } = await cliJson<{ queues: { name: string; storageMode: string; createdAt: string }[] }>([
      'queue',
      'list',
      ...d(),
    ]);
    expect(queues.find((q) => q.name === b)).toMatchObject({ storageMode: 'partitioned', createdAt: expect.stringMatching(/Z$/) });
    expect(queues.map((q) => q.name)).toEqual([...queues.map((q) => q.name)].sort());
  });
});

describe('absurd queue policy', () => {
  it('shows the policy without flags', async () => {
    const queue = uniqueQueue();
    await cli(['queue', 'create', queue, ...d()]);
    const text = await cli(['queue', 'policy', queue, ...d()]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('cleanup ttl:         30 days\n');
    expect(text.stdout).toContain('cleanup limit:       1000\n');
    expect(text.stdout).not.toContain('updated');
    expect(await cliJson(['queue', 'policy', queue, ...d()])).toEqual({
      queue,
      storageMode: 'unpartitioned',
      defaultPartition: 'enabled',
      partitionLookahead: '28 days',
      partitionLookback: '1 day',
      cleanupTtl: '30 days',
      cleanupLimit: 1000,
      detachMode: 'none',
      detachMinAge: '30 days',
      updated: false,
    });
  });

  it('updates the settings given as flags and prints the result', async () => {
    const queue = uniqueQueue();
    await cli(['queue', 'create', queue, ...d()]);
    const policy = await cliJson([
      'queue', 'policy', queue,
      '--cleanup-ttl', '14 days', '--cleanup-limit', '50', '--detach-mode', 'empty', '--detach-min-age', '2 days',
      '--partition-lookahead', '35 days', '--partition-lookback', '3 days', ...d(),
    ]);
    expect(policy).toMatchObject({ cleanupTtl: '14 days', cleanupLimit: 50, detachMode: 'empty', detachMinAge: '2 days', updated: true });
    expect(await queueRow(queue)).toMatchObject({ cleanup_ttl: '14 days', cleanup_limit: 50, detach_mode: 'empty', detach_min_age: '2 days' });
    const text = await cli(['queue', 'policy', queue, '--cleanup-ttl', '12 hours', ...d()]);
    expect(text.stdout).toContain(`updated the policy of queue "${queue}" (cleanup_ttl)\n`);
    expect(text.stdout).toContain('cleanup ttl:         12:00:00\n');
  });

  it('--default-partition works on partitioned queues only', async () => {
    const plain = uniqueQueue();
    await cli(['queue', 'create', plain, ...d()]);
    const refused = await cli(['queue', 'policy', plain, '--default-partition', 'disabled', ...d()]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('only supported for partitioned queues');

    const parted = uniqueQueue();
    await cli(['queue', 'create', parted, '--storage-mode', 'partitioned', ...d()]);
    expect(await cliJson(['queue', 'policy', parted, '--default-partition', 'disabled', ...d()])).toMatchObject({
      defaultPartition: 'disabled',
    });
    const { rows } = await db.pool.query('select to_regclass($1) as t', [`absurd."t_${parted}_d"`]);
    expect(rows[0]?.t).toBeNull();
  });

  it('refuses bad values: usage errors exit 2, values Postgres refuses exit 1, and nothing changes', async () => {
    const queue = uniqueQueue();
    await cli(['queue', 'create', queue, ...d()]);
    for (const [flag, value, message] of [
      ['--cleanup-limit', '0', '--cleanup-limit must be an integer >= 1, got "0"'],
      ['--detach-mode', 'always', '--detach-mode must be one of none, empty; got "always"'],
      ['--default-partition', 'maybe', '--default-partition must be one of enabled, disabled; got "maybe"'],
    ] as const) {
      const result = await cli(['queue', 'policy', queue, flag, value, ...d()]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(message);
      expect(result.stderr).toContain(`Usage: absurd queue policy <queue>`);
    }
    const interval = await cli(['queue', 'policy', queue, '--cleanup-ttl', 'forever', ...d()]);
    expect(interval.code).toBe(1);
    expect(interval.stderr).toContain('invalid input syntax for type interval: "forever"');
    expect(await queueRow(queue)).toMatchObject({ cleanup_ttl: '30 days', cleanup_limit: 1000, detach_mode: 'none' });
  });

  it('fails with exit 1 for an unknown queue, naming the command that creates it', async () => {
    const result = await cli(['queue', 'policy', 'no such queue', ...d()]);
    expect(result).toEqual({
      code: 1,
      stdout: '',
      stderr: "absurd queue policy: queue \"no such queue\" does not exist — run `absurd queue create 'no such queue'`\n",
    });
  });
});

describe('absurd queue drop', () => {
  it('needs --yes (exit 2, nothing dropped)', async () => {
    const queue = uniqueQueue();
    await cli(['queue', 'create', queue, ...d()]);
    const result = await cli(['queue', 'drop', queue, ...d()]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`refusing to drop queue "${queue}" without --yes`);
    expect(await queueRow(queue)).toBeDefined();
  });

  it('drops a queue and its tables with --yes', async () => {
    const queue = uniqueQueue();
    await cli(['queue', 'create', queue, ...d()]);
    await cli(['spawn', 'anything', '-q', queue, ...d()]);
    expect(await cliJson(['queue', 'drop', queue, '--yes', ...d()])).toEqual({ queue, dropped: true });
    expect(await queueRow(queue)).toBeUndefined();
    const { rows } = await db.pool.query('select to_regclass($1) as t', [`absurd."t_${queue}"`]);
    expect(rows[0]?.t).toBeNull();
  });

  it('fails with exit 1 for an unknown queue', async () => {
    const result = await cli(['queue', 'drop', 'ghost', '--yes', ...d()]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('absurd queue drop: queue "ghost" does not exist — see `absurd queue list`\n');
  });
});

describe('queue names that need quoting', () => {
  it.each(awkwardQueues().map((q) => [q]))('%j works through create, policy, spawn, list, show, cleanup and drop', async (queue) => {
    expect(Buffer.byteLength(queue)).toBeLessThanOrEqual(57);
    expect(await cliJson(['queue', 'create', queue, ...d()])).toMatchObject({ queue, created: true });
    expect(await cliJson(['queue', 'policy', queue, '--cleanup-limit', '7', ...d()])).toMatchObject({ queue, cleanupLimit: 7 });
    const spawned = await cliJson<{ taskID: string; queue: string }>(['spawn', 'greet', '-q', queue, '-P', 'who=you', ...d()]);
    expect(spawned.queue).toBe(queue);
    const listed = await cliJson<{ tasks: { taskID: string; queue: string }[] }>(['tasks', 'list', '-q', queue, ...d()]);
    expect(listed.tasks).toEqual([expect.objectContaining({ taskID: spawned.taskID, queue })]);
    const shown = await cliJson<{ queue: string; task: { params: unknown } }>(['tasks', 'show', spawned.taskID, ...d()]);
    expect(shown).toMatchObject({ queue, task: { params: { who: 'you' } } });
    expect(await cliJson(['cleanup', queue, '0', '--dry-run', ...d()])).toMatchObject({ queue, tasks: 0 });
    expect(await cliJson(['queue', 'drop', queue, '--yes', ...d()])).toEqual({ queue, dropped: true });
    expect(await queueRow(queue)).toBeUndefined();
  });
});
