import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * The runtime holds no SQL text: every statement it sends is a pgtyped query of
 * `packages/absurd-kit/src/queries/*.sql`, generated into the `*.queries.ts` beside it. Exempt:
 * those generated modules and `src/engine/` (the bundled migrations and the install script).
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../packages/absurd-kit');
const EXEMPT = [/^src\/queries\/[^/]+\.queries\.ts$/, /^src\/engine\//];

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
  /^\s*(begin|commit|rollback|abort|savepoint|start\s+transaction)\b\s*;?\s*$/i,
  /^\s*(set|reset|show)\s+(local\s+|session\s+)?[a-z_][\w.]*\s*(=|\bto\b|;|$)/i,
  /^\s*do\s+\$/i,
  /^\s*call\s+[\w."]+\s*\(/i,
  /^\s*explain\s+(analyze\s+)?(select|insert|update|delete|with)\b/i,
  /\bpg_(notify|advisory\w*|sleep|terminate_backend)\s*\(/i,
  /\babsurd\.\w+\s*\(/i,
];

interface Finding {
  file: string;
  line: number;
  text: string;
}

/** Every string literal or template of a TypeScript source whose text looks like SQL. */
function findSqlInSource(file: string, source: string): Finding[] {
  const sourceFile = ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true);
  const findings: Finding[] = [];
  const visit = (node: ts.Node) => {
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

async function sourceFiles(): Promise<string[]> {
  const entries = await readdir(path.join(root, 'src'), { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'))
    .filter((file) => !EXEMPT.some((pattern) => pattern.test(file)))
    .sort();
}

describe('no SQL text in src/', () => {
  it('finds none outside the generated query modules and src/engine/', async () => {
    const files = await sourceFiles();
    expect(files).toContain('src/client.ts');
    expect(files).not.toContain('src/queries/tasks.queries.ts');
    const findings: Finding[] = [];
    for (const file of files) findings.push(...findSqlInSource(file, await readFile(path.join(root, file), 'utf8')));
    const report = findings.map((f) => `${f.file}:${f.line}: ${f.text}`).join('\n');
    expect(report, 'move these statements to src/queries/*.sql and run npm run generate').toBe('');
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
    ].join('\n');
    expect(findSqlInSource('x.ts', source).map((f) => f.line)).toEqual([1, 2, 4, 5, 6, 7, 8, 15, 16, 17]);
  });
});
