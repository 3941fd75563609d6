/**
 * What the dashboard tests look at: a manifest with a task, its steps and an event, and tasks in
 * every interesting state, made with the engine's own functions (as a worker would leave them).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type pg from 'pg';

/** A manifest (docs/manifest.md) declaring `order-fulfillment` with two steps, and `shipment.packed`. */
export const MANIFEST = {
  generatedBy: 'absurd generate',
  format: 1,
  jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
  tasks: {
    'order-fulfillment': {
      queue: 'orders',
      version: 1,
      params: {
        input: {
          type: 'object',
          properties: { orderId: { type: 'string' }, amount: { type: 'integer', exclusiveMinimum: 0 } },
          required: ['orderId', 'amount'],
        },
      },
      steps: {
        'process-payment': { input: { type: 'object', properties: { paymentId: { type: 'string' } }, required: ['paymentId'] } },
        'reserve-inventory': { input: { type: 'object', properties: { reserved: { type: 'integer' } }, required: ['reserved'] } },
      },
    },
  },
  events: {
    'shipment.packed': {
      version: 1,
      payload: { input: { type: 'object', properties: { trackingNumber: { type: 'string', minLength: 1 } }, required: ['trackingNumber'] } },
    },
  },
};

/** Writes {@link MANIFEST} into a new temporary folder and returns the file. */
export async function writeManifest(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'absurd-dashboard-'));
  const file = path.join(dir, 'manifest.json');
  await writeFile(file, JSON.stringify(MANIFEST, null, 2));
  return file;
}

/** The tasks {@link seedQueue} made, by what they show. */
export interface SeededTasks {
  readonly failed: string;
  readonly sleeping: string;
  readonly waiting: string;
  readonly completed: string;
  readonly pending: string;
  readonly child: string;
}

type Db = Pick<pg.ClientBase, 'query'>;

async function spawn(db: Db, queue: string, name: string, params: unknown, options: unknown = {}): Promise<{ task_id: string; run_id: string }> {
  const { rows } = await db.query<{ task_id: string; run_id: string }>('select task_id, run_id from absurd.spawn_task($1, $2, $3, $4)', [
    queue,
    name,
    JSON.stringify(params),
    JSON.stringify(options),
  ]);
  return rows[0]!;
}

async function claim(db: Db, queue: string): Promise<void> {
  await db.query(`select * from absurd.claim_task($1, 'worker-7', 300, 1)`, [queue]);
}

async function checkpoint(db: Db, queue: string, task: { task_id: string; run_id: string }, step: string, state: unknown): Promise<void> {
  await db.query('select absurd.set_task_checkpoint_state($1, $2, $3, $4, $5)', [queue, task.task_id, step, JSON.stringify(state), task.run_id]);
}

/**
 * Creates `queue` with one task of each kind: a failed `order-fulfillment` (a step stored that
 * today's schema refuses, a failure with a stack), one sleeping in `ctx.sleepFor`, one waiting for
 * `shipment.packed:A-7`, a completed one that spawned a child, and a pending one.
 */
