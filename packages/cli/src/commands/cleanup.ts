/**
 * `absurd cleanup`: deletes ended tasks and old events of a queue, in batches, through the
 * engine's `cleanup_tasks`/`cleanup_events`.
 */
import { UsageError } from '../cli-args.js';
import { EXIT, type CommandSpec } from '../cli-command.js';
import { oneRow, requireQueue, runStatement, withEngine } from '../cli-database.js';
import { booleanFlag, integerFlag } from '../cli-flags.js';
import { cleanupBatch, cleanupCountStatement } from '../queries/cleanup.queries.js';

/** The longest TTL the engine's integer seconds parameter can hold (~68 years). */
const MAX_TTL_SECONDS = 2_147_483_647;

function ttlSeconds(text: string): number {
  const days = /^\d+(\.\d+)?$/.test(text.trim()) ? Number(text) : Number.NaN;
  const seconds = Math.floor(days * 86_400);
  if (!Number.isFinite(days) || seconds > MAX_TTL_SECONDS) {
    throw new UsageError(`<ttl-days> must be a non-negative number of days (e.g. 30 or 0.5), got ${JSON.stringify(text)}`);
  }
  return seconds;
}

/** `absurd cleanup`. */
export const cleanupCommand: CommandSpec = {
  name: 'cleanup',
  summary: 'Delete tasks that ended, and events emitted, more than <ttl-days> ago',
  description:
    'Deletes completed, failed and cancelled tasks (with their runs, checkpoints and waits) that ended more than ' +
    '<ttl-days> days ago, and events emitted before then, --limit rows per call until nothing is left. ' +
    'With --dry-run, only counts them. Time is the database clock (absurd.current_time()).',
  args: [
    { name: 'queue', required: true },
    { name: 'ttl-days', required: true },
  ],
  flags: [
    { name: 'limit', short: 'l', value: 'n', description: 'Rows deleted per call (default 1000)' },
    { name: 'dry-run', description: 'Count what would be deleted; delete nothing' },
    { name: 'json', description: 'Print one JSON object instead of text lines' },
  ],
  async run(context) {
    const queue = context.positionals[0] ?? '';
    const ttl = ttlSeconds(context.positionals[1] ?? '');
    const limit = integerFlag(context, 'limit', { min: 1 }) ?? 1000;
    const dryRun = booleanFlag(context, 'dry-run');
    const counts = await withEngine(context, async (db) => {
      await requireQueue(db, queue);
      if (dryRun) {
        // The same selection as cleanup_tasks, counted (see CleanupCountStatement).
        const { statement } = oneRow(await cleanupCountStatement.run({ queueName: queue }, db), 'CleanupCountStatement');
        const [counted] = await runStatement<{ tasks: number; events: number }>(db, statement, [ttl]);
        return counted ?? { tasks: 0, events: 0 };
      }
      let tasks = 0;
      let events = 0;
      for (;;) {
        const batch = oneRow(await cleanupBatch.run({ queueName: queue, ttlSeconds: ttl, limit }, db), 'CleanupBatch');
        tasks += batch.tasks;
        events += batch.events;
        if (batch.tasks === 0 && batch.events === 0) return { tasks, events };
        if (context.io.stderr.isTTY) context.io.stderr.write(`deleted ${tasks} task(s), ${events} event(s)…\n`);
      }
    });
    if (booleanFlag(context, 'json')) {
      context.print(JSON.stringify({ queue, ttlSeconds: ttl, dryRun, tasks: counts.tasks, events: counts.events }));
    } else {
      const verb = dryRun ? 'would delete' : 'deleted';
      context.print(`${verb} ${counts.tasks} task(s) and ${counts.events} event(s) from queue ${JSON.stringify(queue)}`);
    }
    return EXIT.ok;
  },
};

/** The cleanup command. */
export const cleanupCommands: readonly CommandSpec[] = [cleanupCommand];
