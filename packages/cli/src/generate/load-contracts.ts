/**
 * Imports the contract files (with tsx, fresh on every call so `--watch` sees edits) and pairs
 * each discovered contract with its value, which carries the actual schemas.
 */
import path from 'node:path';
import type { EventContract, ScheduleContract, TaskContract } from 'absurd-kit';
import { importTsModule } from '../import-ts-module.js';
import type { DiscoveredContract } from './discover.js';
import { moduleExports } from './module-exports.js';
import { GenerateError, type GenerateProblem } from './problems.js';

/** A discovered contract with its value. */
export type LoadedContract =
  | { readonly source: DiscoveredContract & { readonly kind: 'task' }; readonly value: TaskContract }
  | { readonly source: DiscoveredContract & { readonly kind: 'event' }; readonly value: EventContract }
  | { readonly source: DiscoveredContract & { readonly kind: 'schedule' }; readonly value: ScheduleContract };

const RUNTIME_KINDS: Readonly<Record<DiscoveredContract['kind'], string>> = {
  task: 'absurd.task',
  event: 'absurd.event',
  schedule: 'absurd.schedule',
};

/**
 * Loads the values of `contracts` (declared in files under `root`). Throws a
 * {@link GenerateError} when a file fails to load or a value does not match its source.
 *
 * @example
 * const loaded = await loadContracts(root, discoverContracts({ root, workflowsDir, allowImports: [] }));
 */
export async function loadContracts(root: string, contracts: readonly DiscoveredContract[]): Promise<LoadedContract[]> {
  const problems: GenerateProblem[] = [];
  const modules = new Map<string, Record<string, unknown> | undefined>();
  for (const file of [...new Set(contracts.map((c) => c.file))].sort()) {
    try {
      const namespace = await importTsModule(path.join(root, file));
      modules.set(file, moduleExports(namespace));
    } catch (error) {
      problems.push({ file, message: `cannot be imported: ${(error as Error).message.split('\n')[0]}` });
      modules.set(file, undefined);
    }
  }
  const loaded: LoadedContract[] = [];
  for (const source of contracts) {
    const module = modules.get(source.file);
    if (!module) continue;
    const value = module[source.exportName] as { kind?: unknown; name?: unknown; queue?: unknown } | undefined;
    const at = (message: string) => problems.push({ file: source.file, line: source.line, message });
    const kind = RUNTIME_KINDS[source.kind];
    if (value?.kind !== kind) {
      at(`export "${source.exportName}" is not a ${source.kind}${source.kind === 'schedule' ? '' : ' contract'} when the file runs`);
    } else if (value.name !== source.name) {
      at(`export "${source.exportName}" is named "${String(value.name)}" at run time but "${source.name}" in the source`);
    } else if (source.kind === 'task' && value.queue !== (source.queue ?? 'default')) {
      at(`export "${source.exportName}" runs on queue "${String(value.queue)}" but the source says "${source.queue ?? 'default'}"`);
    } else {
      loaded.push({ source, value } as LoadedContract);
    }
  }
  if (problems.length > 0) throw new GenerateError(problems);
  return loaded;
}
