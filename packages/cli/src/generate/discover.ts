/**
 * Introspection: finds every contract (`defineTask` / `defineEvent` call) and schedule
 * (`defineSchedule`) in the workflows folder
 * with ts-morph, reads its name, queue and version from the literal arguments, and refuses what
 * the generated client could not rely on (dynamic names, unexported or duplicate contracts,
 * contract files importing runtime code).
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import {
  Node,
  Project,
  SyntaxKind,
  ts,
  VariableDeclarationKind,
  type CallExpression,
  type SourceFile,
  type VariableDeclaration,
} from 'ts-morph';
import { isAllowedImport, type ImportRules } from './import-rules.js';
import { ModuleGraph, ownExportNames, type ExportTarget } from './module-graph.js';
import { GenerateError, type GenerateProblem } from './problems.js';

/** A contract (or a schedule) as written in the source. */
export interface DiscoveredContract {
  readonly kind: 'task' | 'event' | 'schedule';
  /** The task, event or schedule name (the literal `name`). */
  readonly name: string;
  /** The literal `queue` of a task; undefined when not given (the default queue). */
  readonly queue: string | undefined;
  /** The literal `version`, when given. */
  readonly version: number | undefined;
  /** The name it is exported under. */
  readonly exportName: string;
  /** Declaring file relative to the project root, with `/` separators. */
  readonly file: string;
  /** Declaring file relative to the workflows folder, with `/` separators. */
  readonly module: string;
  /** Line of the `defineTask` / `defineEvent` call. */
  readonly line: number;
}

/** Options of {@link discoverContracts}. */
export interface DiscoverOptions {
  /** Absolute project root. */
  readonly root: string;
  /** Absolute workflows folder. */
  readonly workflowsDir: string;
  /** Extra allowed imports (`allowImports` of the configuration). */
  readonly allowImports: readonly string[];
}

const CONTRACT_FUNCTIONS = { defineTask: 'task', defineEvent: 'event', defineSchedule: 'schedule' } as const;
type ContractFunction = keyof typeof CONTRACT_FUNCTIONS;

/** The order of kinds in the result: tasks, events, schedules. */
const KIND_ORDER: Readonly<Record<DiscoveredContract['kind'], number>> = { task: 0, event: 1, schedule: 2 };

/**
 * Finds the contracts under `workflowsDir`, sorted by kind and name. Throws a
 * {@link GenerateError} listing every problem with its file and line.
 *
 * @example
 * const contracts = discoverContracts({ root, workflowsDir: `${root}/workflows`, allowImports: [] });
 */
