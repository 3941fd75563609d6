/**
 * What a CLI command is: the shape of the entries of the command table in `cli.ts`.
 */
import type { Environment } from 'absurd-kit';
import type { FlagLists, FlagSpec, FlagValues } from './cli-args.js';

/** Exit codes of `absurd`. Never 0 on error. */
export const EXIT = {
  ok: 0,
  /** The command ran and failed (database unreachable, schema refused, …). */
  failure: 1,
  /** Bad command line: unknown command or flag, missing argument. Usage goes to stderr. */
  usage: 2,
  /** Generated output is stale (`--check` modes). */
  stale: 3,
} as const;

/** A stream the CLI writes to (`process.stdout` or a test buffer). */
export interface OutputStream {
  write(chunk: string): unknown;
  /** True when writing to a terminal; output stays quiet and line-oriented otherwise. */
  readonly isTTY?: boolean;
}

/** Where the CLI reads and writes; `env` defaults to the process environment. */
export interface CliIo {
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  readonly env?: Environment;
}

/** What a command's `run` receives. */
export interface CommandContext {
  /** Parsed flags (the command's and the global ones) by long name. */
  readonly flags: FlagValues;
  /** Every value of the command's repeatable flags (`-P a=1 -P b=2`). */
  readonly lists: FlagLists;
  readonly positionals: readonly string[];
  readonly io: CliIo;
  /** The database URL: `--database-url`, then the environment (see `resolveDatabaseUrl`). */
  databaseUrl(): string;
  /** Writes one line to stdout. */
  print(line: string): void;
}

/** One entry of the command table. */
export interface CommandSpec {
  /** Words that select the command, e.g. `migrate` or `schema sql`. */
  readonly name: string;
  /** One line for the command list. */
  readonly summary: string;
  /** Longer text for `absurd <command> --help`, if the summary is not enough. */
  readonly description?: string;
  /** Positional arguments, for usage and arity checks (`<name>` required, `[name]` optional). */
  readonly args?: readonly { readonly name: string; readonly required: boolean }[];
  /** The command's own flags; the global flags are always accepted too. */
  readonly flags: readonly FlagSpec[];
  /**
   * Does the work and returns the exit code; may throw (an `AbsurdError` or any other error becomes
   * exit 1, a `UsageError` — a flag value that does not parse — exit 2).
   */
  run(context: CommandContext): Promise<number>;
}
