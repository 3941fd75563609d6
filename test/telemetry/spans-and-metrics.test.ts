/**
 * Spans and metrics in one process, with the OpenTelemetry SDK registered globally and its
 * in-memory exporters: what a spawn, a run, its steps, waits and emissions record, how validation
 * failures show, and what the metrics count. (The trace across worker processes and a restart is
 * `cross-process.test.ts`.)
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { DataPoint, Histogram, MetricData } from '@opentelemetry/sdk-metrics';
import { defineTask, ValidationError } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import { gate, onAbsurdSchema, queueName, rawSpawn, useClients, waitFor, workOnce } from '../runtime/helpers.js';
import { registerTelemetry, type SpanRecord, type TestTelemetry } from './otel.js';

const db = useTestDatabase();
const clients = useClients(db);
let otel: TestTelemetry;

beforeAll(() => {
  otel = registerTelemetry();
});
afterAll(async () => {
  await otel.shutdown();
});

/** The spans of one trace, by name (the last one of each name wins; `all` keeps every one). */
function traceOf(traceId: string) {
  const spans = otel.spans().filter((span) => span.traceId === traceId);
  return {
    all: spans,
    named: (name: string) => spans.filter((span) => span.name === name),
    one(name: string): SpanRecord {
      const found = spans.filter((span) => span.name === name);
      expect(found, `spans named ${name}: ${spans.map((s) => s.name).join(', ')}`).toHaveLength(1);
      return found[0]!;
    },
  };
}

/** The data points of a metric whose attributes include `match`. */
function points<T = number>(all: MetricData[], name: string, match: Record<string, unknown> = {}): DataPoint<T>[] {
  const metric = all.find((m) => m.descriptor.name === name);
  const list = (metric?.dataPoints ?? []) as DataPoint<T>[];
  return list.filter((point) => Object.entries(match).every(([key, value]) => point.attributes[key] === value));
}

function sum(all: MetricData[], name: string, match: Record<string, unknown> = {}): number {
  return points(all, name, match).reduce((total, point) => total + point.value, 0);
}

