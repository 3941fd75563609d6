import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { awkwardQueues, cli, cliJson, uniqueQueue } from './helpers.js';

const db = useTestDatabase();
const d = () => ['--database-url', db.url];

async function newQueue(queue = uniqueQueue('lim')): Promise<string> {
  expect((await cli(['queue', 'create', queue, ...d()])).code).toBe(0);
  return queue;
}

describe('absurd limits', () => {
  it('sets, lists (text and JSON) and removes limits, on an awkward queue name too', async () => {
    const queue = await newQueue(awkwardQueues()[1]);
    const set = await cli(['limits', 'set', queue, 'per-customer', '--task', 'charge', '--key', 'customer.id', '--max-running', '2', ...d()]);
    expect(set).toEqual({ code: 0, stdout: `set limit "per-customer" of queue ${JSON.stringify(queue)}\n`, stderr: '' });
    const again = await cli(['limits', 'set', queue, 'per-customer', '--task', 'charge', '--key', 'customer.id', '--max-running', '2', ...d()]);
    expect(again.stdout).toContain('is already set so; nothing to do');
    expect(await cliJson(['limits', 'set', queue, 'api', '--rate', '10', '--per', '60', ...d()])).toEqual({
      queue,
      name: 'api',
      changed: true,
    });
    const text = await cli(['limits', 'list', queue, ...d()]);
    expect(text.code).toBe(0);
    expect(text.stdout.split('\n')[0]).toMatch(/^QUEUE\s+LIMIT\s+TASK\s+KEY\s+MAX RUNNING\s+RATE\s+RUNNING\s+PARKED/);
    expect(text.stdout).toMatch(/per-customer\s+charge\s+customer\.id\s+2\s+-\s+0\s+0/);
    expect(text.stdout).toMatch(/api\s+\(all\)\s+-\s+-\s+10\/60s\s+0\s+0/);
    expect(await cliJson(['limits', 'list', queue, ...d()])).toEqual({
      limits: [
        { queue, name: 'api', task: null, key: null, maxRunning: null, rate: { limit: 10, periodSeconds: 60 }, running: 0, parked: 0 },
        { queue, name: 'per-customer', task: 'charge', key: ['customer', 'id'], maxRunning: 2, rate: null, running: 0, parked: 0 },
      ],
    });
    expect(await cliJson(['limits', 'remove', queue, 'api', ...d()])).toEqual({ queue, name: 'api', removed: true });
    const missing = await cli(['limits', 'remove', queue, 'api', ...d()]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('has no limit "api"');
    const all = await cliJson<{ limits: { queue: string; name: string }[] }>(['limits', 'list', ...d()]);
    expect(all.limits.filter((l) => l.queue === queue).map((l) => l.name)).toEqual(['per-customer']);
  });

  it('refuses incomplete or invalid limits with usage errors, and unknown queues', async () => {
    const queue = await newQueue();
    const none = await cli(['limits', 'set', queue, 'x', ...d()]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('give --max-running, --rate with --per, or both');
    const half = await cli(['limits', 'set', queue, 'x', '--rate', '3', ...d()]);
    expect(half.code).toBe(2);
    expect(half.stderr).toContain('--rate and --per go together');
    const zero = await cli(['limits', 'set', queue, 'x', '--max-running', '0', ...d()]);
    expect(zero.code).toBe(2);
    const unknown = await cli(['limits', 'set', uniqueQueue('nope'), 'x', '--max-running', '1', ...d()]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('does not exist');
    const help = await cli(['limits', 'set', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--max-running');
  });

  it('says when there are no limits', async () => {
    const queue = await newQueue();
    expect((await cli(['limits', 'list', queue, ...d()])).stdout).toContain('no limits');
  });
});

describe('absurd spawn --priority', () => {
  it('gives the run its priority', async () => {
    const queue = await newQueue();
    const spawned = await cliJson<{ runId?: string; runID?: string }>(['spawn', 'job', '-q', queue, '--priority', '7', ...d()]);
    const runId = spawned.runID ?? spawned.runId;
    const { rows } = await db.pool.query(`select priority from absurd.${JSON.stringify(`r_${queue}`)} where run_id = $1`, [runId]);
    expect(rows[0]?.priority).toBe(7);
  });
});
