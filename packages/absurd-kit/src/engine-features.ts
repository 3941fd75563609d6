/**
 * Which of absurd-kit's additions the database's engine has. A schema installed by Absurd (or by
 * an older absurd-kit) lacks some or all of the `kit_` functions; a client's workers then use
 * Absurd's standard functions in their place. Read once per client, never per call.
 */
import { probeEngineFeatures } from './queries/engine-features.queries.js';
import { getSchemaVersion } from './queries/migrations.queries.js';
import type { Queryable } from './queryable.js';
import type { EngineFeatures, Log } from './types.js';

/**
 * Reads which additions the engine has: one statement (plus one more, to name the contract level
 * in the log line, when absurd-kit did not install the schema).
 */
export async function detectEngineFeatures(con: Queryable): Promise<{ features: EngineFeatures; contractLevel?: string }> {
  const [row] = await probeEngineFeatures.run(undefined, con);
  if (!row) throw new Error('the engine feature probe returned no row');
  const has = new Set(row.kitFunctions);
  const features: EngineFeatures = {
    tracked: row.tracked,
    claimWithCheckpoints: has.has('kit_claim_task'),
    batchedCompletions: has.has('kit_complete_runs'),
    batchedCheckpoints: has.has('kit_set_checkpoints'),
    failWithoutRetry: has.has('kit_fail_task'),
    nextRunDue: has.has('kit_seconds_until_next_run'),
    groupedWaits: has.has('kit_await_events'),
    cancelWithParent: has.has('kit_cancel_children'),
    completionsAnnounced: has.has('kit_announce_end'),
    // Workers listen where absurd-kit installed the schema. Elsewhere neither the engine nor Absurd's
    // clients send a notification, so they poll, as absurd-sdk's workers do.
    wakeups: row.tracked,
    idleWakeups: has.has('kit_spawn_tasks'),
    settledWakeups: has.has('kit_wakeups_settled'),
    eventWakeups: has.has('kit_wakeups_settled'),
    flowControl: has.has('kit_set_limit'),
    schedules: has.has('kit_fire_schedules'),
  };
  // Only where the function exists: a failed statement would abort a transaction the client runs in.
  if (features.tracked || !row.versioned) return { features };
  const [version] = await getSchemaVersion.run(undefined, con);
  return version?.version ? { features, contractLevel: version.version } : { features };
}

/**
 * The one INFO line a client logs when its engine lacks additions: what its workers go without,
 * and the command that adds them. Undefined when nothing is missing.
 *
 * @example
 * missingFeaturesLine(features, 'main');
 * // 'schema "absurd" was installed by Absurd (contract level main): running on its standard functions, without …'
 */
export function missingFeaturesLine(features: EngineFeatures, contractLevel?: string): string | undefined {
  const without = [
    !(features.batchedCompletions && features.batchedCheckpoints) && 'batched writes',
    !features.wakeups && 'wake-ups',
    features.wakeups && !features.nextRunDue && 'wake-ups when a sleeping run is due',
    !features.claimWithCheckpoints && 'checkpoints with claims',
    !features.failWithoutRetry && 'failures without retry',
    !features.groupedWaits && 'one suspension for waits started together',
  ].filter((item): item is string => typeof item === 'string');
  if (without.length === 0) return undefined;
  const list = without.length === 1 ? without[0] : `${without.slice(0, -1).join(', ')} and ${without.at(-1)}`;
  if (features.tracked) {
    return `schema "absurd" lacks some of absurd-kit's functions: running on Absurd's standard functions in their place, without ${list} — run \`absurd migrate\` to add them`;
  }
  const level = contractLevel === undefined ? '' : ` (contract level ${contractLevel})`;
  return `schema "absurd" was installed by Absurd${level}: running on its standard functions, without absurd-kit's ${list} — run \`absurd migrate --adopt\` to add them`;
}

/**
 * One client's knowledge of its engine: detected at the first call that needs it (a worker's
 * start, a claim, an execution), logged once at INFO when additions are missing, then kept. A
 * detection that fails (the database is unreachable) is tried again at the next call.
 */
export class EngineProbe {
  readonly #con: Queryable;
  readonly #log: Log;
  #detected: Promise<{ features: EngineFeatures; contractLevel?: string }> | undefined;
  #logged = false;

  constructor(con: Queryable, log: Log) {
    this.#con = con;
    this.#log = log;
  }

  /** The engine's features (one round trip the first time; none after); logs what is missing once. */
  async features(): Promise<EngineFeatures> {
    const { features, contractLevel } = await this.#detect();
    if (!this.#logged) {
      this.#logged = true;
      const line = missingFeaturesLine(features, contractLevel);
      if (line) this.#log.info(line);
    }
    return features;
  }

  /**
   * The same without the log line: for spawns, whose client may never run a worker (the line
   * speaks of what workers go without).
   */
  async quietFeatures(): Promise<EngineFeatures> {
    return (await this.#detect()).features;
  }

  #detect(): Promise<{ features: EngineFeatures; contractLevel?: string }> {
    this.#detected ??= detectEngineFeatures(this.#con).catch((error: unknown) => {
      this.#detected = undefined;
      throw error;
    });
    return this.#detected;
  }
}
