import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS } from '../../packages/cli/src/cli.js';
import { useEmptyDatabases } from '../engine/empty-databases.js';
import { useTestDatabase } from '../support/db.js';
import { cli, cliJson, uniqueQueue } from './helpers.js';

const db = useTestDatabase();
const empty = useEmptyDatabases();
const d = () => ['--database-url', db.url];
const UNREACHABLE = 'postgresql://ops:hunter2@127.0.0.1:1/absurd';
let clock: pg.Client;

beforeAll(async () => {
  clock = await db.connect();
});

/** Runs `sql` with the session clock at `time`. */
async function atTime(time: string, sql: string, params: unknown[]): Promise<pg.QueryResult> {
  await clock.query(`select set_config('absurd.fake_now', $1, false)`, [time]);
  try {
    return await clock.query(sql, params);
  } finally {
    await clock.query('set absurd.fake_now = default');
  }
}

async function count(queue: string, prefix: 't' | 'e'): Promise<number> {
  const { rows } = await db.pool.query(`select count(*)::int as n from absurd."${prefix}_${queue}"`);
  return rows[0]?.n as number;
}

describe('absurd cleanup', () => {
  /** Two tasks ended 40 days ago (completed, cancelled), one pending and one completed now; two old events, one new. */
  async function seed(queue: string): Promise<void> {
    const old = '2020-01-01T00:00:00Z';
    expect((await cli(['queue', 'create', queue, ...d()])).code).toBe(0);
    const spawn = `select task_id, run_id from absurd.spawn_task($1, 'job', '{}', '{}')`;
    const done = (await atTime(old, spawn, [queue])).rows[0];
    await atTime(old, `select * from absurd.claim_task($1, 'w', 60, 1)`, [queue]);
    await atTime(old, `select absurd.complete_run($1, $2, '{"ok": true}')`, [queue, done.run_id]);
    const cancelled = (await atTime(old, spawn, [queue])).rows[0];
    await atTime(old, 'select absurd.cancel_task($1, $2)', [queue, cancelled.task_id]);
    const recent = (await db.pool.query(spawn, [queue])).rows[0];
    await db.pool.query(`select * from absurd.claim_task($1, 'w', 60, 1)`, [queue]);
    await db.pool.query(`select absurd.complete_run($1, $2, 'null')`, [queue, recent.run_id]);
    await atTime(old, spawn, [queue]); // pending: never cleaned up, however old
    await atTime(old, `select absurd.emit_event($1, 'old-1', '1')`, [queue]);
    await atTime(old, `select absurd.emit_event($1, 'old-2', '2')`, [queue]);
    await db.pool.query(`select absurd.emit_event($1, 'new', '3')`, [queue]);
  }

  it('--dry-run counts what is older than the TTL and deletes nothing', async () => {
    const queue = uniqueQueue('cleanup');
    await seed(queue);
    expect(await cliJson(['cleanup', queue, '30', '--dry-run', ...d()])).toEqual({
      queue,
      ttlSeconds: 30 * 86_400,
      dryRun: true,
      tasks: 2,
      events: 2,
    });
    expect((await cli(['cleanup', queue, '30', '--dry-run', ...d()])).stdout).toBe(
      `would delete 2 task(s) and 2 event(s) from queue "${queue}"\n`,
    );
    expect([await count(queue, 't'), await count(queue, 'e')]).toEqual([4, 3]);
  });

  it('deletes in batches of --limit until nothing older is left', async () => {
    const queue = uniqueQueue('cleanup');
    await seed(queue);
    const result = await cli(['cleanup', queue, '30', '--limit', '1', ...d()]);
    expect(result).toEqual({ code: 0, stdout: `deleted 2 task(s) and 2 event(s) from queue "${queue}"\n`, stderr: '' });
    expect([await count(queue, 't'), await count(queue, 'e')]).toEqual([2, 1]);
    const { rows } = await db.pool.query(`select count(*)::int as n from absurd."r_${queue}"`);
    expect(rows[0]?.n).toBe(2);
    expect(await cliJson(['cleanup', queue, '30', ...d()])).toMatchObject({ tasks: 0, events: 0, dryRun: false });
    // A TTL of zero days takes the task that just ended and the new event too.
    expect(await cliJson(['cleanup', queue, '0', ...d()])).toMatchObject({ tasks: 1, events: 1 });
  });

  it('refuses a bad TTL or limit (exit 2) and an unknown queue (exit 1)', async () => {
    const bad = await cli(['cleanup', 'q', 'soon', ...d()]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('<ttl-days> must be a non-negative number of days (e.g. 30 or 0.5), got "soon"');
    expect((await cli(['cleanup', 'q', '1', '--limit', '0', ...d()])).code).toBe(2);
    expect((await cli(['cleanup', 'q', ...d()])).code).toBe(2);
    const unknown = await cli(['cleanup', 'ghost', '30', ...d()]);
    expect(unknown).toEqual({ code: 1, stdout: '', stderr: 'absurd cleanup: queue "ghost" does not exist — run `absurd queue create ghost`\n' });
  });
});

/** Every database command, with arguments that would otherwise be fine. */
const DATABASE_COMMANDS: string[][] = [
  ['queue', 'create', 'q'],
  ['queue', 'drop', 'q', '--yes'],
  ['queue', 'list'],
  ['queue', 'policy', 'q'],
  ['spawn', 'job', '-q', 'q'],
  ['emit', 'ev', '-q', 'q'],
  ['cancel', randomUUID()],
  ['retry', randomUUID()],
  ['tasks', 'list'],
  ['tasks', 'show', randomUUID()],
  ['cleanup', 'q', '30'],
];

describe('errors common to every database command', () => {
  it.each(DATABASE_COMMANDS.map((argv) => [argv.slice(0, 2).join(' '), argv]))(
    'absurd %s: database down → exit 1, the URL without its password, nothing on stdout',
    async (_name, argv) => {
      const result = await cli(argv, { ABSURD_DATABASE_URL: UNREACHABLE });
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      expect(result.stderr).toContain('cannot connect to postgresql://ops:***@127.0.0.1:1/absurd');
      expect(result.stderr).not.toContain('hunter2');
      expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    },
  );

  it.each(DATABASE_COMMANDS.map((argv) => [argv.slice(0, 2).join(' '), argv]))(
    'absurd %s: no schema → exit 1 and "run `absurd init`", nothing created',
    async (_name, argv) => {
      const url = await empty.create();
      const result = await cli([...argv, '--database-url', url]);
      expect(result).toEqual({
        code: 1,
        stdout: '',
        stderr: `absurd ${argv[0] === 'queue' || argv[0] === 'tasks' ? argv.slice(0, 2).join(' ') : argv[0]}: schema "absurd" is not installed in this database — run \`absurd init\`\n`,
      });
      const probe = await cli(['schema-version', '--database-url', url]);
      expect(probe.code).toBe(1); // still nothing installed
    },
  );

  it('an outdated schema sends the operator to absurd migrate', async () => {
    const url = await empty.create();
    expect((await cli(['init', '-d', url])).code).toBe(0);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query('delete from absurd.kit_migrations where version = (select max(version) from absurd.kit_migrations)');
    await client.end();
    const result = await cli(['queue', 'list', '-d', url]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('run `absurd migrate`');
  });
});

describe('usage errors of the operator commands exit 2', () => {
  it.each([
    [['queue'], /missing subcommand after "queue"/],
    [['queue', 'rename', 'a'], /missing subcommand after "queue"/],
    [['tasks'], /missing subcommand after "tasks"/],
    [['spawn'], /absurd spawn: missing argument <task>/],
    [['spawn', 'job', '--frobnicate'], /absurd spawn: unknown flag --frobnicate/],
    [['tasks', 'show'], /missing argument <task-id>/],
    [['cancel', 'a', 'b'], /unexpected argument "b"/],
    [['queue', 'create', 'q', '--storage-mode'], /flag --storage-mode needs a value <mode>/],
    [['dev', '--database-url', 'postgresql://x/y'], /absurd dev runs its own database; --database-url does not apply/],
    [['dev', '--port', '70000'], /--port must be an integer from 1 to 65535/],
  ])('absurd %j', async (argv, message) => {
    const result = await cli([...argv], { ABSURD_DATABASE_URL: UNREACHABLE });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toContain('Usage: absurd');
    expect(result.stdout).toBe('');
  });

  it('absurd queue --help and absurd tasks --help list their subcommands', async () => {
    const queue = await cli(['queue', '--help']);
    expect(queue.code).toBe(0);
    for (const sub of ['create', 'drop', 'list', 'policy']) expect(queue.stdout).toContain(`  queue ${sub} `);
    const tasks = await cli(['tasks', '-h']);
    expect(tasks.stdout).toContain('  tasks list ');
    expect(tasks.stdout).toContain('  tasks show ');
  });

  it('every operator command has --help and lists -P as repeatable where it takes it', async () => {
    const names = ['queue create', 'queue drop', 'queue list', 'queue policy', 'spawn', 'emit', 'cancel', 'retry', 'tasks list', 'tasks show', 'cleanup', 'dev'];
    for (const name of names) expect(COMMANDS.some((c) => c.name === name)).toBe(true);
    const spawn = await cli(['spawn', '--help']);
    expect(spawn.stdout).toContain('-P, --param <key=value> …');
    expect(spawn.stdout).toContain('-H, --header <key=value> …');
  });
});