export async function seedQueue(db: Db, queue: string): Promise<SeededTasks> {
  await db.query('select absurd.create_queue($1)', [queue]);
  const failed = await spawn(db, queue, 'order-fulfillment', { orderId: 'A-1', amount: 12 }, { max_attempts: 1 });
  await claim(db, queue);
  await checkpoint(db, queue, failed, 'process-payment', { paymentId: 'pay_1' });
  await checkpoint(db, queue, failed, 'reserve-inventory', { reserved: 'three' });
  await db.query('select absurd.fail_run($1, $2, $3)', [
    queue,
    failed.run_id,
    JSON.stringify({ name: 'PaymentDeclined', message: 'card declined for order A-1', stack: 'PaymentDeclined: card declined\n    at charge (workflows/orders.ts:42:11)' }),
  ]);

  const sleeping = await spawn(db, queue, 'order-fulfillment', { orderId: 'A-2', amount: 5 });
  await claim(db, queue);
  const wakeAt = new Date(Date.now() + 3_600_000).toISOString();
  await checkpoint(db, queue, sleeping, 'process-payment', { paymentId: 'pay_2' });
  await checkpoint(db, queue, sleeping, 'cool-down', wakeAt);
  await db.query('select absurd.schedule_run($1, $2, $3)', [queue, sleeping.run_id, wakeAt]);

  const waiting = await spawn(db, queue, 'order-fulfillment', { orderId: 'A-7', amount: 70 });
  await claim(db, queue);
  await db.query(`select * from absurd.await_event($1, $2, $3, '$awaitEvent:shipment.packed:A-7', 'shipment.packed:A-7', 3600)`, [
    queue,
    waiting.task_id,
    waiting.run_id,
  ]);

  const completed = await spawn(db, queue, 'order-fulfillment', { orderId: 'A-3', amount: 9 });
  await claim(db, queue);
  const child = await spawn(db, queue, 'send-receipt', { orderId: 'A-3' }, { headers: { 'absurd.parent': { queue, taskId: completed.task_id } } });
  await checkpoint(db, queue, completed, '$spawn:send-receipt', { taskID: child.task_id, runID: child.run_id, attempt: 1, created: true, queue });
  await db.query('select absurd.complete_run($1, $2, $3)', [queue, completed.run_id, JSON.stringify({ orderId: 'A-3', trackingNumber: 'T-3' })]);

  const pending = await spawn(db, queue, 'order-fulfillment', { orderId: 'A-4', amount: 1, customer: { id: 'c-42' } });
  return {
    failed: failed.task_id,
    sleeping: sleeping.task_id,
    waiting: waiting.task_id,
    completed: completed.task_id,
    pending: pending.task_id,
    child: child.task_id,
  };
}

/** What {@link seedFlowControl} made. */
export interface SeededFlowControl {
  /** A schedule that fired once (its task is `fired`). */
  readonly schedule: string;
  /** A paused schedule that never fired. */
  readonly pausedSchedule: string;
  readonly fired: string;
  /** The limit: one `charge-card` at a time per params.customerId. */
  readonly limit: string;
  /** The charge that holds the slot of bucket "cust-1", and the one parked behind it. */
  readonly running: string;
  readonly parked: string;
}

/**
 * Creates `queue` with a concurrency limit `one-per-customer` (task `charge-card`, key
 * `customerId`, max 1 running) holding one running charge of customer `cust-1` and parking a
 * second; then two schedules on it: `<queue>:nightly` (`send-report`, Europe/Berlin, catch-up
 * latest), made due and fired once, and `<queue>:every-5m`, paused.
 */
export async function seedFlowControl(db: Db, queue: string): Promise<SeededFlowControl> {
  await db.query('select absurd.create_queue($1)', [queue]);
  const limit = 'one-per-customer';
  await db.query(`select absurd.kit_set_limit($1, $2, 'charge-card', array['customerId'], 1, null, null)`, [queue, limit]);
  const running = await spawn(db, queue, 'charge-card', { customerId: 'cust-1', cents: 100 });
  await claim(db, queue);
  const parked = await spawn(db, queue, 'charge-card', { customerId: 'cust-1', cents: 200 });
  // The bucket "cust-1" is full: this claim parks the second charge and returns nothing.
  await claim(db, queue);

  const schedule = `${queue}:nightly`;
  const pausedSchedule = `${queue}:every-5m`;
  await db.query(`select absurd.kit_upsert_schedule($1, $2, 'send-report', '0 2 * * *', 'Europe/Berlin', '{"kind":"daily"}', '{}', 'latest')`, [
    schedule,
    queue,
  ]);
  await db.query(`select absurd.kit_upsert_schedule($1, $2, 'purge', '*/5 * * * *', 'UTC', 'null', '{}', 'skip')`, [pausedSchedule, queue]);
  await db.query('select absurd.kit_set_schedule_paused($1, true)', [pausedSchedule]);
  await db.query(`update absurd.kit_schedules set next_fire_at = absurd.current_time() - interval '1 second' where schedule_name = $1`, [schedule]);
  await db.query('select absurd.kit_fire_schedules($1)', [queue]);
  const { rows } = await db.query<{ last_task_id: string }>('select last_task_id from absurd.kit_schedules where schedule_name = $1', [schedule]);
  return { schedule, pausedSchedule, fired: rows[0]!.last_task_id, limit, running: running.task_id, parked: parked.task_id };
}
