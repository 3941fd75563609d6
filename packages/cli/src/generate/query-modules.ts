/**
 * The typed query modules stage: pgtyped over the configured query folders (`pgtyped.ts`),
 * loaded only when there is something to generate, since it starts or uses a database.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { GENERATED_HEADER } from './emit-client.js';
import type { GeneratedFile } from './outputs.js';

/** Options of {@link generateQueryModules}. */
export interface QueryModuleOptions {
  readonly root: string;
  readonly queryDirs: readonly string[];
  /** Folder of the modules (relative to the root); next to each `.sql` file when absent. */
  readonly queryOutDir: string | undefined;
  /** Module the generated modules import `PreparedQuery` from (default `@pgtyped/runtime`). */
  readonly queryRuntime?: string | undefined;
  /** A server to check the queries on; a throwaway embedded one is started when absent. */
  readonly databaseUrl?: string | undefined;
}

/** The query modules, and generated modules in `queryOutDir` that no `.sql` file produces any more. */
export interface QueryModules {
  readonly files: GeneratedFile[];
  readonly obsolete: string[];
}

/**
 * Generates the modules of every existing query folder (paths relative to the root).
 *
 * @example
 * const { files } = await generateQueryModules({ root, queryDirs: ['sql/queries'], queryOutDir: 'src/queries' });
 */
export async function generateQueryModules(options: QueryModuleOptions): Promise<QueryModules> {
  const queryDirs = options.queryDirs.filter((dir) => existsSync(path.resolve(options.root, dir)));
  if (queryDirs.length === 0) return { files: [], obsolete: [] };
  const pgtyped = await import('./pgtyped.js');
  const modules = await pgtyped.generateQueryModules({
    ...(options.databaseUrl ? { databaseUrl: options.databaseUrl } : {}),
    ...(options.queryOutDir ? { outDir: options.queryOutDir } : {}),
    ...(options.queryRuntime ? { runtimeModule: options.queryRuntime } : {}),
    queryDirs,
    cwd: options.root,
  });
  const files = modules.map((m) => ({ path: m.path, contents: m.contents }));
  return { files, obsolete: options.queryOutDir ? obsoleteModules(options.root, options.queryOutDir, files) : [] };
}

/** `*.queries.ts` files under `dir` that carry the generated header but were not generated now. */
function obsoleteModules(root: string, dir: string, files: readonly GeneratedFile[]): string[] {
  const wanted = new Set(files.map((f) => f.path));
  const found: string[] = [];
  const visit = (relative: string) => {
    const absolute = path.resolve(root, relative);
    if (!existsSync(absolute)) return;
    for (const entry of readdirSync(absolute, { withFileTypes: true })) {
      const child = path.posix.join(relative, entry.name);
      if (entry.isDirectory()) visit(child);
      else if (entry.name.endsWith('.queries.ts') && !wanted.has(child) && readFileSync(path.resolve(root, child), 'utf8').startsWith(GENERATED_HEADER)) {
        found.push(child);
      }
    }
  };
  visit(dir.split(path.sep).join('/').replace(/\/$/, ''));
  return found.sort();
}
