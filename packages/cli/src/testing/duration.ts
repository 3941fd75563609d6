/**
 * Lengths of time as tests write them: a number of seconds (the unit of every Absurd API), or text
 * such as `'2 hours'`, `'30 days'`, `'1 day 6 hours'`, `'90s'`, `'500 ms'`.
 */
import { AbsurdError } from 'absurd-kit';

/**
 * A length of time: seconds as a number, or text made of `<number> <unit>` parts, e.g. `'2 hours'`,
 * `'1 day 6 hours'`, `'1.5h'`, `'90s'`, `'250 ms'`. Units: ms, s, m(in), h, d, w in short or long
 * form, singular or plural.
 */
export type Duration = number | string;

const UNIT_MS: Readonly<Record<string, number>> = (() => {
  const units: [number, string[]][] = [
    [1, ['ms', 'msec', 'msecs', 'millisecond', 'milliseconds']],
    [1000, ['s', 'sec', 'secs', 'second', 'seconds']],
    [60_000, ['m', 'min', 'mins', 'minute', 'minutes']],
    [3_600_000, ['h', 'hr', 'hrs', 'hour', 'hours']],
    [86_400_000, ['d', 'day', 'days']],
    [604_800_000, ['w', 'week', 'weeks']],
  ];
  return Object.fromEntries(units.flatMap(([ms, names]) => names.map((name) => [name, ms])));
})();

const PART = /(\d+(?:\.\d+)?)\s*([a-z]+)/g;

/**
 * The length of `duration` in milliseconds. Throws an `AbsurdError` (code `INVALID_DURATION`) for
 * a negative or non-finite number and for text it cannot read.
 *
 * @example
 * durationMs('1 day 6 hours'); // 108_000_000
 * durationMs(90);              // 90_000
 */
export function durationMs(duration: Duration): number {
  if (typeof duration === 'number') {
    if (!Number.isFinite(duration) || duration < 0) throw invalid(String(duration));
    return duration * 1000;
  }
  const text = duration.trim().toLowerCase();
  let total = 0;
  let consumed = '';
  for (const [whole, amount, unit] of text.matchAll(PART)) {
    const ms = UNIT_MS[unit as string];
    if (ms === undefined) throw invalid(duration);
    total += Number(amount) * ms;
    consumed += whole;
  }
  // Every character must belong to a part, apart from spaces, commas and "and" between parts.
  const rest = text.replace(PART, ' ').replace(/\band\b|,/g, ' ').trim();
  if (consumed === '' || rest !== '') throw invalid(duration);
  return Math.round(total);
}

function invalid(text: string): AbsurdError {
  return new AbsurdError(
    'INVALID_DURATION',
    `${JSON.stringify(text)} is not a length of time — write a number of seconds, or text such as '2 hours', '30 days' or '1 day 6 hours'`,
  );
}
