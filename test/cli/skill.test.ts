import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SKILL_MARKDOWN } from '../../packages/cli/src/commands/skill.js';
import { cli } from './helpers.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'absurd-skill-'));
  dirs.push(dir);
  return dir;
}

describe('absurd install-skill', () => {
  it('writes <dir>/absurd/SKILL.md, refuses to overwrite it, and overwrites with --force', async () => {
    const dir = path.join(await tempDir(), 'skills');
    const file = path.join(dir, 'absurd', 'SKILL.md');
    const first = await cli(['install-skill', dir]);
    expect(first).toEqual({ code: 0, stdout: `wrote ${file}\n`, stderr: '' });
    const text = await readFile(file, 'utf8');
    expect(text).toBe(SKILL_MARKDOWN);
    expect(text).toMatch(/^---\nname: absurd\ndescription: .+\n---\n/);
    for (const topic of ['workflows/', 'absurd generate', 'ctx.step', 'ctx.sleepFor', 'ctx.awaitEvent', 'ctx.spawn', 'absurd tasks list']) {
      expect(text).toContain(topic);
    }

    await writeFile(file, 'local edits');
    const refused = await cli(['install-skill', dir]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`${file} already exists; pass --force to overwrite it`);
    expect(await readFile(file, 'utf8')).toBe('local edits');

    const forced = await cli(['install-skill', dir, '--force', '--json']);
    expect(forced.code).toBe(0);
    expect(JSON.parse(forced.stdout)).toEqual({ path: file, overwritten: true });
    expect(await readFile(file, 'utf8')).toBe(SKILL_MARKDOWN);
  });

  it('defaults to .agents/skills under the working directory', async () => {
    const dir = await tempDir();
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const result = await cli(['install-skill']);
      expect(result.code).toBe(0);
    } finally {
      process.chdir(cwd);
    }
    expect(await readFile(path.join(dir, '.agents', 'skills', 'absurd', 'SKILL.md'), 'utf8')).toBe(SKILL_MARKDOWN);
  });

  it('rejects a second directory argument (exit 2)', async () => {
    const result = await cli(['install-skill', 'a', 'b']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unexpected argument "b"');
  });
});
