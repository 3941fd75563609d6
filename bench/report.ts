/** The printed table, the summaries kept in the JSON output, and the final `RATIOS` line. */
import type { Row } from './figures.js';
import type { PgbenchResult } from './pgbench.js';
import { summarise, type Summary } from './stats.js';

export interface RowSummary {
  key: string;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
  columns: readonly [string, string];
  a: Summary;
  b: Summary;
  /** a/b of the medians, or (overhead rows) the time overhead of a over b in percent. */
  comparison: number;
  compare: 'ratio' | 'overhead';
  values: readonly [number[], number[]];
}

export function summariseRow(row: Row): RowSummary {
  const a = summarise(row.values[0]);
  const b = summarise(row.values[1]);
  // The cost per task of a over b, minus one: from throughputs (higher is better) the time per
  // task, from costs per task (lower is better) the values themselves; paired, that of each
  // repetition's pair.
  const overhead = (x: number, y: number) => (row.better === 'higher' ? y / x - 1 : x / y - 1) * 100;
  const pairs = (f: (x: number, y: number) => number) =>
    summarise(row.values[0].map((x, i) => f(x, row.values[1][i] ?? NaN)).filter(Number.isFinite)).median;
  const comparison =
    row.compare === 'ratio'
      ? row.paired
        ? pairs((x, y) => x / y)
        : a.median / b.median
      : row.paired
        ? pairs(overhead)
        : overhead(a.median, b.median);
  return { ...row, a, b, comparison };
}

/** The figures the RATIOS line reports, by row key. */
export interface Ratios {
  noop_tps: number;
  step3_tps: number;
  history_keep: number;
  pickup_p50_ms: number;
  peer_pickup_p50_ms: number;
  validation_overhead_pct: number;
  /** Tasks/s of the 3-step run with the OpenTelemetry SDK registered over the same run without. */
  tracing_ratio: number;
  /** Spawns/s, ours over the peer's: one connection, and 8 concurrent callers. */
  spawn_seq: number;
  spawn_pool: number;
  /** Ours: spawns/s through spawnMany (batches of 100) over spawns/s one at a time. */
  spawn_bulk: number;
  pickup_p99_ms: number;
  /** End-to-end no-op tasks/s, ours over pg-boss's and over graphile-worker's. */
  pgboss_noop: number;
  graphile_noop: number;
  /** Ours with the dashboard's list indexes over ours without them: 8-caller spawns, no-op tasks. */
  listidx_spawn: number;
  listidx_noop: number;
  /** Ours: no-op tasks/s with a non-binding concurrency limit over without (target >= 0.90). */
  limits_noop_ratio: number;
  /** Ours: no-op tasks/s with runs over three priorities over all at priority 0. */
  priority_noop_ratio: number;
  /** Worker CPU per 3-step task, typed over untyped, minus one, in percent (paired). */
  validation_cpu_pct: number;
  /** Postgres CPU per no-op task (ms), ours. */
  noop_pg_cpu_ms: number;
}

export function computeRatios(rows: readonly RowSummary[]): Ratios {
  const find = (key: string) => rows.find((row) => row.key === key);
  const noop = find('noop_tps');
  const history = find('history_tps');
  return {
    noop_tps: noop?.comparison ?? NaN,
    step3_tps: find('step3_tps')?.comparison ?? NaN,
    history_keep: history && noop ? history.a.median / noop.a.median : NaN,
    pickup_p50_ms: find('pickup_p50')?.a.median ?? NaN,
    peer_pickup_p50_ms: find('pickup_p50')?.b.median ?? NaN,
    validation_overhead_pct: find('validation')?.comparison ?? NaN,
    tracing_ratio: find('tracing')?.comparison ?? NaN,
    spawn_seq: find('spawn_seq')?.comparison ?? NaN,
    spawn_pool: find('spawn_pool')?.comparison ?? NaN,
    spawn_bulk: find('spawn_bulk')?.comparison ?? NaN,
    pickup_p99_ms: find('pickup_p99')?.a.median ?? NaN,
    pgboss_noop: find('pgboss_noop')?.comparison ?? NaN,
    graphile_noop: find('graphile_noop')?.comparison ?? NaN,
    listidx_spawn: find('listidx_spawn')?.comparison ?? NaN,
    listidx_noop: find('listidx_noop')?.comparison ?? NaN,
    limits_noop_ratio: find('limits_noop')?.comparison ?? NaN,
    priority_noop_ratio: find('priority_noop')?.comparison ?? NaN,
    validation_cpu_pct: find('validation_cpu')?.comparison ?? NaN,
    noop_pg_cpu_ms: find('noop_cpu')?.a.median ?? NaN,
  };
}

