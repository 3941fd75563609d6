/**
 * `absurd dashboard`: the web UI over a database's queues, tasks, runs, steps and events, until
 * SIGINT or SIGTERM. The work is in `src/dashboard/`; this is its command line.
 */
import path from 'node:path';
import { UsageError } from '../cli-args.js';
import { EXIT, type CommandContext, type CommandSpec } from '../cli-command.js';
import { booleanFlag, integerFlag, stringFlag } from '../cli-flags.js';
import { DEFAULT_PORT } from '../dashboard/default-port.js';
import type { RunningDashboard } from '../dashboard/server.js';
import { loadConfig } from '../generate/load-config.js';
import { loadWorkflowContracts } from '../workflow-contracts.js';
import { stopSignal } from './stop-signal.js';

/** The flags `absurd dashboard` and `absurd dev` share. */
export const DASHBOARD_FLAGS = {
  manifest: {
    name: 'manifest',
    value: 'file',
    description: "The contracts' JSON Schemas (default: manifest.json in absurd.config.ts's outDir, else generated/)",
  },
  workflows: {
    name: 'workflows',
    value: 'dir',
    description: 'Also load the contracts from this folder, to validate with them (refinements included)',
  },
} as const;

/**
 * The manifest to use: `--manifest`, else `<outDir>/manifest.json` of the project's configuration.
 *
 * @example
 * await manifestFile(context); // '/project/generated/manifest.json'
 */
export async function manifestFile(context: CommandContext): Promise<string> {
  const given = stringFlag(context, 'manifest');
  if (given !== undefined) return path.resolve(given);
  const outDir = await loadConfig({ root: process.cwd() }).then(
    (config) => path.resolve(config.root, config.outDir),
    () => path.resolve('generated'),
  );
  return path.join(outDir, 'manifest.json');
}

/**
 * Starts the dashboard with the flags of `context` on `databaseUrl`.
 *
 * @example
 * const dashboard = await startFromFlags(context, url, { host: '127.0.0.1', port: 0 });
 */
export async function startFromFlags(
  context: CommandContext,
  databaseUrl: string,
  options: { host: string; port: number; token?: string; readOnly: boolean },
): Promise<RunningDashboard> {
  const workflows = stringFlag(context, 'workflows');
  const contracts = workflows === undefined ? undefined : await loadWorkflowContracts(workflows);
  // Loaded on use: the other commands need none of the server.
  const { startDashboard } = await import('../dashboard/server.js');
  return startDashboard({
    databaseUrl,
    ...options,
    manifestFile: await manifestFile(context),
    ...(contracts ? { contracts } : {}),
  });
}

/** `absurd dashboard`. */
export const dashboardCommand: CommandSpec = {
  name: 'dashboard',
  summary: 'Serve a web UI over the queues, tasks, runs, steps and events (127.0.0.1:7890)',
  description:
    'Serves the dashboard until Ctrl-C: queues with their counts and recent activity, tasks filtered and paged, and ' +
    'each task with its runs, checkpoints (checked against the contracts in generated/manifest.json), waits, events, ' +
    'parent and children; it retries, cancels, wakes sleeping tasks and emits events (checked against their ' +
    'contracts). It binds to 127.0.0.1; another --host needs --token (or ABSURD_DASHBOARD_TOKEN), which every ' +
    'request must then carry. --read-only hides and refuses every action. See docs/dashboard.md.',
  flags: [
    { name: 'port', short: 'p', value: 'port', description: `Port to listen on (default ${DEFAULT_PORT}; 0: any free port)` },
    { name: 'host', value: 'host', description: 'Address to bind (default 127.0.0.1; others need --token)' },
    { name: 'token', value: 'secret', description: 'Require this token (16+ characters) on every request (default $ABSURD_DASHBOARD_TOKEN)' },
    { name: 'read-only', description: 'Hide and refuse every action (retry, cancel, wake, emit)' },
    DASHBOARD_FLAGS.manifest,
    DASHBOARD_FLAGS.workflows,
  ],
  async run(context) {
    const port = integerFlag(context, 'port', { min: 0, max: 65_535 }) ?? DEFAULT_PORT;
    const host = stringFlag(context, 'host') ?? '127.0.0.1';
    const tokenFromEnv = context.io.env?.ABSURD_DASHBOARD_TOKEN;
    const token = stringFlag(context, 'token') ?? (tokenFromEnv === undefined || tokenFromEnv === '' ? undefined : tokenFromEnv);
    if (host.trim() === '') throw new UsageError('--host must not be empty');
    const signal = stopSignal();
    try {
      const dashboard = await startFromFlags(context, context.databaseUrl(), { host, port, readOnly: booleanFlag(context, 'read-only'), ...(token ? { token } : {}) });
      try {
        context.print(`dashboard: ${dashboard.openUrl}`);
        context.print('press Ctrl-C to stop');
        await signal.received;
      } finally {
        await dashboard.close();
      }
      context.print('dashboard stopped');
    } finally {
      signal.dispose();
    }
    return EXIT.ok;
  },
};

/** The dashboard command. */
export const dashboardCommands: readonly CommandSpec[] = [dashboardCommand];
