import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { closeOnSignals, type Closable } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import { LOG_TABLE_DDL } from './fixtures/tasks.js';
import { delay, gate, queueName, recordClaims, startFixture, taskRow, useClients, waitFor, waitForTaskState } from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);

describe('closeOnSignals (in process)', () => {
  // The test runner may listen for these signals itself: set its listeners aside while a test
  // emits them, so that only the handlers under test react.
  const saved = new Map<NodeJS.Signals, ((...args: unknown[]) => void)[]>();
  beforeEach(() => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      saved.set(signal, process.listeners(signal) as (() => void)[]);
      process.removeAllListeners(signal);
    }
  });
  afterEach(() => {
    for (const [signal, listeners] of saved) {
      process.removeAllListeners(signal);
      for (const listener of listeners) process.on(signal, listener);
    }
    vi.restoreAllMocks();
  });

  it('on SIGTERM stops claiming, finishes the run in flight, calls onClosed and removes its handlers', async () => {
    const queue = queueName('sigterm');
    const app = await clients.app(queue);
    const hold = gate();
    app.registerTask({ name: 'job' }, async () => {
      await hold.promise;
      return 'finished';
    });
    const claims = recordClaims(app);
    const { taskID } = await app.spawn('job', {});
    const worker = await app.startWorker({ pollInterval: 0.05 });
    await waitForTaskState(db.pool, queue, taskID, 'running');

    const closedWith: NodeJS.Signals[] = [];
    closeOnSignals([worker], { onClosed: (signal) => closedWith.push(signal) });
    expect(process.listenerCount('SIGTERM')).toBe(1);
    expect(process.listenerCount('SIGINT')).toBe(1);
    process.emit('SIGTERM', 'SIGTERM');
    const claimsAfterSignal = claims.length; // the handler stops the loop synchronously
    await waitFor(() => claims.every((call) => call.claimed !== undefined));
    const later = await app.spawn('job', {});
    await delay(300);
    expect(closedWith).toEqual([]); // still waiting for the run
    expect(claims.length).toBe(claimsAfterSignal);

    hold.open();
    await waitFor(() => closedWith.length === 1);
    expect(closedWith).toEqual(['SIGTERM']);
    expect((await taskRow(db.pool, queue, taskID))?.state).toBe('completed');
    expect((await taskRow(db.pool, queue, later.taskID))?.state).toBe('pending');
    expect(process.listenerCount('SIGTERM')).toBe(0);
    expect(process.listenerCount('SIGINT')).toBe(0);
  });

  it('closes every target in order with the timeout, also on SIGINT', async () => {
    const calls: string[] = [];
    const target = (name: string): Closable => ({
      close: async (options) => {
        calls.push(`${name}:${JSON.stringify(options)}`);
      },
    });
    const done = gate<NodeJS.Signals>();
    closeOnSignals([target('worker'), target('app')], { timeout: 7, onClosed: done.open });
    process.emit('SIGINT', 'SIGINT');
    expect(await done.promise).toBe('SIGINT');
    expect(calls).toEqual(['worker:{"timeout":7}', 'app:{"timeout":7}']);
  });

  it('with a timeout gives up waiting for a run that does not finish', async () => {
    const queue = queueName('sig-timeout');
    const app = await clients.app(queue);
    const hold = gate();
    app.registerTask({ name: 'job' }, async () => {
      await hold.promise;
      return null;
    });
    const { taskID } = await app.spawn('job', {});
    const worker = await app.startWorker({ pollInterval: 0.05 });
    await waitForTaskState(db.pool, queue, taskID, 'running');
    const done = gate<NodeJS.Signals>();
    closeOnSignals(worker, { timeout: 0.2, onClosed: done.open });
    process.emit('SIGTERM', 'SIGTERM');
    expect(await done.promise).toBe('SIGTERM');
    expect((await taskRow(db.pool, queue, taskID))?.state).toBe('running');
    hold.open();
    await waitForTaskState(db.pool, queue, taskID, 'completed');
  });

  it('exits with 130 on a second signal while still closing', async () => {
    const exit = vi.spyOn(process, 'exit').mockImplementation((() => undefined) as never);
    const hold = gate();
    closeOnSignals({ close: () => hold.promise }, { onClosed: () => undefined });
    process.emit('SIGTERM', 'SIGTERM');
    expect(exit).not.toHaveBeenCalled();
    process.emit('SIGINT', 'SIGINT');
    expect(exit).toHaveBeenCalledWith(130);
    hold.open();
    await delay(10);
  });

  it('reports a failing close to onError, and its returned function removes the handlers', async () => {
    const exitCode = process.exitCode;
    try {
      const errors: unknown[] = [];
      const done = gate<NodeJS.Signals>();
      const boom = new Error('close failed');
      closeOnSignals({ close: async () => Promise.reject(boom) }, { onError: (e) => errors.push(e), onClosed: done.open });
      process.emit('SIGTERM', 'SIGTERM');
      await done.promise;
      expect(errors).toEqual([boom]);
      expect(process.exitCode).toBe(1);
    } finally {
      process.exitCode = exitCode;
    }

    const remove = closeOnSignals({ close: async () => undefined });
    expect(process.listenerCount('SIGTERM')).toBe(1);
    remove();
    expect(process.listenerCount('SIGTERM')).toBe(0);
    expect(process.listenerCount('SIGINT')).toBe(0);
  });
});

describe('closeOnSignals (worker process)', () => {
  it('a SIGTERM lets the run in flight finish, claims nothing more, and the process exits 0 by itself', async () => {
    await db.pool.query(LOG_TABLE_DDL);
    const queue = queueName('proc-graceful');
    const app = await clients.app(queue);
    const { taskID } = await app.spawn('slow', { holdMs: 1500 }, { queue });
    const fixture = await startFixture('worker-process', {
      ABSURD_TEST_URL: db.url,
      ABSURD_TEST_QUEUE: queue,
      ABSURD_TEST_MODE: 'graceful',
    });
    clients.track(fixture.child);
    await waitFor(async () => (await db.pool.query(`select 1 from fixture_log where task_id = $1 and entry = 'started'`, [taskID])).rowCount === 1);
    fixture.child.kill('SIGTERM');
    await delay(500); // let a claim already under way in the worker process return
    const queued = await app.spawn('slow', { holdMs: 0 }, { queue });

    const exit = await fixture.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(fixture.output()).toMatch(/^closed SIGTERM$/m);
    expect((await taskRow(db.pool, queue, taskID))?.state).toBe('completed');
    expect((await taskRow(db.pool, queue, queued.taskID))?.state).toBe('pending');
    const { rows } = await db.pool.query(`select entry from fixture_log where task_id = $1 order by at`, [taskID]);
    expect(rows.map((r) => r.entry)).toEqual(['started', 'finished']);
  });

  it('exits by itself after worker.close() and ending its pool, without app.close()', async () => {
    const queue = queueName('proc-exit');
    await clients.app(queue);
    const fixture = await startFixture('close-and-exit', { ABSURD_TEST_URL: db.url, ABSURD_TEST_QUEUE: queue });
    clients.track(fixture.child);
    const exit = await Promise.race([fixture.exited, delay(10_000).then(() => 'still running')]);
    expect(fixture.output()).toMatch(/^closed$/m);
    expect(exit).toEqual({ code: 0, signal: null });
  });
});
