import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const packages = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../packages');

/** A package whose sources must hold no SQL text, and the files that may. */
interface Checked {
  readonly name: string;
  readonly root: string;
  /** Paths relative to the package root that are allowed to hold SQL. */
  readonly exempt: readonly RegExp[];
  /** A file that must be among those checked (so that a wrong root cannot pass by finding nothing). */
  readonly sample: string;
}

/**
 * Neither the runtime nor the CLI holds SQL text: every statement they send is a pgtyped query of
 * their `src/queries/*.sql`, generated into the `*.queries.ts` beside it (statements that need a
 * dynamic identifier are built there too, by `format('%I', …)`). Exempt: those generated modules
 * and the runtime's `src/engine/` (the bundled migrations and the install script).
 */
const CHECKED: readonly Checked[] = [
  {
    name: 'absurd-kit',
    root: path.join(packages, 'absurd-kit'),
    exempt: [/^src\/queries\/[^/]+\.queries\.ts$/, /^src\/engine\//],
    sample: 'src/client.ts',
  },
  {
    name: '@absurd-kit/cli',
    root: path.join(packages, 'cli'),
    exempt: [/^src\/queries\/[^/]+\.queries\.ts$/],
    sample: 'src/commands/tasks.ts',
  },
];

/** What SQL looks like in a string: statement shapes, not lone words that prose uses too. */
const SQL_PATTERNS: readonly RegExp[] = [
  /^\s*select\s+(\d|\*|\$\d|'|")/i,
  /^\s*select\s[\s\S]*(\bfrom\b|\bas\b|\(|,)/i,
  /\bselect\b[\s\S]*\bfrom\b/i,
  /^\s*with\s+(recursive\s+)?\w+\s+as\s*\(/i,
  /\binsert\s+into\b/i,
  /\bdelete\s+from\b/i,
  /\bupdate\s+\S+\s+set\b/i,
  /\b(create|drop|alter)\s+(or\s+replace\s+|temp\s+|temporary\s+|unlogged\s+)?(table|database|schema|index|function|procedure|extension|role|type|view|trigger|sequence)\b/i,
  /^\s*truncate\s+(table\s+)?[\w."]+\s*;?\s*$/i,
  /^\s*(un)?listen\s+("|\*|[a-z_]\w*\s*;?\s*$)/i,
  /^\s*notify\s+("|[a-z_]\w*\s*(,|;|$))/i,
  /^\s*(begin|commit|rollback|savepoint|start\s+transaction)\b\s*;?\s*$/i,
  // `abort` alone is also the event of an AbortSignal.
  /^\s*abort\s*(;|\s+(transaction|work)\b)/i,
  /^\s*(set|reset|show)\s+(local\s+|session\s+)?[a-z_][\w.]*\s*(=|\bto\b|;|$)/i,
  /^\s*do\s+\$/i,
  /^\s*call\s+[\w."]+\s*\(/i,
  /^\s*explain\s+(analyze\s+)?(select|insert|update|delete|with)\b/i,
  /\bpg_(notify|advisory\w*|sleep|terminate_backend)\s*\(/i,
  /\babsurd\.\w+\s*\(/i,
];

/**
 * Properties whose strings are help text for people (`summary` and `description` of the CLI's
 * command and flag tables): prose that may name an engine function or a statement it prints.
 */
const PROSE_PROPERTIES = new Set(['summary', 'description']);

interface Finding {
  file: string;
  line: number;
  text: string;
}

/** Every string literal or template of a TypeScript source whose text looks like SQL (help text aside). */
function findSqlInSource(file: string, source: string): Finding[] {
  const sourceFile = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true);
  const findings: Finding[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isPropertyAssignment(node) && ts.isIdentifier(node.name) && PROSE_PROPERTIES.has(node.name.text)) return;
    let text: string | undefined;
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) text = node.text;
    else if (ts.isTemplateExpression(node)) {
      text = node.head.text + node.templateSpans.map((span) => `\${…}${span.literal.text}`).join('');
    }
    if (text !== undefined && SQL_PATTERNS.some((pattern) => pattern.test(text))) {
      const { line } = sourceFile.getLineAndCharacterOfPosition(node.getStart(sourceFile));
      findings.push({ file, line: line + 1, text: text.replace(/\s+/g, ' ').slice(0, 80) });
    }
    // A template's own parts are checked above as one text; its substitutions may hold strings too.
    if (ts.isTemplateExpression(node)) node.templateSpans.forEach((span) => visit(span.expression));
    else ts.forEachChild(node, visit);
  };
  visit(sourceFile);
  return findings;
}

async function sourceFiles(checked: Checked): Promise<string[]> {
  const entries = await readdir(path.join(checked.root, 'src'), { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => path.relative(checked.root, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
    .filter((file) => !checked.exempt.some((pattern) => pattern.test(file)))
    .sort();
}

describe('no SQL text in the packages\' src/', () => {
  it.each(CHECKED.map((checked) => [checked.name, checked]))('%s: none outside the generated query modules', async (_name, checked) => {
    const files = await sourceFiles(checked);
    expect(files).toContain(checked.sample);
    expect(files.filter((file) => file.endsWith('.queries.ts'))).toEqual([]);
    const findings: Finding[] = [];
    for (const file of files) findings.push(...findSqlInSource(file, await readFile(path.join(checked.root, file), 'utf8')));
    const report = findings.map((f) => `${f.file}:${f.line}: ${f.text}`).join('\n');
    expect(report, `move these statements to packages/${path.basename(checked.root)}/src/queries/*.sql and run npm run generate`).toBe('');
  });

  it('catches statements in strings and templates, and ignores comments and prose', () => {
    const source = [
      "const a = 'select 1';",
      'const b = `insert into t (x) values ($1)`;',
      '// select x from t (a comment)',
      'const c = `listen "${channel}"`;',
      "const d = 'begin';",
      "const e = \"set absurd.fake_now = '2024-01-01'\";",
      'const f = `update ${table} set x = 1`;',
      'const g = client.query("SELECT absurd.spawn_task($1, $2, $3, $4)");',
      "const h = 'Select a queue to drop';",
      "const i = 'task failed; retry it with `absurd retry`';",
      'const j = `the run of ${task} was cancelled`;',
      "/** await client.query('select 1') */",
      "const k = 'commit the transaction first';",
      "const l = 'LISTEN connection ended';",
      'const m = `drop table if exists ${name}`;',
      'const n = `with ns as (select oid from pg_namespace) select 1`;',
      'const o = `${`select * from ${t}`}`;',
      "const p = { summary: 'Show help', description: 'Prints what absurd.get_schema_version() returns' };",
      "signal.addEventListener('abort', stop);",
      "const q = { text: 'delete from t where id = $1' };",
      "const r = 'abort;';",
    ].join('\n');
    expect(findSqlInSource('x.ts', source).map((f) => f.line)).toEqual([1, 2, 4, 5, 6, 7, 8, 15, 16, 17, 20, 21]);
  });
});
