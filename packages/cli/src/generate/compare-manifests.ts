/**
 * Compares the committed manifest with the one the contracts produce now, contract by contract:
 * which changes would break tasks and events that may be in flight (stored params, checkpoints,
 * results and payloads written under the old contracts), and which of those a version bump
 * accepted.
 */
import { breakingChanges, childPath, type JsonSchema } from './compatibility.js';
import type { SchemaPair } from './json-schema.js';
import type { Manifest } from './emit-manifest.js';

/** One breaking change of one contract. `path` starts with `params`, `result`, `steps[…]`, `payload` or `queue`. */
export interface ContractChange {
  readonly kind: 'task' | 'event';
  readonly name: string;
  readonly path: string;
  readonly message: string;
}

/** What changed between two manifests. */
export interface CompatibilityReport {
  /** Breaking changes of contracts whose version was not bumped: `--check` fails on these. */
  readonly breaking: readonly ContractChange[];
  /** Breaking changes allowed by a version bump (`version` says from and to). */
  readonly accepted: ReadonlyArray<ContractChange & { readonly version: { readonly from: number; readonly to: number } }>;
  /** Things worth knowing that fail nothing: removed contracts, schemas that could not be checked. */
  readonly notes: readonly string[];
}

/**
 * Compares `before` (committed) with `after` (generated now).
 *
 * @example
 * const report = compareManifests(committed, buildManifest(model));
 * if (report.breaking.length > 0) process.exitCode = 1;
 */
export function compareManifests(before: Manifest, after: Manifest): CompatibilityReport {
  const breaking: ContractChange[] = [];
  const accepted: Array<ContractChange & { version: { from: number; to: number } }> = [];
  const notes: string[] = [];

  const settle = (kind: 'task' | 'event', name: string, from: number, to: number, changes: Array<{ path: string; message: string }>) => {
    if (to < from) breaking.push({ kind, name, path: 'version', message: `version went down from ${from} to ${to}` });
    const full = changes.map((c) => ({ kind, name, ...c }));
    if (to > from) accepted.push(...full.map((c) => ({ ...c, version: { from, to } })));
    else breaking.push(...full);
  };
  const pair = (kind: 'task' | 'event', name: string, path: string, old: SchemaPair | undefined, now: SchemaPair | undefined) => {
    if (!old || !now) return [];
    if (old.input === null || now.input === null) {
      notes.push(`${kind} "${name}": ${path} not checked (its validator gives no JSON Schema)`);
      return [];
    }
    return breakingChanges(old.input as JsonSchema, now.input as JsonSchema).map((c) => ({ path: `${path}${c.path}`, message: c.message }));
  };

  for (const name of Object.keys(before.tasks).sort()) {
    const old = before.tasks[name]!;
    const now = after.tasks[name];
    if (!now) {
      notes.push(`task "${name}" was removed: make sure none is still queued, running or sleeping`);
      continue;
    }
    const changes: Array<{ path: string; message: string }> = [];
    if (old.queue !== now.queue) {
      changes.push({ path: 'queue', message: `queue changed from "${old.queue}" to "${now.queue}": tasks already on "${old.queue}" would not be run` });
    }
    changes.push(...pair('task', name, 'params', old.params, now.params));
    changes.push(...pair('task', name, 'result', old.result, now.result));
    for (const step of Object.keys(old.steps ?? {}).sort()) {
      changes.push(...pair('task', name, childPath('steps', step), old.steps[step], now.steps?.[step]));
    }
    settle('task', name, old.version, now.version, changes);
  }
  for (const name of Object.keys(before.events).sort()) {
    const old = before.events[name]!;
    const now = after.events[name];
    if (!now) {
      notes.push(`event "${name}" was removed: make sure no task still awaits it`);
      continue;
    }
    settle('event', name, old.version, now.version, pair('event', name, 'payload', old.payload, now.payload));
  }
  return { breaking, accepted, notes };
}

/**
 * The report as text lines for people.
 *
 * @example
 * formatReport(report); // ['task "order-fulfillment": params.amount: type narrowed from number to integer', …]
 */
export function formatReport(report: CompatibilityReport): string[] {
  return [
    ...report.breaking.map((c) => `${c.kind} "${c.name}": ${c.path}: ${c.message}`),
    ...report.accepted.map((c) => `${c.kind} "${c.name}": ${c.path}: ${c.message} (accepted: version ${c.version.from} → ${c.version.to})`),
    ...report.notes.map((note) => `note: ${note}`),
  ];
}
