import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { discoverContracts } from '../../packages/cli/src/generate/discover.js';
import { GenerateError, type GenerateProblem } from '../../packages/cli/src/generate/problems.js';
import { generate } from '../../packages/cli/src/generate/pipeline.js';
import { cli, fixturesDir, useTempProjects } from './generate-helpers.js';

const projects = useTempProjects();

/** The problems discovery reports for a project with these files. */
function problemsOf(files: Record<string, string>, allowImports: string[] = []): GenerateProblem[] {
  const root = projects.create(files);
  try {
    discoverContracts({ root, workflowsDir: path.join(root, 'workflows'), allowImports });
  } catch (error) {
    expect(error).toBeInstanceOf(GenerateError);
    return [...(error as GenerateError).problems];
  }
  throw new Error('expected discovery to fail');
}

const header = "import { z } from 'zod';\nimport { defineTask, defineEvent } from 'absurd-kit';\n";
const taskNamed = (name: string, exported = true) =>
  `${exported ? 'export ' : ''}const t_${name.replace(/\W/g, '_')} = defineTask({ name: '${name}', params: z.object({}), result: z.null() });\n`;

describe('discovery', () => {
  it('finds contracts in nested folders, through aliases, re-exports and namespace imports', () => {
    const root = path.join(fixturesDir, 'shop');
    const found = discoverContracts({ root, workflowsDir: path.join(root, 'workflows'), allowImports: [] });
    expect(found.map((c) => [c.kind, c.name, c.queue, c.version, c.exportName, c.file, c.line])).toEqual([
      ['task', 'place-order', 'shop orders', 2, 'placeOrder', 'workflows/orders/tasks.ts', 5],
      ['task', 'refund', undefined, undefined, 'issueRefund', 'workflows/billing.ts', 6],
      ['event', 'payment.settled', undefined, undefined, 'paymentSettled', 'workflows/billing.ts', 14],
      ['schedule', 'refund-probe', undefined, undefined, 'hourlyRefundProbe', 'workflows/billing.ts', 20],
    ]);
  });

  it('finds schedules after tasks and events, and reports an unexported or non-literal one', () => {
    const schedule = (name: string, exported = true) =>
      `${exported ? 'export ' : ''}const s_${name} = defineSchedule({ name: '${name}', task: t_job, cron: '@daily', params: {} });\n`;
    const root = projects.create({
      'workflows/a.ts':
        "import { z } from 'zod';\nimport { defineSchedule, defineTask } from 'absurd-kit';\n" +
        "export const t_job = defineTask({ name: 'job', params: z.object({}), result: z.null() });\n" +
        schedule('b') +
        schedule('a'),
    });
    const found = discoverContracts({ root, workflowsDir: path.join(root, 'workflows'), allowImports: [] });
    expect(found.map((c) => [c.kind, c.name, c.exportName, c.line])).toEqual([
      ['task', 'job', 't_job', 3],
      ['schedule', 'a', 's_a', 5],
      ['schedule', 'b', 's_b', 4],
    ]);
    const problems = problemsOf({
      'workflows/a.ts':
        "import { z } from 'zod';\nimport { defineSchedule, defineTask } from 'absurd-kit';\n" +
        "export const t_job = defineTask({ name: 'job', params: z.object({}), result: z.null() });\n" +
        schedule('hidden', false) +
        "const n = 'x';\nexport const s_dynamic = defineSchedule({ name: n, task: t_job, cron: '@daily', params: {} });\n",
    });
    expect(problems).toEqual([
      { file: 'workflows/a.ts', line: 4, message: 'defineSchedule(…) result "s_hidden" is not exported; add `export` so that clients can import it' },
      { file: 'workflows/a.ts', line: 6, message: 'defineSchedule(…) name must be a string literal, found `name: n`' },
    ]);
  });

  it('follows local aliases of defineTask / defineEvent: a const, a destructured namespace, and an alias another contract file exports', () => {
    const root = projects.create({
      'workflows/kit.ts': "import { defineTask } from 'absurd-kit';\nexport const task = defineTask;\n",
      'workflows/a.ts':
        "import { z } from 'zod';\nimport * as absurd from 'absurd-kit';\nimport { defineEvent } from 'absurd-kit';\nimport { task } from './kit.js';\n" +
        'const dt = absurd.defineTask;\n' +
        'const { defineEvent: de } = absurd;\n' +
        'const again = dt;\n' +
        'const ev = defineEvent;\n' +
        "export const one = dt({ name: 'one', params: z.null(), result: z.null() });\n" +
        "export const two = again({ name: 'two', params: z.null(), result: z.null() });\n" +
        "export const three = task({ name: 'three', params: z.null(), result: z.null() });\n" +
        "export const shipped = de({ name: 'shipped', payload: z.null() });\n" +
        "export const packed = ev({ name: 'packed', payload: z.null() });\n",
    });
    const found = discoverContracts({ root, workflowsDir: path.join(root, 'workflows'), allowImports: [] });
    expect(found.map((c) => [c.kind, c.name, c.exportName, c.line])).toEqual([
      ['task', 'one', 'one', 9],
      ['task', 'three', 'three', 11],
      ['task', 'two', 'two', 10],
      ['event', 'packed', 'packed', 13],
      ['event', 'shipped', 'shipped', 12],
    ]);
  });

  it('does not follow a let alias (it may be reassigned) or a chain that loops', () => {
    const root = projects.create({
      'workflows/a.ts':
        "import { z } from 'zod';\nimport { defineTask } from 'absurd-kit';\n" +
        'let dt = defineTask;\n' +
        "export const one = dt({ name: 'one', params: z.null(), result: z.null() });\n" +
        '// @ts-expect-error a loop\nconst a: typeof defineTask = b;\nconst b = a;\n' +
        "export const two = a({ name: 'two', params: z.null(), result: z.null() });\n",
    });
    expect(discoverContracts({ root, workflowsDir: path.join(root, 'workflows'), allowImports: [] })).toEqual([]);
  });

  it('ignores a function named defineTask that is not absurd-kit\'s', () => {
    const root = projects.create({
      'workflows/a.ts': "function defineTask(o: object) { return o; }\nconst hidden = defineTask({ name: 'x' });\nvoid hidden;\n",
    });
    expect(discoverContracts({ root, workflowsDir: path.join(root, 'workflows'), allowImports: [] })).toEqual([]);
  });

  it('refuses two contracts with the same task name, naming both places', () => {
    const problems = problemsOf({
      'workflows/a.ts': header + taskNamed('same'),
      'workflows/b/c.ts': header + '\n' + taskNamed('same').replace('t_same', 'other'),
    });
    expect(problems).toEqual([
      { file: 'workflows/b/c.ts', line: 4, message: 'task "same" is already declared at workflows/a.ts:3; names must be unique' },
    ]);
  });

  it('refuses two events with the same name', () => {
    const event = (n: string) => `export const ${n} = defineEvent({ name: 'shipped', payload: z.object({}) });\n`;
    const problems = problemsOf({ 'workflows/a.ts': header + event('one') + event('two') });
    expect(problems).toEqual([{ file: 'workflows/a.ts', line: 4, message: 'event "shipped" is already declared at workflows/a.ts:3; names must be unique' }]);
  });

  it('refuses a contract that is not exported', () => {
    const problems = problemsOf({ 'workflows/a.ts': header + taskNamed('hidden', false) });
    expect(problems).toEqual([
      { file: 'workflows/a.ts', line: 3, message: 'defineTask(…) result "t_hidden" is not exported; add `export` so that clients can import it' },
    ]);
  });

  it('refuses a contract that is not assigned to a const', () => {
    const problems = problemsOf({ 'workflows/a.ts': `${header}export default defineEvent({ name: 'e', payload: z.null() });\n` });
    expect(problems).toEqual([
      { file: 'workflows/a.ts', line: 3, message: 'defineEvent(…) must be assigned to an exported const: `export const myContract = defineEvent({ … })`' },
    ]);
  });

  it('refuses contracts built dynamically: computed name, queue or version, options not literal, spreads', () => {
    const problems = problemsOf({
      'workflows/a.ts':
        header +
        "const prefix = 'shop';\n" +
        'export const a = defineTask({ name: `${prefix}-a`, params: z.null(), result: z.null() });\n' +
        "export const b = defineTask({ name: 'b', queue: prefix, params: z.null(), result: z.null() });\n" +
        "const options = { name: 'c', params: z.null(), result: z.null() };\n" +
        'export const c = defineTask(options);\n' +
        "export const d = defineTask({ ...options, name: 'd' });\n" +
        "export const e = defineEvent({ name: 'e', payload: z.null(), version: 1 + 1 });\n",
    });
    expect(problems.map((p) => `${p.file}:${p.line}: ${p.message}`)).toEqual([
      'workflows/a.ts:4: defineTask(…) name must be a string literal, found `name: `${prefix}-a``',
      'workflows/a.ts:5: defineTask(…) queue must be a string literal, found `queue: prefix`',
      'workflows/a.ts:7: defineTask(…) options must be an object literal (the generator reads name, queue and version from the source)',
      'workflows/a.ts:8: defineTask(…) options must list their keys literally; found `...options`',
      'workflows/a.ts:9: defineEvent(…) version must be a number literal, found `version: 1 + 1`',
    ]);
  });

  it('refuses contract files importing runtime code; type-only imports, zod, absurd-kit and contract files pass', () => {
    const problems = problemsOf({
      'handlers.ts': 'export const charge = () => 1;\n',
      'workflows/a.ts':
        header +
        "import { charge } from '../handlers.js';\n" +
        "import pg from 'pg';\n" +
        "import type { Pool } from 'pg';\n" +
        "import { type Client } from 'pg';\n" +
        "import { money } from './shared.js';\n" +
        "import { z as z4 } from 'zod/v4';\n" +
        "import type { Absurd } from 'absurd-kit';\n" +
        "export const later = () => import('node:fs');\n",
      'workflows/shared.ts': "import { z } from 'zod';\nexport const money = z.number();\n",
    });
    expect(problems.map((p) => `${p.file}:${p.line}: ${/^imports "[^"]+"/.exec(p.message)?.[0]}`)).toEqual([
      'workflows/a.ts:3: imports "../handlers.js"',
      'workflows/a.ts:4: imports "pg"',
      'workflows/a.ts:10: imports "node:fs"',
    ]);
    expect(problems[0]?.message).toContain('add the module to allowImports in absurd.config.ts');
  });

  it('takes extra modules from allowImports: names, subpath patterns and project paths', () => {
    const root = projects.create({
      'lib/money.ts': 'export const cents = 100;\n',
      'workflows/a.ts':
        "import { cents } from '../lib/money.js';\nimport { x } from 'date-fns';\nimport { y } from '@acme/schemas/orders';\nexport const all = [cents, x, y];\n",
    });
    const discover = (allowImports: string[]) => () =>
      discoverContracts({ root, workflowsDir: path.join(root, 'workflows'), allowImports });
    expect(discover([])).toThrow(GenerateError);
    expect(discover(['./lib/money.ts', 'date-fns', '@acme/schemas/*'])()).toEqual([]);
    expect(discover(['./lib', 'date-fns', '@acme/schemas/*'])()).toEqual([]);
  });

  it('refuses a contract file with a syntax error', () => {
    expect(problemsOf({ 'workflows/a.ts': `${header}export const t = defineTask({ name: 'x' ;\n` })).toEqual([
      { file: 'workflows/a.ts', line: 3, message: "syntax error: ',' expected." },
    ]);
  });

  it('reports every problem of a run together', () => {
    const problems = problemsOf({
      'workflows/a.ts': header + taskNamed('hidden', false) + "import pg from 'pg';\n",
    });
    expect(problems.map((p) => p.line)).toEqual([3, 4]);
  });

  it('refuses two contracts exported under one name (the client keys)', () => {
    const task = (n: string) => `export const send = defineTask({ name: '${n}', params: z.null(), result: z.null() });\n`;
    const problems = problemsOf({ 'workflows/a.ts': header + task('a'), 'workflows/b.ts': header + task('b') });
    expect(problems).toEqual([
      { file: 'workflows/b.ts', line: 3, message: 'a contract exported as "send" is already declared at workflows/a.ts:3; names must be unique' },
    ]);
  });
});

