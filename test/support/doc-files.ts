import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/**
 * The files a documentation page shows whole: each fenced code block preceded by a
 * `<!-- file: <path> -->` line, by that path (relative to the reader's project).
 *
 * @example
 * const files = await docFiles('docs/testing.md');
 * files.get('test/orders.test.ts'); // the test as the page shows it
 */
export async function docFiles(page: string): Promise<Map<string, string>> {
  const text = await readFile(path.join(repoRoot, page), 'utf8');
  const files = new Map<string, string>();
  for (const match of text.matchAll(/^<!-- file: (\S+) -->\n```\w*\n([\s\S]*?)^```$/gm)) {
    const [, file, body] = match;
    if (file === undefined || body === undefined) continue;
    if (files.has(file)) throw new Error(`${page} shows ${file} twice`);
    files.set(file, body);
  }
  return files;
}
