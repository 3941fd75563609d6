/**
 * `absurd generate`: the typed client, the manifest and the typed query modules from the
 * contracts (`--check` for CI, `--watch` while editing).
 *
 * The pipeline (ts-morph and the TypeScript compiler, pgtyped, tsx) is imported when the command
 * runs, not when the command table is built: the other commands start without it.
 */
import { EXIT, type CommandContext, type CommandSpec } from '../cli-command.js';
import { applyResult, type ApplyOutcome } from '../generate/apply.js';
import { formatReport } from '../generate/compare-manifests.js';
import type { GenerateOptions, GenerateResult } from '../generate/pipeline.js';
import { GenerateError } from '../generate/problems.js';

/** `absurd generate`. */
export const generateCommand: CommandSpec = {
  name: 'generate',
  summary: 'Generate the typed client, manifest and query modules from the contracts',
  description:
    'Finds every defineTask/defineEvent export under the workflows folder (absurd.config.ts: workflowsDir, ' +
    'default workflows/) and writes <outDir>/client.ts and <outDir>/manifest.json (default generated/), plus ' +
    'typed query modules for the queryDirs (against --database-url, or an embedded PostgreSQL). Refuses to ' +
    'write when a contract changed incompatibly with the committed manifest unless its version was bumped. ' +
    'With --check it writes nothing and exits 3 when a file is stale, 1 on an incompatible change.',
  flags: [
    { name: 'check', description: 'Write nothing; exit 3 when a generated file is stale, 1 on an incompatible contract change' },
    { name: 'watch', short: 'w', description: 'Generate, then again whenever a contract or query file changes (Ctrl-C stops)' },
    { name: 'json', description: 'Print one JSON object (the check report, or what was written)' },
    { name: 'config', short: 'c', value: 'file', description: 'Config file (default: absurd.config.ts in --root)' },
    { name: 'root', value: 'dir', description: 'Project folder (default: the current folder)' },
    { name: 'allow-breaking', description: 'Write even when a contract changed incompatibly without a version bump' },
    { name: 'skip-queries', description: 'Leave the typed query modules out (needs no database)' },
  ],
  async run(context) {
    const { flags } = context;
    if (flags.check && flags.watch) {
      context.io.stderr.write('absurd generate: --check and --watch cannot be combined\n');
      return EXIT.usage;
    }
    const options: GenerateOptions = {
      root: typeof flags.root === 'string' ? flags.root : process.cwd(),
      configFile: typeof flags.config === 'string' ? flags.config : undefined,
      databaseUrl: typeof flags['database-url'] === 'string' ? flags['database-url'] : undefined,
      skipQueries: flags['skip-queries'] === true,
      onStage: context.io.stderr.isTTY ? (stage) => context.io.stderr.write(`${stage}…\n`) : undefined,
    };
    if (flags.watch) return watch(context, options);
    const { generate } = await import('../generate/pipeline.js');
    let result: GenerateResult;
    try {
      result = await generate(options);
    } catch (error) {
      if (flags.json && error instanceof GenerateError) {
        context.print(JSON.stringify({ ok: false, problems: error.problems }));
        return EXIT.failure;
      }
      throw error;
    }
    const mode = flags.check ? 'check' : 'write';
    const outcome = applyResult(result, { mode, allowBreaking: flags['allow-breaking'] === true });
    const code = exitCode(mode, outcome);
    if (flags.json) {
      context.print(JSON.stringify(jsonReport(mode, result, outcome, code)));
    } else {
      printOutcome(context, mode, result, outcome);
    }
    return code;
  },
};

function exitCode(mode: 'check' | 'write', outcome: ApplyOutcome): number {
  if ((outcome.compatibility?.breaking.length ?? 0) > 0 && (mode === 'check' || outcome.refused)) return EXIT.failure;
  if (mode === 'check' && outcome.changed.length + outcome.obsolete.length > 0) return EXIT.stale;
  return EXIT.ok;
}

function jsonReport(mode: 'check' | 'write', result: GenerateResult, outcome: ApplyOutcome, code: number) {
  return {
    ok: code === EXIT.ok,
    mode,
    [mode === 'check' ? 'stale' : 'written']: outcome.changed,
    [mode === 'check' ? 'obsolete' : 'deleted']: outcome.obsolete,
    refused: outcome.refused,
    breaking: outcome.compatibility?.breaking ?? [],
    accepted: outcome.compatibility?.accepted ?? [],
    notes: [...result.notes, ...(outcome.compatibility?.notes ?? [])],
    contracts: {
      tasks: result.model.tasks.map((t) => t.name),
      events: result.model.events.map((e) => e.name),
      schedules: result.model.schedules.map((s) => s.name),
    },
  };
}

function printOutcome(context: CommandContext, mode: 'check' | 'write', result: GenerateResult, outcome: ApplyOutcome): void {
  const report = outcome.compatibility;
  const breaking = report?.breaking.length ?? 0;
  for (const note of result.notes) context.print(`note: ${note}`);
  for (const line of report ? formatReport(report) : []) context.print(line);
  const { tasks, events, schedules } = result.model;
  // Schedules are named only where there are some, so that projects without keep their line.
  const counts =
    schedules.length === 0
      ? `${plural(tasks.length, 'task')} and ${plural(events.length, 'event')} in ${result.config.workflowsDir}/`
      : `${plural(tasks.length, 'task')}, ${plural(events.length, 'event')} and ${plural(schedules.length, 'schedule')} in ${result.config.workflowsDir}/`;
  if (breaking > 0 && (mode === 'check' || outcome.refused)) {
    context.print(
      `${plural(breaking, 'incompatible change')} to contracts whose data may be in flight${outcome.refused ? '; nothing written' : ''}. ` +
        'Make the change compatible, or bump the contract\'s version once old tasks and events are handled' +
        (mode === 'write' ? ' (or pass --allow-breaking)' : '') +
        '.',
    );
  }
  if (mode === 'check') {
    for (const file of outcome.changed) context.print(`stale: ${file}`);
    for (const file of outcome.obsolete) context.print(`obsolete: ${file}`);
    if (outcome.changed.length + outcome.obsolete.length > 0) context.print('generated files are stale — run `absurd generate`');
    else if (breaking === 0) context.print(`generated files are up to date (${counts})`);
    return;
  }
  if (outcome.refused) return;
  for (const file of outcome.changed) context.print(`wrote ${file}`);
  for (const file of outcome.obsolete) context.print(`deleted ${file}`);
  context.print(
    outcome.changed.length === 0
      ? `generated files are up to date (${counts})`
      : `generated ${plural(outcome.changed.length, 'file')} from ${counts}`,
  );
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

async function watch(context: CommandContext, options: GenerateOptions): Promise<number> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const { watchGenerate } = await import('../generate/watch.js');
  try {
    await watchGenerate({
      ...options,
      allowBreaking: context.flags['allow-breaking'] === true,
      signal: controller.signal,
      onRun: (run) => {
        if ('error' in run) {
          context.io.stderr.write(`absurd generate: ${(run.error as Error).message ?? String(run.error)}\n`);
        } else {
          printOutcome(context, 'write', run.result, run.outcome);
        }
        context.print('watching for changes…');
      },
    });
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  return EXIT.ok;
}