describe('absurd generate on broken contracts', () => {
  it('exits 1 and prints each problem with file:line', async () => {
    const root = projects.create({ 'workflows/a.ts': header + taskNamed('dup') + taskNamed('dup').replace('t_dup', 't_dup2') });
    const result = await cli(['generate', '--root', root, '--skip-queries']);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('absurd generate: workflows/a.ts:4: task "dup" is already declared at workflows/a.ts:3; names must be unique\n');
  });

  it('--json prints the problems as JSON', async () => {
    const root = projects.create({ 'workflows/a.ts': header + taskNamed('x', false) });
    const result = await cli(['generate', '--check', '--json', '--root', root, '--skip-queries']);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toEqual({
      ok: false,
      problems: [{ file: 'workflows/a.ts', line: 3, message: expect.stringContaining('is not exported') }],
    });
  });

  it('names the contract file that fails to load and the reason', async () => {
    const root = projects.create({
      'workflows/a.ts': `${header}export const bad = defineTask({ name: 'bad', params: 42 as never, result: z.null() });\n`,
    });
    await expect(generate({ root, skipQueries: true })).rejects.toThrow(
      'workflows/a.ts: cannot be imported: defineTask("bad"): params must be a Standard Schema (e.g. a Zod schema)',
    );
  });

  it('refuses a workflows folder that does not exist', async () => {
    const root = projects.create({});
    const result = await cli(['generate', '--root', root, '--skip-queries']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('workflows: workflows folder not found');
  });
});
