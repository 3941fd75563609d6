import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { watchGenerate, type WatchRun } from '../../packages/cli/src/generate/watch.js';
import { useTempProjects, writeProjectFile } from './generate-helpers.js';

const projects = useTempProjects();

const event = (fields: string) =>
  `import { z } from 'zod';\nimport { defineEvent } from 'absurd-kit';\n\nexport const packed = defineEvent({ name: 'packed', payload: z.object({ ${fields} }) });\n`;

it('regenerates after a contract file changes, once per burst of changes, and stops on abort', async () => {
  const root = projects.create({ 'package.json': '{ "type": "module" }\n', 'workflows/events.ts': event('tracking: z.string()') });
  const runs: WatchRun[] = [];
  let notify: () => void = () => undefined;
  const nextRun = () => new Promise<void>((resolve) => (notify = resolve));
  const controller = new AbortController();
  let first = nextRun();
  const watching = watchGenerate({
    root,
    skipQueries: true,
    debounceMs: 100,
    signal: controller.signal,
    onRun: (run) => {
      runs.push(run);
      notify();
    },
  });
  await first;
  expect(runs).toHaveLength(1);
  expect(runs[0]).toMatchObject({ outcome: { changed: ['generated/client.ts', 'generated/manifest.json'] } });

  // Three quick writes: one run, with the last contents.
  first = nextRun();
  writeProjectFile(root, 'workflows/events.ts', event('tracking: z.string(), a: z.string().optional()'));
  writeProjectFile(root, 'workflows/events.ts', event('tracking: z.string(), b: z.string().optional()'));
  writeProjectFile(root, 'workflows/events.ts', event('tracking: z.string(), carrier: z.string().optional()'));
  await first;
  await new Promise((resolve) => setTimeout(resolve, 400));
  expect(runs).toHaveLength(2);
  const manifest = JSON.parse(readFileSync(path.join(root, 'generated/manifest.json'), 'utf8'));
  expect(Object.keys(manifest.events.packed.payload.input.properties)).toEqual(['tracking', 'carrier']);

  // A broken contract is reported and the watcher keeps going.
  first = nextRun();
  writeProjectFile(root, 'workflows/events.ts', 'export const packed = ;\n');
  await first;
  expect(runs[2]).toHaveProperty('error');

  controller.abort();
  await watching;
  writeProjectFile(root, 'workflows/events.ts', event('tracking: z.string()'));
  await new Promise((resolve) => setTimeout(resolve, 400));
  expect(runs).toHaveLength(3);
}, 30_000);
