/**
 * Cron schedules from the command line: `schedules list`, `add`, `remove`, `pause`, `resume` and
 * `sync` (every `defineSchedule` of the workflows directory). All go through the runtime's client,
 * so the engine's checks (cron syntax, time zone, queue) and messages are the application's.
 */
import {
  ScheduleError,
  defineSchedule,
  validateQueueName,
  type CatchUpPolicy,
  type ScheduleContract,
  type ScheduleInfo,
  type ScheduleInput,
  type ScheduleSpawnOptions,
} from 'absurd-kit';
import { UsageError } from '../cli-args.js';
import { EXIT, type CommandContext, type CommandSpec } from '../cli-command.js';
import { engineClient, withEngine } from '../cli-database.js';
import { booleanFlag, choiceFlag, integerFlag, stringFlag } from '../cli-flags.js';
import { displayName, formatTime, jsonTime, renderTable } from '../cli-format.js';
import { assignParams, jsonFromFlags } from '../json-input.js';
import { loadWorkflowContracts } from '../workflow-contracts.js';

const jsonFlag = { name: 'json', description: 'Print one JSON object instead of text lines' } as const;
const nameArg = [{ name: 'name', required: true }] as const;
const workflowsFlag = {
  name: 'workflows',
  value: 'dir',
  description: 'Where the contracts are (default workflows/): index.ts, or every .ts file in it',
} as const;

/** A schedule as `--json` prints it. */
function scheduleJson(s: ScheduleInfo): Record<string, unknown> {
  return {
    name: s.name,
    queue: s.queue,
    task: s.task,
    cron: s.cron,
    timezone: s.timezone,
    catchUp: s.catchUp,
    paused: s.paused,
    params: s.params,
    options: s.options,
    nextFireAt: jsonTime(s.nextFireAt),
    lastFiredAt: jsonTime(s.lastFiredAt),
    lastTaskID: s.lastTaskID,
    lastError: s.lastError,
  };
}

/** One line saying what a schedule now is. */
function describe(s: ScheduleInfo): string {
  const when = s.paused ? 'paused' : `next tick ${formatTime(s.nextFireAt)}`;
  return `schedule ${JSON.stringify(s.name)}: ${s.task} on queue ${JSON.stringify(s.queue)}, "${s.cron}" (${s.timezone}), ${when}`;
}

/** `schedule "x" does not exist — see \`absurd schedules list\``, as a ScheduleError. */
function notFound(name: string): ScheduleError {
  return new ScheduleError('SCHEDULE_NOT_FOUND', `schedule ${JSON.stringify(name)} does not exist — see \`absurd schedules list\``);
}

/** Runs a pause or resume, with the CLI's hint for an unknown name. */
async function setPaused(context: CommandContext, paused: boolean): Promise<number> {
  const name = context.positionals[0] ?? '';
  const info = await withEngine(context, async (db) => {
    const client = engineClient(db);
    try {
      return paused ? await client.pauseSchedule(name) : await client.resumeSchedule(name);
    } catch (error) {
      if (error instanceof ScheduleError && error.code === 'SCHEDULE_NOT_FOUND') throw notFound(name);
      throw error;
    }
  });
  if (booleanFlag(context, 'json')) context.print(JSON.stringify(scheduleJson(info)));
  else context.print(`${paused ? 'paused' : 'resumed'} ${describe(info)}`);
  return EXIT.ok;
}

/** `absurd schedules list`. */
export const schedulesListCommand: CommandSpec = {
  name: 'schedules list',
  summary: 'List the cron schedules with their next and last ticks',
  flags: [{ name: 'queue', short: 'q', value: 'name', description: 'Only the schedules of this queue' }, jsonFlag],
  async run(context) {
    const queue = stringFlag(context, 'queue');
    const rows = await withEngine(context, (db) => engineClient(db).listSchedules(queue === undefined ? undefined : validateQueueName(queue)));
    if (booleanFlag(context, 'json')) {
      context.print(JSON.stringify({ schedules: rows.map(scheduleJson) }));
    } else if (rows.length === 0) {
      context.print('no schedules — declare one with defineSchedule and run `absurd schedules sync`, or use `absurd schedules add`');
    } else {
      const table = renderTable(
        ['SCHEDULE', 'QUEUE', 'TASK', 'CRON', 'TIME ZONE', 'CATCH-UP', 'NEXT', 'LAST'],
        rows.map((s) => [
          displayName(s.name),
          displayName(s.queue),
          s.task,
          s.cron,
          s.timezone,
          s.catchUp,
          s.paused ? 'paused' : formatTime(s.nextFireAt),
          s.lastError ? `error: ${s.lastError}` : s.lastFiredAt ? formatTime(s.lastFiredAt) : '-',
        ]),
      );
      for (const line of table) context.print(line);
    }
    return EXIT.ok;
  },
};

