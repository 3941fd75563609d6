/**
 * Flag parsing and help rendering for the `absurd` CLI, driven by the command table in `cli.ts`.
 */

/** A flag of a command (or a global one). */
export interface FlagSpec {
  /** Long name without dashes, e.g. `database-url`. */
  readonly name: string;
  /** One-letter alias without the dash, e.g. `d`. */
  readonly short?: string;
  /** Placeholder of the value when the flag takes one, e.g. `url`; absent for boolean flags. */
  readonly value?: string;
  /** A value flag that may be given several times (`-P a=1 -P b=2`); every value is kept in order. */
  readonly repeatable?: boolean;
  readonly description: string;
}

/** Flag values by long name: strings for value flags, `true` for boolean flags that were given. */
export type FlagValues = Readonly<Record<string, string | true | undefined>>;

/** Every value of each repeatable flag, by long name, in command-line order. */
export type FlagLists = Readonly<Record<string, readonly string[]>>;

/** Flags and positional arguments of one command line. */
export interface ParsedArgs {
  /** The last value of each flag (for a repeatable flag too). */
  readonly flags: FlagValues;
  /** All values of the repeatable flags. */
  readonly lists: FlagLists;
  readonly positionals: readonly string[];
}

/** A command line that does not fit the command's flags or arguments (exit code 2). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * Parses `--name value`, `--name=value`, `-n value` and boolean `--name` against `specs`;
 * everything after `--` is positional. Repeatable flags collect all their values in `lists`.
 *
 * @example
 * parseArgs(['--dry-run', '-d', 'postgresql://x/y'], flags); // { flags: { 'dry-run': true, 'database-url': '…' }, lists: {}, positionals: [] }
 */
export function parseArgs(argv: readonly string[], specs: readonly FlagSpec[]): ParsedArgs {
  const flags: Record<string, string | true> = {};
  const lists: Record<string, string[]> = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] ?? '';
    if (token === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!token.startsWith('-') || token === '-') {
      positionals.push(token);
      continue;
    }
    const [written, inline] = splitInline(token);
    const spec = findFlag(written, specs);
    if (!spec) throw new UsageError(`unknown flag ${written}`);
    if (spec.value === undefined) {
      if (inline !== undefined) throw new UsageError(`flag --${spec.name} takes no value`);
      flags[spec.name] = true;
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined || (inline === undefined && value.startsWith('-') && value !== '-')) {
      throw new UsageError(`flag --${spec.name} needs a value <${spec.value}>`);
    }
    flags[spec.name] = value;
    if (spec.repeatable) (lists[spec.name] ??= []).push(value);
  }
  return { flags, lists, positionals };
}

/**
 * The number of leading tokens that are flags of `specs` (with their values), so that global
 * flags may precede the command name: `absurd -d URL migrate`.
 *
 * @example
 * leadingFlagCount(['-d', 'url', 'migrate'], globalFlags); // 2
 */
export function leadingFlagCount(argv: readonly string[], specs: readonly FlagSpec[]): number {
  let i = 0;
  while (i < argv.length) {
    const token = argv[i] ?? '';
    if (!token.startsWith('-') || token === '-' || token === '--') break;
    const [written, inline] = splitInline(token);
    const spec = findFlag(written, specs);
    if (!spec) break;
    i += spec.value !== undefined && inline === undefined ? 2 : 1;
  }
  return Math.min(i, argv.length);
}

/**
 * Help lines for a list of flags, aligned.
 *
 * @example
 * renderFlags(globalFlags); // ['  -d, --database-url <url>  Database to use …', …]
 */
export function renderFlags(specs: readonly FlagSpec[]): string[] {
  const left = specs.map(
    (f) => `${f.short ? `-${f.short}, ` : '    '}--${f.name}${f.value ? ` <${f.value}>` : ''}${f.repeatable ? ' …' : ''}`,
  );
  const width = Math.max(0, ...left.map((l) => l.length));
  return specs.map((f, i) => `  ${(left[i] ?? '').padEnd(width)}  ${f.description}`);
}

function splitInline(token: string): [string, string | undefined] {
  const eq = token.indexOf('=');
  return token.startsWith('--') && eq > 2 ? [token.slice(0, eq), token.slice(eq + 1)] : [token, undefined];
}

function findFlag(written: string, specs: readonly FlagSpec[]): FlagSpec | undefined {
  if (written.startsWith('--')) return specs.find((f) => f.name === written.slice(2));
  return written.length === 2 ? specs.find((f) => f.short === written.slice(1)) : undefined;
}
