import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import {
  SQL_NULL,
  claimOne,
  completeRun,
  createQueue,
  expectPgError,
  failRun,
  one,
  plus,
  queueName,
  runRows,
  setNow,
  snapshot,
  spawn,
  table,
  taskRow,
  taskRows,
  useSession,
} from './helpers.js';

const db = useTestDatabase();
const T0 = new Date('2024-05-01T10:00:00.000Z');
const c = useSession(db, { now: T0 });

describe('spawn_task', () => {
  it('creates a pending task with attempts 1 and its first pending run', async () => {
    const q = await createQueue(c, queueName('basic'));
    const spawned = await spawn(c, q, 'send-email', { to: 'a@b.c', n: [1, 2] });
    expect(spawned).toEqual({ task_id: expect.any(String), run_id: expect.any(String), attempt: 1, created: true });
    expect(await taskRow(c, q, spawned.task_id)).toEqual({
      task_id: spawned.task_id,
      task_name: 'send-email',
      params: { to: 'a@b.c', n: [1, 2] },
      headers: null,
      retry_strategy: null,
      max_attempts: null,
      cancellation: null,
      enqueue_at: T0,
      first_started_at: null,
      state: 'pending',
      attempts: 1,
      last_attempt_run: spawned.run_id,
      completed_payload: null,
      cancelled_at: null,
      idempotency_key: null,
    });
    expect(await runRows(c, q, spawned.task_id)).toEqual([
      {
        run_id: spawned.run_id,
        task_id: spawned.task_id,
        attempt: 1,
        state: 'pending',
        claimed_by: null,
        claim_expires_at: null,
        available_at: T0,
        wake_event: null,
        event_payload: null,
        started_at: null,
        completed_at: null,
        failed_at: null,
        result: null,
        failure_reason: null,
        created_at: T0,
        priority: 0,
        cancel_deadline: null,
        superseded: false,
      },
    ]);
  });

  it('returns the columns task_id, run_id, attempt, created', async () => {
    const q = await createQueue(c, queueName('cols'));
    const { fields } = await c.query('select * from absurd.spawn_task($1, $2, $3, $4)', [q, 'x', '{}', '{}']);
    expect(fields.map((f) => f.name)).toEqual(['task_id', 'run_id', 'attempt', 'created']);
  });

  it('generates time-ordered UUIDv7 ids that follow fake time', async () => {
    const q = await createQueue(c, queueName('ids'));
    const spawned = await spawn(c, q);
    const { rows } = await c.query<{ t: Date; r: Date }>('select absurd.uuidv7_timestamp($1) as t, absurd.uuidv7_timestamp($2) as r', [
      spawned.task_id,
      spawned.run_id,
    ]);
    expect(one(rows)).toEqual({ t: T0, r: T0 });
  });

  it('stores options verbatim and ignores unknown keys', async () => {
    const q = await createQueue(c, queueName('opts'));
    const options = {
      headers: { trace: 'abc', nested: { n: null } },
      retry_strategy: { kind: 'exponential', base_seconds: 2, whatever: true },
      max_attempts: 3,
      cancellation: { max_delay: 5, max_duration: 100, extra: 'x' },
      idempotency_key: 'key-1',
      queue: 'ignored',
      somethingElse: [1],
    };
    const spawned = await spawn(c, q, 'job', { a: 1 }, options);
    expect(await taskRow(c, q, spawned.task_id)).toMatchObject({
      headers: options.headers,
      retry_strategy: options.retry_strategy,
      max_attempts: 3,
      cancellation: options.cancellation,
      idempotency_key: 'key-1',
    });
  });

  // Deliberate difference from the reference engine, which stores these verbatim and then fails
  // every claim_task of the queue (cancellation) or the run's fail_run (retry strategy) with a cast
  // error: values the engine cannot use later are refused at spawn, with a message naming the key.
  it('refuses retry_strategy and cancellation values that later reads could not use, writing nothing', async () => {
    const q = await createQueue(c, queueName('verbatim'));
    for (const [options, message] of [
      [{ retry_strategy: { kind: 'fixed', base_seconds: 'soon' } }, 'retry_strategy.base_seconds must be a number'],
      [{ retry_strategy: { kind: 'exponential', factor: [2] } }, 'retry_strategy.factor must be a number'],
      [{ cancellation: { max_delay: 'later' } }, 'cancellation.max_delay must be a whole number of seconds'],
      [{ cancellation: { max_duration: 1.5 } }, 'cancellation.max_duration must be a whole number of seconds'],
    ] as [Record<string, unknown>, string][]) {
      const before = await snapshot(c, q);
      await expectPgError(spawn(c, q, 'job', {}, options), 'P0001', message);
      expect(await snapshot(c, q)).toEqual(before);
    }
  });

  it('stores usable retry_strategy and cancellation values verbatim, unknown keys and kinds included', async () => {
    const q = await createQueue(c, queueName('verbatim-ok'));
    for (const options of [
      { retry_strategy: { kind: 'fixed', base_seconds: 1.5 } },
      { retry_strategy: { kind: 'someday', factor: '2', extra: true } },
      { cancellation: { max_delay: 60, max_duration: '120', note: 'x' } },
    ] as Record<string, unknown>[]) {
      const spawned = await spawn(c, q, 'job', {}, options);
      expect(await taskRow(c, q, spawned.task_id), JSON.stringify(options)).toMatchObject({
        retry_strategy: options.retry_strategy ?? null,
        cancellation: options.cancellation ?? null,
      });
    }
  });

  it('stores a JSON null header as jsonb null, and SQL NULL params as JSON null', async () => {
    const q = await createQueue(c, queueName('nulls'));
    const spawned = await spawn(c, q, 'job', SQL_NULL, { headers: null });
    const { rows } = await c.query(
      `select headers is null as headers_sql_null, jsonb_typeof(headers) as headers_type,
              params is null as params_sql_null, jsonb_typeof(params) as params_type
         from ${table('t', q)} where task_id = $1`,
      [spawned.task_id],
    );
    expect(one(rows)).toEqual({ headers_sql_null: false, headers_type: 'null', params_sql_null: false, params_type: 'null' });
  });

  it('treats NULL options and omitted options as no options', async () => {
    const q = await createQueue(c, queueName('noopts'));
    const a = await spawn(c, q, 'job', {}, SQL_NULL);
    const { rows } = await c.query('select * from absurd.spawn_task($1, $2, $3)', [q, 'job', '{"x":1}']);
    const b = one(rows) as { task_id: string; created: boolean };
    expect(b.created).toBe(true);
    for (const id of [a.task_id, b.task_id]) {
      expect(await taskRow(c, q, id)).toMatchObject({ headers: null, retry_strategy: null, max_attempts: null, cancellation: null, idempotency_key: null });
    }
  });

  it('accepts max_attempts as JSON null (unlimited), a number or a numeric string', async () => {
    const q = await createQueue(c, queueName('max'));
    const a = await spawn(c, q, 'job', {}, { max_attempts: null });
    const b = await spawn(c, q, 'job', {}, { max_attempts: 1 });
    const d = await spawn(c, q, 'job', {}, { max_attempts: '4' });
    expect((await taskRow(c, q, a.task_id)).max_attempts).toBeNull();
    expect((await taskRow(c, q, b.task_id)).max_attempts).toBe(1);
    expect((await taskRow(c, q, d.task_id)).max_attempts).toBe(4);
  });

  it('rejects max_attempts below 1 and non-integers, changing nothing', async () => {
    const q = await createQueue(c, queueName('badmax'));
    await spawn(c, q);
    const before = await snapshot(c, q);
    await expectPgError(spawn(c, q, 'job', {}, { max_attempts: 0 }), 'P0001', 'max_attempts must be >= 1');
    await expectPgError(spawn(c, q, 'job', {}, { max_attempts: -2 }), 'P0001', 'max_attempts must be >= 1');
    await expectPgError(spawn(c, q, 'job', {}, { max_attempts: 0, idempotency_key: 'k' }), 'P0001', 'max_attempts must be >= 1');
    await expectPgError(spawn(c, q, 'job', {}, { max_attempts: 5.5 }), '22P02');
    expect(await snapshot(c, q)).toEqual(before);
  });

  it('rejects a missing or blank task name, changing nothing', async () => {
    const q = await createQueue(c, queueName('noname'));
    const before = await snapshot(c, q);
    for (const name of [null, '', '   ']) {
      await expectPgError(
        c.query('select * from absurd.spawn_task($1, $2, $3, $4)', [q, name, '{}', '{}']),
        'P0001',
        'task_name must be provided',
      );
    }
    expect(await snapshot(c, q)).toEqual(before);
  });

  it('fails with undefined_table for a queue that does not exist', async () => {
    await expectPgError(spawn(c, queueName('ghost')), '42P01');
  });

  it('does not require the queue row (runtime functions do not consult absurd.queues)', async () => {
    const q = queueName('tables-only');
    await c.query('select absurd.ensure_queue_tables($1)', [q]);
    const spawned = await spawn(c, q);
    expect(spawned.created).toBe(true);
  });
});

