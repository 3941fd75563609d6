/**
 * Regenerates `packages/absurd-kit/src/engine/migrations.generated.ts` and `sql/absurd.sql` from `sql/migrations/`.
 *
 *   npm run schema:build            write the files
 *   npm run schema:build -- --check exit 3 (and write nothing) when a file is stale
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSchemaFiles, findStaleSchemaFiles } from './schema-files.js';

const root = fileURLToPath(new URL('..', import.meta.url));

if (process.argv.includes('--check')) {
  const stale = await findStaleSchemaFiles(root);
  for (const file of stale) process.stderr.write(`stale: ${file}\n`);
  if (stale.length > 0) process.stderr.write('run npm run schema:build\n');
  process.exitCode = stale.length > 0 ? 3 : 0;
} else {
  for (const file of await buildSchemaFiles(root)) {
    const target = path.join(root, file.path);
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, file.content);
    process.stdout.write(`wrote ${file.path}\n`);
  }
}