/** `RATIOS noop_tps=… …`: numbers with three decimals, `na` for figures that did not run. */
export function ratiosLine(ratios: Ratios): string {
  const parts = Object.entries(ratios).map(([key, value]) => `${key}=${Number.isFinite(value) ? value.toFixed(3) : 'na'}`);
  return `RATIOS ${parts.join(' ')}`;
}

export function formatValue(value: number, unit: string): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (unit === 'ms') return Math.abs(value) < 1 ? value.toFixed(3) : value.toFixed(2);
  if (unit === 'MB') return value.toFixed(1);
  if (unit === '×') return value.toFixed(3);
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US');
  return value.toFixed(1);
}

function cell(summary: Summary, unit: string): string {
  if (summary.n === 0) return 'n/a';
  const median = formatValue(summary.median, unit);
  if (summary.n === 1) return median;
  return `${median} (${formatValue(summary.min, unit)}–${formatValue(summary.max, unit)})`;
}

function comparisonCell(row: RowSummary): string {
  if (!Number.isFinite(row.comparison)) return 'n/a';
  if (row.compare === 'overhead') return `${row.comparison >= 0 ? '+' : ''}${row.comparison.toFixed(1)} %`;
  return `${row.comparison.toFixed(2)}×`;
}

/** The results table: one line per row, medians with (min–max) of the runs. */
export function formatTable(rows: readonly RowSummary[]): string {
  const header = ['figure', 'unit', 'ours', 'peer / other', 'ours/other'];
  const lines = rows.map((row) => {
    const sideLabel = (index: 0 | 1) => (row.columns[index] === (index === 0 ? 'ours' : 'peer') ? '' : `${row.columns[index]}: `);
    return [
      `${row.label}${row.better === 'lower' ? ' ↓' : ''}`,
      row.unit,
      `${sideLabel(0)}${cell(row.a, row.unit)}`,
      `${sideLabel(1)}${cell(row.b, row.unit)}`,
      comparisonCell(row),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((line) => [...(line[i] ?? '')].length)));
  const pad = (text: string, width: number) => text + ' '.repeat(Math.max(0, width - [...text].length));
  const render = (line: string[]) => line.map((text, i) => pad(text, widths[i] ?? 0)).join('  ').trimEnd();
  return [render(header), render(widths.map((w) => '-'.repeat(w))), ...lines.map(render)].join('\n');
}

export function formatPgbench(result: PgbenchResult): string {
  if (result.skipped) return `pgbench: skipped (${result.skipped})`;
  const scripts = ['simple-update', 'single-insert'] as const;
  const clients = [...new Set(result.runs.map((run) => run.clients))];
  const lines = [
    `pgbench ceiling on the same server (${result.version}; -M prepared, ${result.seconds} s per run), transactions/s:`,
    `  ${'script'.padEnd(16)}${clients.map((c) => `${c} client${c === 1 ? '' : 's'}`.padStart(12)).join('')}`,
  ];
  for (const script of scripts) {
    const cells = clients.map((c) => {
      const run = result.runs.find((r) => r.script === script && r.clients === c);
      return (run ? Math.round(run.tps).toLocaleString('en-US') : 'n/a').padStart(12);
    });
    lines.push(`  ${script.padEnd(16)}${cells.join('')}`);
  }
  return lines.join('\n');
}
