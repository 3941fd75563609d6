/**
 * The names absurd-kit's spans and metrics use for their attributes: OpenTelemetry's messaging
 * conventions where they fit (`messaging.*`), the `absurd.` prefix otherwise. docs/observability.md
 * explains each; they are part of the public contract of the telemetry, so rename none.
 */

/** Attribute keys shared by spans and metrics. */
export const ATTR = {
  system: 'messaging.system',
  destination: 'messaging.destination.name',
  operationType: 'messaging.operation.type',
  operationName: 'messaging.operation.name',
  messageId: 'messaging.message.id',
  taskName: 'absurd.task.name',
  taskID: 'absurd.task.id',
  runID: 'absurd.run.id',
  attempt: 'absurd.run.attempt',
  outcome: 'absurd.run.outcome',
  wakeEvent: 'absurd.run.wake_event',
  created: 'absurd.task.created',
  spawnCount: 'absurd.spawn.count',
  stepName: 'absurd.step.name',
  checkpointName: 'absurd.checkpoint.name',
  replayed: 'absurd.step.replayed',
  eventName: 'absurd.event.name',
  waitOutcome: 'absurd.wait.outcome',
  wakeAt: 'absurd.sleep.wake_at',
  awaitedTaskID: 'absurd.await.task_id',
  validationBoundary: 'absurd.validation.boundary',
  validationField: 'absurd.validation.field',
  validationSubject: 'absurd.validation.subject',
  validationDetail: 'absurd.validation.detail',
  failureReason: 'absurd.failure.reason',
  workerID: 'absurd.worker.id',
} as const;

/** `messaging.system` of every span and metric. */
export const MESSAGING_SYSTEM = 'absurd';

/** How a run of a task ended, as `absurd.run.outcome` says it. */
export type RunOutcome = 'completed' | 'failed' | 'suspended' | 'cancelled' | 'lost' | 'deferred';
