/**
 * The model every output is emitted from: tasks, events and schedules in a fixed order, with their JSON
 * Schemas and the TypeScript names the client gives them.
 */
import type { JsonObject, JsonValue } from 'absurd-kit';
import { schemaPair, type SchemaPair } from './json-schema.js';
import type { LoadedContract } from './load-contracts.js';
import { GenerateError, type GenerateProblem } from './problems.js';

/** Where a contract comes from: its export and file. */
export interface ContractOrigin {
  /** Export name, also the key of the generated client (`client.fulfillOrder`). */
  readonly exportName: string;
  /** Declaring file relative to the workflows folder (`orders.ts`). */
  readonly module: string;
  /** Declaring file relative to the project root, and the line of the call (for messages). */
  readonly file: string;
  readonly line: number;
  /** Base of the generated type names (`FulfillOrder`). */
  readonly typeName: string;
}

/** A step of a task. */
export interface StepModel {
  readonly name: string;
  readonly schema: SchemaPair;
  /** `FulfillOrderProcessPaymentStep`. */
  readonly typeName: string;
}

/** A task contract. */
export interface TaskModel extends ContractOrigin {
  readonly name: string;
  readonly queue: string;
  readonly version: number;
  readonly defaults: JsonObject;
  readonly params: SchemaPair;
  readonly result: SchemaPair;
  /** Sorted by name. */
  readonly steps: readonly StepModel[];
}

/** An event contract. */
export interface EventModel extends ContractOrigin {
  readonly name: string;
  readonly version: number;
  readonly payload: SchemaPair;
}

/** A schedule declared with `defineSchedule`: which task it spawns, when, with which params. */
export interface ScheduleModel extends ContractOrigin {
  readonly name: string;
  /** The task name and queue of the schedule's task. */
  readonly task: string;
  readonly queue: string;
  readonly cron: string;
  readonly timezone: string;
  readonly catchUp: string;
  readonly params: JsonValue;
  /** Spawn options as declared (camelCase), keys sorted. */
  readonly options: JsonObject;
}

/** Everything `absurd generate` emits from. */
export interface ContractModel {
  /** Sorted by name. */
  readonly tasks: readonly TaskModel[];
  /** Sorted by name. */
  readonly events: readonly EventModel[];
  /** Sorted by name. The client declares nothing for them; the manifest lists them. */
  readonly schedules: readonly ScheduleModel[];
}

/** Names the generated client declares itself; a contract exported under one of them would clash. */
export const RESERVED_NAMES: readonly string[] = [
  'Absurd',
  'AwaitTaskResultOptions',
  'Client',
  'EventClient',
  'EventContract',
  'Events',
  'FetchTaskResultOptions',
  'Input',
  'Output',
  'ParamsOf',
  'PayloadOf',
  'ResultOf',
  'SpawnOptions',
  'StepsOf',
  'TaskClient',
  'TaskContract',
  'TaskHandle',
  'TaskID',
  'Tasks',
  'TypedTaskResultSnapshot',
  'createClient',
  'eventClient',
  'taskClient',
  'taskHandle',
];

/**
 * Builds the model from the loaded contracts. Throws a {@link GenerateError} when two generated
 * names would clash.
 *
 * @example
 * const model = await buildModel(await loadContracts(root, discovered));
 */
export async function buildModel(contracts: readonly LoadedContract[]): Promise<ContractModel> {
  const tasks: TaskModel[] = [];
  const events: EventModel[] = [];
  const schedules: ScheduleModel[] = [];
  for (const { source, value } of contracts) {
    const origin: ContractOrigin = {
      exportName: source.exportName,
      module: source.module,
      file: source.file,
      line: source.line,
      typeName: pascalCase(source.exportName),
    };
    if (source.kind === 'task' && value.kind === 'absurd.task') {
      tasks.push({
        ...origin,
        name: value.name,
        queue: value.queue,
        version: value.version,
        defaults: sortKeys(JSON.parse(JSON.stringify(value.defaults)) as JsonValue) as JsonObject,
        params: await schemaPair(value.params),
        result: await schemaPair(value.result),
        steps: await Promise.all(
          Object.keys(value.steps)
            .sort()
            .map(async (step) => ({
              name: step,
              schema: await schemaPair(value.steps[step]!),
              typeName: `${origin.typeName}${pascalCase(step)}Step`,
            })),
        ),
      });
    } else if (value.kind === 'absurd.event') {
      events.push({ ...origin, name: value.name, version: value.version, payload: await schemaPair(value.payload) });
    } else if (value.kind === 'absurd.schedule') {
      schedules.push({
        ...origin,
        name: value.name,
        task: value.task.name,
        queue: value.queue,
        cron: value.cron,
        timezone: value.timezone,
        catchUp: value.catchUp,
        params: sortKeys(JSON.parse(JSON.stringify(value.params ?? null)) as JsonValue),
        options: sortKeys(JSON.parse(JSON.stringify(value.options)) as JsonValue) as JsonObject,
      });
    }
  }
  const byName = <T extends { name: string }>(a: T, b: T) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  const model = { tasks: tasks.sort(byName), events: events.sort(byName), schedules: schedules.sort(byName) };
  checkNames(model);
  return model;
}

/** Every identifier the client declares for `model`, with the contract it belongs to. */
function generatedNames(model: ContractModel): Array<[string, ContractOrigin]> {
  return [
    ...model.tasks.flatMap((t): Array<[string, ContractOrigin]> => [
      [t.exportName, t],
      [`${t.typeName}Params`, t],
      [`${t.typeName}Result`, t],
      ...t.steps.map((s): [string, ContractOrigin] => [s.typeName, t]),
    ]),
    ...model.events.flatMap((e): Array<[string, ContractOrigin]> => [
      [e.exportName, e],
      [`${e.typeName}Payload`, e],
    ]),
  ];
}

function checkNames(model: ContractModel): void {
  const problems: GenerateProblem[] = [];
  const seen = new Map<string, ContractOrigin>();
  for (const [name, origin] of generatedNames(model)) {
    const at = (message: string) => problems.push({ file: origin.file, line: origin.line, message });
    const first = seen.get(name);
    if (RESERVED_NAMES.includes(name)) {
      at(`the generated client would declare "${name}", which it uses itself; rename the export "${origin.exportName}"`);
    } else if (first) {
      at(
        first === origin
          ? `two steps of "${origin.exportName}" get the same type name "${name}"; rename one of them`
          : `the generated client would declare "${name}" for both this contract and the one at ${first.file}:${first.line}; rename one export`,
      );
    } else {
      seen.set(name, origin);
    }
  }
  if (problems.length > 0) throw new GenerateError(problems);
}

/**
 * `fulfillOrder` → `FulfillOrder`, `process-payment` → `ProcessPayment`, `2fa.check` → `2faCheck`.
 *
 * @example
 * pascalCase('shipment.packed'); // 'ShipmentPacked'
 */
export function pascalCase(text: string): string {
  return text
    .split(/[^A-Za-z0-9]+/)
    .filter((part) => part !== '')
    .map((part) => part[0]!.toUpperCase() + part.slice(1))
    .join('');
}

/** A copy of `value` with every object's keys in sorted order. */
export function sortKeys(value: JsonValue): JsonValue {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((key) => [key, sortKeys(value[key]!)]),
  );
}
