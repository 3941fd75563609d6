/**
 * Producing work from the command line: `spawn` and `emit`, through the runtime's client (which
 * also wakes the queue's workers). When the workflows directory declares the task or event, the
 * client checks the params or payload against its contract (nothing is written when they do not
 * match), and the contract supplies the queue and the spawn defaults.
 */
import {
  ValidationError,
  validateQueueName,
  type EventContract,
  type JsonValue,
  type RetryStrategy,
  type SpawnOptions,
  type SpawnResult,
  type TaskContract,
} from 'absurd-kit';
import { UsageError } from '../cli-args.js';
import { EXIT, type CommandContext, type CommandSpec } from '../cli-command.js';
import { engineClient, oneRow, requireQueue, runStatement, withEngine } from '../cli-database.js';
import { booleanFlag, choiceFlag, integerFlag, numberFlag, stringFlag } from '../cli-flags.js';
import { formatTime, jsonTime } from '../cli-format.js';
import { assignParams, jsonFromFlags } from '../json-input.js';
import { emittedEventStatement } from '../queries/events.queries.js';
import { loadWorkflowContracts } from '../workflow-contracts.js';

const jsonFlag = { name: 'json', description: 'Print one JSON object instead of text lines' } as const;
const workflowsFlag = {
  name: 'workflows',
  value: 'dir',
  description: 'Where the contracts are (default workflows/): index.ts, or every .ts file in it',
} as const;
const paramFlag = {
  name: 'param',
  short: 'P',
  value: 'key=value',
  repeatable: true,
  description: 'Set a field: key=text or key:=json; dotted keys nest (customer.email=a@b.c)',
} as const;

/** Prints a validation failure with every issue, so that all of them can be fixed at once. */
function reportValidation(context: CommandContext, command: string, error: ValidationError): number {
  const write = (line: string) => context.io.stderr.write(`${line}\n`);
  write(`absurd ${command}: ${error.message}`);
  write(`${error.issues.length} issue(s) against the contract of ${JSON.stringify(error.subject)}; nothing was written:`);
  for (const issue of error.issues) write(`  ${error.boundary}${issue.path ? `.${issue.path}` : ''}: ${issue.message}`);
  return EXIT.failure;
}

/** Spawn options from the command line; unset ones stay undefined so that contract defaults apply. */
function spawnOptions(context: CommandContext): SpawnOptions {
  const options: SpawnOptions = {};
  const maxAttempts = integerFlag(context, 'max-attempts', { min: 1 });
  if (maxAttempts !== undefined) options.maxAttempts = maxAttempts;
  const kind = choiceFlag(context, 'retry-kind', ['fixed', 'exponential', 'none']);
  const baseSeconds = numberFlag(context, 'retry-base');
  const factor = numberFlag(context, 'retry-factor');
  const maxSeconds = numberFlag(context, 'retry-max');
  if (kind !== undefined || baseSeconds !== undefined || factor !== undefined || maxSeconds !== undefined) {
    // As in absurdctl: any retry setting without a kind means exponential backoff.
    const strategy: RetryStrategy = { kind: kind ?? 'exponential' };
    if (baseSeconds !== undefined) strategy.baseSeconds = baseSeconds;
    if (factor !== undefined) strategy.factor = factor;
    if (maxSeconds !== undefined) strategy.maxSeconds = maxSeconds;
    options.retryStrategy = strategy;
  }
  // The engine casts these to bigint, so they must be whole seconds.
  const maxDuration = integerFlag(context, 'max-duration', { min: 1 });
  const maxDelay = integerFlag(context, 'max-delay', { min: 1 });
  if (maxDuration !== undefined || maxDelay !== undefined) {
    options.cancellation = {};
    if (maxDuration !== undefined) options.cancellation.maxDuration = maxDuration;
    if (maxDelay !== undefined) options.cancellation.maxDelay = maxDelay;
  }
  const headers = context.lists.header ?? [];
  if (headers.length > 0) options.headers = assignParams({}, headers, '-H');
  const idempotencyKey = stringFlag(context, 'idempotency-key');
  if (idempotencyKey !== undefined) options.idempotencyKey = idempotencyKey;
  const priority = integerFlag(context, 'priority', { min: -2147483648, max: 2147483647 });
  if (priority !== undefined) options.priority = priority;
  return options;
}

