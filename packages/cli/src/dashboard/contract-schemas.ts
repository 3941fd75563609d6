/**
 * What the dashboard knows of the contracts: the JSON Schemas of `generated/manifest.json`
 * (docs/manifest.md), checked with a JSON Schema validator, and, when `--workflows` loads them,
 * the contracts themselves (their Standard Schema validators, which also run refinements that JSON
 * Schema cannot express). It answers two questions: does a stored value (params, a checkpoint, an
 * event payload) still validate against today's schema, and which schema an event to emit has.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { Validator, type Schema as JsonSchema } from '@cfworker/json-schema';
import { AbsurdError, type EventContract, type TaskContract } from 'absurd-kit';
import type { WorkflowContracts } from '../workflow-contracts.js';

/** The outcome of checking a stored value against its schema. */
export interface SchemaCheck {
  /** `unchecked`: no schema is known for it (no manifest entry, or an internal checkpoint). */
  readonly status: 'valid' | 'invalid' | 'unchecked';
  /** Where the schema came from. */
  readonly source?: 'contract' | 'manifest';
  /** One line per problem, `path: message`, when invalid. */
  readonly issues: readonly string[];
}

/** The event a name refers to: `shipment.packed:A-1` is the contract `shipment.packed` with key `A-1`. */
export interface EventTarget {
  /** The contract's name, when one is known. */
  readonly contractName?: string;
  readonly key?: string;
  readonly contract?: EventContract;
  readonly schema?: JsonSchema;
}

interface ManifestSchemas {
  readonly input?: JsonSchema | null;
}

interface Manifest {
  readonly tasks?: Record<string, { params?: ManifestSchemas; steps?: Record<string, ManifestSchemas> }>;
  readonly events?: Record<string, { payload?: ManifestSchemas }>;
}

const UNCHECKED: SchemaCheck = { status: 'unchecked', issues: [] };

/**
 * The step a checkpoint belongs to: the runtime names repeats of a step `name#2`, `name#3`….
 *
 * @example
 * stepNameOf('charge#2'); // 'charge'
 */
