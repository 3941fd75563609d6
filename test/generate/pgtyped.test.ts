import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { GENERATED_HEADER, generateQueryModules, QueryCheckError, type QueryModule } from '../../packages/cli/src/generate/pgtyped.js';

const serverUrl = inject('absurdTestServerUrl');
const here = path.dirname(fileURLToPath(import.meta.url));
const fixtures = path.join(here, 'fixtures');
const repoRoot = path.resolve(here, '../..');
const scratch: string[] = [];

afterAll(async () => {
  await Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A temporary project folder holding the given files. */
async function project(files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), 'absurd-pgtyped-test-'));
  scratch.push(root);
  for (const [name, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(root, name)), { recursive: true });
    await writeFile(path.join(root, name), text);
  }
  return root;
}

async function checkDatabases(): Promise<string[]> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ datname: string }>(
      // Only this process's: other test files check queries on the same server at the same time.
      `select datname from pg_database where datname like 'absurd\\_codegen\\_${process.pid}\\_%' order by 1`,
    );
    return rows.map((row) => row.datname);
  } finally {
    await client.end();
  }
}

async function failure(promise: Promise<unknown>): Promise<QueryCheckError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(QueryCheckError);
  return error as QueryCheckError;
}

describe('generateQueryModules', () => {
  it('generates the expected module for a good query folder', async () => {
    const modules = await generateQueryModules({
      databaseUrl: serverUrl,
      queryDirs: ['queries-a'],
      cwd: fixtures,
      outDir: 'out',
    });
    expect(modules.map((m) => m.path)).toEqual(['out/clock.queries.ts']);
    const golden = await readFile(path.join(fixtures, 'golden/clock.queries.ts'), 'utf8');
    // The golden file is type-checked with the rest of the repository (tsconfig includes test/).
    expect(modules[0]?.contents).toBe(golden);
    expect(modules[0]?.contents.startsWith(`${GENERATED_HEADER}\n`)).toBe(true);
  });

  it('types parameters and results from the engine schema', async () => {
    const [module] = await generateQueryModules({ databaseUrl: serverUrl, queryDirs: ['queries-b'], cwd: fixtures });
    expect(module?.path).toBe('queries-b/nested/results.queries.ts');
    expect(module?.contents).toContain('export interface ITaskStateParams {\n  queueName: string;\n  taskId: string;\n}');
    expect(module?.contents).toContain('export interface ITaskStateResult {\n  result: Json | null;\n  state: string | null;\n}');
    expect(module?.contents).toContain('export const taskState = new PreparedQuery<ITaskStateParams,ITaskStateResult>');
  });

  it('takes several query folders, sorted by output path, each module next to its .sql file by default', async () => {
    const modules = await generateQueryModules({
      databaseUrl: serverUrl,
      queryDirs: ['queries-b', 'queries-a'],
      cwd: fixtures,
    });
    expect(modules.map((m) => m.path)).toEqual(['queries-a/clock.queries.ts', 'queries-b/nested/results.queries.ts']);
    expect(modules[0]?.contents).toContain('// Typed queries of queries-a/clock.sql,');
    expect(modules[1]?.contents).toContain('// Typed queries of queries-b/nested/results.sql,');
  });

  it('puts the modules of several folders into outDir, keeping sub-folders', async () => {
    const modules = await generateQueryModules({
      databaseUrl: serverUrl,
      queryDirs: ['queries-a', 'queries-b'],
      cwd: fixtures,
      outDir: 'gen',
    });
    expect(modules.map((m) => m.path)).toEqual(['gen/clock.queries.ts', 'gen/nested/results.queries.ts']);
  });

  it('refuses two folders whose files would generate the same module', async () => {
    const root = await project({
      'one/same.sql': '/* @name A */\nselect 1 as a;\n',
      'two/same.sql': '/* @name B */\nselect 2 as b;\n',
    });
    await expect(
      generateQueryModules({ databaseUrl: serverUrl, queryDirs: ['one', 'two'], cwd: root, outDir: 'gen' }),
    ).rejects.toThrow('one/same.sql and two/same.sql would both generate gen/same.queries.ts');
  });

  it('throws naming file, line, query and the Postgres message for a wrong column and a wrong function', async () => {
    const root = await project({
      'sql/good.sql': '/* @name Fine */\nselect absurd.current_time() as now;\n',
      'sql/bad.sql': [
        '/* @name ListNames */',
        'select queue_nam from absurd.list_queues();',
        '',
        '/* @name Spawn */',
        'select task_id',
        '  from absurd.spawn_tasks(:queueName!, :taskName!, null, null);',
        '',
      ].join('\n'),
    });
    const error = await failure(generateQueryModules({ databaseUrl: serverUrl, queryDirs: ['sql'], cwd: root }));
    expect(error.problems).toEqual([
      expect.objectContaining({ file: 'sql/bad.sql', line: 2, query: 'ListNames', message: expect.stringContaining('column "queue_nam" does not exist') }),
      expect.objectContaining({ file: 'sql/bad.sql', line: 6, query: 'Spawn', message: expect.stringContaining('function absurd.spawn_tasks(') }),
    ]);
    expect(error.message).toContain('sql/bad.sql:2: query "ListNames": column "queue_nam" does not exist');
    expect(error.message).toContain('sql/bad.sql:6: query "Spawn": function absurd.spawn_tasks(');
    expect(error.message).not.toContain('good.sql');
  });

  it('throws on a file pgtyped cannot parse, an unused parameter, an unnamed column and a file without queries', async () => {
    const root = await project({
      'q/broken.sql': 'select 1;\n',
      'q/unused.sql': '/*\n  @name Unused\n  @param ids -> (...)\n*/\nselect 1 as one;\n',
      'q/anonymous.sql': '/* @name Anonymous */\nselect 1 + 1;\n',
      'q/empty.sql': '\n',
    });
    const error = await failure(generateQueryModules({ databaseUrl: serverUrl, queryDirs: ['q'], cwd: root }));
    const byFile = Object.fromEntries(error.problems.map((p) => [p.file, p]));
    expect(Object.keys(byFile).sort()).toEqual(['q/anonymous.sql', 'q/broken.sql', 'q/empty.sql', 'q/unused.sql']);
    expect(byFile['q/broken.sql']?.message).toContain('Parse error');
    expect(byFile['q/unused.sql']?.message).toContain('"ids" is defined but never used');
    expect(byFile['q/anonymous.sql']).toMatchObject({ query: 'Anonymous', message: expect.stringContaining('no name') });
    expect(byFile['q/empty.sql']?.message).toContain('no queries');
  });

  it('throws for a query folder that does not exist', async () => {
    await expect(
      generateQueryModules({ databaseUrl: serverUrl, queryDirs: ['no-such-dir'], cwd: fixtures }),
    ).rejects.toThrow('query folder no-such-dir does not exist');
  });

  it('checks against a temporary database on the given server and drops it afterwards', async () => {
    const before = await checkDatabases();
    await generateQueryModules({ databaseUrl: serverUrl, queryDirs: ['queries-a'], cwd: fixtures });
    const root = await project({ 'q/bad.sql': '/* @name Bad */\nselect nope from absurd.list_queues();\n' });
    await failure(generateQueryModules({ databaseUrl: serverUrl, queryDirs: ['q'], cwd: root }));
    expect(await checkDatabases()).toEqual(before);
  });

  it('is deterministic: two runs give identical bytes, on a throwaway server as on the given one', async () => {
    const options = { queryDirs: ['queries-a', 'queries-b'], cwd: fixtures, outDir: 'out' };
    const embedded = await generateQueryModules(options);
    const first = await generateQueryModules({ ...options, databaseUrl: serverUrl });
    const second = await generateQueryModules({ ...options, databaseUrl: serverUrl });
    expect(second).toEqual(first);
    expect(embedded).toEqual(first);
    for (const module of first) {
      expect(module.contents).not.toContain(fixtures);
      expect(module.contents).not.toMatch(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/);
    }
  }, 120_000);

  it('the committed query modules of both packages (packages/*/src/queries) are current', async () => {
    const modules: QueryModule[] = await generateQueryModules({
      databaseUrl: serverUrl,
      queryDirs: ['packages/absurd-kit/src/queries', 'packages/cli/src/queries'],
      cwd: repoRoot,
      runtimeModule: 'absurd-kit/query-runtime',
    });
    expect(modules.length).toBeGreaterThan(0);
    for (const module of modules) {
      expect(await readFile(path.join(repoRoot, module.path), 'utf8'), `${module.path} is stale: npm run generate`).toBe(
        module.contents,
      );
    }
  });
});

