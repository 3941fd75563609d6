/**
 * Typed readers of flag values. A value that does not parse is a usage error (exit 2) that names
 * the flag and what it expects.
 */
import { UsageError } from './cli-args.js';
import type { CommandContext } from './cli-command.js';

/**
 * The string value of a value flag, or undefined when it was not given.
 *
 * @example
 * stringFlag(context, 'queue'); // 'orders'
 */
export function stringFlag(context: CommandContext, name: string): string | undefined {
  const value = context.flags[name];
  return typeof value === 'string' ? value : undefined;
}

/**
 * True when a boolean flag was given.
 *
 * @example
 * booleanFlag(context, 'json');
 */
export function booleanFlag(context: CommandContext, name: string): boolean {
  return context.flags[name] === true;
}

/**
 * An integer flag within bounds.
 *
 * @example
 * integerFlag(context, 'limit', { min: 1 }); // 50 for `--limit 50`
 */
export function integerFlag(context: CommandContext, name: string, bounds: { min?: number; max?: number } = {}): number | undefined {
  const text = stringFlag(context, name);
  if (text === undefined) return undefined;
  return parseInteger(`--${name}`, text, bounds);
}

/**
 * Parses an integer argument within bounds (a usage error otherwise).
 *
 * @example
 * parseInteger('--limit', '10', { min: 1 }); // 10
 */
export function parseInteger(label: string, text: string, bounds: { min?: number; max?: number } = {}): number {
  const min = bounds.min ?? Number.MIN_SAFE_INTEGER;
  const max = bounds.max ?? 2_147_483_647;
  const value = /^-?\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    const range = bounds.max === undefined ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
    throw new UsageError(`${label} must be ${range}, got ${JSON.stringify(text)}`);
  }
  return value;
}

/**
 * A non-negative decimal number flag (seconds, factors).
 *
 * @example
 * numberFlag(context, 'retry-factor'); // 1.5 for `--retry-factor 1.5`
 */
export function numberFlag(context: CommandContext, name: string): number | undefined {
  const text = stringFlag(context, name);
  if (text === undefined) return undefined;
  const value = /^\d+(\.\d+)?$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!Number.isFinite(value)) throw new UsageError(`--${name} must be a non-negative number, got ${JSON.stringify(text)}`);
  return value;
}

/**
 * A flag whose value is one of `choices`.
 *
 * @example
 * choiceFlag(context, 'storage-mode', ['unpartitioned', 'partitioned'] as const);
 */
export function choiceFlag<const C extends string>(context: CommandContext, name: string, choices: readonly C[]): C | undefined {
  const text = stringFlag(context, name);
  if (text === undefined) return undefined;
  if (!(choices as readonly string[]).includes(text)) {
    throw new UsageError(`--${name} must be one of ${choices.join(', ')}; got ${JSON.stringify(text)}`);
  }
  return text as C;
}