export function discoverContracts(options: DiscoverOptions): DiscoveredContract[] {
  const { root, workflowsDir } = options;
  if (!existsSync(workflowsDir)) {
    throw new GenerateError([{ file: relativePath(root, workflowsDir), message: 'workflows folder not found (set workflowsDir in absurd.config.ts)' }]);
  }
  // Parsing only: names are resolved by ModuleGraph, not by a type checker (see module-graph.ts).
  const project = new Project({ skipLoadingLibFiles: true, skipFileDependencyResolution: true, compilerOptions: { noResolve: true } });
  const files = new Map<string, SourceFile>();
  for (const file of listSourceFiles(workflowsDir)) files.set(file, project.addSourceFileAtPath(file));
  const graph = new ModuleGraph(files);

  const rules: ImportRules = { root, workflowsDir, allow: options.allowImports };
  const problems: GenerateProblem[] = [];
  const found: DiscoveredContract[] = [];
  for (const sourceFile of files.values()) {
    const file = relativePath(root, sourceFile.getFilePath());
    const module = relativePath(workflowsDir, sourceFile.getFilePath());
    const syntax = syntaxError(sourceFile);
    if (syntax) {
      problems.push({ file, ...syntax });
      continue;
    }
    checkImports(sourceFile, file, graph, rules, problems);
    const exportNames = new Map(ownExportNames(sourceFile));
    for (const call of sourceFile.getDescendantsOfKind(SyntaxKind.CallExpression)) {
      const fn = contractFunction(call, graph);
      if (!fn) continue;
      const line = call.getStartLineNumber();
      const at = (message: string) => problems.push({ file, line, message });
      const literal = readLiteralOptions(call, fn, at);
      const declaration = call.getParentIfKind(SyntaxKind.VariableDeclaration);
      if (!declaration || declaration.getInitializer() !== call || !Node.isIdentifier(declaration.getNameNode())) {
        at(`${fn}(…) must be assigned to an exported const: \`export const myContract = ${fn}({ … })\``);
        continue;
      }
      const names = exportNames.get(declaration) ?? [];
      const local = declaration.getName();
      const named = names.filter((n) => n !== 'default');
      if (named.length === 0) {
        at(
          names.includes('default')
            ? `${fn}(…) result "${local}" is only a default export; export it by name (\`export const ${local} = …\`)`
            : `${fn}(…) result "${local}" is not exported; add \`export\` so that clients can import it`,
        );
        continue;
      }
      if (!literal) continue;
      found.push({
        kind: CONTRACT_FUNCTIONS[fn],
        name: literal.name,
        queue: literal.queue,
        version: literal.version,
        exportName: named.includes(local) ? local : [...named].sort()[0]!,
        file,
        module,
        line,
      });
    }
  }
  problems.push(...duplicates(found));
  if (problems.length > 0) throw new GenerateError(problems);
  return found.sort((a, b) => KIND_ORDER[a.kind] - KIND_ORDER[b.kind] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The first syntax error of a file, if any (its contracts cannot be read reliably). */
function syntaxError(sourceFile: SourceFile): { line: number; message: string } | undefined {
  const diagnostics = (sourceFile.compilerNode as { parseDiagnostics?: readonly ts.DiagnosticWithLocation[] }).parseDiagnostics ?? [];
  const first = diagnostics[0];
  if (!first) return undefined;
  const line = sourceFile.compilerNode.getLineAndCharacterOfPosition(first.start).line + 1;
  return { line, message: `syntax error: ${ts.flattenDiagnosticMessageText(first.messageText, ' ')}` };
}

/** The `.ts` / `.mts` / `.cts` files under `dir`, recursively, without declaration files and node_modules. */
function listSourceFiles(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules' && !entry.name.startsWith('.')) files.push(...listSourceFiles(full));
    } else if (/\.[mc]?ts$/.test(entry.name) && !/\.d\.[mc]?ts$/.test(entry.name)) {
      files.push(full);
    }
  }
  return files;
}

/**
 * Which of `defineTask` / `defineEvent` / `defineSchedule` of absurd-kit `call` calls, however it
 * was imported, and through local aliases (`const dt = defineTask`, `const { defineTask: dt } = kit`).
 */
function contractFunction(call: CallExpression, graph: ModuleGraph): ContractFunction | undefined {
  const target = resolveFunction(call.getExpression(), graph, 0);
  if (target?.module.kind !== 'absurd-kit') return undefined;
  return Object.hasOwn(CONTRACT_FUNCTIONS, target.name) ? (target.name as ContractFunction) : undefined;
}

/** Local aliases followed at most (a chain longer than this is not a contract function). */
const MAX_ALIAS_DEPTH = 8;

