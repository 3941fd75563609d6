/**
 * Concurrency and rate limits: `limits list`, `limits set`, `limits remove`, through the runtime's
 * client. The engine's claim enforces them for every worker (docs/flow-control.md).
 */
import { validateQueueName, type LimitOptions, type QueueLimit } from 'absurd-kit';
import { UsageError } from '../cli-args.js';
import { EXIT, type CommandSpec } from '../cli-command.js';
import { engineClient, requireQueue, withEngine } from '../cli-database.js';
import { booleanFlag, integerFlag, numberFlag, stringFlag } from '../cli-flags.js';
import { displayName, renderTable } from '../cli-format.js';

const jsonFlag = { name: 'json', description: 'Print one JSON object instead of text lines' } as const;
const queueAndName = [
  { name: 'queue', required: true },
  { name: 'name', required: true },
] as const;

/** A limit as `--json` prints it. */
function limitJson(limit: QueueLimit) {
  return {
    queue: limit.queueName,
    name: limit.name,
    task: limit.taskName,
    key: limit.key,
    maxRunning: limit.maxRunning,
    rate: limit.rate,
    running: limit.running,
    parked: limit.parked,
  };
}

/** `absurd limits list`. */
export const limitsListCommand: CommandSpec = {
  name: 'limits list',
  summary: 'List the concurrency and rate limits (of one queue, or of all), with running and parked runs',
  args: [{ name: 'queue', required: false }],
  flags: [jsonFlag],
  async run(context) {
    const queue = context.positionals[0];
    if (queue !== undefined) validateQueueName(queue);
    const limits = await withEngine(context, async (db) => {
      if (queue !== undefined) await requireQueue(db, queue, 'see `absurd queue list`');
      return engineClient(db).listLimits(queue ?? null);
    });
    if (booleanFlag(context, 'json')) {
      context.print(JSON.stringify({ limits: limits.map(limitJson) }));
    } else if (limits.length === 0) {
      context.print('no limits — set one with `absurd limits set <queue> <name> --max-running <n>`');
    } else {
      const table = renderTable(
        ['QUEUE', 'LIMIT', 'TASK', 'KEY', 'MAX RUNNING', 'RATE', 'RUNNING', 'PARKED'],
        limits.map((l) => [
          displayName(l.queueName),
          displayName(l.name),
          l.taskName === null ? '(all)' : displayName(l.taskName),
          l.key === null ? '-' : l.key.join('.'),
          l.maxRunning === null ? '-' : String(l.maxRunning),
          l.rate === null ? '-' : `${l.rate.limit}/${l.rate.periodSeconds}s`,
          String(l.running),
          String(l.parked),
        ]),
      );
      for (const line of table) context.print(line);
    }
    return EXIT.ok;
  },
};

/** `absurd limits set`. */
export const limitsSetCommand: CommandSpec = {
  name: 'limits set',
  summary: 'Create or replace a concurrency and/or rate limit of a queue',
  description:
    'At most --max-running runs of a bucket running at once, and/or at most --rate starts of a bucket per --per ' +
    'seconds. --task limits it to one task (default: every task of the queue); --key divides the runs into ' +
    'buckets by a dotted path into their params (default: one bucket). Runs over a limit are parked and claimed ' +
    'in their order once a slot frees; workers of every SDK respect it.',
  args: queueAndName,
  flags: [
    { name: 'task', value: 'name', description: 'Only the runs of this task (default: every task of the queue)' },
    { name: 'key', value: 'path', description: 'Bucket key: a dotted path into the params, e.g. customer.id' },
    { name: 'max-running', value: 'n', description: 'At most n runs of a bucket running at once' },
    { name: 'rate', value: 'n', description: 'At most n starts of a bucket per --per seconds' },
    { name: 'per', value: 'seconds', description: 'The window of --rate, in seconds' },
    jsonFlag,
  ],
  async run(context) {
    const queue = validateQueueName(context.positionals[0]);
    const name = context.positionals[1] ?? '';
    const options: LimitOptions = {};
    const task = stringFlag(context, 'task');
    if (task !== undefined) options.taskName = task;
    const key = stringFlag(context, 'key');
    if (key !== undefined) options.key = key;
    const maxRunning = integerFlag(context, 'max-running', { min: 1 });
    if (maxRunning !== undefined) options.maxRunning = maxRunning;
    const rate = integerFlag(context, 'rate', { min: 1 });
    const per = numberFlag(context, 'per');
    if ((rate === undefined) !== (per === undefined)) throw new UsageError('--rate and --per go together');
    if (rate !== undefined && per !== undefined) options.rate = { limit: rate, periodSeconds: per };
    if (maxRunning === undefined && rate === undefined) throw new UsageError('give --max-running, --rate with --per, or both');
    const changed = await withEngine(context, async (db) => {
      await requireQueue(db, queue);
      return engineClient(db).setLimit(name, options, queue);
    });
    if (booleanFlag(context, 'json')) context.print(JSON.stringify({ queue, name, changed }));
    else if (changed) context.print(`set limit ${JSON.stringify(name)} of queue ${JSON.stringify(queue)}`);
    else context.print(`limit ${JSON.stringify(name)} of queue ${JSON.stringify(queue)} is already set so; nothing to do`);
    return EXIT.ok;
  },
};

/** `absurd limits remove`. */
export const limitsRemoveCommand: CommandSpec = {
  name: 'limits remove',
  summary: 'Remove a limit of a queue (the runs it parked become claimable)',
  args: queueAndName,
  flags: [jsonFlag],
  async run(context) {
    const queue = validateQueueName(context.positionals[0]);
    const name = context.positionals[1] ?? '';
    const removed = await withEngine(context, async (db) => {
      await requireQueue(db, queue);
      return engineClient(db).removeLimit(name, queue);
    });
    if (booleanFlag(context, 'json')) {
      context.print(JSON.stringify({ queue, name, removed }));
      return removed ? EXIT.ok : EXIT.failure;
    }
    if (!removed) {
      context.io.stderr.write(`absurd limits remove: queue ${JSON.stringify(queue)} has no limit ${JSON.stringify(name)} — see \`absurd limits list\`\n`);
      return EXIT.failure;
    }
    context.print(`removed limit ${JSON.stringify(name)} of queue ${JSON.stringify(queue)}`);
    return EXIT.ok;
  },
};

/** Every limits command, in help order. */
export const limitsCommands: readonly CommandSpec[] = [limitsListCommand, limitsSetCommand, limitsRemoveCommand];
