import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { absurdProcess } from '../support/cli-process.js';
import { useTestDatabase } from '../support/db.js';
import { uniqueQueue } from './helpers.js';

const db = useTestDatabase();

/** Runs the real executable with the test database in ABSURD_DATABASE_URL. */
async function absurd(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, ABSURD_DATABASE_URL: db.url };
  delete env.PGDATABASE;
  const cli = absurdProcess(args);
  return promisify(execFile)(cli.command, cli.args, { env: { ...env, ...cli.env } }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code?: number; stdout?: string; stderr?: string }) => ({
      code: error.code ?? -1,
      stdout: error.stdout ?? '',
      stderr: error.stderr ?? '',
    }),
  );
}

describe('bin/absurd.js operator commands', () => {
  it('queue create, spawn and tasks show --json work end to end', async () => {
    const queue = uniqueQueue('bin "Q"');
    const created = await absurd(['queue', 'create', queue]);
    expect(created).toEqual({ code: 0, stdout: `created queue ${JSON.stringify(queue)} (unpartitioned)\n`, stderr: '' });

    const spawned = await absurd(['spawn', 'resize-image', '-q', queue, '-P', 'width:=640', '-P', 'source.url=s3://b/k', '--max-attempts', '2', '--json']);
    expect(spawned.stderr).toBe('');
    expect(spawned.code).toBe(0);
    const { taskID } = JSON.parse(spawned.stdout) as { taskID: string };

    const shown = await absurd(['tasks', 'show', taskID, '--json']);
    expect(shown.code).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({
      queue,
      task: { taskID, taskName: 'resize-image', state: 'pending', maxAttempts: 2, params: { width: 640, source: { url: 's3://b/k' } } },
      runs: [{ attempt: 1, state: 'pending' }],
    });
  }, 60_000);

  it('exits 1 with one clear line for an unknown queue and for malformed JSON', async () => {
    const unknown = await absurd(['spawn', 'x', '-q', 'nowhere']);
    expect(unknown).toEqual({ code: 1, stdout: '', stderr: 'absurd spawn: queue "nowhere" does not exist — run `absurd queue create nowhere`\n' });
    const json = await absurd(['emit', 'e', '-q', 'nowhere', '--payload', '{oops}']);
    expect(json.code).toBe(1);
    expect(json.stderr).toContain('--payload is not valid JSON: expected a property name in double quotes, found "o" (line 1, column 2)');
  }, 60_000);
});
