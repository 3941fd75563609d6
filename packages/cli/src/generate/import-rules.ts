/**
 * Which modules a contract file may import. Contract files must stay importable by any service
 * without pulling in handlers or other runtime-only code, so their imports are kept to schemas,
 * absurd-kit and each other.
 */
import path from 'node:path';

/** Always allowed, whatever the configuration says. */
export const BUILT_IN_ALLOWED_IMPORTS: readonly string[] = ['zod', 'zod/*', 'absurd-kit', 'absurd-kit/*'];

/** The import being judged. */
export interface ImportToCheck {
  /** The specifier as written, e.g. `zod` or `./orders.js`. */
  readonly specifier: string;
  /** Absolute path of the importing file. */
  readonly importer: string;
  /** Absolute path the specifier resolves to, when the compiler could resolve it. */
  readonly resolvedFile: string | undefined;
}

/** Where the rules apply. */
export interface ImportRules {
  /** Absolute project root: `./` and `../` entries of `allow` are relative to it. */
  readonly root: string;
  /** Absolute workflows folder: anything under it may be imported. */
  readonly workflowsDir: string;
  /** Extra entries from the configuration (`allowImports`). */
  readonly allow: readonly string[];
}

/**
 * True when a contract file may import `spec`.
 *
 * @example
 * isAllowedImport({ specifier: 'zod', importer: '/p/workflows/a.ts', resolvedFile: undefined }, rules); // true
 */
export function isAllowedImport(spec: ImportToCheck, rules: ImportRules): boolean {
  const { specifier } = spec;
  if (isRelative(specifier)) {
    const target = spec.resolvedFile ?? path.resolve(path.dirname(spec.importer), specifier);
    if (isInside(target, rules.workflowsDir)) return true;
    return rules.allow.filter(isRelative).some((entry) => {
      const allowed = path.resolve(rules.root, entry);
      return target === allowed || isInside(target, allowed);
    });
  }
  return [...BUILT_IN_ALLOWED_IMPORTS, ...rules.allow.filter((entry) => !isRelative(entry))].some((pattern) =>
    pattern.endsWith('/*') ? specifier.startsWith(pattern.slice(0, -1)) : specifier === pattern,
  );
}

function isRelative(specifier: string): boolean {
  return specifier.startsWith('./') || specifier.startsWith('../') || specifier === '.' || specifier === '..' || path.isAbsolute(specifier);
}

/** True when `file` is `dir` itself or inside it. */
export function isInside(file: string, dir: string): boolean {
  const relative = path.relative(dir, file);
  return relative === '' || (relative !== '..' && !relative.startsWith(`..${path.sep}`) && !path.isAbsolute(relative));
}
