/**
 * `absurd schedules list|add|remove|pause|resume|sync`, in-process against the file's database:
 * what each prints (text and --json), what it stores, and its errors (unknown schedule, a bad cron
 * naming the field, an unknown time zone, a missing queue, params the contract refuses).
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { SCHEDULE_QUEUE } from './fixtures/schedule-workflows/index.js';
import { cli, cliJson, uniqueQueue } from './helpers.js';

const db = useTestDatabase();
const d = () => ['--database-url', db.url];
const workflows = fileURLToPath(new URL('./fixtures/schedule-workflows', import.meta.url));

async function stored(name: string): Promise<Record<string, unknown> | undefined> {
  const { rows } = await db.pool.query(
    'select queue_name, task_name, cron, timezone, params, options, catch_up, paused from absurd.kit_schedules where schedule_name = $1',
    [name],
  );
  return rows[0];
}

async function newQueue(): Promise<string> {
  const queue = uniqueQueue('sched');
  expect((await cli(['queue', 'create', queue, ...d()])).code).toBe(0);
  return queue;
}

describe('absurd schedules add', () => {
  it('creates a schedule of a task the workflows do not declare, with --queue, params and options', async () => {
    const queue = await newQueue();
    const result = await cli([
      'schedules', 'add', 'cli-report', '--task', 'send-report', '--queue', queue, '--cron', '*/15 9-17 * * MON-FRI',
      '--timezone', 'America/New_York', '--catch-up', 'latest', '-P', 'kind=daily', '-P', 'limit:=3', '--max-attempts', '2',
      '-H', 'team=ops', '--workflows', workflows, ...d(),
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      new RegExp(`^saved schedule "cli-report": send-report on queue "${queue}", "\\*/15 9-17 \\* \\* MON-FRI" \\(America/New_York\\), next tick \\S+`),
    );
    expect(await stored('cli-report')).toEqual({
      queue_name: queue,
      task_name: 'send-report',
      cron: '*/15 9-17 * * MON-FRI',
      timezone: 'America/New_York',
      params: { kind: 'daily', limit: 3 },
      options: { max_attempts: 2, headers: { team: 'ops' } },
      catch_up: 'latest',
      paused: false,
    });
  });

  it("checks params against the declared task's contract and takes its queue", async () => {
    await cli(['queue', 'create', SCHEDULE_QUEUE, ...d()]);
    const bad = await cli(['schedules', 'add', 'cli-purge', '--task', 'purge-sessions', '--cron', '@daily', '-P', 'olderThanDays:=-1', '--workflows', workflows, ...d()]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('params.olderThanDays');
    expect(await stored('cli-purge')).toBeUndefined();
    const good = await cliJson(['schedules', 'add', 'cli-purge', '--task', 'purge-sessions', '--cron', '@daily', '-P', 'olderThanDays:=3', '--workflows', workflows, ...d()]);
    expect(good).toMatchObject({ name: 'cli-purge', queue: SCHEDULE_QUEUE, task: 'purge-sessions', cron: '@daily', params: { olderThanDays: 3 }, paused: false });
  });

  it('refuses a bad cron naming the field, an unknown time zone, a missing queue and missing flags', async () => {
    const queue = await newQueue();
    const add = (...extra: string[]) => cli(['schedules', 'add', 'cli-bad', '--task', 't', '--queue', queue, ...extra, '--workflows', workflows, ...d()]);
    const cron = await add('--cron', '0 25 * * *');
    expect(cron).toMatchObject({ code: 1, stdout: '' });
    expect(cron.stderr).toContain('invalid cron expression "0 25 * * *": hour field "25": 25 is out of range 0-23');
    const zone = await add('--cron', '@daily', '--timezone', 'Europe/Atlantis');
    expect(zone.code).toBe(1);
    expect(zone.stderr).toContain('unknown time zone "Europe/Atlantis"');
    const missing = await cli(['schedules', 'add', 'cli-bad', '--task', 't', '--queue', 'no_such_queue', '--cron', '@daily', '--workflows', workflows, ...d()]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('queue "no_such_queue" does not exist — run `absurd queue create no_such_queue`');
    const usage = await cli(['schedules', 'add', 'cli-bad', '--task', 't', '--queue', queue, ...d()]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('needs --task and --cron');
    expect(await stored('cli-bad')).toBeUndefined();
  });
});

describe('absurd schedules list, pause, resume, remove', () => {
  it('lists as a table and as JSON, pauses, resumes and removes; unknown names fail with exit 1', async () => {
    const queue = await newQueue();
    expect((await cli(['schedules', 'add', 'cli-a', '--task', 'a', '--queue', queue, '--cron', '0 * * * *', ...d()])).code).toBe(0);
    const table = await cli(['schedules', 'list', '-q', queue, ...d()]);
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^SCHEDULE\s+QUEUE\s+TASK\s+CRON\s+TIME ZONE\s+CATCH-UP\s+NEXT\s+LAST$/);
    expect(lines[1]).toMatch(new RegExp(`^cli-a\\s+${queue}\\s+a\\s+0 \\* \\* \\* \\*\\s+UTC\\s+skip\\s+\\S+.*-$`));

    const paused = await cli(['schedules', 'pause', 'cli-a', ...d()]);
    expect(paused.stdout).toMatch(/^paused schedule "cli-a": a on queue .*, paused\n$/);
    expect((await cliJson<{ schedules: { name: string; paused: boolean }[] }>(['schedules', 'list', '-q', queue, ...d()])).schedules).toEqual([
      expect.objectContaining({ name: 'cli-a', paused: true, nextFireAt: expect.any(String), lastFiredAt: null }),
    ]);
    expect((await cliJson(['schedules', 'resume', 'cli-a', ...d()])).paused).toBe(false);
    expect(await cliJson(['schedules', 'remove', 'cli-a', ...d()])).toEqual({ name: 'cli-a', removed: true });

    for (const command of ['remove', 'pause', 'resume']) {
      const unknown = await cli(['schedules', command, 'cli-a', ...d()]);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain('schedule "cli-a" does not exist — see `absurd schedules list`');
    }
    expect((await cli(['schedules', 'list', '-q', queue, ...d()])).stdout).toMatch(/^no schedules/);
  });

  it('--help describes the command', async () => {
    const help = await cli(['schedules', 'add', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--cron');
    expect(help.stdout).toContain('--catch-up');
  });
});

describe('absurd schedules sync', () => {
  it('applies every declared schedule, and again without moving their ticks', async () => {
    await cli(['queue', 'create', SCHEDULE_QUEUE, ...d()]);
    const first = await cliJson<{ schedules: { name: string; nextFireAt: string; catchUp: string }[] }>(['schedules', 'sync', '--workflows', workflows, ...d()]);
    expect(first.schedules.map((s) => [s.name, s.catchUp])).toEqual([
      ['cli-nightly-purge', 'skip'],
      ['cli-weekly-purge', 'latest'],
    ]);
    expect(await stored('cli-nightly-purge')).toMatchObject({ queue_name: SCHEDULE_QUEUE, cron: '30 3 * * *', timezone: 'Europe/Berlin', params: { olderThanDays: 30 } });
    await cli(['schedules', 'pause', 'cli-weekly-purge', ...d()]);
    const second = await cli(['schedules', 'sync', '--workflows', workflows, ...d()]);
    const nightlyNext = first.schedules[0]?.nextFireAt;
    const queue = JSON.stringify(SCHEDULE_QUEUE);
    expect(second).toEqual({
      code: 0,
      stderr: '',
      stdout:
        `applied schedule "cli-nightly-purge": purge-sessions on queue ${queue}, "30 3 * * *" (Europe/Berlin), next tick ${nightlyNext}\n` +
        `applied schedule "cli-weekly-purge": purge-sessions on queue ${queue}, "@weekly" (UTC), paused\n`,
    });
  });
});
