/**
 * `tasks list`: tasks of one queue or all of them, newest first, filtered and paged. It reads the
 * per-queue tables, as the contract allows tools to, through a statement that
 * `src/queries/tasks.sql` builds (table names quoted there; every value a parameter).
 */
import { UsageError } from '../cli-args.js';
import { EXIT, type CommandSpec } from '../cli-command.js';
import { requireQueue, runStatement, withEngine } from '../cli-database.js';
import { booleanFlag, choiceFlag, integerFlag, stringFlag } from '../cli-flags.js';
import { displayName, formatTime, jsonTime, renderTable, type DatabaseTime } from '../cli-format.js';
import { listTasksStatement } from '../queries/tasks.queries.js';
import { findTask } from '../task-lookup.js';
import { tasksShowCommand } from './tasks-show.js';

const jsonFlag = { name: 'json', description: 'Print one JSON object instead of text lines' } as const;
const STATES = ['pending', 'running', 'sleeping', 'completed', 'failed', 'cancelled'] as const;

/** A bound of `--since`/`--until`: a time (ISO text), or an age (interval text). */
interface TimeBound {
  readonly at: string | null;
  readonly age: string | null;
}

/**
 * A point in time for `--since`/`--until`: an ISO date or time, or an age such as `30m`, `2h`,
 * `7d`, which the statement counts back from the database's clock (absurd.current_time).
 */
function timeBound(flag: string, text: string | undefined): TimeBound {
  if (text === undefined) return { at: null, age: null };
  const age = /^(\d+)\s*(s|m|h|d|w)$/.exec(text.trim());
  if (age) {
    const unit = { s: 'seconds', m: 'minutes', h: 'hours', d: 'days', w: 'weeks' }[age[2] as 's' | 'm' | 'h' | 'd' | 'w'];
    return { at: null, age: `${age[1]} ${unit}` };
  }
  if (/^\d{4}-\d{2}-\d{2}([T ][\d:.]+)?(Z|[+-]\d{2}(:?\d{2})?)?$/.test(text.trim()) && !Number.isNaN(Date.parse(text))) {
    return { at: text.trim(), age: null };
  }
  throw new UsageError(`--${flag} must be a time (2024-05-01, 2024-05-01T12:00:00Z) or an age (30m, 2h, 7d); got ${JSON.stringify(text)}`);
}

interface ListedTask {
  queue_name: string;
  task_id: string;
  task_name: string;
  state: string;
  attempts: number;
  max_attempts: number | null;
  enqueue_at: Date;
  started_at: DatabaseTime;
  ended_at: DatabaseTime;
}

/** `absurd tasks list`. */
export const tasksListCommand: CommandSpec = {
  name: 'tasks list',
  summary: 'List tasks, newest first, in one queue or all of them',
  description:
    'Lists tasks by creation time, newest first, across every queue unless -q is given. Filter by --state, ' +
    '--name and a creation window (--since/--until take a time such as 2024-05-01T12:00:00Z or an age such as ' +
    '2h or 7d). Page with --limit and --offset, or with --after <task-id> (the last id of the previous page).',
  flags: [
    { name: 'queue', short: 'q', value: 'queue', description: 'Only this queue (default: every queue)' },
    { name: 'state', short: 's', value: 'state', description: `Only tasks in this state: ${STATES.join(', ')}` },
    { name: 'name', short: 'n', value: 'task', description: 'Only tasks with this task name' },
    { name: 'since', value: 'time', description: 'Created at or after this time, or within this age (2h, 7d)' },
    { name: 'until', value: 'time', description: 'Created before this time, or more than this age ago' },
    { name: 'limit', short: 'l', value: 'n', description: 'At most this many tasks (default 50)' },
    { name: 'offset', value: 'n', description: 'Skip this many tasks' },
    { name: 'after', value: 'task-id', description: 'Start after this task (keyset paging; not with --offset)' },
    jsonFlag,
  ],
  async run(context) {
    const requested = stringFlag(context, 'queue');
    const state = choiceFlag(context, 'state', STATES);
    const name = stringFlag(context, 'name');
    const limit = integerFlag(context, 'limit', { min: 1, max: 10_000 }) ?? 50;
    const offset = integerFlag(context, 'offset', { min: 0 }) ?? 0;
    const after = stringFlag(context, 'after');
    if (after !== undefined && context.flags.offset !== undefined) throw new UsageError('give --offset or --after, not both');

    const since = timeBound('since', stringFlag(context, 'since'));
    const until = timeBound('until', stringFlag(context, 'until'));

    const tasks = await withEngine(context, async (db) => {
      if (requested !== undefined) await requireQueue(db, requested);
      // Keyset paging: strictly older than the anchor, found in any queue when -q is omitted.
      const anchor = after === undefined ? null : (await findTask(db, after, requested)).taskID;
      const [built] = await listTasksStatement.run({ queueName: requested ?? null, state: state ?? null, byName: name !== undefined }, db);
      if (!built?.statement) return [];
      // In the order of the statement's parameters (see ListTasksStatement in tasks.sql).
      const values = [state ?? null, name ?? null, since.at, since.age, until.at, until.age, anchor, limit, offset];
      return runStatement<ListedTask>(db, built.statement, values);
    });

    const nextAfter = tasks.length === limit ? (tasks.at(-1)?.task_id ?? null) : null;
    if (booleanFlag(context, 'json')) {
      context.print(
        JSON.stringify({
          tasks: tasks.map((t) => ({
            queue: t.queue_name,
            taskID: t.task_id,
            taskName: t.task_name,
            state: t.state,
            attempts: t.attempts,
            maxAttempts: t.max_attempts,
            createdAt: jsonTime(t.enqueue_at),
            startedAt: jsonTime(t.started_at),
            endedAt: jsonTime(t.ended_at),
          })),
          nextAfter,
        }),
      );
      return EXIT.ok;
    }
    if (tasks.length === 0) {
      context.print('no tasks match');
      return EXIT.ok;
    }
    const table = renderTable(
      ['TASK ID', 'QUEUE', 'NAME', 'STATE', 'ATTEMPTS', 'CREATED', 'ENDED'],
      tasks.map((t) => [
        t.task_id,
        displayName(t.queue_name),
        displayName(t.task_name),
        t.state,
        `${t.attempts}/${t.max_attempts ?? '∞'}`,
        formatTime(t.enqueue_at),
        formatTime(t.ended_at),
      ]),
    );
    for (const line of table) context.print(line);
    if (nextAfter) context.print(`(${tasks.length} shown; next page: --after ${nextAfter})`);
    return EXIT.ok;
  },
};

/** Both inspection commands. */
export const tasksCommands: readonly CommandSpec[] = [tasksListCommand, tasksShowCommand];