export function stepNameOf(checkpointName: string): string {
  return checkpointName.replace(/#\d+$/, '');
}

/** Schemas of the project's contracts, from the manifest and (optionally) the loaded contracts. */
export class ContractSchemas {
  readonly #manifest: Manifest;
  readonly #contracts: WorkflowContracts | undefined;
  readonly #validators = new Map<JsonSchema, Validator>();

  /** `manifest` as `generated/manifest.json` holds it; `contracts` from `loadWorkflowContracts`. */
  constructor(manifest: unknown, contracts?: WorkflowContracts) {
    this.#manifest = typeof manifest === 'object' && manifest !== null ? (manifest as Manifest) : {};
    this.#contracts = contracts;
  }

  /**
   * Reads the manifest at `file`; a missing file gives a catalogue without schemas, a file that is
   * not JSON an `AbsurdError` (`MANIFEST_UNREADABLE`).
   *
   * @example
   * const schemas = await ContractSchemas.load('generated/manifest.json');
   */
  static async load(file: string | undefined, contracts?: WorkflowContracts): Promise<ContractSchemas> {
    if (file === undefined || !existsSync(file)) return new ContractSchemas({}, contracts);
    let manifest: unknown;
    try {
      manifest = JSON.parse(await readFile(file, 'utf8')) as unknown;
    } catch (error) {
      throw new AbsurdError(
        'MANIFEST_UNREADABLE',
        `cannot read the manifest ${file}: ${(error as Error).message} — run \`absurd generate\`, or point --manifest at another file`,
        { cause: error },
      );
    }
    return new ContractSchemas(manifest, contracts);
  }

  /** The names of the declared tasks, sorted. */
  taskNames(): string[] {
    const names = new Set([...Object.keys(this.#manifest.tasks ?? {}), ...(this.#contracts?.tasks.keys() ?? [])]);
    return [...names].sort();
  }

  /** The names of the declared events, sorted. */
  eventNames(): string[] {
    const names = new Set([...Object.keys(this.#manifest.events ?? {}), ...(this.#contracts?.events.keys() ?? [])]);
    return [...names].sort();
  }

  /** Checks a task's stored params against its contract's params schema. */
  checkParams(taskName: string, params: unknown): Promise<SchemaCheck> {
    return this.#check(this.#task(taskName)?.params, Object.hasOwn(this.#manifest.tasks ?? {}, taskName) ? this.#manifest.tasks?.[taskName]?.params?.input : undefined, params);
  }

  /** Checks a stored checkpoint against the schema of its step (by the step name, `#n` removed). */
  checkStep(taskName: string, checkpointName: string, value: unknown): Promise<SchemaCheck> {
    const step = stepNameOf(checkpointName);
    const contractSteps = this.#task(taskName)?.steps as Record<string, StandardSchemaV1> | undefined;
    const contractSchema = contractSteps && Object.hasOwn(contractSteps, step) ? contractSteps[step] : undefined;
    const manifestSteps = this.#manifest.tasks?.[taskName]?.steps;
    const manifestSchema = manifestSteps && Object.hasOwn(manifestSteps, step) ? manifestSteps[step]?.input : undefined;
    return this.#check(contractSchema, manifestSchema, value);
  }

  /** The event `name` refers to: a declared event by its full name, or `<declared>:<key>`. */
  eventTarget(name: string): EventTarget {
    const lookup = (candidate: string, key: string | undefined): EventTarget | undefined => {
      const contract = this.#contracts?.events.get(candidate);
      const events = this.#manifest.events ?? {};
      const schema = Object.hasOwn(events, candidate) ? (events[candidate]?.payload?.input ?? undefined) : undefined;
      if (!contract && !Object.hasOwn(events, candidate)) return undefined;
      return { contractName: candidate, ...(key === undefined ? {} : { key }), ...(contract ? { contract } : {}), ...(schema ? { schema } : {}) };
    };
    const exact = lookup(name, undefined);
    if (exact) return exact;
    const colon = name.indexOf(':');
    return (colon > 0 ? lookup(name.slice(0, colon), name.slice(colon + 1)) : undefined) ?? {};
  }

  /** Checks an event payload against the schema of the event `name` refers to. */
  checkEvent(name: string, payload: unknown): Promise<SchemaCheck> {
    const target = this.eventTarget(name);
    return this.#check(target.contract?.payload, target.schema, payload);
  }

  #task(taskName: string): TaskContract | undefined {
    return this.#contracts?.tasks.get(taskName);
  }

  async #check(standard: unknown, jsonSchema: JsonSchema | null | undefined, value: unknown): Promise<SchemaCheck> {
    const validator = (standard as Partial<StandardSchemaV1> | undefined)?.['~standard'];
    if (validator && typeof validator.validate === 'function') {
      const result = await validator.validate(value);
      if (!result.issues) return { status: 'valid', source: 'contract', issues: [] };
      return {
        status: 'invalid',
        source: 'contract',
        issues: result.issues.map((issue) => {
          const path = (issue.path ?? []).map((p) => String(typeof p === 'object' && p !== null ? p.key : p)).join('.');
          return `${path || '(value)'}: ${issue.message}`;
        }),
      };
    }
    if (jsonSchema === undefined || jsonSchema === null) return UNCHECKED;
    let compiled = this.#validators.get(jsonSchema);
    if (!compiled) {
      compiled = new Validator(jsonSchema, '2020-12', false);
      this.#validators.set(jsonSchema, compiled);
    }
    const result = compiled.validate(value);
    if (result.valid) return { status: 'valid', source: 'manifest', issues: [] };
    // The validator reports every failing keyword up the tree; the innermost ones say the most.
    const innermost = result.errors.filter(
      (e) => !result.errors.some((other) => other !== e && other.keywordLocation.startsWith(`${e.keywordLocation}/`)),
    );
    const lines = innermost.map((e) => `${e.instanceLocation.replace(/^#\/?/, '').replaceAll('/', '.') || '(value)'}: ${e.error}`);
    return { status: 'invalid', source: 'manifest', issues: [...new Set(lines)] };
  }
}
