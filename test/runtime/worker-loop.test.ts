import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import type { ClaimedTask } from '../../packages/absurd-kit/src/index.js';
import { useTestDatabase } from '../support/db.js';
import {
  awkwardQueueNames,
  delay,
  gate,
  type Gate,
  onAbsurdSchema,
  queueName,
  rawSpawn,
  recordClaims,
  runRows,
  table,
  taskRow,
  useClients,
  waitFor,
  waitForTaskState,
} from './helpers.js';

const db = useTestDatabase();
const clients = useClients(db);
/** What a listening worker's claims carry; on Absurd's schema workers poll and carry nothing. */
const idleMark = onAbsurdSchema ? {} : { idleListener: { id: expect.any(String), seconds: 1.5 } };

describe('defaults', () => {
  it('claims as <hostname>:<pid> with a 120 s lease, one run at a time, and executes with fatalOnLeaseTimeout', async () => {
    const queue = queueName('defaults');
    const app = await clients.app(queue);
    app.registerTask({ name: 'job' }, async () => 'ok');
    const claims = recordClaims(app);
    const executions: { task: ClaimedTask; claimTimeout: number; options: unknown }[] = [];
    const execute = app.executeTask.bind(app);
    app.executeTask = async (task, claimTimeout, options) => {
      executions.push({ task, claimTimeout, options });
      return execute(task, claimTimeout, options);
    };
    const { taskID } = await app.spawn('job', {});
    const worker = await app.startWorker();
    await waitForTaskState(db.pool, queue, taskID, 'completed');
    await worker.close();

    const expectedId = `${hostname() || 'host'}:${process.pid}`;
    expect(worker.workerId).toBe(expectedId);
    // Listening (the default where absurd-kit installed the schema): every claim carries the
    // loop's idle mark, 2 poll intervals + 1 s.
    expect(claims[0]?.options).toEqual({ batchSize: 1, claimTimeout: 120, workerId: expectedId, ...idleMark });
    expect(executions).toHaveLength(1);
    expect(executions[0]?.task.task_id).toBe(taskID);
    expect(executions[0]?.claimTimeout).toBe(120);
    expect(executions[0]?.options).toMatchObject({ fatalOnLeaseTimeout: true });
    expect(typeof (executions[0]?.options as { onHandlerSettled?: unknown }).onHandlerSettled).toBe('function');
    const [run] = await runRows(db.pool, queue, taskID);
    expect(run?.claimed_by).toBe(expectedId);
    expect((run!.claim_expires_at!.getTime() - run!.started_at!.getTime()) / 1000).toBe(120);
  });

  it('runs more than ten handlers at once without Node warning of an AbortSignal listener leak', async () => {
    const queue = queueName('many-at-once');
    const app = await clients.app(queue);
    const started: number[] = [];
    const release = gate();
    app.registerTask({ name: 'job' }, async (params: { n: number }) => {
      started.push(params.n);
      await release.promise;
      return null;
    });
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on('warning', onWarning);
    try {
      for (let n = 0; n < 12; n++) await app.spawn('job', { n });
      const worker = await app.startWorker({ concurrency: 12 });
      await waitFor(() => started.length === 12, { what: '12 handlers running' });
      release.open();
      await worker.close();
      await delay(10); // process warnings are emitted on the next tick
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).not.toContain('MaxListenersExceededWarning');
  });

  it('claims batches of `concurrency` runs unless batchSize says otherwise', async () => {
    const queue = queueName('batch');
    const app = await clients.app(queue);
    app.registerTask({ name: 'job' }, async () => null);
    const claims = recordClaims(app);
    const worker = await app.startWorker({ concurrency: 3 });
    await waitFor(() => claims.length > 0);
    await worker.close();
    expect(claims[0]?.options.batchSize).toBe(3);

    const other = await clients.app(queueName('batch'));
    const otherClaims = recordClaims(other);
    const second = await other.startWorker({ concurrency: 3, batchSize: 2, workerId: 'w-2', claimTimeout: 7 });
    await waitFor(() => otherClaims.length > 0);
    await second.close();
    expect(otherClaims[0]?.options).toEqual({ batchSize: 2, claimTimeout: 7, workerId: 'w-2', ...idleMark });
  });

  it('polls every 0.25 s when idle and reports claim errors to the log in one line, "Worker error: …"', async () => {
    const app = await clients.app(queueName('poll'));
    const log = app.recorded;
    const claims = recordClaims(app);
    const worker = await app.startWorker({ listen: false });
    await delay(1500);
    const count = claims.length;
    // Idle for 1.5 s at 0.25 s: several polls, but nowhere near a busy loop.
    expect(count).toBeGreaterThanOrEqual(3);
    expect(count).toBeLessThanOrEqual(12);

    const boom = new Error('claim exploded');
    app.claimTasks = async () => {
      throw boom;
    };
    await waitFor(() => log.messages('error').length > 0);
    await worker.close();
    expect(log.lines.find((l) => l.level === 'error')?.args).toEqual(['Worker error: Error: claim exploded']);
  });
});

