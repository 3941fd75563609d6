/**
 * The `tracing` figure: what OpenTelemetry costs a worker. The 3-step end-to-end run of ours,
 * with the SDK registered in the worker process (a span per run and per step, the metrics; see
 * `tracing-sdk.ts`) against the same run without it (where absurd-kit only checks that no SDK is
 * registered), interleaved: traced, untraced, traced, … Reported as traced / untraced tasks/s.
 */
import { measureEndToEnd, type FigureContext, type FigureOutcome, type RunRecord } from './figures.js';

export async function runTracingFigure(ctx: FigureContext): Promise<FigureOutcome> {
  const runs: RunRecord[] = [];
  const traced: number[] = [];
  const untraced: number[] = [];
  for (let rep = 1; rep <= ctx.scale.reps; rep++) {
    for (const tracing of [true, false]) {
      const name = tracing ? 'ours traced' : 'ours untraced';
      ctx.progress(`tracing ${name} ${rep}/${ctx.scale.reps}`);
      const run = await measureEndToEnd(ctx, 'ours', 'steps', 'untyped', undefined, { tracing });
      runs.push({ figure: 'tracing', side: name, rep, ...run });
      (tracing ? traced : untraced).push(run.tasksPerSecond);
    }
  }
  return {
    rows: [
      {
        key: 'tracing',
        label: 'tracing on / off, 3-step tasks/s',
        unit: 'tasks/s',
        better: 'higher',
        columns: ['ours traced', 'ours untraced'],
        values: [traced, untraced],
        compare: 'ratio',
      },
    ],
    runs,
    rss: { ours: [], peer: [] },
  };
}