/** `absurd schedules add`. */
export const schedulesAddCommand: CommandSpec = {
  name: 'schedules add',
  summary: 'Create or update a cron schedule that spawns a task on every tick',
  description:
    'Creates the schedule, or updates the one of that name (its next tick is kept unless --cron or --timezone ' +
    'change; a paused schedule stays paused). When the workflows directory declares the task, its contract ' +
    'checks the params and gives the queue. The tick fires when a worker claims on the queue.',
  args: nameArg,
  flags: [
    { name: 'task', short: 't', value: 'name', description: 'The task each tick spawns (required)' },
    { name: 'cron', value: 'expr', description: 'Five fields "m h dom mon dow" or a macro such as @daily (required)' },
    { name: 'queue', short: 'q', value: 'name', description: "The queue (default: the contract's queue; required without one)" },
    { name: 'timezone', value: 'tz', description: 'IANA time zone the cron is read in (default UTC)' },
    { name: 'catch-up', value: 'policy', description: "skip (default: drop ticks over 60 s late) or latest (run the latest missed tick once)" },
    { name: 'params', value: 'json', description: 'Params as JSON (the base object for -P)' },
    { name: 'param', short: 'P', value: 'key=value', repeatable: true, description: 'Set a field: key=text or key:=json' },
    { name: 'max-attempts', value: 'n', description: 'Attempts of each spawned task' },
    { name: 'header', short: 'H', value: 'key=value', repeatable: true, description: 'A header of each spawned task' },
    workflowsFlag,
    jsonFlag,
  ],
  async run(context) {
    const name = context.positionals[0] ?? '';
    const task = stringFlag(context, 'task');
    const cron = stringFlag(context, 'cron');
    if (task === undefined || cron === undefined) {
      throw new UsageError('absurd schedules add needs --task and --cron (e.g. --task send-report --cron "0 2 * * *")');
    }
    const params = jsonFromFlags('--params', stringFlag(context, 'params'), context.lists.param ?? [], '-P');
    const options: ScheduleSpawnOptions = {};
    const maxAttempts = integerFlag(context, 'max-attempts', { min: 1 });
    if (maxAttempts !== undefined) options.maxAttempts = maxAttempts;
    const headers = context.lists.header ?? [];
    if (headers.length > 0) options.headers = assignParams({}, headers, '-H');
    const timezone = stringFlag(context, 'timezone') ?? 'UTC';
    const catchUp: CatchUpPolicy = choiceFlag(context, 'catch-up', ['skip', 'latest']) ?? 'skip';
    const queue = stringFlag(context, 'queue');
    const contract = (await loadWorkflowContracts(stringFlag(context, 'workflows'))).tasks.get(task);
    let schedule: ScheduleContract | ScheduleInput;
    if (contract) {
      if (queue !== undefined && validateQueueName(queue) !== contract.queue) {
        throw new ScheduleError('INVALID_SCHEDULE', `task "${task}" is declared for queue "${contract.queue}", not "${queue}"`);
      }
      schedule = defineSchedule({ name, task: contract, cron, timezone, params, catchUp, options });
    } else {
      if (queue === undefined) {
        throw new ScheduleError('INVALID_SCHEDULE', `task "${task}" is not declared in the workflows directory: give its queue with --queue`);
      }
      schedule = { name, queue, task, cron, timezone, params, catchUp, options };
    }
    const info = await withEngine(context, (db) => engineClient(db).upsertSchedule(schedule));
    if (booleanFlag(context, 'json')) context.print(JSON.stringify(scheduleJson(info)));
    else context.print(`saved ${describe(info)}${contract ? '; params match the contract' : ''}`);
    return EXIT.ok;
  },
};

/** `absurd schedules remove`. */
export const schedulesRemoveCommand: CommandSpec = {
  name: 'schedules remove',
  summary: 'Remove a schedule (the tasks it spawned stay)',
  args: nameArg,
  flags: [jsonFlag],
  async run(context) {
    const name = context.positionals[0] ?? '';
    const removed = await withEngine(context, (db) => engineClient(db).removeSchedule(name));
    if (!removed) throw notFound(name);
    context.print(booleanFlag(context, 'json') ? JSON.stringify({ name, removed: true }) : `removed schedule ${JSON.stringify(name)}`);
    return EXIT.ok;
  },
};

/** `absurd schedules pause`. */
export const schedulesPauseCommand: CommandSpec = {
  name: 'schedules pause',
  summary: 'Pause a schedule: it fires nothing until resumed',
  args: nameArg,
  flags: [jsonFlag],
  run: (context) => setPaused(context, true),
};

/** `absurd schedules resume`. */
export const schedulesResumeCommand: CommandSpec = {
  name: 'schedules resume',
  summary: 'Resume a schedule from its next tick (ticks missed while paused never fire)',
  args: nameArg,
  flags: [jsonFlag],
  run: (context) => setPaused(context, false),
};

/** `absurd schedules sync`. */
export const schedulesSyncCommand: CommandSpec = {
  name: 'schedules sync',
  summary: 'Apply every schedule declared with defineSchedule in the workflows directory',
  description:
    'Creates or updates each declared schedule, as a worker given it with registerSchedule does. Schedules ' +
    'in the database that the directory does not declare are left alone (remove them with `absurd schedules remove`).',
  flags: [workflowsFlag, jsonFlag],
  async run(context) {
    const { schedules, files } = await loadWorkflowContracts(stringFlag(context, 'workflows'));
    const applied = await withEngine(context, async (db) => {
      const client = engineClient(db);
      const out: ScheduleInfo[] = [];
      for (const schedule of [...schedules.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) out.push(await client.upsertSchedule(schedule));
      return out;
    });
    if (booleanFlag(context, 'json')) {
      context.print(JSON.stringify({ schedules: applied.map(scheduleJson) }));
    } else if (applied.length === 0) {
      context.print(`no schedules declared in ${files.length === 0 ? 'the workflows directory' : files.join(', ')}`);
    } else {
      for (const info of applied) context.print(`applied ${describe(info)}`);
    }
    return EXIT.ok;
  },
};

/** Every schedule command, in help order. */
export const schedulesCommands: readonly CommandSpec[] = [
  schedulesListCommand,
  schedulesAddCommand,
  schedulesRemoveCommand,
  schedulesPauseCommand,
  schedulesResumeCommand,
  schedulesSyncCommand,
];
