/**
 * Shared fixtures of the contract tests: running claimed work by hand (so every attempt is
 * visible), emitting with plain SQL the way a producer that bypasses the client would, and
 * catching the ValidationError a call must throw. Clients, queue names, row readers and raw spawns
 * are those of the runtime and SQL tests (re-exported here).
 */
import { expect } from 'vitest';
import { ValidationError, type Absurd, type ClaimedTask } from '../../packages/absurd-kit/src/index.js';
import type { Queryable } from '../sql/helpers.js';

export { countRows } from '../sql/helpers.js';
export {
  awkwardQueueNames,
  checkpoints,
  expectFailedWithoutRetry,
  onAbsurdSchema,
  queueName,
  rawSpawn,
  recordingLog,
  runRows,
  table,
  taskRow,
  useClients,
  utf8QueueName57,
  waitForTaskState,
  withoutRetry,
} from '../runtime/helpers.js';

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
