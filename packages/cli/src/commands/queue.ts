/**
 * Queue administration: `queue create`, `queue drop`, `queue list`, `queue policy`. Creating and
 * dropping go through the runtime's client; the policy is read and written whole (the CLI also
 * sets `default_partition`, which the client's policy options leave out).
 */
import { validateQueueName, type JsonObject } from 'absurd-kit';
import { UsageError } from '../cli-args.js';
import { EXIT, type CommandSpec } from '../cli-command.js';
import { engineClient, oneRow, requireQueue, withEngine } from '../cli-database.js';
import { booleanFlag, choiceFlag, integerFlag, stringFlag } from '../cli-flags.js';
import { displayName, formatTime, jsonTime, renderTable } from '../cli-format.js';
import { queuePolicy, queueRows, queueStorageMode, setQueuePolicy } from '../queries/queues.queries.js';

const jsonFlag = { name: 'json', description: 'Print one JSON object instead of text lines' } as const;
const queueArg = [{ name: 'queue', required: true }] as const;

/** `absurd queue create`. */
export const queueCreateCommand: CommandSpec = {
  name: 'queue create',
  summary: 'Create a queue (does nothing when it exists with the same storage mode)',
  description:
    'Creates a queue and its tables. Partitioned queues keep tasks, runs, checkpoints and waits in weekly ' +
    'partitions (see `absurd queue policy`); the storage mode cannot change later.',
  args: queueArg,
  flags: [
    { name: 'storage-mode', value: 'mode', description: 'unpartitioned (default) or partitioned' },
    jsonFlag,
  ],
  async run(context) {
    const queue = validateQueueName(context.positionals[0]);
    const storageMode = choiceFlag(context, 'storage-mode', ['unpartitioned', 'partitioned']) ?? 'unpartitioned';
    const existed = await withEngine(context, async (db) => {
      const existing = await queueStorageMode.run({ queueName: queue }, db);
      // The engine refuses a second create with another storage mode; the same mode is a no-op.
      await engineClient(db).createQueue(queue, { storageMode });
      return existing.length > 0;
    });
    if (booleanFlag(context, 'json')) {
      context.print(JSON.stringify({ queue, storageMode, created: !existed }));
    } else if (existed) {
      context.print(`queue ${JSON.stringify(queue)} already exists (${storageMode}); nothing to do`);
    } else {
      context.print(`created queue ${JSON.stringify(queue)} (${storageMode})`);
    }
    return EXIT.ok;
  },
};

/** `absurd queue drop`. */
export const queueDropCommand: CommandSpec = {
  name: 'queue drop',
  summary: 'Drop a queue with all its tasks, runs, checkpoints, waits and events (needs --yes)',
  args: queueArg,
  flags: [{ name: 'yes', description: 'Confirm: everything stored in the queue is deleted' }, jsonFlag],
  async run(context) {
    const queue = context.positionals[0] ?? '';
    if (!booleanFlag(context, 'yes')) {
      throw new UsageError(
        `refusing to drop queue ${JSON.stringify(queue)} without --yes: this deletes all its tasks, runs, checkpoints, waits and events`,
      );
    }
    await withEngine(context, async (db) => {
      await requireQueue(db, queue, 'see `absurd queue list`');
      await engineClient(db).dropQueue(queue);
    });
    context.print(booleanFlag(context, 'json') ? JSON.stringify({ queue, dropped: true }) : `dropped queue ${JSON.stringify(queue)}`);
    return EXIT.ok;
  },
};

/** `absurd queue list`. */
export const queueListCommand: CommandSpec = {
  name: 'queue list',
  summary: 'List the queues with their storage mode',
  flags: [jsonFlag],
  async run(context) {
    const rows = await withEngine(context, (db) => queueRows.run(undefined, db));
    if (booleanFlag(context, 'json')) {
      const queues = rows.map((r) => ({ name: r.queue_name, storageMode: r.storage_mode, createdAt: jsonTime(r.created_at) }));
      context.print(JSON.stringify({ queues }));
    } else if (rows.length === 0) {
      context.print('no queues — create one with `absurd queue create <name>`');
    } else {
      const table = renderTable(
        ['QUEUE', 'STORAGE', 'CREATED'],
        rows.map((r) => [displayName(r.queue_name), r.storage_mode, formatTime(r.created_at)]),
      );
      for (const line of table) context.print(line);
    }
    return EXIT.ok;
  },
};