describe('spawn_task idempotency', () => {
  it('returns the existing task with created=false whatever the task name and params', async () => {
    const q = await createQueue(c, queueName('idem'));
    const first = await spawn(c, q, 'charge', { amount: 1 }, { idempotency_key: 'order-1' });
    expect(first.created).toBe(true);
    await setNow(c, plus(T0, 5));
    const again = await spawn(c, q, 'refund', { amount: 2 }, { idempotency_key: 'order-1', max_attempts: 9 });
    expect(again).toEqual({ task_id: first.task_id, run_id: first.run_id, attempt: 1, created: false });
    const all = await taskRows(c, q);
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({ task_name: 'charge', params: { amount: 1 }, max_attempts: null, enqueue_at: T0, idempotency_key: 'order-1' });
    expect(await runRows(c, q, first.task_id)).toHaveLength(1);
  });

  it("returns the existing task's current last_attempt_run and attempts", async () => {
    const q = await createQueue(c, queueName('current'));
    const first = await spawn(c, q, 'job', {}, { idempotency_key: 'k' });
    const claimed = await claimOne(c, q);
    await failRun(c, q, claimed.run_id);
    const t = await taskRow(c, q, first.task_id);
    expect(t.attempts).toBe(2);
    expect(t.last_attempt_run).not.toBe(first.run_id);
    const again = await spawn(c, q, 'job', {}, { idempotency_key: 'k' });
    expect(again).toEqual({ task_id: first.task_id, run_id: t.last_attempt_run, attempt: 2, created: false });
  });

  it('survives completion', async () => {
    const q = await createQueue(c, queueName('done'));
    const first = await spawn(c, q, 'job', {}, { idempotency_key: 'k' });
    const claimed = await claimOne(c, q);
    await completeRun(c, q, claimed.run_id, { ok: true });
    const again = await spawn(c, q, 'job', {}, { idempotency_key: 'k' });
    expect(again).toEqual({ task_id: first.task_id, run_id: first.run_id, attempt: 1, created: false });
    expect((await taskRow(c, q, first.task_id)).state).toBe('completed');
    expect(await runRows(c, q, first.task_id)).toHaveLength(1);
  });

  it('is released when cleanup_tasks deletes the task', async () => {
    const q = await createQueue(c, queueName('released'));
    const first = await spawn(c, q, 'job', {}, { idempotency_key: 'k' });
    await completeRun(c, q, (await claimOne(c, q)).run_id);
    await setNow(c, plus(T0, 100));
    const { rows } = await c.query<{ n: number }>('select absurd.cleanup_tasks($1, $2, $3) as n', [q, 10, 100]);
    expect(one(rows).n).toBe(1);
    const again = await spawn(c, q, 'job', { fresh: true }, { idempotency_key: 'k' });
    expect(again.created).toBe(true);
    expect(again.task_id).not.toBe(first.task_id);
    expect((await taskRow(c, q, again.task_id)).params).toEqual({ fresh: true });
  });

  it('is scoped to the queue', async () => {
    const q1 = await createQueue(c, queueName('scope-a'));
    const q2 = await createQueue(c, queueName('scope-b'));
    const a = await spawn(c, q1, 'job', {}, { idempotency_key: 'shared' });
    const b = await spawn(c, q2, 'job', {}, { idempotency_key: 'shared' });
    expect(a.created && b.created).toBe(true);
    expect(a.task_id).not.toBe(b.task_id);
  });

  it('treats a JSON null key as no key', async () => {
    const q = await createQueue(c, queueName('nullkey'));
    const a = await spawn(c, q, 'job', {}, { idempotency_key: null });
    const b = await spawn(c, q, 'job', {}, { idempotency_key: null });
    expect(a.created && b.created).toBe(true);
    expect(await taskRows(c, q)).toHaveLength(2);
  });

  it('keys are distinct per value', async () => {
    const q = await createQueue(c, queueName('distinct'));
    const a = await spawn(c, q, 'job', {}, { idempotency_key: 'a' });
    const b = await spawn(c, q, 'job', {}, { idempotency_key: 'b' });
    const a2 = await spawn(c, q, 'job', {}, { idempotency_key: 'a' });
    expect([a.created, b.created, a2.created]).toEqual([true, true, false]);
    expect(a2.task_id).toBe(a.task_id);
  });
});