describe('spans', () => {
  it('a spawn, its run (parented on the spawn through the traceparent header), steps run and replayed, a wait and an emission', async () => {
    const app = await clients.app(queueName('spans'), { db: db.pool });
    app.registerTask({ name: 'greet' }, async (params: { who: string }, ctx) => {
      const greeting = await ctx.step('compose', async () => `hello ${params.who}`);
      const reply = await ctx.awaitEvent(`reply:${params.who}`);
      await ctx.emitEvent(`greeted:${params.who}`, { greeting });
      return { greeting, reply };
    });

    const spawned = await app.spawn('greet', { who: 'ada' });
    const [claimed] = await workOnce(app);
    // The task carries the spawn span's context in its headers, in W3C form.
    const traceparent = claimed?.headers?.traceparent;
    expect(traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const traceId = String(traceparent).split('-')[1]!;

    await app.emitEvent('reply:ada', 'hi');
    await workOnce(app);
    expect((await app.fetchTaskResult(spawned.taskID))?.state).toBe('completed');

    const t = traceOf(traceId);
    const spawn = t.one('spawn greet');
    expect(spawn.kind).toBe(3); // producer
    expect(spawn.parentSpanId).toBeUndefined();
    expect(String(traceparent).split('-')[2]).toBe(spawn.spanId);
    expect(spawn.attributes).toMatchObject({
      'messaging.system': 'absurd',
      'messaging.destination.name': app.queueName,
      'messaging.operation.type': 'send',
      'absurd.task.name': 'greet',
      'absurd.task.id': spawned.taskID,
      'absurd.run.id': spawned.runID,
      'absurd.task.created': true,
    });

    // Two runs (the first suspends in the wait), both children of the spawn.
    const runs = t.named('run greet');
    expect(runs.map((run) => run.attributes['absurd.run.outcome'])).toEqual(['suspended', 'completed']);
    for (const run of runs) {
      expect(run.kind).toBe(4); // consumer
      expect(run.parentSpanId).toBe(spawn.spanId);
      expect(run.attributes).toMatchObject({
        'messaging.destination.name': app.queueName,
        'messaging.operation.type': 'process',
        'absurd.task.name': 'greet',
        'absurd.task.id': spawned.taskID,
        'absurd.run.attempt': 1,
      });
    }
    const [first, second] = runs as [SpanRecord, SpanRecord];

    const steps = t.named('step compose');
    expect(steps.map((step) => [step.parentSpanId, step.attributes['absurd.step.replayed']])).toEqual([
      [first.spanId, false],
      [second.spanId, true],
    ]);
    expect(steps[0]?.attributes['absurd.checkpoint.name']).toBe('compose');

    const waits = t.named('awaitEvent reply:ada');
    expect(waits.map((wait) => [wait.parentSpanId, wait.attributes['absurd.wait.outcome']])).toEqual([
      [first.spanId, 'suspended'],
      [second.spanId, 'resolved'],
    ]);
    expect(waits[0]?.status).toBe(0); // a suspension is no error

    const emitted = t.one('emit greeted:ada');
    expect(emitted.parentSpanId).toBe(second.spanId);
    expect(emitted.kind).toBe(3);
    expect(emitted.attributes).toMatchObject({ 'absurd.event.name': 'greeted:ada', 'messaging.operation.name': 'emit' });
  });

  it('records a spawn refused by its params schema on the spawn span, with boundary and field', async () => {
    const queue = queueName('refused');
    const app = await clients.app(queue, { db: db.pool });
    const charge = defineTask({ name: 'charge', queue, params: z.object({ amount: z.number() }), result: z.null() });
    const refused = await app.spawn(charge, { amount: '12' as unknown as number }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ValidationError);
    const span = otel.spans().filter((s) => s.name === 'spawn charge' && s.attributes['messaging.destination.name'] === queue);
    expect(span).toHaveLength(1);
    expect(span[0]?.status).toBe(2); // error
    expect(span[0]?.events).toContain('exception');
    expect(span[0]?.attributes).toMatchObject({
      'absurd.validation.boundary': 'params',
      'absurd.validation.field': 'amount',
      'absurd.validation.subject': 'charge',
    });
  });

  it('records stored params refused at task start on the run span, and a refused step result on the step span', async () => {
    const queue = queueName('start');
    const app = await clients.app(queue, { db: db.pool });
    const ship = defineTask({
      name: 'ship',
      queue,
      params: z.object({ address: z.string() }),
      result: z.null(),
      steps: { label: z.object({ code: z.string() }) },
    });
    app.registerTask(ship, async (_params, ctx) => {
      await ctx.step('label', async () => ({ code: 42 as unknown as string }));
      return null;
    });
    const badParams = await rawSpawn(db.pool, queue, 'ship', { address: 7 }, { max_attempts: 3 });
    const badStep = await app.spawn(ship, { address: 'Main St' }, { maxAttempts: 1 });
    await workOnce(app, 120, 2);

    const runOf = (taskID: string) => otel.spans().find((s) => s.name === 'run ship' && s.attributes['absurd.task.id'] === taskID);
    const paramsRun = runOf(badParams.task_id);
    expect(paramsRun?.attributes).toMatchObject({
      'absurd.run.outcome': 'failed',
      'absurd.validation.boundary': 'params',
      'absurd.validation.field': 'address',
    });
    expect(paramsRun?.status).toBe(2);
    // Spawned by psql: no traceparent, so the run starts a trace of its own.
    expect(paramsRun?.parentSpanId).toBeUndefined();

    const stepRun = runOf(badStep.taskID);
    const step = otel.spans().find((s) => s.name === 'step label' && s.parentSpanId === stepRun?.spanId);
    expect(step?.attributes).toMatchObject({
      'absurd.validation.boundary': 'step',
      'absurd.validation.field': 'code',
      'absurd.validation.detail': 'label',
      'absurd.step.replayed': false,
    });
    expect(step?.status).toBe(2);
  });

  it('makes a child spawn a child of the step it runs in, and the child run a child of that spawn', async () => {
    const app = await clients.app(queueName('family'), { db: db.pool });
    app.registerTask({ name: 'kid' }, async () => 'done');
    app.registerTask({ name: 'mum' }, async (_params, ctx) => {
      const child = await ctx.spawn('kid', {});
      return ctx.awaitTaskResult(child);
    });
    const spawned = await app.spawn('mum', {});
    await workOnce(app); // mum: spawns, suspends
    await workOnce(app); // kid
    await workOnce(app); // mum again
    expect((await app.fetchTaskResult(spawned.taskID))?.state).toBe('completed');

    const mumSpawn = otel.spans().find((s) => s.name === 'spawn mum' && s.attributes['absurd.task.id'] === spawned.taskID)!;
    const t = traceOf(mumSpawn.traceId);
    const [firstMum, secondMum] = t.named('run mum') as [SpanRecord, SpanRecord];
    const spawnSteps = t.named('step $spawn:kid');
    expect(spawnSteps.map((s) => [s.parentSpanId, s.attributes['absurd.step.replayed']])).toEqual([
      [firstMum.spanId, false],
      [secondMum.spanId, true],
    ]);
    const kidSpawn = t.one('spawn kid');
    expect(kidSpawn.parentSpanId).toBe(spawnSteps[0]?.spanId);
    expect(t.one('run kid').parentSpanId).toBe(kidSpawn.spanId);
    const awaits = t.named(`awaitTaskResult ${String(kidSpawn.attributes['absurd.task.id'])}`);
    expect(awaits.map((a) => a.attributes['absurd.wait.outcome'])).toEqual(['suspended', 'resolved']);
  });

  it('a bulk spawn (app.spawnMany, ctx.spawnMany) is one producer span, parent of every task run; each created task counted', async () => {
    const app = await clients.app(queueName('bulk'), { db: db.pool });
    app.registerTask({ name: 'item' }, async (params: { n: number }) => params.n);
    app.registerTask({ name: 'batch' }, async (_params, ctx) => ctx.awaitAll(await ctx.spawnMany('item', [{ n: 4 }, { n: 5 }])));
    const before = await otel.metrics();
    const spawned = await app.spawnMany('item', [{ params: { n: 1 } }, { params: { n: 2 } }, { params: { n: 3 } }]);
    const claimed = await workOnce(app, 120, 3);
    const carried = new Set(claimed.map((run) => String(run.headers?.traceparent)));
    expect(carried.size).toBe(1);
    const [, traceId, spanId] = [...carried][0]!.split('-');
    const t = traceOf(traceId!);
    const bulk = t.one('spawn item');
    expect(bulk.spanId).toBe(spanId);
    expect(bulk.attributes['absurd.spawn.count']).toBe(3);
    expect(t.named('run item').map((run) => run.parentSpanId)).toEqual([spanId, spanId, spanId]);
    expect(new Set(t.named('run item').map((run) => run.attributes['absurd.task.id']))).toEqual(new Set(spawned.map((s) => s.taskID)));

    // In a task: the bulk spawn is a child of its step, and the children's runs of the bulk spawn.
    const batch = await app.spawn('batch', null);
    await workOnce(app); // batch: spawns, suspends
    await workOnce(app, 120, 2); // the items
    await workOnce(app); // batch again
    expect((await app.fetchTaskResult(batch.taskID))?.state).toBe('completed');
    const batchSpawn = otel.spans().find((s) => s.name === 'spawn batch' && s.attributes['absurd.task.id'] === batch.taskID)!;
    const inTask = traceOf(batchSpawn.traceId);
    const step = inTask.named('step $spawnMany:item')[0]!;
    const itemsSpawn = inTask.one('spawn item');
    expect(itemsSpawn.parentSpanId).toBe(step.spanId);
    expect(itemsSpawn.attributes['absurd.spawn.count']).toBe(2);
    expect(inTask.named('run item').map((run) => run.parentSpanId)).toEqual([itemsSpawn.spanId, itemsSpawn.spanId]);

    const after = await otel.metrics();
    const delta = (name: string) => sum(after, name, { 'absurd.task.name': 'item' }) - sum(before, name, { 'absurd.task.name': 'item' });
    expect(delta('absurd.tasks.spawned')).toBe(5);
  });

  it('keeps a traceparent the producer set itself (e.g. from Python): the spawn span and the run join its trace', async () => {
    const app = await clients.app(queueName('given'), { db: db.pool });
    app.registerTask({ name: 'joined' }, async () => null);
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    await app.spawn('joined', {}, { headers: { traceparent, tracestate: 'vendor=x' } });
    const [claimed] = await workOnce(app);
    expect(claimed?.headers).toMatchObject({ traceparent, tracestate: 'vendor=x' });
    const t = traceOf('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(t.one('spawn joined').parentSpanId).toBe('00f067aa0ba902b7');
    expect(t.one('run joined').parentSpanId).toBe('00f067aa0ba902b7');
  });

  it('makes no span for a client created with telemetry: false', async () => {
    const app = await clients.app(queueName('quiet'), { db: db.pool, telemetry: false });
    app.registerTask({ name: 'silent' }, async (_params, ctx) => ctx.step('s', async () => 1));
    const spawned = await app.spawn('silent', {});
    const [claimed] = await workOnce(app);
    expect(claimed?.headers ?? {}).not.toHaveProperty('traceparent');
    expect(otel.spans().filter((s) => s.attributes['absurd.task.id'] === spawned.taskID)).toEqual([]);
  });
});

describe('metrics', () => {
  let before: MetricData[];
  beforeEach(async () => {
    before = await otel.metrics();
  });

  it('counts spawned, claimed, completed and failed tasks by reason, run durations and queue lag', async () => {
    const queue = queueName('metrics');
    const app = await clients.app(queue, { db: db.pool });
    const q = { 'messaging.destination.name': queue };
    const held = gate();
    app.registerTask({ name: 'ok' }, async () => 'fine');
    app.registerTask({ name: 'boom' }, async () => {
      throw new Error('boom');
    });
    app.registerTask({ name: 'held' }, async (_params, ctx) => {
      await held.promise;
      await ctx.step('after', async () => 1); // the write finds the task cancelled
    });
    const strict = defineTask({ name: 'strict', queue, params: z.object({ n: z.number() }), result: z.null() });
    app.registerTask(strict, async () => null);

    await app.spawn('ok', {});
    await app.spawn('ok', {}, { idempotencyKey: 'once' });
    await app.spawn('ok', {}, { idempotencyKey: 'once' }); // not a new task
    await app.spawn('boom', {}, { maxAttempts: 1 });
    await rawSpawn(db.pool, queue, 'strict', { n: 'x' });
    const heldTask = await app.spawn('held', {});
    // Runs the four others, then the held one while the test cancels it.
    await workOnce(app, 120, 4);
    const [heldRun] = await app.claimTasks({ batchSize: 1 });
    expect(heldRun?.task_id).toBe(heldTask.taskID);
    const execution = app.executeTask(heldRun!, 120);
    await app.cancelTask(heldTask.taskID);
    held.open();
    await execution;

    const after = await otel.metrics();
    const delta = (name: string, match: Record<string, unknown> = {}) => sum(after, name, { ...q, ...match }) - sum(before, name, { ...q, ...match });
    expect(delta('absurd.tasks.spawned')).toBe(4); // the idempotent repeat created nothing; psql's spawn is not seen
    expect(delta('absurd.tasks.spawned', { 'absurd.task.name': 'ok' })).toBe(2);
    expect(delta('absurd.tasks.claimed')).toBe(5);
    expect(delta('absurd.tasks.completed')).toBe(2);
    expect(delta('absurd.tasks.failed', { 'absurd.failure.reason': 'error' })).toBe(1);
    expect(delta('absurd.tasks.failed', { 'absurd.failure.reason': 'validation' })).toBe(1);
    expect(delta('absurd.tasks.failed', { 'absurd.failure.reason': 'cancelled' })).toBe(1);

    const durations = points<Histogram>(after, 'absurd.run.duration', q);
    const count = (outcome: string) => durations.filter((p) => p.attributes['absurd.run.outcome'] === outcome).reduce((n, p) => n + p.value.count, 0);
    expect([count('completed'), count('failed'), count('cancelled')]).toEqual([2, 2, 1]);
    // Every claim reports how long its run waited (on absurd-kit's engine; Absurd's claim_task does not say).
    const lag = points<Histogram>(after, 'absurd.queue.lag', q);
    expect(lag.reduce((n, p) => n + p.value.count, 0)).toBe(onAbsurdSchema ? 0 : 5);
    if (!onAbsurdSchema) expect(Math.min(...lag.map((p) => p.value.min ?? Infinity))).toBeGreaterThanOrEqual(0);
  });

  it('reports the slots in use and the concurrency of a running worker', async () => {
    const queue = queueName('slots');
    const app = await clients.app(queue, { db: db.pool });
    const held = gate();
    app.registerTask({ name: 'hold' }, async () => held.promise);
    const worker = await app.startWorker({ workerId: 'slots-worker', concurrency: 3, pollInterval: 0.02 });
    await app.spawn('hold', {});
    await app.spawn('hold', {});
    const match = { 'messaging.destination.name': queue, 'absurd.worker.id': 'slots-worker' };
    await waitFor(async () => sum(await otel.metrics(), 'absurd.worker.slots.used', match) === 2, { what: 'two slots in use' });
    expect(sum(await otel.metrics(), 'absurd.worker.slots.limit', match)).toBe(3);
    held.open();
    await waitFor(async () => sum(await otel.metrics(), 'absurd.worker.slots.used', match) === 0, { what: 'no slot in use' });
    await worker.close();
  });
});
