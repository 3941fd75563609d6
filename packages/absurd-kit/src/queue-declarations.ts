/**
 * What a worker declares for its queue and applies when it starts: the schedules given to
 * `registerSchedule`, and the concurrency and rate limits its task contracts declare. A contract
 * limit is named after its task (`<task>:concurrency`, `<task>:rate`); a limit of that name whose
 * contract no longer declares it is removed, so that deleting `concurrency` from a contract lifts
 * the limit at the next deploy. A database that cannot be reached while a worker starts does not
 * stop it: the worker starts, and the declarations are applied once the database is back.
 */
import type { TaskContract } from './define.js';
import type { ScheduleContract } from './define-schedule.js';
import { errorLine } from './errors.js';
import * as limits from './limits.js';
import { isConnectionError } from './outage.js';
import type { Queryable } from './queryable.js';
import * as schedules from './schedules.js';
import type { ScheduleInput } from './schedules.js';
import type { EngineFeatures, Log } from './types.js';

export interface QueueDeclarations {
  con: Queryable;
  queueName: string;
  log: Log;
  /** Schedules to upsert (any queue: a schedule names its own). */
  schedules: readonly (ScheduleContract | ScheduleInput)[];
  /** The contracts of the tasks this worker runs on `queueName`. */
  contracts: readonly TaskContract[];
  defaultMaxAttempts: number;
  features(): Promise<EngineFeatures>;
}

/** Whether the declarations were applied, or have to wait for the database to be reachable. */
export type DeclarationsOutcome = 'applied' | 'unreachable';

/**
 * Upserts the schedules, then sets the contracts' limits and removes the contract limits they no
 * longer declare. A schedule the engine refuses throws; limits that cannot be set are reported at
 * WARN (the engine goes on with the limits it has). 'unreachable' when a connection failed before
 * everything was applied: call it again later (every step is idempotent).
 */
export async function applyDeclarations(declared: QueueDeclarations): Promise<DeclarationsOutcome> {
  try {
    for (const schedule of declared.schedules) {
      await schedules.upsertSchedule(declared.con, schedule, declared.defaultMaxAttempts);
    }
    await applyContractLimits(declared);
    return 'applied';
  } catch (error) {
    if (isConnectionError(error)) return 'unreachable';
    throw error;
  }
}

/**
 * `applyDeclarations` now, and while the database is unreachable again every few seconds (1 s,
 * doubling to 30 s) in the background, until applied or `stop` is called. Resolves after the first
 * attempt; throws what that attempt throws (a refused schedule).
 *
 * @example
 * const stop = await applyDeclarationsUntilDone(declared);
 * // … at shutdown:
 * stop();
 */
export async function applyDeclarationsUntilDone(declared: QueueDeclarations): Promise<() => void> {
  if ((await applyDeclarations(declared)) === 'applied') return () => {};
  declared.log.warn(
    `could not apply the schedules and limits of queue "${declared.queueName}" (the database is unreachable): the worker starts, and they are applied when it is back`,
  );
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const retry = (delayMs: number) => {
    timer = setTimeout(() => {
      applyDeclarations(declared).then(
        (outcome) => {
          if (stopped) return;
          if (outcome === 'applied') declared.log.info(`applied the schedules and limits of queue "${declared.queueName}"`);
          else retry(Math.min(delayMs * 2, 30_000));
        },
        (error: unknown) => {
          if (!stopped) declared.log.error(`could not apply the schedules and limits of queue "${declared.queueName}": ${errorLine(error)}`);
        },
      );
    }, delayMs);
    timer.unref();
  };
  retry(1000);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

async function applyContractLimits(declared: QueueDeclarations): Promise<void> {
  const { con, queueName, log, contracts } = declared;
  if (contracts.length === 0) return;
  const wanted = contracts.flatMap((contract) => limits.contractLimits(contract));
  const flowControl = await declared.features().then(
    (features) => features.flowControl,
    (error: unknown) => {
      if (isConnectionError(error)) throw error;
      log.warn(`could not read the engine's features: ${errorLine(error)}`);
      return false;
    },
  );
  if (!flowControl) {
    if (wanted.length > 0) {
      log.warn(
        `the engine has no concurrency or rate limits (migration 000016): the limits of ${wanted.map((d) => `"${d.name}"`).join(', ')} are not enforced — run \`absurd migrate\``,
      );
    }
    return;
  }
  try {
    for (const { name, options } of wanted) await limits.setLimit(con, queueName, name, options);
    const wantedNames = new Set(wanted.map((limit) => limit.name));
    const retired = (await limits.listLimits(con, queueName)).filter(
      (limit) =>
        !wantedNames.has(limit.name) &&
        contracts.some(
          (contract) =>
            limit.taskName === contract.name && limits.CONTRACT_LIMIT_KINDS.some((kind) => limits.contractLimitName(contract.name, kind) === limit.name),
        ),
    );
    for (const limit of retired) {
      await limits.removeLimit(con, queueName, limit.name);
      log.info(`removed limit "${limit.name}" of queue "${queueName}": the contract of task "${limit.taskName}" no longer declares it`);
    }
  } catch (error) {
    if (isConnectionError(error)) throw error;
    log.warn(`could not set the limits the task contracts declare: ${errorLine(error)}`);
  }
}