/** The policy flags and the engine's policy keys they set. */
const POLICY_FLAGS = [
  { name: 'cleanup-ttl', key: 'cleanup_ttl', value: 'interval', description: 'Keep ended tasks and events this long, e.g. "30 days"' },
  { name: 'cleanup-limit', key: 'cleanup_limit', value: 'n', description: 'Rows deleted per cleanup call (>= 1)' },
  { name: 'partition-lookahead', key: 'partition_lookahead', value: 'interval', description: 'Create weekly partitions this far ahead' },
  { name: 'partition-lookback', key: 'partition_lookback', value: 'interval', description: 'Create weekly partitions this far back' },
  { name: 'detach-mode', key: 'detach_mode', value: 'mode', description: 'none, or empty: detach old empty partitions' },
  { name: 'detach-min-age', key: 'detach_min_age', value: 'interval', description: 'Only detach partitions older than this' },
  {
    name: 'default-partition',
    key: 'default_partition',
    value: 'state',
    description: 'enabled or disabled: the DEFAULT partitions of a partitioned queue',
  },
] as const;

/** `absurd queue policy`. */
export const queuePolicyCommand: CommandSpec = {
  name: 'queue policy',
  summary: "Show a queue's retention and partition policy, or change it with flags",
  description:
    'Without flags, prints the policy. With flags, changes those settings (intervals are Postgres interval ' +
    'text such as "30 days" or "12 hours") and prints the result. `absurd cleanup` and the scheduled jobs use it.',
  args: queueArg,
  flags: [...POLICY_FLAGS.map(({ name, value, description }) => ({ name, value, description })), jsonFlag],
  async run(context) {
    const queue = context.positionals[0] ?? '';
    const changes: JsonObject = {};
    for (const flag of POLICY_FLAGS) {
      let value: string | number | undefined;
      if (flag.name === 'cleanup-limit') value = integerFlag(context, flag.name, { min: 1 });
      else if (flag.name === 'detach-mode') value = choiceFlag(context, flag.name, ['none', 'empty']);
      else if (flag.name === 'default-partition') value = choiceFlag(context, flag.name, ['enabled', 'disabled']);
      else value = stringFlag(context, flag.name);
      if (value !== undefined) changes[flag.key] = value;
    }
    const updated = Object.keys(changes).length > 0;
    const policy = await withEngine(context, async (db) => {
      await requireQueue(db, queue);
      if (updated) await setQueuePolicy.run({ queueName: queue, policy: JSON.stringify(changes) }, db);
      return oneRow(await queuePolicy.run({ queueName: queue }, db), 'QueuePolicy');
    });
    if (booleanFlag(context, 'json')) {
      context.print(
        JSON.stringify({
          queue: policy.queue_name,
          storageMode: policy.storage_mode,
          defaultPartition: policy.default_partition,
          partitionLookahead: policy.partition_lookahead,
          partitionLookback: policy.partition_lookback,
          cleanupTtl: policy.cleanup_ttl,
          cleanupLimit: policy.cleanup_limit,
          detachMode: policy.detach_mode,
          detachMinAge: policy.detach_min_age,
          updated,
        }),
      );
      return EXIT.ok;
    }
    if (updated) context.print(`updated the policy of queue ${JSON.stringify(queue)} (${Object.keys(changes).join(', ')})`);
    const partitioned = policy.storage_mode === 'partitioned';
    const lines: [string, string][] = [
      ['queue', displayName(policy.queue_name)],
      ['storage mode', policy.storage_mode],
      ['cleanup ttl', policy.cleanup_ttl],
      ['cleanup limit', String(policy.cleanup_limit)],
      ['partition lookahead', policy.partition_lookahead + (partitioned ? '' : ' (partitioned queues only)')],
      ['partition lookback', policy.partition_lookback + (partitioned ? '' : ' (partitioned queues only)')],
      ['detach mode', policy.detach_mode],
      ['detach min age', policy.detach_min_age],
      ['default partition', policy.default_partition + (partitioned ? '' : ' (partitioned queues only)')],
    ];
    for (const [label, value] of lines) context.print(`${`${label}:`.padEnd(21)}${value}`);
    return EXIT.ok;
  },
};

/** Every queue command, in help order. */
export const queueCommands: readonly CommandSpec[] = [queueCreateCommand, queueDropCommand, queueListCommand, queuePolicyCommand];
