import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, useTempProjects, writeProjectFile } from './generate-helpers.js';

const projects = useTempProjects();

const contract = (options: { amount?: string; queue?: string; version?: number } = {}) =>
  [
    "import { z } from 'zod';",
    "import { defineTask } from 'absurd-kit';",
    '',
    'export const chargeCard = defineTask({',
    "  name: 'charge-card',",
    `  queue: '${options.queue ?? 'payments'}',`,
    ...(options.version ? [`  version: ${options.version},`] : []),
    `  params: z.object({ orderId: z.string(), amount: ${options.amount ?? 'z.number()'} }),`,
    '  result: z.object({ chargeId: z.string() }),',
    '});',
    '',
  ].join('\n');

/** A project with one contract, generated once. */
async function generatedProject(): Promise<string> {
  const root = projects.create({ 'package.json': '{ "type": "module" }\n', 'workflows/payments.ts': contract() });
  const first = await cli(['generate', '--root', root]);
  expect(first.stderr).toBe('');
  expect(first.code).toBe(0);
  expect(first.stdout).toContain('wrote generated/client.ts\nwrote generated/manifest.json\n');
  return root;
}

const generate = (root: string, ...flags: string[]) => cli(['generate', '--root', root, ...flags]);

describe('absurd generate --check', () => {
  it('exits 0 when everything is current, writing nothing', async () => {
    const root = await generatedProject();
    const result = await generate(root, '--check');
    expect(result).toEqual({ code: 0, stdout: 'generated files are up to date (1 task and 0 events in workflows/)\n', stderr: '' });
    expect((await generate(root)).stdout).toBe('generated files are up to date (1 task and 0 events in workflows/)\n');
  });

  it('exits 3 when a generated file is stale or missing, and writes nothing', async () => {
    const root = await generatedProject();
    const client = path.join(root, 'generated/client.ts');
    writeFileSync(client, `${readFileSync(client, 'utf8')}// edited by hand\n`);
    const result = await generate(root, '--check');
    expect(result.code).toBe(3);
    expect(result.stdout).toBe('stale: generated/client.ts\ngenerated files are stale — run `absurd generate`\n');
    expect(readFileSync(client, 'utf8')).toContain('// edited by hand');
    // A compatible contract change: stale, not breaking.
    writeProjectFile(root, 'workflows/payments.ts', contract({ amount: 'z.union([z.number(), z.string()])' }));
    const widened = await generate(root, '--check', '--json');
    expect(widened.code).toBe(3);
    expect(JSON.parse(widened.stdout)).toMatchObject({ ok: false, stale: ['generated/client.ts', 'generated/manifest.json'], breaking: [] });
  });

  it('exits 1 with a readable report on an incompatible change; a write refuses it too', async () => {
    const root = await generatedProject();
    const manifest = readFileSync(path.join(root, 'generated/manifest.json'), 'utf8');
    writeProjectFile(root, 'workflows/payments.ts', contract({ amount: 'z.number().int()', queue: 'payments-v2' }));
    const check = await generate(root, '--check');
    expect(check.code).toBe(1);
    expect(check.stdout).toContain('task "charge-card": queue: queue changed from "payments" to "payments-v2"');
    expect(check.stdout).toContain('task "charge-card": params.amount: type narrowed from number to integer\n');
    expect(check.stdout).toContain("2 incompatible changes to contracts whose data may be in flight. Make the change compatible, or bump the contract's version");

    const json = await generate(root, '--check', '--json');
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout).breaking).toEqual([
      { kind: 'task', name: 'charge-card', path: 'queue', message: expect.stringContaining('queue changed') },
      { kind: 'task', name: 'charge-card', path: 'params.amount', message: 'type narrowed from number to integer' },
    ]);

    const write = await generate(root);
    expect(write.code).toBe(1);
    expect(write.stdout).toContain('; nothing written.');
    expect(write.stdout).toContain('(or pass --allow-breaking)');
    expect(readFileSync(path.join(root, 'generated/manifest.json'), 'utf8')).toBe(manifest);

    const forced = await generate(root, '--allow-breaking');
    expect(forced.code).toBe(0);
    expect(forced.stdout).toContain('wrote generated/manifest.json');
    expect((await generate(root, '--check')).code).toBe(0);
  });

  it('accepts an incompatible change once the version is bumped', async () => {
    const root = await generatedProject();
    writeProjectFile(root, 'workflows/payments.ts', contract({ amount: 'z.number().int()', version: 2 }));
    const check = await generate(root, '--check');
    expect(check.code).toBe(3);
    expect(check.stdout).toContain('task "charge-card": params.amount: type narrowed from number to integer (accepted: version 1 → 2)');
    expect((await generate(root)).code).toBe(0);
    expect((await generate(root, '--check')).code).toBe(0);
    expect(JSON.parse(readFileSync(path.join(root, 'generated/manifest.json'), 'utf8')).tasks['charge-card'].version).toBe(2);
  });

  it('refuses a manifest on disk that is not JSON (exit 1)', async () => {
    const root = await generatedProject();
    writeFileSync(path.join(root, 'generated/manifest.json'), '{ not json');
    const result = await generate(root, '--check');
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('generated/manifest.json: cannot be read as a manifest');
  });
});

describe('absurd generate flags', () => {
  it('--help describes the command and its flags', async () => {
    const result = await cli(['generate', '--help']);
    expect(result.code).toBe(0);
    for (const flag of ['--check', '--watch', '--json', '--config <file>', '--root <dir>', '--allow-breaking', '--skip-queries']) {
      expect(result.stdout).toContain(flag);
    }
  });

  it('--check with --watch is a usage error (exit 2)', async () => {
    const result = await cli(['generate', '--check', '--watch']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('absurd generate: --check and --watch cannot be combined\n');
  });

  it('an unknown flag is a usage error (exit 2)', async () => {
    expect((await cli(['generate', '--chek'])).code).toBe(2);
  });
});
