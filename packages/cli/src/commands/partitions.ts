/**
 * Partition maintenance and scheduled jobs: `cron`, `partitions ensure`, `partitions candidates`
 * and `partitions detach`, over the engine's ensure_partitions, list_detach_candidates,
 * drop_detached_partition, enable_cron and disable_cron.
 */
import type pg from 'pg';
import { UsageError } from '../cli-args.js';
import { EXIT, type CommandSpec } from '../cli-command.js';
import { oneRow, quoteIdent, requireQueue, runStatement, withEngine } from '../cli-database.js';
import { booleanFlag, stringFlag } from '../cli-flags.js';
import { displayName, formatTime, jsonTime, renderTable, shellQuote } from '../cli-format.js';
import {
  detachCandidates,
  detachPartitionStatement,
  disableCron,
  dropDetachedPartition,
  enableCronStatement,
  ensurePartitions,
  partitionNames as partitionNamesQuery,
  tableState,
} from '../queries/partitions.queries.js';

const jsonFlag = { name: 'json', description: 'Print one JSON object instead of text lines' } as const;

function queueFlag(description: string) {
  return { name: 'queue', short: 'q', value: 'queue', description } as const;
}

/** "queue "x"" or "all queues", for messages. */
function scopeText(queue: string | undefined): string {
  return queue === undefined ? 'all queues' : `queue ${JSON.stringify(queue)}`;
}

/** A pg_cron job as the engine's enable_cron/disable_cron return it. */
interface CronJob {
  name: string;
  id: number | string;
}

function cronJobs(rows: readonly { job_name: string; job_id: string }[]): CronJob[] {
  return rows.map((r) => {
    const id = Number(r.job_id);
    return { name: r.job_name, id: Number.isSafeInteger(id) ? id : r.job_id };
  });
}

/** The schedule flags, the parameter of EnableCronStatement each sets, and the engine's default. */
const SCHEDULE_FLAGS = [
  { name: 'partition-schedule', param: 'partitionSchedule', what: 'ensure_partitions', fallback: '5 * * * *' },
  { name: 'cleanup-schedule', param: 'cleanupSchedule', what: 'cleanup_all_queues', fallback: '17 * * * *' },
  { name: 'detach-schedule', param: 'detachSchedule', what: 'schedule_detach_jobs', fallback: '29 * * * *' },
] as const;

/** `absurd cron`. */
export const cronCommand: CommandSpec = {
  name: 'cron',
  summary: 'Schedule (--enable) or remove (--disable) the pg_cron jobs that maintain partitions and clean up',
  description:
    'With --enable, schedules three pg_cron jobs for one queue or, without --queue, for all queues: ' +
    'ensure_partitions, cleanup_all_queues and schedule_detach_jobs (which plans the detaching and dropping ' +
    'of old empty partitions). Enabling again replaces the jobs. With --disable, removes those jobs and the ' +
    'detach/drop jobs they planned. Needs the pg_cron extension in the database.',
  flags: [
    { name: 'enable', description: 'Schedule the jobs (replacing earlier ones of the same scope)' },
    { name: 'disable', description: 'Remove the jobs' },
    queueFlag('Only this queue (default: one set of jobs for all queues)'),
    ...SCHEDULE_FLAGS.map((f) => ({
      name: f.name,
      value: 'cron',
      description: `pg_cron schedule of ${f.what} (default "${f.fallback}")`,
    })),
    jsonFlag,
  ],
  async run(context) {
    const enable = booleanFlag(context, 'enable');
    const disable = booleanFlag(context, 'disable');
    if (enable === disable) throw new UsageError('give exactly one of --enable and --disable');
    const queue = stringFlag(context, 'queue');
    const schedules = SCHEDULE_FLAGS.flatMap((f) => {
      const value = stringFlag(context, f.name);
      return value === undefined ? [] : [{ ...f, value }];
    });
    if (disable && schedules.length > 0) {
      throw new UsageError(`--${schedules[0]?.name ?? 'schedule'} only applies with --enable`);
    }
    const jobs = await withEngine(context, async (db) => {
      if (disable) return cronJobs(await disableCron.run({ queueName: queue ?? null }, db));
      if (queue !== undefined) await requireQueue(db, queue);
      // Schedules not given keep the engine's defaults: the statement passes only those set.
      const params = Object.fromEntries(schedules.map((s) => [s.param, s.value]));
      const { statement } = oneRow(await enableCronStatement.run({ queueName: queue ?? null, ...params }, db), 'EnableCronStatement');
      return cronJobs(await runStatement<{ job_name: string; job_id: string }>(db, statement));
    });
    if (booleanFlag(context, 'json')) {
      context.print(JSON.stringify({ action: enable ? 'enable' : 'disable', queue: queue ?? null, jobs }));
      return EXIT.ok;
    }
    if (jobs.length === 0) {
      context.print(`no pg_cron jobs of ${scopeText(queue)} to remove`);
      return EXIT.ok;
    }
    context.print(`${enable ? 'scheduled' : 'removed'} ${jobs.length} pg_cron job(s) for ${scopeText(queue)}:`);
    for (const line of renderTable(['JOB', 'ID'], jobs.map((j) => [j.name, String(j.id)]))) context.print(`  ${line}`);
    return EXIT.ok;
  },
};

