import { describe, expect, it } from 'vitest';
import { durationMs } from '@absurd-kit/cli/testing';

describe('durationMs', () => {
  it.each([
    [90, 90_000],
    [0.5, 500],
    ['2 hours', 7_200_000],
    ['30 days', 2_592_000_000],
    ['1 day 6 hours', 108_000_000],
    ['1 day, 6 hours and 30 minutes', 109_800_000],
    ['1.5h', 5_400_000],
    ['90s', 90_000],
    ['250 ms', 250],
    ['2 Weeks', 1_209_600_000],
    ['1 second', 1000],
    ['1 min', 60_000],
  ] as const)('%j is %d ms', (input, expected) => {
    expect(durationMs(input)).toBe(expected);
  });

  it.each([['soon'], ['2 fortnights'], ['hours'], [''], ['2 hours later'], [-1], [Number.NaN], [Infinity]])('refuses %j', (input) => {
    expect(() => durationMs(input)).toThrow(/is not a length of time/);
  });
});
