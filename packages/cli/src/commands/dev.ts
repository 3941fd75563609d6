/**
 * `absurd dev`: a local PostgreSQL with the engine schema, for development. Runs until SIGINT or
 * SIGTERM, then stops the server cleanly.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { migrate, migrationLabel, redactDatabaseUrl } from 'absurd-kit';
import { startEmbeddedDatabase } from '../database/embedded-database.js';
import { UsageError } from '../cli-args.js';
import { EXIT, type CliIo, type CommandContext, type CommandSpec } from '../cli-command.js';
import { booleanFlag, integerFlag, stringFlag } from '../cli-flags.js';
import { DEFAULT_PORT } from '../dashboard/default-port.js';
import type { RunningDashboard } from '../dashboard/server.js';
import { DASHBOARD_FLAGS, startFromFlags } from './dashboard.js';
import { stopSignal } from './stop-signal.js';

/**
 * The CLI's entry module beside this one: `dist/main.js` when compiled, `src/main.ts` when run from
 * sources under a TypeScript loader (which `process.execArgv` then carries to the child).
 */
const MAIN = fileURLToPath(new URL(`../main${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url));

/** Runs `absurd generate --watch` against the dev database, its output forwarded to ours. */
function startGenerator(url: string, io: CliIo): { child: ChildProcess; exited: Promise<number> } {
  const child = spawn(process.execPath, [...process.execArgv, MAIN, 'generate', '--watch', '--database-url', url], {
    env: { ...process.env, ...io.env, ABSURD_DATABASE_URL: url },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (chunk: Buffer) => io.stdout.write(chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => io.stderr.write(chunk.toString('utf8')));
  const exited = new Promise<number>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    child.once('error', () => resolve(1));
  });
  return { child, exited };
}

async function stopGenerator(generator: { child: ChildProcess; exited: Promise<number> }): Promise<void> {
  if (generator.child.exitCode !== null || generator.child.signalCode !== null) return;
  generator.child.kill('SIGTERM');
  const killed = setTimeout(() => generator.child.kill('SIGKILL'), 5_000);
  await generator.exited;
  clearTimeout(killed);
}

/**
 * The dashboard beside the dev database, on 127.0.0.1: on `port` when given, else on the default
 * port, or on a free one when that is taken.
 */
async function startDevDashboard(context: CommandContext, url: string, port: number | undefined): Promise<RunningDashboard> {
  const options = { host: '127.0.0.1', readOnly: false };
  if (port !== undefined) return startFromFlags(context, url, { ...options, port });
  try {
    return await startFromFlags(context, url, { ...options, port: DEFAULT_PORT });
  } catch (error) {
    if ((error as { code?: unknown }).code !== 'EADDRINUSE') throw error;
    return startFromFlags(context, url, { ...options, port: 0 });
  }
}

/** `absurd dev`. */
export const devCommand: CommandSpec = {
  name: 'dev',
  summary: 'Run a local PostgreSQL with the engine schema (kept in .absurd/) and print its URL',
  description:
    'Starts the embedded PostgreSQL kept in .absurd/ (or --data-dir), installs or migrates the engine schema, ' +
    'prints ABSURD_DATABASE_URL=… for your workers and tools, and runs until Ctrl-C or SIGTERM, then stops the ' +
    'server cleanly. It also serves the dashboard on 127.0.0.1 (see `absurd dashboard`; --no-dashboard to leave it ' +
    'out) and prints its URL. With --generate it also runs `absurd generate --watch` against the database.',
  flags: [
    { name: 'port', short: 'p', value: 'port', description: 'Port on 127.0.0.1 (default: the last one used, else a free one)' },
    { name: 'data-dir', value: 'dir', description: 'Where the server keeps its data (default .absurd)' },
    { name: 'generate', description: 'Also run `absurd generate --watch` against the database' },
    { name: 'dashboard-port', value: 'port', description: `Port of the dashboard on 127.0.0.1 (default ${DEFAULT_PORT}, else a free one)` },
    { name: 'no-dashboard', description: 'Do not serve the dashboard' },
    DASHBOARD_FLAGS.manifest,
    DASHBOARD_FLAGS.workflows,
  ],
  async run(context) {
    if (context.flags['database-url'] !== undefined) {
      throw new UsageError('absurd dev runs its own database; --database-url does not apply (for another database use `absurd migrate -d URL`)');
    }
    const port = integerFlag(context, 'port', { min: 1, max: 65_535 });
    const dashboardPort = integerFlag(context, 'dashboard-port', { min: 0, max: 65_535 });
    const withDashboard = !booleanFlag(context, 'no-dashboard');
    const directory = path.resolve(stringFlag(context, 'data-dir') ?? '.absurd');
    const tty = context.io.stderr.isTTY === true;
    const note = (line: string) => {
      if (tty) context.io.stderr.write(`${line}\n`);
    };
    // Listen before starting, so that a Ctrl-C during start-up still stops the server.
    const signal = stopSignal();
    let generator: { child: ChildProcess; exited: Promise<number> } | undefined;
    let dashboard: RunningDashboard | undefined;
    let code: number = EXIT.ok;
    try {
      note(`starting PostgreSQL in ${directory}…`);
      const database = await startEmbeddedDatabase({ directory, port });
      try {
        const { applied } = await migrate(database.url, { onMigration: (m) => note(`applying ${migrationLabel(m)}…`) });
        context.print(`ABSURD_DATABASE_URL=${database.url}`);
        context.print(
          `${database.server.version} on port ${database.server.port}, data in ${directory}; ` +
            (applied.length > 0 ? `applied ${applied.length} engine migration(s)` : 'engine schema is current'),
        );
        if (withDashboard) {
          dashboard = await startDevDashboard(context, database.url, dashboardPort);
          context.print(`dashboard: ${dashboard.url}`);
        }
        if (booleanFlag(context, 'generate')) generator = startGenerator(database.url, context.io);
        context.print('press Ctrl-C to stop');
        const outcome = await Promise.race([
          signal.received.then((name) => ({ kind: 'signal' as const, name })),
          ...(generator ? [generator.exited.then((exitCode) => ({ kind: 'generator' as const, exitCode }))] : []),
        ]);
        if (outcome.kind === 'generator') {
          context.io.stderr.write(`absurd dev: \`absurd generate --watch\` exited (code ${outcome.exitCode}); stopping\n`);
          code = EXIT.failure;
        }
      } finally {
        if (generator) await stopGenerator(generator);
        if (dashboard) await dashboard.close();
        await database.stop();
      }
      context.print(`stopped PostgreSQL (${redactDatabaseUrl(database.url)})`);
    } finally {
      signal.dispose();
    }
    return code;
  },
};

/** The dev command. */
export const devCommands: readonly CommandSpec[] = [devCommand];