/** The names of every attached partition in schema absurd. */
async function partitionNames(db: pg.ClientBase): Promise<Set<string>> {
  const rows = await partitionNamesQuery.run(undefined, db);
  return new Set(rows.map((r) => r.relname));
}

/** `absurd partitions ensure`. */
export const partitionsEnsureCommand: CommandSpec = {
  name: 'partitions ensure',
  summary: "Create the weekly partitions a partitioned queue's policy asks for (safe to re-run)",
  description:
    'Creates the missing weekly partitions (and DEFAULT partitions, when enabled) of one partitioned queue, ' +
    'or of every partitioned queue, within the lookback/lookahead window of its policy ' +
    '(see `absurd queue policy`). Unpartitioned queues are left alone. Prints the partitions created.',
  flags: [queueFlag('Only this queue (default: every partitioned queue)'), jsonFlag],
  async run(context) {
    const queue = stringFlag(context, 'queue');
    const { created, storageMode } = await withEngine(context, async (db) => {
      const mode = queue === undefined ? undefined : await requireQueue(db, queue);
      const before = await partitionNames(db);
      await ensurePartitions.run({ queueName: queue ?? null }, db);
      const after = await partitionNames(db);
      return { created: [...after].filter((name) => !before.has(name)).sort(), storageMode: mode };
    });
    if (booleanFlag(context, 'json')) {
      context.print(JSON.stringify({ queue: queue ?? null, created }));
      return EXIT.ok;
    }
    if (storageMode === 'unpartitioned') {
      context.print(`queue ${JSON.stringify(queue)} is unpartitioned; nothing to do`);
    } else if (created.length === 0) {
      context.print(`the partitions of ${scopeText(queue)} are all there; nothing to do`);
    } else {
      context.print(`created ${created.length} partition(s) for ${scopeText(queue)}:`);
      for (const name of created) context.print(`  absurd.${quoteIdent(name)}`);
    }
    return EXIT.ok;
  },
};

/** One row of list_detach_candidates, with what detaching it takes. */
type Candidate = Awaited<ReturnType<typeof detachCandidates.run>>[number];

function listCandidates(db: pg.ClientBase, queue: string | undefined): Promise<Candidate[]> {
  return detachCandidates.run({ queueName: queue ?? null }, db);
}

/** `absurd partitions candidates`. */
export const partitionsCandidatesCommand: CommandSpec = {
  name: 'partitions candidates',
  summary: 'List the old empty partitions that may be detached (queues with detach mode "empty")',
  description:
    'Lists the attached weekly partitions of partitioned queues whose policy has detach mode "empty", that ' +
    'ended more than detach min age ago and hold no rows, sorted by queue, parent table and age. With ' +
    '--show-sql, prints the `alter table … detach partition …` statement of each instead of the table.',
  flags: [
    queueFlag('Only this queue (default: every queue)'),
    { name: 'show-sql', description: 'Print the detach statement of each candidate' },
    jsonFlag,
  ],
  async run(context) {
    const queue = stringFlag(context, 'queue');
    const candidates = await withEngine(context, async (db) => {
      if (queue !== undefined) await requireQueue(db, queue);
      return listCandidates(db, queue);
    });
    if (booleanFlag(context, 'json')) {
      context.print(
        JSON.stringify({
          queue: queue ?? null,
          candidates: candidates.map((c) => ({
            queue: c.queue_name,
            parentTable: c.parent_table,
            partitionTable: c.partition_table,
            upperBound: jsonTime(c.upper_bound),
            sql: c.detach_sql,
          })),
        }),
      );
      return EXIT.ok;
    }
    if (candidates.length === 0) {
      context.print(
        `no detach candidates in ${scopeText(queue)} (only partitioned queues with \`absurd queue policy --detach-mode empty\` have any)`,
      );
      return EXIT.ok;
    }
    if (booleanFlag(context, 'show-sql')) {
      for (const c of candidates) context.print(`${c.detach_sql};`);
      return EXIT.ok;
    }
    const table = renderTable(
      ['QUEUE', 'PARENT', 'PARTITION', 'ENDS'],
      candidates.map((c) => [displayName(c.queue_name), displayName(c.parent_table), displayName(c.partition_table), formatTime(c.upper_bound)]),
    );
    for (const line of table) context.print(line);
    return EXIT.ok;
  },
};

