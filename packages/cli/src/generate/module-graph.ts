/**
 * What a name in a contract file refers to, worked out from the import and export statements of
 * the contract files alone. Building a full TypeScript program would load absurd-kit, zod and
 * every type they use, several seconds per run; contract files only need their own imports
 * followed (through re-exports between them) until they reach absurd-kit.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Node, type SourceFile } from 'ts-morph';

/** Where a module specifier leads. */
export type ModuleTarget =
  | { readonly kind: 'absurd-kit' }
  | { readonly kind: 'contract-file'; readonly file: string }
  | { readonly kind: 'other'; readonly file: string | undefined };

/** An export of a module: a named export, or the whole module (a namespace). */
export type ExportTarget = { readonly module: ModuleTarget; readonly name: string | '*' } | undefined;

/** The contract files by absolute path, and lookups over them. */
export class ModuleGraph {
  private readonly packageNames = new Map<string, string | undefined>();

  constructor(private readonly files: ReadonlyMap<string, SourceFile>) {}

  /**
   * Resolves `specifier` imported by `importer`: `absurd-kit` by name or by a path into the
   * absurd-kit package (this repository imports its own `src/`), a contract file, or other.
   */
  resolve(specifier: string, importer: string): ModuleTarget {
    if (specifier === 'absurd-kit' || specifier.startsWith('absurd-kit/')) return { kind: 'absurd-kit' };
    if (!specifier.startsWith('.') && !path.isAbsolute(specifier)) return { kind: 'other', file: undefined };
    const file = resolveFile(path.resolve(path.dirname(importer), specifier));
    if (file !== undefined && this.files.has(file)) return { kind: 'contract-file', file };
    if (file !== undefined && this.packageName(file) === 'absurd-kit') return { kind: 'absurd-kit' };
    return { kind: 'other', file };
  }

  /**
   * What the local name `name` of `file` refers to when it is imported (named or namespace), or
   * undefined for a local declaration.
   */
  importBinding(file: SourceFile, name: string): ExportTarget {
    for (const declaration of file.getImportDeclarations()) {
      const module = () => this.resolve(declaration.getModuleSpecifierValue(), file.getFilePath());
      if (declaration.getNamespaceImport()?.getText() === name) return { module: module(), name: '*' };
      if (declaration.getDefaultImport()?.getText() === name) return { module: module(), name: 'default' };
      for (const named of declaration.getNamedImports()) {
        if ((named.getAliasNode()?.getText() ?? named.getName()) === name) return { module: module(), name: named.getName() };
      }
    }
    return undefined;
  }

  /**
   * Follows `target` through the re-exports of contract files to where it is declared: absurd-kit
   * (with the name it has there), another module, or a contract file's own declaration. Undefined
   * when a contract file has no such export.
   */
  follow(target: ExportTarget, seen = new Set<string>()): ExportTarget {
    if (!target || target.module.kind !== 'contract-file' || target.name === '*') return target;
    const key = `${target.module.file}#${target.name}`;
    const file = this.files.get(target.module.file);
    if (seen.has(key) || !file) return undefined;
    seen.add(key);
    if (ownExportNames(file).some(([, names]) => names.includes(target.name))) return target;
    const stars: ModuleTarget[] = [];
    for (const declaration of file.getExportDeclarations()) {
      const specifier = declaration.getModuleSpecifierValue();
      const from = specifier === undefined ? undefined : this.resolve(specifier, file.getFilePath());
      if (from && declaration.getNamespaceExport()?.getName() === target.name) return { module: from, name: '*' };
      if (from && !declaration.getNamespaceExport() && declaration.getNamedExports().length === 0) stars.push(from);
      for (const named of declaration.getNamedExports()) {
        if ((named.getAliasNode()?.getText() ?? named.getName()) !== target.name) continue;
        return this.follow(from ? { module: from, name: named.getName() } : this.importBinding(file, named.getName()), seen);
      }
    }
    for (const from of stars) {
      const found = this.follow({ module: from, name: target.name }, seen);
      if (found) return found;
    }
    return undefined;
  }

  /** The source file of a contract-file module. */
  sourceFile(module: ModuleTarget): SourceFile | undefined {
    return module.kind === 'contract-file' ? this.files.get(module.file) : undefined;
  }

  /** The `name` of the package.json nearest to `file` (cached per folder). */
  private packageName(file: string): string | undefined {
    const dir = path.dirname(file);
    if (this.packageNames.has(dir)) return this.packageNames.get(dir);
    let name: string | undefined;
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        name = (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name;
      } catch {
        name = undefined;
      }
    } else if (path.dirname(dir) !== dir) {
      name = this.packageName(dir);
    }
    this.packageNames.set(dir, name);
    return name;
  }
}

/**
 * The file's own exported top-level declarations with their export names: `export const a`,
 * `export function a`, `const a; export { a as b }`, `export default a`.
 */
export function ownExportNames(file: SourceFile): Array<[Node, string[]]> {
  const byLocal = new Map<string, Node>();
  const names = new Map<Node, string[]>();
  const add = (node: Node, name: string) => names.set(node, [...(names.get(node) ?? []), name]);
  for (const statement of file.getVariableStatements()) {
    for (const declaration of statement.getDeclarations()) {
      byLocal.set(declaration.getName(), declaration);
      if (statement.isExported()) add(declaration, declaration.getName());
    }
  }
  for (const declaration of [...file.getFunctions(), ...file.getClasses()]) {
    const name = declaration.getName();
    if (name === undefined) continue;
    byLocal.set(name, declaration);
    if (declaration.isExported()) add(declaration, declaration.isDefaultExport() ? 'default' : name);
  }
  for (const declaration of file.getExportDeclarations()) {
    if (declaration.getModuleSpecifierValue() !== undefined) continue;
    for (const named of declaration.getNamedExports()) {
      const local = byLocal.get(named.getName());
      if (local) add(local, named.getAliasNode()?.getText() ?? named.getName());
    }
  }
  for (const assignment of file.getExportAssignments()) {
    const expression = assignment.getExpression();
    const local = Node.isIdentifier(expression) ? byLocal.get(expression.getText()) : undefined;
    if (local && !assignment.isExportEquals()) add(local, 'default');
  }
  return [...names];
}

/** The TypeScript file a relative specifier names (`./a.js` → `a.ts`, `./dir` → `dir/index.ts`). */
function resolveFile(base: string): string | undefined {
  const candidates = [
    base.replace(/\.js$/, '.ts'),
    base.replace(/\.mjs$/, '.mts'),
    base.replace(/\.cjs$/, '.cts'),
    base,
    `${base}.ts`,
    `${base}.mts`,
    path.join(base, 'index.ts'),
  ];
  return candidates.find((candidate) => existsSync(candidate) && statSync(candidate).isFile());
}
