/**
 * Regenerates the runtime's typed query modules, `src/queries/*.queries.ts`, from `sql/queries/`,
 * checking every query against a throwaway Postgres with the engine schema (or the server of
 * `--database-url <url>`).
 *
 *   npm run queries:build            write the modules (and delete ones whose .sql file is gone)
 *   npm run queries:build -- --check exit 3 (and write nothing) when a module is stale
 */
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateQueryModules } from '../codegen/pgtyped.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const QUERY_DIR = 'sql/queries';
const OUT_DIR = 'src/queries';

const args = process.argv.slice(2);
const urlFlag = args.indexOf('--database-url');
const databaseUrl = urlFlag >= 0 ? args[urlFlag + 1] : undefined;
const check = args.includes('--check');

try {
  const modules = await generateQueryModules({ queryDirs: [QUERY_DIR], cwd: root, outDir: OUT_DIR, ...(databaseUrl ? { databaseUrl } : {}) });
  const wanted = new Set(modules.map((m) => m.path));
  const existing = (await readdir(path.join(root, OUT_DIR)).catch(() => [] as string[]))
    .filter((name) => name.endsWith('.queries.ts'))
    .map((name) => `${OUT_DIR}/${name}`);
  const obsolete = existing.filter((file) => !wanted.has(file));
  const changed: string[] = [];
  for (const module of modules) {
    const current = await readFile(path.join(root, module.path), 'utf8').catch(() => undefined);
    if (current !== module.contents) changed.push(module.path);
  }
  if (check) {
    for (const file of [...changed, ...obsolete]) process.stderr.write(`stale: ${file}\n`);
    if (changed.length + obsolete.length > 0) process.stderr.write('run npm run queries:build\n');
    process.exitCode = changed.length + obsolete.length > 0 ? 3 : 0;
  } else {
    for (const module of modules) {
      if (!changed.includes(module.path)) continue;
      const target = path.join(root, module.path);
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(target, module.contents);
      process.stdout.write(`wrote ${module.path}\n`);
    }
    for (const file of obsolete) {
      await rm(path.join(root, file));
      process.stdout.write(`deleted ${file}\n`);
    }
  }
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n`);
  process.exitCode = 1;
}