/** The imported binding an expression stands for: an import, `namespace.member`, or a local const aliasing either. */
function resolveFunction(expression: Node, graph: ModuleGraph, depth: number): ExportTarget | undefined {
  if (depth > MAX_ALIAS_DEPTH) return undefined;
  const file = expression.getSourceFile();
  if (Node.isIdentifier(expression)) {
    const imported = graph.follow(graph.importBinding(file, expression.getText()));
    // An alias exported by another contract file: read that file's declaration.
    const declaringFile = imported ? graph.sourceFile(imported.module) : file;
    if (imported && !declaringFile) return imported;
    const name = imported ? imported.name : expression.getText();
    const declaration = declaringFile && localConst(declaringFile, name);
    if (!declaration) return undefined;
    const nameNode = declaration.getNameNode();
    const initializer = declaration.getInitializer();
    if (!initializer) return undefined;
    if (Node.isIdentifier(nameNode)) return resolveFunction(initializer, graph, depth + 1);
    // `const { defineTask: dt } = kit`: the member of whatever `kit` stands for.
    if (Node.isObjectBindingPattern(nameNode)) {
      const element = nameNode.getElements().find((e) => e.getName() === name);
      if (!element || element.getDotDotDotToken()) return undefined;
      const member = element.getPropertyNameNode()?.getText() ?? element.getName();
      return memberOf(resolveFunction(initializer, graph, depth + 1), member, graph);
    }
    return undefined;
  }
  if (Node.isPropertyAccessExpression(expression)) {
    return memberOf(resolveFunction(expression.getExpression(), graph, depth + 1), expression.getName(), graph);
  }
  return undefined;
}

/** `member` of a namespace import; undefined for anything else. */
function memberOf(namespace: ExportTarget | undefined, member: string, graph: ModuleGraph): ExportTarget | undefined {
  return namespace?.name === '*' ? graph.follow({ module: namespace.module, name: member }) : undefined;
}

/** The top-level `const` declaration of `name` in `file` (not `let`/`var`: those may change). */
function localConst(file: SourceFile, name: string): VariableDeclaration | undefined {
  for (const statement of file.getVariableStatements()) {
    if (statement.getDeclarationKind() !== VariableDeclarationKind.Const) continue;
    for (const declaration of statement.getDeclarations()) {
      const nameNode = declaration.getNameNode();
      if (Node.isIdentifier(nameNode) ? nameNode.getText() === name : Node.isObjectBindingPattern(nameNode) && nameNode.getElements().some((e) => e.getName() === name)) {
        return declaration;
      }
    }
  }
  return undefined;
}

interface LiteralOptions {
  name: string;
  queue: string | undefined;
  version: number | undefined;
}

/** Reads `name`, `queue` and `version` from the literal options; reports what is not literal. */
function readLiteralOptions(call: CallExpression, fn: ContractFunction, at: (message: string) => void): LiteralOptions | undefined {
  const options = call.getArguments()[0];
  if (!options || !Node.isObjectLiteralExpression(options)) {
    const reads = fn === 'defineTask' ? 'name, queue and version' : fn === 'defineEvent' ? 'name and version' : 'name';
    at(`${fn}(…) options must be an object literal (the generator reads ${reads} from the source)`);
    return undefined;
  }
  let ok = true;
  const values = new Map<string, Node>();
  for (const property of options.getProperties()) {
    if (Node.isPropertyAssignment(property) || Node.isShorthandPropertyAssignment(property)) {
      values.set(property.getName(), property);
    } else {
      at(`${fn}(…) options must list their keys literally; found \`${truncate(property.getText())}\``);
      ok = false;
    }
  }
  const stringOf = (key: string, required: boolean): string | undefined => {
    const property = values.get(key);
    if (!property) {
      if (required) {
        at(`${fn}(…) has no "${key}"`);
        ok = false;
      }
      return undefined;
    }
    const initializer = Node.isPropertyAssignment(property) ? property.getInitializer() : undefined;
    if (initializer && (Node.isStringLiteral(initializer) || Node.isNoSubstitutionTemplateLiteral(initializer))) {
      return initializer.getLiteralValue();
    }
    at(`${fn}(…) ${key} must be a string literal, found \`${truncate(property.getText())}\``);
    ok = false;
    return undefined;
  };
  const name = stringOf('name', true);
  const queue = fn === 'defineTask' ? stringOf('queue', false) : undefined;
  let version: number | undefined;
  const versionProperty = fn === 'defineSchedule' ? undefined : values.get('version');
  if (versionProperty) {
    const initializer = Node.isPropertyAssignment(versionProperty) ? versionProperty.getInitializer() : undefined;
    if (initializer && Node.isNumericLiteral(initializer)) {
      version = initializer.getLiteralValue();
    } else {
      at(`${fn}(…) version must be a number literal, found \`${truncate(versionProperty.getText())}\``);
      ok = false;
    }
  }
  return ok && name !== undefined ? { name, queue, version } : undefined;
}

