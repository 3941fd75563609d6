/**
 * Shared fixtures of the contract tests: running claimed work by hand (so every attempt is
 * visible), counting rows of the per-queue tables, spawning and emitting with plain SQL the way a
 * producer that bypasses the client would, and catching the ValidationError a call must throw.
 */
import { expect } from 'vitest';
import { ValidationError, type Absurd, type ClaimedTask } from '../../src/index.js';
import type { Queryable } from '../sql/helpers.js';
import { table } from '../runtime/worker-helpers.js';

export {
  awkwardQueueNames,
  checkpoints,
  queueName,
  runRows,
  table,
  taskRow,
  useClients,
  utf8QueueName57,
} from '../runtime/worker-helpers.js';

/** Claims once (batch `batchSize`) and executes what was claimed; returns the claimed runs. */
export async function workOnce(app: Absurd, batchSize = 1): Promise<ClaimedTask[]> {
  const tasks = await app.claimTasks({ batchSize, claimTimeout: 60 });
  for (const task of tasks) await app.executeTask(task, 60);
  return tasks;
}

/** Claims and executes until nothing is claimable; returns every claimed run in order. */
export async function drain(app: Absurd, maxRounds = 25): Promise<ClaimedTask[]> {
  const all: ClaimedTask[] = [];
  for (let round = 0; round < maxRounds; round++) {
    const claimed = await workOnce(app, 10);
    if (claimed.length === 0) return all;
    all.push(...claimed);
  }
  throw new Error(`work was still claimable after ${maxRounds} rounds`);
}

/** Rows of `absurd."<prefix>_<queue>"`. */
export async function countRows(con: Queryable, prefix: 't' | 'r' | 'c' | 'e' | 'w', queue: string): Promise<number> {
  const { rows } = await con.query<{ n: number }>(`select count(*)::int as n from ${table(prefix, queue)}`);
  return rows[0]?.n ?? -1;
}

/** Spawns with `absurd.spawn_task` directly: no client, no validation (psql, another language, an old deploy). */
export async function rawSpawn(
  con: Queryable,
  queue: string,
  taskName: string,
  params: unknown,
  options: Record<string, unknown> = {},
): Promise<{ task_id: string; run_id: string }> {
  const { rows } = await con.query<{ task_id: string; run_id: string }>(
    'select task_id, run_id from absurd.spawn_task($1, $2, $3, $4)',
    [queue, taskName, JSON.stringify(params), JSON.stringify(options)],
  );
  const row = rows[0];
  if (!row) throw new Error('spawn_task returned no row');
  return row;
}

/** Emits with `absurd.emit_event` directly: no validation. */
export async function rawEmit(con: Queryable, queue: string, eventName: string, payload: unknown): Promise<void> {
  await con.query('select absurd.emit_event($1, $2, $3)', [queue, eventName, JSON.stringify(payload)]);
}

/** Awaits `promise`, expects it to reject with a ValidationError, and returns that error. */
export async function validationErrorOf(promise: Promise<unknown>): Promise<ValidationError> {
  const outcome = await promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  if (outcome.ok) throw new Error(`expected a ValidationError, got a value: ${JSON.stringify(outcome.value)}`);
  expect(outcome.error).toBeInstanceOf(ValidationError);
  return outcome.error as ValidationError;
}

/** Calls `fn`, expects it to throw (or reject with) a ValidationError, and returns that error. */
export async function validationErrorFrom(fn: () => unknown): Promise<ValidationError> {
  return validationErrorOf(Promise.resolve().then(fn));
}
