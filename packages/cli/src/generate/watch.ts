/**
 * `absurd generate --watch`: generates, then again after contract, config or query files change.
 * Changes are debounced (an editor's save is often several events) and runs never overlap.
 */
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { applyResult, type ApplyOutcome } from './apply.js';
import { isInside } from './import-rules.js';
import { loadConfig } from './load-config.js';
import { generate, type GenerateOptions, type GenerateResult } from './pipeline.js';

/** One run of the watcher: what it wrote, or why it failed. */
export type WatchRun = { result: GenerateResult; outcome: ApplyOutcome } | { error: unknown };

/** Options of {@link watchGenerate}. */
export interface WatchOptions extends GenerateOptions {
  /** Stops watching. */
  readonly signal: AbortSignal;
  /** Called after every run, the first one included. */
  readonly onRun: (run: WatchRun) => void;
  /** Quiet time after the last change before a run; default 150 ms. */
  readonly debounceMs?: number;
  readonly allowBreaking?: boolean;
}

/**
 * Runs the pipeline now and after every change until `signal` aborts. The query modules (which
 * need a database) are regenerated only when a file under a query folder changed.
 *
 * @example
 * const controller = new AbortController();
 * await watchGenerate({ root, signal: controller.signal, onRun: (run) => console.log(run) });
 */
export async function watchGenerate(options: WatchOptions): Promise<void> {
  if (options.signal.aborted) return;
  const config = await loadConfig({ root: options.root, configFile: options.configFile });
  const workflowsDir = path.resolve(config.root, config.workflowsDir);
  const outDir = path.resolve(config.root, config.outDir);
  const queryDirs = config.queryDirs.map((dir) => path.resolve(config.root, dir));
  const configFile = config.file === undefined ? undefined : path.resolve(config.root, config.file);

  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let pending = false;
  let queriesChanged = !options.skipQueries;

  const runOnce = async () => {
    const skipQueries = options.skipQueries || !queriesChanged;
    queriesChanged = false;
    try {
      const result = await generate({ ...options, skipQueries });
      const outcome = applyResult(result, { mode: 'write', allowBreaking: options.allowBreaking });
      options.onRun({ result, outcome });
    } catch (error) {
      options.onRun({ error });
    }
  };
  const schedule = () => {
    if (running) {
      pending = true;
      return;
    }
    running = runOnce().then(() => {
      running = undefined;
      if (pending && !options.signal.aborted) {
        pending = false;
        schedule();
      }
    });
  };
  const changed = (file: string) => {
    if (isInside(file, outDir)) return;
    if (queryDirs.some((dir) => isInside(file, dir))) queriesChanged = true;
    clearTimeout(timer);
    timer = setTimeout(schedule, options.debounceMs ?? 150);
  };

  const watchers: FSWatcher[] = [];
  const watchPath = (target: string, recursive: boolean) => {
    try {
      const watcher = watch(target, { recursive }, (_event, name) => {
        changed(name === null ? target : recursive ? path.join(target, name.toString()) : target);
      });
      watcher.on('error', () => undefined);
      watchers.push(watcher);
    } catch {
      // A folder that does not exist (yet) is simply not watched.
    }
  };
  watchPath(workflowsDir, true);
  if (configFile) watchPath(configFile, false);
  if (!options.skipQueries) for (const dir of queryDirs) watchPath(dir, true);

  schedule();
  await new Promise<void>((resolve) => options.signal.addEventListener('abort', () => resolve(), { once: true }));
  clearTimeout(timer);
  for (const watcher of watchers) watcher.close();
  await running;
}
