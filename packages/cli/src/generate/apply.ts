/**
 * Compares or writes what the pipeline produced, after checking the new manifest against the one
 * on disk (the committed baseline): `--check` fails on stale files and on breaking changes; a
 * write refuses breaking changes unless told otherwise, so that the baseline only moves on
 * purpose.
 */
import path from 'node:path';
import { compareManifests, type CompatibilityReport } from './compare-manifests.js';
import type { Manifest } from './emit-manifest.js';
import { deleteFiles, readIfExists, staleFiles, writeFiles } from './outputs.js';
import type { GenerateResult } from './pipeline.js';
import { GenerateError } from './problems.js';

/** How to apply a result. */
export interface ApplyOptions {
  /** `check`: write nothing, report; `write`: write the files that changed. */
  readonly mode: 'check' | 'write';
  /** Write even when contracts changed incompatibly without a version bump. */
  readonly allowBreaking?: boolean | undefined;
}

/** What applying did or would do. */
export interface ApplyOutcome {
  /** Files that differ from disk (check) or were written (write). */
  readonly changed: readonly string[];
  /** Obsolete generated files: still there (check) or deleted (write). */
  readonly obsolete: readonly string[];
  /** Compatibility with the manifest on disk; undefined when there is none yet. */
  readonly compatibility: CompatibilityReport | undefined;
  /** True when a write was refused because of breaking changes. */
  readonly refused: boolean;
}

/**
 * Checks compatibility, then compares (check) or writes (write).
 *
 * @example
 * const outcome = applyResult(await generate({ root }), { mode: 'check' });
 * if (outcome.changed.length > 0) process.exitCode = 3;
 */
export function applyResult(result: GenerateResult, options: ApplyOptions): ApplyOutcome {
  const root = result.config.root;
  const committed = readManifest(root, result.manifestPath);
  const compatibility = committed ? compareManifests(committed, result.manifest) : undefined;
  if (options.mode === 'check') {
    return { changed: staleFiles(root, result.files), obsolete: result.obsolete, compatibility, refused: false };
  }
  if ((compatibility?.breaking.length ?? 0) > 0 && !options.allowBreaking) {
    return { changed: [], obsolete: [], compatibility, refused: true };
  }
  const changed = writeFiles(root, result.files);
  deleteFiles(root, result.obsolete);
  return { changed, obsolete: result.obsolete, compatibility, refused: false };
}

function readManifest(root: string, manifestPath: string): Manifest | undefined {
  const text = readIfExists(path.resolve(root, manifestPath));
  if (text === undefined) return undefined;
  try {
    const manifest = JSON.parse(text) as Manifest;
    if (typeof manifest.tasks !== 'object' || typeof manifest.events !== 'object') throw new Error('no "tasks" or "events"');
    return manifest;
  } catch (error) {
    throw new GenerateError([
      { file: manifestPath, message: `cannot be read as a manifest (${(error as Error).message}); restore it from version control` },
    ]);
  }
}