describe('claim loop', () => {
  it('goes through the instance methods claimTasks and executeTask, so they can be replaced', async () => {
    const queue = queueName('instance');
    const app = await clients.app(queue);
    app.registerTask({ name: 'job' }, async () => 'real');
    const seen: string[] = [];
    app.executeTask = async (task) => {
      seen.push(task.task_name);
      // Complete it by hand: the real executor is bypassed.
      await db.pool.query('select absurd.complete_run($1, $2, $3)', [queue, task.run_id, JSON.stringify('replaced')]);
    };
    const { taskID } = await app.spawn('job', {});
    const worker = await app.startWorker({ pollInterval: 0.05 });
    await waitForTaskState(db.pool, queue, taskID, 'completed');
    await worker.close();
    expect(seen).toEqual(['job']);
    expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: 'replaced' });
  });

  it('does not claim while at capacity and claims only the free slots', async () => {
    const queue = queueName('capacity');
    const app = await clients.app(queue);
    const gates = new Map<number, Gate>();
    const started: number[] = [];
    app.registerTask({ name: 'hold' }, async (params: { n: number }) => {
      started.push(params.n);
      const g = gate();
      gates.set(params.n, g);
      await g.promise;
      return params.n;
    });
    const ids: string[] = [];
    for (const n of [1, 2, 3]) ids.push((await app.spawn('hold', { n })).taskID);
    const claims = recordClaims(app);
    // A short poll interval: the loop wakes often, and must still not claim while full.
    const worker = await app.startWorker({ concurrency: 2, pollInterval: 0.05 });
    await waitFor(() => started.length === 2);
    const claimsWhenFull = claims.length;
    await app.spawn('hold', { n: 4 }); // a wake-up notification while full
    await delay(600);
    expect(claims.length).toBe(claimsWhenFull);
    expect(worker.inFlight).toBe(2);
    expect(started).toEqual([1, 2]);

    gates.get(1)!.open();
    await waitFor(() => started.length === 3);
    expect(started[2]).toBe(3);
    // The claim after the slot freed asked for exactly one run.
    const afterFree = claims.slice(claimsWhenFull);
    expect(afterFree.length).toBeGreaterThanOrEqual(1);
    expect(afterFree[0]?.options.batchSize).toBe(1);
    for (const call of claims) expect(call.options.batchSize).toBeLessThanOrEqual(2);

    for (const g of gates.values()) g.open();
    await waitFor(() => started.length === 4);
    for (const g of gates.values()) g.open();
    await worker.close();
    for (const id of ids) expect((await taskRow(db.pool, queue, id))?.state).toBe('completed');
  });

  it('claims again as soon as a run finishes, even with pollInterval 3600 and no notifications', async () => {
    const queue = queueName('refill');
    const app = await clients.app(queue);
    const first = gate();
    app.registerTask({ name: 'job' }, async (params: { n: number }) => {
      if (params.n === 1) await first.promise;
      return params.n;
    });
    // Spawned by plain SQL before the worker starts: no notification can explain a claim.
    const a = await rawSpawn(db.pool, queue, 'job', { n: 1 });
    const b = await rawSpawn(db.pool, queue, 'job', { n: 2 });
    const worker = await app.startWorker({ concurrency: 1, pollInterval: 3600, listen: false });
    await waitForTaskState(db.pool, queue, a.task_id, 'running');
    await delay(200);
    expect((await taskRow(db.pool, queue, b.task_id))?.state).toBe('pending');
    first.open();
    await waitForTaskState(db.pool, queue, b.task_id, 'completed', 8000);
    await worker.close();
  });

  it('gives a slot to new work while the finished run is still being written, at most `concurrency` such writes', async () => {
    const queue = queueName('handover');
    const app = await clients.app(queue);
    // The handlers of runs 1 and 2 lock their own run's row in another transaction before
    // returning, so that their completions wait on those locks.
    const blocker = await db.pool.connect();
    await blocker.query('begin');
    const started: number[] = [];
    app.registerTask({ name: 'job' }, async (params: { n: number }, ctx) => {
      started.push(params.n);
      if (params.n <= 2) await blocker.query(`select 1 from ${table('r', queue)} where run_id = $1 for update`, [ctx.runID]);
      return params.n;
    });
    const ids: string[] = [];
    for (const n of [1, 2, 3]) ids.push((await rawSpawn(db.pool, queue, 'job', { n })).task_id);
    try {
      const worker = await app.startWorker({ concurrency: 1, pollInterval: 0.05 });
      // Run 1's handler returned and its completion is stuck: run 2 got the slot all the same.
      await waitFor(() => started.length === 2);
      // Run 2's completion is stuck too; one write is already pending, so run 2 keeps its slot.
      await delay(500);
      expect(started).toEqual([1, 2]);
      expect(worker.inFlight).toBe(2);
      expect((await taskRow(db.pool, queue, ids[0]!))?.state).toBe('running');
      let closed = false;
      const closing = worker.close().then(() => {
        closed = true;
      });
      await delay(300);
      expect(closed).toBe(false); // close waits for the pending writes
      await blocker.query('rollback');
      await closing;
    } finally {
      blocker.release();
    }
    expect((await taskRow(db.pool, queue, ids[0]!))?.state).toBe('completed');
    expect((await taskRow(db.pool, queue, ids[1]!))?.state).toBe('completed');
    expect((await taskRow(db.pool, queue, ids[2]!))?.state).toBe('pending');
  });

  it('hands executeTask rejections to onError and keeps working', async () => {
    const queue = queueName('exec-error');
    const app = await clients.app(queue);
    app.registerTask({ name: 'job' }, async () => 'done');
    const errors: Error[] = [];
    const boom = new Error('executor broke');
    const execute = app.executeTask.bind(app);
    let calls = 0;
    app.executeTask = async (task, claimTimeout, options) => {
      calls += 1;
      if (calls === 1) throw boom;
      return execute(task, claimTimeout, options);
    };
    const broken = await app.spawn('job', {});
    const worker = await app.startWorker({ pollInterval: 0.05, onError: (error) => errors.push(error) });
    await waitFor(() => errors.length > 0);
    expect(errors[0]).toBe(boom);
    const fine = await app.spawn('job', {});
    await waitForTaskState(db.pool, queue, fine.taskID, 'completed');
    await worker.close();
    // The run whose execution blew up was left alone (running, under its lease).
    expect((await taskRow(db.pool, queue, broken.taskID))?.state).toBe('running');
  });

  it('hands claimTasks rejections to onError, then claims again', async () => {
    const queue = queueName('claim-error');
    const app = await clients.app(queue);
    app.registerTask({ name: 'job' }, async () => 'done');
    const errors: Error[] = [];
    const boom = new Error('claim broke');
    const claim = app.claimTasks.bind(app);
    let calls = 0;
    app.claimTasks = async (options) => {
      calls += 1;
      if (calls <= 2) throw boom;
      return claim(options);
    };
    const { taskID } = await app.spawn('job', {});
    const worker = await app.startWorker({ pollInterval: 0.05, onError: (error) => errors.push(error) });
    await waitForTaskState(db.pool, queue, taskID, 'completed');
    await worker.close();
    expect(errors).toEqual([boom, boom]);
  });

  it('reports a failure to fail the run to onError', async () => {
    const queue = queueName('fail-error');
    const app = await clients.app(queue);
    app.registerTask({ name: 'job' }, async () => {
      // The run disappears under the worker: fail_run cannot find it.
      await db.pool.query(`delete from absurd."r_${queue}"`);
      throw new Error('handler failed');
    });
    const errors: Error[] = [];
    await app.spawn('job', {});
    const worker = await app.startWorker({ pollInterval: 0.05, onError: (error) => errors.push(error) });
    await waitFor(() => errors.length > 0);
    await worker.close();
    expect(errors[0]?.message).toMatch(/cannot be failed/);
  });

  it('works on queues whose names need quoting', async () => {
    for (const queue of awkwardQueueNames()) {
      const app = await clients.app(queue);
      app.registerTask({ name: 'job' }, async (params: { q: string }, ctx) => ctx.step('echo', async () => params.q));
      const { taskID } = await app.spawn('job', { q: queue });
      const worker = await app.startWorker({ pollInterval: 3600 });
      await waitForTaskState(db.pool, queue, taskID, 'completed');
      await worker.close();
      expect(await app.fetchTaskResult(taskID)).toEqual({ state: 'completed', result: queue });
    }
  });
});

