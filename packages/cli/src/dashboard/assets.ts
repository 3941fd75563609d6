/**
 * The dashboard's static files, read once at start: its stylesheet and script from the package's
 * `assets/dashboard/` folder (shipped as they are, nothing to build), and htmx's prebuilt
 * `dist/htmx.min.js` from the `htmx.org` package.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** A file served under `/assets/<name>`. */
export interface Asset {
  readonly body: string;
  readonly contentType: string;
}

/** `assets/dashboard/` of the package: two levels above this module, from `src/` and from `dist/` alike. */
const ASSETS_DIR = new URL('../../assets/dashboard/', import.meta.url);

/**
 * Every asset by name.
 *
 * @example
 * (await loadAssets()).get('htmx.min.js')?.contentType; // 'text/javascript; charset=utf-8'
 */
export async function loadAssets(): Promise<ReadonlyMap<string, Asset>> {
  const js = 'text/javascript; charset=utf-8';
  const htmx = createRequire(import.meta.url).resolve('htmx.org/dist/htmx.min.js');
  const [css, script, htmxBody] = await Promise.all([
    readFile(fileURLToPath(new URL('dashboard.css', ASSETS_DIR)), 'utf8'),
    readFile(fileURLToPath(new URL('dashboard.js', ASSETS_DIR)), 'utf8'),
    readFile(htmx, 'utf8'),
  ]);
  return new Map([
    ['dashboard.css', { body: css, contentType: 'text/css; charset=utf-8' }],
    ['dashboard.js', { body: script, contentType: js }],
    ['htmx.min.js', { body: htmxBody, contentType: js }],
  ]);
}
