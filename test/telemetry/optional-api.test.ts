/**
 * `@opentelemetry/api` is optional: without it the runtime loads and runs tasks (the packed
 * production install in test/e2e runs a whole workflow without it too), and with it but no SDK
 * registered, telemetry stays off until a provider is registered.
 */
import { metrics, trace } from '@opentelemetry/api';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { queueName, useClients, workOnce } from '../runtime/helpers.js';

const db = useTestDatabase();
const clients = useClients(db);

afterEach(() => {
  vi.doUnmock('@opentelemetry/api');
  vi.resetModules();
  trace.disable();
  metrics.disable();
});

describe('without @opentelemetry/api installed', () => {
  it('loads the runtime, spawns and runs a task, and writes no trace header', async () => {
    vi.resetModules();
    vi.doMock('@opentelemetry/api', () => {
      throw new Error("Cannot find package '@opentelemetry/api'");
    });
    const telemetry = await import('../../packages/absurd-kit/src/telemetry.js');
    await expect(telemetry.loadTelemetryApi()).resolves.toBeNull();
    expect(telemetry.currentTelemetry()).toBeUndefined();

    const { Absurd } = await import('../../packages/absurd-kit/src/index.js');
    const app = new Absurd({ db: db.pool, queueName: queueName('no-otel') });
    await app.createQueue();
    app.registerTask({ name: 'plain' }, async (_params, ctx) => ctx.step('one', async () => 1));
    const spawned = await app.spawn('plain', {});
    const [claimed] = await app.claimTasks();
    expect(claimed?.headers ?? {}).not.toHaveProperty('traceparent');
    await app.executeTask(claimed!, 60);
    expect(await app.fetchTaskResult(spawned.taskID)).toEqual({ state: 'completed', result: 1 });
    await app.close();
  });
});

describe('with @opentelemetry/api but no SDK registered', () => {
  it('is off (one check per call) until a tracer provider is registered, and off again when it is removed', async () => {
    vi.resetModules();
    const telemetry = await import('../../packages/absurd-kit/src/telemetry.js');
    expect(await telemetry.loadTelemetryApi()).not.toBeNull();
    expect(telemetry.currentTelemetry()).toBeUndefined();

    const app = await clients.app(queueName('late-sdk'), { db: db.pool });
    app.registerTask({ name: 'later' }, async () => null);
    await app.spawn('later', {});
    expect((await workOnce(app))[0]?.headers ?? {}).not.toHaveProperty('traceparent');

    trace.setGlobalTracerProvider(new BasicTracerProvider());
    const on = telemetry.currentTelemetry();
    expect(on?.tracing).toBeDefined();
    expect(on?.metrics).toBeUndefined();
    // The same tracer while the provider stays the same.
    expect(telemetry.currentTelemetry()?.tracing).toBe(on?.tracing);

    trace.disable();
    expect(telemetry.currentTelemetry()).toBeUndefined();
  });
});
