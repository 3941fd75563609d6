/**
 * Loads the task and event contracts of a workflows directory, so that the CLI can validate what
 * an operator spawns or emits exactly as the application would.
 */
import { existsSync, statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import {
  AbsurdError,
  isEventContract,
  isScheduleContract,
  isTaskContract,
  type EventContract,
  type ScheduleContract,
  type TaskContract,
} from 'absurd-kit';
import { importTsModule } from './import-ts-module.js';

/** The directory searched when none is given. */
export const DEFAULT_WORKFLOWS_DIR = 'workflows';

/** The contracts found in a workflows directory, by name. */
export interface WorkflowContracts {
  readonly tasks: ReadonlyMap<string, TaskContract>;
  readonly events: ReadonlyMap<string, EventContract>;
  /** The schedules declared with `defineSchedule`, by name. */
  readonly schedules: ReadonlyMap<string, ScheduleContract>;
  /** The files imported, relative to the working directory. */
  readonly files: readonly string[];
}

/**
 * Imports `<dir>/index.ts`, or every `.ts` file under `dir` when there is no index, and collects
 * the exported `defineTask`/`defineEvent` contracts and `defineSchedule` schedules. A missing default directory yields no
 * contracts; a missing directory given explicitly, or a file that fails to load, is an error.
 *
 * @example
 * const { tasks } = await loadWorkflowContracts(undefined);
 * tasks.get('order-fulfillment')?.queue; // 'orders'
 */
export async function loadWorkflowContracts(dir: string | undefined, cwd = process.cwd()): Promise<WorkflowContracts> {
  const root = path.resolve(cwd, dir ?? DEFAULT_WORKFLOWS_DIR);
  const tasks = new Map<string, TaskContract>();
  const events = new Map<string, EventContract>();
  const schedules = new Map<string, ScheduleContract>();
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    if (dir === undefined) return { tasks, events, schedules, files: [] };
    throw new AbsurdError('WORKFLOWS_NOT_FOUND', `--workflows ${dir}: no such directory (looked in ${root})`);
  }
  const index = path.join(root, 'index.ts');
  const files = existsSync(index) ? [index] : await sourceFiles(root);
  for (const file of files) {
    let module: Record<string, unknown>;
    try {
      module = await importTsModule(file);
    } catch (error) {
      throw new AbsurdError(
        'WORKFLOWS_LOAD_FAILED',
        `cannot load contracts from ${path.relative(cwd, file)}: ${(error as Error).message ?? String(error)} — fix the file, or point --workflows at another directory`,
        { cause: error },
      );
    }
    for (const value of Object.values(module)) {
      if (isTaskContract(value) && !tasks.has(value.name)) tasks.set(value.name, value);
      if (isEventContract(value) && !events.has(value.name)) events.set(value.name, value);
      if (isScheduleContract(value) && !schedules.has(value.name)) schedules.set(value.name, value);
    }
  }
  return { tasks, events, schedules, files: files.map((file) => path.relative(cwd, file)) };
}

/** Every TypeScript source under `dir` (no declarations or tests), in a stable order. */
async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && /\.(m?ts|tsx)$/.test(e.name) && !/\.d\.m?ts$|\.test(-d)?\.tsx?$/.test(e.name))
    .map((e) => path.join(e.parentPath ?? e.path, e.name))
    .filter((file) => !file.split(path.sep).includes('node_modules'))
    .sort();
}
