/**
 * One trace from a spawn through a parent's steps, its child and back, across worker processes and
 * a restart: the test spawns `trace-parent` (a producer span here), a first parent worker process
 * runs it until it waits for its child, a child worker process runs the child until it waits for an
 * event, the first parent worker stops, the test emits the event, and a second parent worker (a
 * restart) resumes the parent once the child has ended. Every process exports its spans with the
 * SDK's in-memory exporter; the test joins them and checks the parent/child links.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { queueName, useClients, waitFor, waitForTaskState } from '../runtime/helpers.js';
import { registerTelemetry, type SpanRecord, type TestTelemetry } from './otel.js';

const db = useTestDatabase();
const clients = useClients(db);
const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/traced-worker.ts');
const dir = mkdtempSync(path.join(tmpdir(), 'absurd-trace-'));
let otel: TestTelemetry;

beforeAll(() => {
  otel = registerTelemetry();
});
afterAll(async () => {
  await otel.shutdown();
  rmSync(dir, { recursive: true, force: true });
});

interface TracedWorker {
  /** Stops the worker (SIGTERM) and returns the spans it exported. */
  stop(): Promise<SpanRecord[]>;
}

async function startWorker(name: string, role: 'parent' | 'child', queues: { parent: string; child: string }): Promise<TracedWorker> {
  const file = path.join(dir, `${name}.json`);
  const child: ChildProcess = clients.track(
    spawn(process.execPath, ['--import', 'tsx', WORKER], {
      env: { ...process.env, TRACE_URL: db.url, TRACE_ROLE: role, TRACE_PARENT_QUEUE: queues.parent, TRACE_CHILD_QUEUE: queues.child, TRACE_SPANS: file },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await waitFor(() => /^ready$/m.test(out) || child.exitCode !== null, { timeoutMs: 30_000, what: `worker ${name} to start` });
  if (child.exitCode !== null) throw new Error(`worker ${name} exited: ${out}`);
  return {
    async stop() {
      child.kill('SIGTERM');
      const code = await exited;
      expect(code, out).toBe(0);
      return (JSON.parse(readFileSync(file, 'utf8')) as SpanRecord[]).map((span) => ({ ...span, source: name }));
    },
  };
}

it('follows a task from its spawn through the parent, its child in another process, and the parent resumed after a restart', async () => {
  const queues = { parent: queueName('trace-parents'), child: queueName('trace-children') };
  const app = await clients.app(queues.parent, { db: db.pool });
  await app.createQueue(queues.child);
  const [parentWorker, childWorker] = await Promise.all([startWorker('parent-1', 'parent', queues), startWorker('child', 'child', queues)]);

  const spawned = await app.spawn('trace-parent', { order: 'o-1' }, { queue: queues.parent });
  await waitForTaskState(db.pool, queues.parent, spawned.taskID, 'sleeping', 20_000);
  const { rows } = await db.pool.query<{ task_id: string }>(`select task_id from absurd."t_${queues.child}"`);
  const childID = rows[0]!.task_id;
  await waitForTaskState(db.pool, queues.child, childID, 'sleeping', 20_000);
  // The parent's first worker goes away; a new one (a restart) resumes the parent.
  const firstParentSpans = await parentWorker.stop();
  const restarted = await startWorker('parent-2', 'parent', queues);
  await app.emitEvent(`release:${spawned.taskID}`, 'go', queues.child);
  const final = await app.awaitTaskResult(spawned.taskID, { timeout: 20 });
  expect(final).toEqual({ state: 'completed', result: { prepared: 'prepared o-1', child: { packed: true, note: 'go' } } });
  const spans = [...otel.spans().map((span) => ({ ...span, source: 'test' })), ...firstParentSpans, ...(await restarted.stop()), ...(await childWorker.stop())];

  const producer = spans.find((s) => s.name === 'spawn trace-parent' && s.attributes['absurd.task.id'] === spawned.taskID)!;
  expect(producer.source).toBe('test');
  const trace = spans.filter((s) => s.traceId === producer.traceId);
  const named = (name: string, source?: string) => trace.filter((s) => s.name === name && (source === undefined || s.source === source));
  const one = (name: string, source?: string) => {
    const found = named(name, source);
    expect(found, `${name} in ${source ?? 'any process'}: ${trace.map((s) => `${s.source}:${s.name}`).join(', ')}`).toHaveLength(1);
    return found[0]!;
  };

  // The parent: one run in each parent worker, both children of the producer's spawn span.
  const run1 = one('run trace-parent', 'parent-1');
  const run2 = one('run trace-parent', 'parent-2');
  expect([run1.parentSpanId, run2.parentSpanId]).toEqual([producer.spanId, producer.spanId]);
  expect([run1.attributes['absurd.run.outcome'], run2.attributes['absurd.run.outcome']]).toEqual(['suspended', 'completed']);

  // Its steps: run in the first process, replayed in the restarted one.
  const prepare = named('step prepare');
  expect(prepare.map((s) => [s.source, s.parentSpanId, s.attributes['absurd.step.replayed']])).toEqual([
    ['parent-1', run1.spanId, false],
    ['parent-2', run2.spanId, true],
  ]);
  const spawnStep = one('step $spawn:trace-child', 'parent-1');
  expect(spawnStep.parentSpanId).toBe(run1.spanId);
  expect(one('step $spawn:trace-child', 'parent-2').attributes['absurd.step.replayed']).toBe(true);
  const childSpawn = one('spawn trace-child');
  expect([childSpawn.source, childSpawn.parentSpanId, childSpawn.attributes['absurd.task.id']]).toEqual(['parent-1', spawnStep.spanId, childID]);
  const waits = named(`awaitTaskResult ${childID}`);
  expect(waits.map((s) => [s.source, s.parentSpanId, s.attributes['absurd.wait.outcome']])).toEqual([
    ['parent-1', run1.spanId, 'suspended'],
    ['parent-2', run2.spanId, 'resolved'],
  ]);
  expect(one('step finish', 'parent-2')).toMatchObject({ parentSpanId: run2.spanId, attributes: { 'absurd.step.replayed': false } });

  // The child, in its own process: both runs are children of the spawn made in the parent's first process.
  const childRuns = named('run trace-child', 'child');
  expect(childRuns.map((s) => [s.parentSpanId, s.attributes['absurd.run.outcome']])).toEqual([
    [childSpawn.spanId, 'suspended'],
    [childSpawn.spanId, 'completed'],
  ]);
  expect(named(`awaitEvent release:${spawned.taskID}`).map((s) => s.attributes['absurd.wait.outcome'])).toEqual(['suspended', 'resolved']);
  expect(named('step pack', 'child').map((s) => s.parentSpanId)).toEqual([childRuns[1]!.spanId]);

  // Nothing of the task's life is outside the trace.
  const taskIDs = new Set([spawned.taskID, childID]);
  const stray = spans.filter((s) => s.traceId !== producer.traceId && taskIDs.has(String(s.attributes['absurd.task.id'])));
  expect(stray).toEqual([]);
}, 90_000);