describe('close', () => {
  it('returns promptly when idle, even in the middle of a 3600 s poll wait', async () => {
    const app = await clients.app(queueName('idle-close'));
    const claims = recordClaims(app);
    const worker = await app.startWorker({ pollInterval: 3600 });
    await waitFor(() => claims[0]?.claimed !== undefined);
    const startedAt = Date.now();
    await worker.close();
    // Well before the poll interval: close wakes the loop.
    expect(Date.now() - startedAt).toBeLessThan(10_000);
  });

  it('stops claiming and waits for the runs in flight', async () => {
    const queue = queueName('close');
    const app = await clients.app(queue);
    const hold = gate();
    app.registerTask({ name: 'job' }, async (params: { n: number }) => {
      if (params.n === 1) await hold.promise;
      return params.n;
    });
    const claims = recordClaims(app);
    const first = await app.spawn('job', { n: 1 });
    const worker = await app.startWorker({ concurrency: 2, pollInterval: 0.05 });
    await waitForTaskState(db.pool, queue, first.taskID, 'running');

    let closed = false;
    const closing = worker.close().then(() => {
      closed = true;
    });
    const claimsAtClose = claims.length; // close() stops the loop at once: no claim may start after this
    // A claim already under way may still take what it finds; let it return before spawning more.
    await waitFor(() => claims.every((call) => call.claimed !== undefined));
    const second = await app.spawn('job', { n: 2 }); // a slot is free, but the worker is closing
    await delay(400);
    expect(closed).toBe(false);
    expect((await taskRow(db.pool, queue, first.taskID))?.state).toBe('running');

    hold.open();
    await closing;
    expect((await taskRow(db.pool, queue, first.taskID))?.state).toBe('completed');
    expect(claims.length).toBe(claimsAtClose);
    expect((await taskRow(db.pool, queue, second.taskID))?.state).toBe('pending');
  });

  it('with a timeout returns while a run still executes, and leaves that run to its lease', async () => {
    const queue = queueName('close-timeout');
    const app = await clients.app(queue);
    const hold = gate();
    app.registerTask({ name: 'job' }, async () => {
      await hold.promise;
      return 'late';
    });
    const { taskID } = await app.spawn('job', {});
    const worker = await app.startWorker({ claimTimeout: 300, pollInterval: 0.05 });
    await waitForTaskState(db.pool, queue, taskID, 'running');
    const [before] = await runRows(db.pool, queue, taskID);

    const startedAt = Date.now();
    await worker.close({ timeout: 0.3 });
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(250);
    expect(worker.inFlight).toBe(1);

    const [after] = await runRows(db.pool, queue, taskID);
    expect(after?.state).toBe('running');
    expect(after?.claimed_by).toBe(before?.claimed_by);
    expect(after?.claim_expires_at).toEqual(before?.claim_expires_at);
    expect(after?.failure_reason).toBeNull();
    expect((await taskRow(db.pool, queue, taskID))?.state).toBe('running');

    // The execution itself was not cut off: it still ends normally.
    hold.open();
    await waitForTaskState(db.pool, queue, taskID, 'completed');
  });

  it('app.close({ timeout }) closes its worker the same way', async () => {
    const queue = queueName('app-close');
    const pool = clients.pool();
    const app = await clients.app(queue, { db: pool });
    const hold = gate();
    app.registerTask({ name: 'job' }, async () => {
      await hold.promise;
      return 1;
    });
    const claims = recordClaims(app);
    const { taskID } = await app.spawn('job', {});
    await app.startWorker({ pollInterval: 0.05 });
    await waitForTaskState(db.pool, queue, taskID, 'running');
    await app.close({ timeout: 0.2 });
    const count = claims.length;
    await app.spawn('job', {}).catch(() => undefined);
    await delay(200);
    expect(claims.length).toBe(count);
    expect((await taskRow(db.pool, queue, taskID))?.state).toBe('running');
    hold.open();
    await waitForTaskState(db.pool, queue, taskID, 'completed');
  });
});
