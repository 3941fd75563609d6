import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import {
  buildSchemaFiles,
  MIGRATIONS_DIR,
  readMigrationDirectory,
  renderMigrationsModule,
  templateLiteral,
} from '../../scripts/schema-files.js';
import { migrations } from '../../packages/absurd-kit/src/engine/migrations.generated.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

describe('generated schema files', () => {
  it('are up to date with sql/migrations/ (otherwise: run npm run schema:build)', async () => {
    for (const file of await buildSchemaFiles(root)) {
      const onDisk = await readFile(path.join(root, file.path), 'utf8').catch(() => '(missing)');
      expect(onDisk, `${file.path} is stale — run npm run schema:build and commit the result`).toBe(file.content);
    }
  });

  it('bundle exactly the migration files, with their sha256 checksums', async () => {
    const fromDisk = await readMigrationDirectory(path.join(root, MIGRATIONS_DIR));
    expect(migrations, 'src/engine/migrations.generated.ts is stale — run npm run schema:build').toEqual(fromDisk);
    expect(migrations.length).toBeGreaterThan(0);
    for (const m of migrations) expect(m.checksum).toMatch(/^[0-9a-f]{64}$/);
  });

  it('are deterministic and hold no absolute paths', async () => {
    const [first, second] = [await buildSchemaFiles(root), await buildSchemaFiles(root)];
    expect(second).toEqual(first);
    for (const file of first) {
      expect(file.content.startsWith(file.path.endsWith('.sql') ? '-- @generated' : '// @generated')).toBe(true);
      expect(file.content).toContain('DO NOT EDIT');
      expect(file.content).not.toContain(root);
    }
  });
});

describe('templateLiteral()', () => {
  it('round-trips backslashes, backticks, ${ and dollar quotes', () => {
    const text = "a\\b `c` ${d} $$ e $fn$ \\n '\"\n\tf\\`";
    expect(new Function(`return ${templateLiteral(text)};`)()).toBe(text);
  });

  it('keeps the rendered module valid for awkward SQL', () => {
    const source = renderMigrationsModule([{ version: 1, name: 'x', checksum: 'c', sql: 'select $$`${x}`\\$$;\n' }]);
    const literal = /sql: (`[\s\S]*`),\n/.exec(source)?.[1];
    expect(literal && new Function(`return ${literal};`)()).toBe('select $$`${x}`\\$$;\n');
  });
});

describe('readMigrationDirectory()', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  async function directory(files: Record<string, string>): Promise<string> {
    dir = await mkdtemp(path.join(tmpdir(), 'absurd-migrations-'));
    for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, name), text);
    return dir;
  }

  it('orders by version, normalises line endings and ignores other files', async () => {
    const found = await readMigrationDirectory(
      await directory({ '000002_b.sql': 'select 2;\r\n', '000001_a.sql': '\uFEFFselect 1;\n', 'README.md': 'x' }),
    );
    expect(found.map((m) => [m.version, m.name, m.sql])).toEqual([
      [1, 'a', 'select 1;\n'],
      [2, 'b', 'select 2;\n'],
    ]);
  });

  it('rejects badly named files', async () => {
    await expect(readMigrationDirectory(await directory({ '1_a.sql': 'select 1;' }))).rejects.toThrow(
      /"1_a.sql" must be named NNNNNN_name.sql/,
    );
  });

  it('rejects two files with the same version', async () => {
    await expect(
      readMigrationDirectory(await directory({ '000001_a.sql': 'select 1;', '000001_b.sql': 'select 1;' })),
    ).rejects.toThrow(/share version 1/);
  });
});
