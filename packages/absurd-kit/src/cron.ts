/**
 * Checking cron expressions and time zones where a schedule is declared, with the engine's rules
 * (migration 000015, `absurd.kit_cron_parse`), so that a mistake throws at `defineSchedule` and not
 * at the first tick. The engine checks again and alone computes ticks.
 */
import { ScheduleError } from './errors.js';

const MACROS: Readonly<Record<string, string>> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

interface Field {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  readonly names?: readonly string[];
}

const FIELDS: readonly Field[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'] },
  { name: 'day-of-week', min: 0, max: 7, names: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] },
];

/** The longest day of each month (February in a leap year). */
const MONTH_DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * Checks a cron expression: five fields (minute hour day-of-month month day-of-week) of `*`,
 * values, ranges, lists and steps, month and weekday names, or a macro (`@hourly`, `@daily`,
 * `@weekly`, `@monthly`, `@yearly`…). Throws a {@link ScheduleError} (`INVALID_CRON`) naming the
 * field, or saying that the expression never fires (`0 0 30 2 *`). Returns the expression trimmed.
 *
 * @example
 * checkCron('*\/15 9-17 * * MON-FRI'); // ok
 * checkCron('0 24 * * *'); // throws: hour field "24": 24 is out of range 0-23
 */
export function checkCron(cron: string): string {
  if (typeof cron !== 'string') throw invalid(String(cron), 'must be a string');
  const text = cron.trim();
  const expanded = MACROS[text.toLowerCase()] ?? text;
  if (expanded.startsWith('@')) {
    throw invalid(cron, 'unknown macro (use @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)');
  }
  const parts = expanded === '' ? [] : expanded.split(/\s+/);
  if (parts.length !== 5) {
    throw invalid(cron, `expected 5 fields (minute hour day-of-month month day-of-week), got ${parts.length}`);
  }
  const values = FIELDS.map((field, index) => fieldValues(cron, field, parts[index] ?? ''));
  const [, , days = [], months = []] = values;
  const dayOfWeekRestricted = !(parts[4] ?? '').startsWith('*');
  const dayOfMonthRestricted = !(parts[2] ?? '').startsWith('*');
  // Only the day of month decides (Vixie: when the other day field starts with `*`): it must exist
  // in one of the allowed months.
  if (dayOfMonthRestricted && !dayOfWeekRestricted) {
    const longest = Math.max(...months.map((month) => MONTH_DAYS[month - 1] ?? 31));
    if (Math.min(...days) > longest) throw invalid(cron, 'it never fires (no such day in the months it allows)');
  }
  return text;
}

/**
 * Checks an IANA time zone name (`Europe/Berlin`, `UTC`) with the platform's time zone database.
 * Throws a {@link ScheduleError} (`UNKNOWN_TIMEZONE`) otherwise. The engine checks again against
 * PostgreSQL's own list.
 *
 * @example
 * checkTimezone('America/New_York'); // ok
 */
export function checkTimezone(timezone: string): string {
  let valid = typeof timezone === 'string' && timezone.trim() !== '' && !/^[+-]|^(?:UTC|GMT)[+-]/i.test(timezone);
  if (valid) {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: timezone });
    } catch {
      valid = false;
    }
  }
  if (!valid) {
    throw new ScheduleError('UNKNOWN_TIMEZONE', `unknown time zone ${JSON.stringify(timezone)}: use an IANA name such as "Europe/Berlin" or "UTC"`);
  }
  return timezone;
}

function fieldValues(cron: string, field: Field, text: string): number[] {
  const fail = (reason: string) => invalid(cron, `${field.name} field "${text}": ${reason}`);
  if (text === '') throw invalid(cron, `${field.name} field is empty`);
  const values: number[] = [];
  for (const item of text.split(',')) {
    const match = /^([^/]*)(?:\/([0-9]+))?$/.exec(item);
    const base = match?.[1];
    if (!match || !base) throw fail(`"${item}" is not a value, range or step`);
    const step = match[2] === undefined ? undefined : Number(match[2]);
    if (step !== undefined && step < 1) throw fail('step must be at least 1');
    let from = field.min;
    let to = field.max;
    if (base !== '*') {
      const bounds = base.split('-');
      if (bounds.length > 2) throw fail(`"${base}" is not a range`);
      const numbers = bounds.map((bound) => boundValue(field, bound, fail));
      from = numbers[0] ?? field.min;
      to = bounds.length === 1 ? (step === undefined ? from : field.max) : (numbers[1] ?? field.max);
      if (from > to) throw fail(`range "${base}" goes backwards`);
    }
    for (let value = from; value <= to; value += step ?? 1) values.push(field.name === 'day-of-week' ? value % 7 : value);
  }
  return values;
}

function boundValue(field: Field, bound: string, fail: (reason: string) => ScheduleError): number {
  let value: number;
  if (/^[0-9]{1,4}$/.test(bound)) value = Number(bound);
  else {
    const index = field.names?.indexOf(bound.toLowerCase()) ?? -1;
    if (index < 0) {
      const names = field.names ? ` or a name (${field.names.map((n) => n.toUpperCase()).join(', ')})` : '';
      throw fail(`"${bound}" is not a number${names}`);
    }
    value = index + field.min;
  }
  if (value < field.min || value > field.max) throw fail(`${value} is out of range ${field.min}-${field.max}`);
  return value;
}

function invalid(cron: string, reason: string): ScheduleError {
  return new ScheduleError('INVALID_CRON', `invalid cron expression "${cron}": ${reason}`);
}
