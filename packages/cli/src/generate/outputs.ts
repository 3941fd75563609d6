/**
 * The serialize step: generated files compared with what is on disk (`--check`) or written,
 * touching only files whose bytes change.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** A generated file: path relative to the project root (`/`-separated) and its exact contents. */
export interface GeneratedFile {
  readonly path: string;
  readonly contents: string;
}

/**
 * The files whose contents on disk differ from `files` (or that do not exist).
 *
 * @example
 * staleFiles(root, files); // ['generated/client.ts']
 */
export function staleFiles(root: string, files: readonly GeneratedFile[]): string[] {
  return files.filter((file) => readIfExists(path.resolve(root, file.path)) !== file.contents).map((file) => file.path);
}

/**
 * Writes the files that changed; returns their paths.
 *
 * @example
 * writeFiles(root, files); // ['generated/manifest.json']
 */
export function writeFiles(root: string, files: readonly GeneratedFile[]): string[] {
  const stale = new Set(staleFiles(root, files));
  for (const file of files) {
    if (!stale.has(file.path)) continue;
    const target = path.resolve(root, file.path);
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, file.contents);
  }
  return files.filter((file) => stale.has(file.path)).map((file) => file.path);
}

/** A file's text, or undefined when it does not exist. */
export function readIfExists(file: string): string | undefined {
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
}

/** Deletes generated files that nothing produces any more. */
export function deleteFiles(root: string, files: readonly string[]): void {
  for (const file of files) rmSync(path.resolve(root, file), { force: true });
}