/** The queue of a contract, refusing a different `-q`. */
function contractQueue(kind: string, contract: TaskContract, requested: string | undefined): string {
  if (requested !== undefined && requested !== contract.queue) {
    throw new Error(
      `${kind} ${JSON.stringify(contract.name)} is declared for queue ${JSON.stringify(contract.queue)}; ` +
        `-q ${JSON.stringify(requested)} does not match (leave -q out to use the declared queue)`,
    );
  }
  return contract.queue;
}

/** `absurd spawn`. */
export const spawnCommand: CommandSpec = {
  name: 'spawn',
  summary: 'Spawn a task (validated against its contract when workflows/ declares it)',
  description:
    'Spawns a task with params from --params (a JSON object) and -P key=value / key:=json. When the workflows ' +
    "directory declares the task, its contract checks the params (nothing is written when they do not match) and " +
    'gives the queue and the default attempts, retry strategy and cancellation policy. Otherwise the queue is -q ' +
    '(default "default") and attempts are unlimited unless --max-attempts says. Any retry flag without ' +
    '--retry-kind means exponential backoff.',
  args: [{ name: 'task', required: true }],
  flags: [
    { name: 'queue', short: 'q', value: 'queue', description: 'Queue (default: the contract\'s, else "default")' },
    { name: 'params', value: 'json', description: 'Params as JSON (the base object for -P)' },
    paramFlag,
    { name: 'header', short: 'H', value: 'key=value', repeatable: true, description: 'Set a header (repeatable)' },
    { name: 'max-attempts', value: 'n', description: 'Total attempts allowed (default: contract, else unlimited)' },
    { name: 'retry-kind', value: 'kind', description: 'fixed, exponential or none' },
    { name: 'retry-base', value: 'seconds', description: 'Retry delay (fixed) or first delay (exponential)' },
    { name: 'retry-factor', value: 'f', description: 'Growth factor of exponential delays' },
    { name: 'retry-max', value: 'seconds', description: 'Longest retry delay' },
    { name: 'max-duration', value: 'seconds', description: 'Cancel the task when it runs longer than this since its first start' },
    { name: 'max-delay', value: 'seconds', description: 'Cancel the task when it has not started this long after the spawn' },
    { name: 'idempotency-key', value: 'key', description: 'Spawn at most one task per key and queue' },
    { name: 'priority', value: 'n', description: 'Claim priority (an integer, default 0): higher runs are claimed first' },
    workflowsFlag,
    jsonFlag,
  ],
  async run(context) {
    const taskName = context.positionals[0] ?? '';
    if (taskName.trim() === '') throw new UsageError('the task name must not be empty');
    const params = jsonFromFlags('--params', stringFlag(context, 'params'), context.lists.param ?? [], '-P');
    const options = spawnOptions(context);
    const requested = stringFlag(context, 'queue');
    const { tasks } = await loadWorkflowContracts(stringFlag(context, 'workflows'));
    const contract = tasks.get(taskName);
    const queue = validateQueueName(contract ? contractQueue('task', contract, requested) : (requested ?? 'default'));
    // What is not given on the command line comes from the contract, else stays unset: the
    // engine's defaults apply (unlimited attempts, as with absurdctl), not the client's 5.
    const maxAttempts = options.maxAttempts ?? contract?.defaults.maxAttempts;
    let row: SpawnResult;
    try {
      row = await withEngine(context, async (db) => {
        await requireQueue(db, queue);
        const client = engineClient(db, { hooks: { beforeSpawn: (_name, _params, resolved) => ({ ...resolved, maxAttempts }) } });
        // By contract, the client checks the params first (checked, not transformed: the input
        // form is stored and parsed again by the worker) and fills in the contract's defaults.
        return contract ? client.spawn(contract, params, options) : client.spawn(taskName, params, { ...options, queue });
      });
    } catch (error) {
      if (error instanceof ValidationError) return reportValidation(context, 'spawn', error);
      throw error;
    }
    const result = { queue, taskName, taskID: row.taskID, runID: row.runID, attempt: row.attempt, created: row.created, validated: !!contract };
    if (booleanFlag(context, 'json')) {
      context.print(JSON.stringify(result));
    } else if (row.created) {
      context.print(`spawned task ${row.taskID} (${JSON.stringify(taskName)} on queue ${JSON.stringify(queue)})`);
      context.print(`run ${row.runID}, attempt ${row.attempt}${contract ? '; params match the contract' : ''}`);
    } else {
      context.print(
        `task ${row.taskID} already exists for idempotency key ${JSON.stringify(options.idempotencyKey)} on queue ${JSON.stringify(queue)}; nothing spawned`,
      );
      context.print(`run ${row.runID}, attempt ${row.attempt}`);
    }
    return EXIT.ok;
  },
};