/** Reports imports of anything but schemas, absurd-kit and other contract files. */
function checkImports(sourceFile: SourceFile, file: string, graph: ModuleGraph, rules: ImportRules, problems: GenerateProblem[]): void {
  const importer = sourceFile.getFilePath();
  const check = (node: Node, specifier: string) => {
    const target = graph.resolve(specifier, importer);
    // absurd-kit by name or by a path into its package (this repository's own contracts import ../src).
    if (target.kind === 'absurd-kit') return;
    if (isAllowedImport({ specifier, importer, resolvedFile: target.file }, rules)) return;
    problems.push({
      file,
      line: node.getStartLineNumber(),
      message:
        `imports "${specifier}": contract files may import only zod, absurd-kit and files under ` +
        `${relativePath(rules.root, rules.workflowsDir)}/, so that any service can import them without handler or ` +
        `runtime code — move the code, use \`import type\`, or add the module to allowImports in absurd.config.ts`,
    });
  };
  for (const declaration of sourceFile.getImportDeclarations()) {
    if (declaration.isTypeOnly()) continue;
    const named = declaration.getNamedImports();
    const onlyTypes =
      named.length > 0 && named.every((n) => n.isTypeOnly()) && !declaration.getDefaultImport() && !declaration.getNamespaceImport();
    if (onlyTypes) continue;
    check(declaration, declaration.getModuleSpecifierValue());
  }
  for (const declaration of sourceFile.getExportDeclarations()) {
    const specifier = declaration.getModuleSpecifierValue();
    if (specifier === undefined || declaration.isTypeOnly()) continue;
    check(declaration, specifier);
  }
  for (const call of sourceFile.getDescendantsOfKind(SyntaxKind.CallExpression)) {
    const callee = call.getExpression();
    const isImport = callee.getKind() === SyntaxKind.ImportKeyword;
    const isRequire = Node.isIdentifier(callee) && callee.getText() === 'require';
    if (!isImport && !isRequire) continue;
    const argument = call.getArguments()[0];
    if (argument && (Node.isStringLiteral(argument) || Node.isNoSubstitutionTemplateLiteral(argument))) {
      check(call, argument.getLiteralValue());
    } else {
      problems.push({ file, line: call.getStartLineNumber(), message: 'imports a module whose name is not a string literal; contract files must import statically' });
    }
  }
}

/** Two contracts with one task or event name, or one export name (the generated client's keys). */
function duplicates(found: readonly DiscoveredContract[]): GenerateProblem[] {
  const problems: GenerateProblem[] = [];
  const report = (key: (c: DiscoveredContract) => string, what: (c: DiscoveredContract) => string) => {
    const seen = new Map<string, DiscoveredContract>();
    for (const contract of [...found].sort((a, b) => (a.file === b.file ? a.line - b.line : a.file < b.file ? -1 : 1))) {
      const first = seen.get(key(contract));
      if (!first) {
        seen.set(key(contract), contract);
        continue;
      }
      problems.push({
        file: contract.file,
        line: contract.line,
        message: `${what(contract)} is already declared at ${first.file}:${first.line}; names must be unique`,
      });
    }
  };
  report((c) => `${c.kind}:${c.name}`, (c) => `${c.kind} "${c.name}"`);
  report((c) => c.exportName, (c) => `a contract exported as "${c.exportName}"`);
  return problems;
}

function truncate(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ');
  return oneLine.length > 60 ? `${oneLine.slice(0, 57)}…` : oneLine;
}

/** `to` relative to `from`, with `/` separators. */
export function relativePath(from: string, to: string): string {
  return path.relative(from, to).split(path.sep).join('/');
}