/** The weekly partition names of the engine: `<t|r|c|w>_<queue>_<3-digit week tag>`. */
const PARTITION_NAME = /^[trcw]_.+_[0-9]{3}$/;

/** `absurd partitions detach`. */
export const partitionsDetachCommand: CommandSpec = {
  name: 'partitions detach',
  summary: 'Detach one partition listed by `absurd partitions candidates`, and with --drop drop it',
  description:
    'Detaches absurd.<partition-table> from its parent (concurrently unless the parent has a DEFAULT ' +
    'partition) and, with --drop, drops it once detached. A table that is not a current detach candidate ' +
    '(see `absurd partitions candidates`) is refused unless --yes is given; with --drop, a partition ' +
    'detached earlier is dropped too.',
  args: [{ name: 'partition-table', required: true }],
  flags: [
    queueFlag('The queue the partition belongs to (checked; default: any)'),
    { name: 'drop', description: 'Drop the table after detaching it' },
    { name: 'yes', description: 'Confirm detaching a table that is not a detach candidate' },
    jsonFlag,
  ],
  async run(context) {
    const partition = context.positionals[0] ?? '';
    const queue = stringFlag(context, 'queue');
    const drop = booleanFlag(context, 'drop');
    const yes = booleanFlag(context, 'yes');
    const name = `absurd.${quoteIdent(partition)}`;
    const outcome = await withEngine(context, async (db) => {
      if (queue !== undefined) await requireQueue(db, queue);
      const [state] = await tableState.run({ tableName: partition }, db);
      if (!state) throw new Error(`table ${name} does not exist — see \`absurd partitions candidates\``);
      if (queue !== undefined && state.parent_table !== null) {
        const parents = ['t', 'r', 'c', 'w'].map((p) => `${p}_${queue}`);
        if (!parents.includes(state.parent_table)) {
          throw new Error(`${name} is a partition of absurd.${quoteIdent(state.parent_table)}, not of queue ${JSON.stringify(queue)}`);
        }
      }
      const candidates = await listCandidates(db, queue);
      const candidate = candidates.find((c) => c.partition_table === partition);
      if (!candidate && !yes) {
        const hint = shellQuote(partition);
        throw new Error(
          `${name} is not a detach candidate${queue === undefined ? '' : ` of queue ${JSON.stringify(queue)}`} ` +
            `(see \`absurd partitions candidates\`); pass --yes to ${drop ? 'detach and drop' : 'detach'} it anyway: ` +
            `absurd partitions detach ${hint}${drop ? ' --drop' : ''} --yes`,
        );
      }
      let detached = false;
      const parent = state.parent_table;
      if (state.parent_table === null) {
        // Not attached: only a weekly partition detached earlier may go on to the drop.
        if (!drop) throw new Error(`${name} is not attached to a parent table; nothing to detach`);
        if (state.relkind !== 'r' || !PARTITION_NAME.test(partition)) {
          throw new Error(`${name} is not a detached weekly partition of a queue; refusing to drop it`);
        }
      } else {
        if (state.relkind === 'p') throw new Error(`${name} is a partitioned table, not one partition`);
        // A concurrent detach that was interrupted leaves the partition pending; FINALIZE completes it.
        const { statement } = oneRow(
          await detachPartitionStatement.run(
            {
              parentTable: state.parent_table,
              partitionTable: partition,
              parentHasDefault: state.parent_has_default === true,
              pending: state.detach_pending === true,
            },
            db,
          ),
          'DetachPartitionStatement',
        );
        await runStatement(db, statement);
        detached = true;
      }
      let dropped: boolean | null = null;
      if (drop) {
        const [row] = await dropDetachedPartition.run({ partitionTable: partition }, db);
        dropped = row?.dropped === true;
      }
      return { detached, dropped, parent, queue: candidate?.queue_name ?? queue ?? null };
    });
    if (booleanFlag(context, 'json')) {
      context.print(
        JSON.stringify({
          partitionTable: partition,
          parentTable: outcome.parent,
          queue: outcome.queue,
          detached: outcome.detached,
          dropped: outcome.dropped,
        }),
      );
      return EXIT.ok;
    }
    if (outcome.detached && outcome.parent !== null) {
      context.print(`detached ${name} from absurd.${quoteIdent(outcome.parent)}`);
    } else {
      context.print(`${name} was already detached`);
    }
    if (outcome.dropped === true) context.print(`dropped ${name}`);
    else if (outcome.dropped === false) context.print(`not dropped: ${name} is still attached or no longer exists`);
    return outcome.dropped === false ? EXIT.failure : EXIT.ok;
  },
};

/** The cron and partition commands, in help order. */
export const partitionsCommands: readonly CommandSpec[] = [
  cronCommand,
  partitionsEnsureCommand,
  partitionsCandidatesCommand,
  partitionsDetachCommand,
];