/** The event contract for a name, also for `name:key` written as one word. */
function findEvent(events: ReadonlyMap<string, EventContract>, name: string, key: string | undefined) {
  const exact = events.get(name);
  if (exact) return { contract: exact, key };
  const colon = name.indexOf(':');
  if (key === undefined && colon > 0) {
    const prefixed = events.get(name.slice(0, colon));
    if (prefixed) return { contract: prefixed, key: name.slice(colon + 1) };
  }
  return { contract: undefined, key };
}

/** `absurd emit`. */
export const emitCommand: CommandSpec = {
  name: 'emit',
  summary: 'Emit an event on a queue (validated against its contract when workflows/ declares it)',
  description:
    'Emits an event with a payload from --payload (JSON) and -P key=value / key:=json (no payload: null). ' +
    'With --key the event is <event>:<key>, the form contracts use (`shipment.packed:A-1`). When the workflows ' +
    'directory declares the event, its contract checks the payload first. Events are first-write-wins: emitting ' +
    'one again changes nothing and says so.',
  args: [{ name: 'event', required: true }],
  flags: [
    { name: 'queue', short: 'q', value: 'queue', description: 'Queue (default "default")' },
    { name: 'payload', value: 'json', description: 'Payload as JSON (the base object for -P)' },
    paramFlag,
    { name: 'key', value: 'key', description: 'Address the event as <event>:<key>' },
    workflowsFlag,
    jsonFlag,
  ],
  async run(context) {
    const name = context.positionals[0] ?? '';
    if (name.trim() === '') throw new UsageError('the event name must not be empty');
    const payloadText = stringFlag(context, 'payload');
    const assignments = context.lists.param ?? [];
    const payload: JsonValue =
      payloadText === undefined && assignments.length === 0 ? null : jsonFromFlags('--payload', payloadText, assignments, '-P');
    const queue = validateQueueName(stringFlag(context, 'queue') ?? 'default');
    const { events } = await loadWorkflowContracts(stringFlag(context, 'workflows'));
    const found = findEvent(events, name, stringFlag(context, 'key'));
    const eventName = found.contract
      ? found.contract.eventName(found.key)
      : found.key === undefined
        ? name
        : `${name}:${found.key}`;
    let earlier: Date | undefined;
    try {
      earlier = await withEngine(context, async (db) => {
        await requireQueue(db, queue);
        // Only to tell the operator: emit_event itself keeps the first payload either way.
        const { statement } = oneRow(await emittedEventStatement.run({ queueName: queue }, db), 'EmittedEventStatement');
        const [emitted] = await runStatement<{ emitted_at: Date }>(db, statement, [eventName]);
        // Emitted again all the same, so that a contract still checks the payload (an invalid one is
        // refused, exit 1, whether or not the event was emitted before); the engine keeps the first.
        const client = engineClient(db);
        if (found.contract) await client.emitEvent(found.contract, found.key, payload, queue);
        else await client.emitEvent(eventName, payload, queue);
        return emitted?.emitted_at;
      });
    } catch (error) {
      if (error instanceof ValidationError) return reportValidation(context, 'emit', error);
      throw error;
    }
    if (booleanFlag(context, 'json')) {
      context.print(
        JSON.stringify({ queue, event: eventName, emitted: earlier === undefined, emittedBefore: jsonTime(earlier), validated: !!found.contract }),
      );
    } else if (earlier === undefined) {
      context.print(`emitted event ${JSON.stringify(eventName)} on queue ${JSON.stringify(queue)}`);
    } else {
      context.print(
        `event ${JSON.stringify(eventName)} was already emitted on queue ${JSON.stringify(queue)} at ${formatTime(earlier)}; ` +
          'events are first-write-wins, so its payload stays as it was',
      );
    }
    return EXIT.ok;
  },
};

/** Both producing commands. */
export const spawnCommands: readonly CommandSpec[] = [spawnCommand, emitCommand];