describe('the light query runtime', () => {
  it('sends the statement with $n in first-use order and strips column hints', async () => {
    const { PreparedQuery } = await import('../../packages/absurd-kit/src/query-runtime.js');
    const ir = {
      usedParamSet: { a: true, b: true },
      params: [
        { name: 'a', transform: { type: 'scalar' }, locs: [{ a: 7, b: 8 }, { a: 23, b: 24 }] },
        { name: 'b', transform: { type: 'scalar' }, locs: [{ a: 19, b: 20 }] },
        { name: 'unused', transform: { type: 'scalar' }, locs: [] },
      ],
      statement: 'select :a as "x!", :b, :a',
    };
    const sent: { text: string; values: unknown[] }[] = [];
    const query = new PreparedQuery<{ a: number; b: string }, { x: number }>(ir);
    const rows = await query.run({ a: 1, b: 'two' }, {
      query: async (text: string, values: unknown[]) => {
        sent.push({ text, values });
        return { rows: [{ x: 1 }] };
      },
    });
    // The hint is dropped from the alias once, in the text, so the server already names the column `x`.
    expect(sent).toEqual([{ text: 'select $1 as "x", $2, $1', values: [1, 'two'] }]);
    expect(rows).toEqual([{ x: 1 }]);
  });

  it('drops hints only from aliases, never from literals, comments, dollar quotes or plain identifiers', async () => {
    const { withoutAliasHints } = await import('../../packages/absurd-kit/src/query-runtime.js');
    expect(withoutAliasHints('select a as "a!", b AS  "b?", c as "c" from t')).toBe('select a as "a", b AS  "b", c as "c" from t');
    expect(withoutAliasHints(`select 'as "x!"' as "y!", 'it''s as "z?"' as w`)).toBe(`select 'as "x!"' as "y", 'it''s as "z?"' as w`);
    expect(withoutAliasHints('select 1 -- as "x!"\n as "n!"')).toBe('select 1 -- as "x!"\n as "n"');
    expect(withoutAliasHints('select /* as "x!" */ 1 as "n?"')).toBe('select /* as "x!" */ 1 as "n"');
    expect(withoutAliasHints('select $q$ as "x!" $q$ as "s!", $$ as "y?" $$ as t')).toBe('select $q$ as "x!" $q$ as "s", $$ as "y?" $$ as t');
    expect(withoutAliasHints('select "odd?" from "t!" as "a""b!"')).toBe('select "odd?" from "t!" as "a""b"');
  });

  it('refuses array spreads and picks, which only @pgtyped/runtime supports', async () => {
    const { PreparedQuery } = await import('../../packages/absurd-kit/src/query-runtime.js');
    const ir = {
      usedParamSet: { ids: true },
      params: [{ name: 'ids', transform: { type: 'array_spread' }, locs: [{ a: 0, b: 3 }] }],
      statement: ':ids',
    };
    expect(() => new PreparedQuery(ir)).toThrow('uses a array_spread transform');
  });
});
