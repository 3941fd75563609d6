/**
 * Emits `manifest.json`: the JSON Schema of every task's params, result and steps and of every
 * event's payload, and every declared schedule — the contract shared with services in other languages, the dashboard and the
 * compatibility check (see docs/manifest.md).
 */
import type { JsonObject, JsonValue } from 'absurd-kit';
import { JSON_SCHEMA_DIALECT, type SchemaPair } from './json-schema.js';
import type { ContractModel, EventModel, ScheduleModel, TaskModel } from './model.js';

/** Bumped when the manifest's own layout changes. */
export const MANIFEST_FORMAT = 1;

/** A task entry of the manifest (keyed by task name). */
export interface ManifestTask {
  queue: string;
  version: number;
  export: { module: string; name: string };
  defaults: JsonObject;
  params: SchemaPair;
  result: SchemaPair;
  steps: Record<string, SchemaPair>;
}

/** An event entry of the manifest (keyed by event name). */
export interface ManifestEvent {
  version: number;
  export: { module: string; name: string };
  payload: SchemaPair;
}

/** A schedule entry of the manifest (keyed by schedule name). */
export interface ManifestSchedule {
  task: string;
  queue: string;
  cron: string;
  timezone: string;
  catchUp: string;
  export: { module: string; name: string };
  params: JsonValue;
  options: JsonObject;
}

/** The whole manifest. */
export interface Manifest {
  generatedBy: 'absurd generate';
  format: number;
  jsonSchemaDialect: string;
  tasks: Record<string, ManifestTask>;
  events: Record<string, ManifestEvent>;
  /** Absent from manifests written before schedules existed. */
  schedules?: Record<string, ManifestSchedule>;
}

/**
 * The manifest of `model`. Tasks, events, schedules and steps are in name order; each schema keeps the order
 * its validator gives it (the order of the fields in the source).
 *
 * @example
 * const manifest = buildManifest(model); // manifest.tasks['order-fulfillment'].params.input
 */
export function buildManifest(model: ContractModel): Manifest {
  return {
    generatedBy: 'absurd generate',
    format: MANIFEST_FORMAT,
    jsonSchemaDialect: JSON_SCHEMA_DIALECT,
    tasks: Object.fromEntries(model.tasks.map((task) => [task.name, manifestTask(task)])),
    events: Object.fromEntries(model.events.map((event) => [event.name, manifestEvent(event)])),
    schedules: Object.fromEntries(model.schedules.map((schedule) => [schedule.name, manifestSchedule(schedule)])),
  };
}

function manifestSchedule(schedule: ScheduleModel): ManifestSchedule {
  return {
    task: schedule.task,
    queue: schedule.queue,
    cron: schedule.cron,
    timezone: schedule.timezone,
    catchUp: schedule.catchUp,
    export: { module: schedule.module, name: schedule.exportName },
    params: schedule.params,
    options: schedule.options,
  };
}

function manifestTask(task: TaskModel): ManifestTask {
  return {
    queue: task.queue,
    version: task.version,
    export: { module: task.module, name: task.exportName },
    defaults: task.defaults,
    params: task.params,
    result: task.result,
    steps: Object.fromEntries(task.steps.map((step) => [step.name, step.schema])),
  };
}

function manifestEvent(event: EventModel): ManifestEvent {
  return { version: event.version, export: { module: event.module, name: event.exportName }, payload: event.payload };
}

/**
 * The manifest as file contents: two-space JSON with a final newline.
 *
 * @example
 * serializeManifest(buildManifest(model)).endsWith('}\n'); // true
 */
export function serializeManifest(manifest: Manifest): string {
  return `${JSON.stringify(manifest as unknown as JsonValue, null, 2)}\n`;
}
