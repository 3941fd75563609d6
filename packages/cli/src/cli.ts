/**
 * The `absurd` command line: one table of commands and flags, and {@link run}, which the 3-line
 * `bin/absurd.js` calls and tests call in-process.
 */
import { AbsurdError, resolveDatabaseUrl } from 'absurd-kit';
import { leadingFlagCount, parseArgs, renderFlags, UsageError, type FlagSpec } from './cli-args.js';
import { EXIT, type CliIo, type CommandSpec } from './cli-command.js';
import { cleanupCommands } from './commands/cleanup.js';
import { dashboardCommands } from './commands/dashboard.js';
import { devCommands } from './commands/dev.js';
import { generateCommand } from './commands/generate.js';
import { limitsCommands } from './commands/limits.js';
import { partitionsCommands } from './commands/partitions.js';
import { queueCommands } from './commands/queue.js';
import { schedulesCommands } from './commands/schedules.js';
import { schemaCommands } from './commands/schema.js';
import { skillCommands } from './commands/skill.js';
import { spawnCommands } from './commands/spawn.js';
import { taskControlCommands } from './commands/task-control.js';
import { tasksCommands } from './commands/tasks.js';

export { EXIT, type CliIo, type OutputStream } from './cli-command.js';

/** Flags every command accepts. */
export const GLOBAL_FLAGS: readonly FlagSpec[] = [
  {
    name: 'database-url',
    short: 'd',
    value: 'url',
    description: 'Database to use (default: $ABSURD_DATABASE_URL, $PGDATABASE, postgresql://localhost/absurd)',
  },
  { name: 'help', short: 'h', description: 'Show help' },
];

/** The command table. New commands (queue, spawn, tasks, generate, dev) are added here. */
export const COMMANDS: readonly CommandSpec[] = [
  ...schemaCommands,
  ...queueCommands,
  ...schedulesCommands,
  ...limitsCommands,
  ...spawnCommands,
  ...taskControlCommands,
  ...tasksCommands,
  ...cleanupCommands,
  ...partitionsCommands,
  ...devCommands,
  ...dashboardCommands,
  generateCommand,
  ...skillCommands,
];

/**
 * Runs the CLI on `argv` (without the node and script paths) and returns the exit code:
 * 0 ok, 1 failure, 2 usage, 3 stale generated output. Never throws.
 *
 * @example
 * process.exitCode = await run(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr });
 */
export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  const line = (stream: CliIo['stdout'], text: string) => stream.write(`${text}\n`);
  const leading = leadingFlagCount(argv, GLOBAL_FLAGS);
  const words = argv.slice(leading);
  const command = findCommand(words);
  const rest = [...argv.slice(0, leading), ...words.slice(command ? wordCount(command) : 0)];

  if (!command) {
    const wantsHelp = rest.includes('--help') || rest.includes('-h');
    const group = firstWord(words);
    const inGroup = group ? COMMANDS.filter((c) => c.name.startsWith(`${group} `)) : [];
    if (wantsHelp && (group === undefined || inGroup.length > 0)) {
      io.stdout.write(globalHelp(inGroup.length > 0 ? inGroup : COMMANDS, group));
      return EXIT.ok;
    }
    const problem =
      group === undefined
        ? words[0] === undefined
          ? 'missing command'
          : `unknown flag ${words[0]}`
        : inGroup.length > 0
          ? `missing subcommand after "${group}"`
          : `unknown command "${group}"`;
    line(io.stderr, `absurd: ${problem}`);
    io.stderr.write(globalHelp(inGroup.length > 0 ? inGroup : COMMANDS, inGroup.length > 0 ? group : undefined));
    return EXIT.usage;
  }

  const flagSpecs = [...command.flags, ...GLOBAL_FLAGS];
  let parsed;
  try {
    parsed = parseArgs(rest, flagSpecs);
    if (parsed.flags.help) {
      io.stdout.write(commandHelp(command));
      return EXIT.ok;
    }
    checkArity(command, parsed.positionals);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    line(io.stderr, `absurd ${command.name}: ${error.message}`);
    io.stderr.write(commandHelp(command));
    return EXIT.usage;
  }

  const { flags, lists, positionals } = parsed;
  try {
    return await command.run({
      flags,
      lists,
      positionals,
      io,
      databaseUrl: () =>
        resolveDatabaseUrl({
          databaseUrl: typeof flags['database-url'] === 'string' ? flags['database-url'] : undefined,
          env: io.env,
        }),
      print: (text) => line(io.stdout, text),
    });
  } catch (error) {
    line(io.stderr, `absurd ${command.name}: ${describeError(error)}`);
    // A flag value that does not parse is a usage error too, found only once the command reads it.
    if (error instanceof UsageError) {
      io.stderr.write(commandHelp(command));
      return EXIT.usage;
    }
    return EXIT.failure;
  }
}

function describeError(error: unknown): string {
  if (error instanceof AbsurdError) return error.message;
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

function wordCount(command: CommandSpec): number {
  return command.name.split(' ').length;
}

/** The command whose name matches the most leading words (`schema sql` before `schema`). */
function findCommand(words: readonly string[]): CommandSpec | undefined {
  return [...COMMANDS]
    .sort((a, b) => wordCount(b) - wordCount(a))
    .find((c) => c.name.split(' ').every((word, i) => words[i] === word));
}

function firstWord(words: readonly string[]): string | undefined {
  const word = words[0];
  return word !== undefined && !word.startsWith('-') ? word : undefined;
}

function checkArity(command: CommandSpec, positionals: readonly string[]): void {
  const args = command.args ?? [];
  const required = args.filter((a) => a.required).length;
  if (positionals.length < required) {
    throw new UsageError(`missing argument <${args[positionals.length]?.name ?? 'argument'}>`);
  }
  if (positionals.length > args.length) throw new UsageError(`unexpected argument "${positionals[args.length]}"`);
}

function usageLine(command: CommandSpec): string {
  const args = (command.args ?? []).map((a) => (a.required ? ` <${a.name}>` : ` [${a.name}]`)).join('');
  return `Usage: absurd ${command.name}${args} [flags]`;
}

function commandHelp(command: CommandSpec): string {
  return [
    usageLine(command),
    '',
    ...wrap(command.description ?? command.summary, 80),
    '',
    'Flags:',
    ...renderFlags([...command.flags, ...GLOBAL_FLAGS]),
    '',
  ].join('\n');
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let current = '';
  for (const word of text.split(/\s+/)) {
    if (current && current.length + 1 + word.length > width) {
      lines.push(current);
      current = word;
    } else {
      current = current ? `${current} ${word}` : word;
    }
  }
  if (current) lines.push(current);
  return lines;
}

function globalHelp(commands: readonly CommandSpec[], group: string | undefined): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    `Usage: absurd ${group ? `${group} <subcommand>` : '<command>'} [flags]`,
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Global flags:',
    ...renderFlags(GLOBAL_FLAGS),
    '',
    'Run `absurd <command> --help` for the flags of a command.',
    '',
  ].join('\n');
}
