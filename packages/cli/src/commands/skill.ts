/**
 * `absurd install-skill`: writes `<dir>/absurd/SKILL.md`, a short guide to absurd-kit for coding
 * assistants that read skills from `.agents/skills`.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { EXIT, type CommandSpec } from '../cli-command.js';
import { booleanFlag } from '../cli-flags.js';

/** The default skills directory, relative to the working directory. */
export const DEFAULT_SKILLS_DIR = '.agents/skills';

/** The text of SKILL.md. */
export const SKILL_MARKDOWN = `---
name: absurd
description: Durable tasks on PostgreSQL with absurd-kit — contracts, workers, steps, sleeps, events, child tasks and the absurd CLI.
---

# absurd-kit

absurd-kit runs durable tasks with nothing but PostgreSQL. A task is split into **steps** whose
results are checkpointed; when a worker crashes or the task sleeps, the task runs again from the
top and every finished step returns its stored result instead of running again. The engine is the
\`absurd\` schema (stored procedures), compatible with Absurd's Python, Go and TypeScript SDKs.

## Contracts live in \`workflows/\`

Declare each task and event once, with schemas, in a module under \`workflows/\` (re-exported from
\`workflows/index.ts\`). Contracts hold names and schemas only, so any service can import them.

\`\`\`ts
import { z } from 'zod';
import { defineEvent, defineTask } from 'absurd-kit';

export const shipmentPacked = defineEvent({
  name: 'shipment.packed',
  payload: z.object({ trackingNumber: z.string() }),
});

export const fulfillOrder = defineTask({
  name: 'order-fulfillment',
  queue: 'orders',
  params: z.object({ orderId: z.string(), amount: z.number().int().positive() }),
  result: z.object({ trackingNumber: z.string() }),
  steps: { 'process-payment': z.object({ paymentId: z.string() }) },
  defaults: { maxAttempts: 5, retryStrategy: { kind: 'exponential', baseSeconds: 2 } },
});
\`\`\`

Params, results, step results and event payloads are validated at every boundary. After changing a
contract run \`npx absurd generate\` (typed client, JSON Schema manifest, typed SQL, configured by
\`absurd.config.ts\`); CI runs \`npx absurd generate --check\` (exit 3: stale output, exit 1: a change
that breaks data already stored). Never edit \`generated/\` by hand.

## Writing a task

\`\`\`ts
const app = new Absurd({ db: process.env.ABSURD_DATABASE_URL, queueName: 'orders' });
app.registerTask(fulfillOrder, async (params, ctx) => {
  const { paymentId } = await ctx.step('process-payment', async () => ({ paymentId: await charge(params.amount) }));
  await ctx.sleepFor('cool-off', 60);                                  // durable sleep, no worker slot held
  const packed = await ctx.awaitEvent(shipmentPacked, params.orderId);  // waits for shipment.packed:<orderId>
  const child = await ctx.spawn(sendReceipt, { orderId: params.orderId, amount: params.amount, email });
  const receipt = await ctx.awaitTaskResult(child);                     // suspends until the child ends
  return { trackingNumber: packed.trackingNumber };
});
await app.startWorker({ concurrency: 8 });
\`\`\`

Rules that keep replays correct:

- Put every side effect (payments, e-mails, HTTP calls, random ids, \`Date.now()\`) inside \`ctx.step\`;
  code outside steps runs again on every replay and must be deterministic.
- Step, sleep and wait names must be stable: the same name in the same order on every run. A name
  used twice gets its own checkpoint each time (\`name\`, \`name#2\`, …).
- Step results must be JSON (and match the contract's step schema when there is one).
- \`ctx.sleepFor(name, seconds)\` / \`ctx.sleepUntil(name, date)\` and \`ctx.awaitEvent(event, key, { timeout })\`
  suspend the task; it resumes on another claim. Emit with \`app.emitEvent(event, key, payload)\`
  or \`ctx.emitEvent(...)\`; an event emitted before the wait is still seen.
- \`ctx.spawn\` is itself a step (spawned exactly once); \`ctx.awaitTaskResult\` suspends the parent.
- Long work without steps should call \`ctx.heartbeat()\` to keep its lease.
- Throwing fails the run; it is retried per \`maxAttempts\` and \`retryStrategy\`.

Spawning from outside a task: \`await app.spawn(fulfillOrder, params)\` returns a handle;
\`await app.awaitTaskResult(handle, { timeout: 60 })\` returns a snapshot with \`state\` and \`result\`.

## The \`absurd\` CLI

Every command has \`--help\`, most have \`--json\`; exit codes: 0 ok, 1 failure, 2 usage.
The database comes from \`--database-url\`, then \`ABSURD_DATABASE_URL\`, then \`PGDATABASE\`.

\`\`\`sh
npx absurd dev                       # embedded Postgres for this project, schema applied, URL printed
npx absurd init | migrate | schema-version
npx absurd queue create orders [--storage-mode partitioned]
npx absurd queue list | queue policy orders [--cleanup-ttl "30 days"] | queue drop orders --yes
npx absurd schedules sync | schedules list | schedules pause <name> | schedules resume <name>
npx absurd schedules add nightly --task send-report -q reports --cron "0 2 * * *" --timezone Europe/Berlin
npx absurd spawn order-fulfillment -q orders -P orderId=o-1 -P amount:=42
npx absurd emit shipment.packed:o-1 -q orders --payload '{"trackingNumber":"T1"}'
npx absurd tasks list --state failed | tasks show <task-id> | cancel <task-id> | retry <task-id>
npx absurd cleanup orders 30         # delete tasks that ended and events older than 30 days
npx absurd partitions ensure | partitions candidates --show-sql | partitions detach <table> --drop
npx absurd cron --enable             # pg_cron jobs for partitions, cleanup and detaching
\`\`\`

When a task misbehaves, \`absurd tasks show <task-id>\` prints its params, runs, checkpoints, waits
and failure; fix the code and \`absurd retry <task-id>\` resumes from the last checkpoint.
`;

/** `absurd install-skill`. */
export const installSkillCommand: CommandSpec = {
  name: 'install-skill',
  summary: `Write a guide to absurd-kit for coding assistants to [dir]/absurd/SKILL.md (default ${DEFAULT_SKILLS_DIR})`,
  description:
    `Writes absurd/SKILL.md under [dir] (default ${DEFAULT_SKILLS_DIR}): how to declare contracts, write tasks ` +
    'with steps, sleeps, events and child tasks, and use this CLI. An existing file is kept unless --force is given.',
  args: [{ name: 'dir', required: false }],
  flags: [
    { name: 'force', description: 'Overwrite an existing SKILL.md' },
    { name: 'json', description: 'Print one JSON object instead of text lines' },
  ],
  async run(context) {
    const file = path.resolve(context.positionals[0] ?? DEFAULT_SKILLS_DIR, 'absurd', 'SKILL.md');
    const existed = existsSync(file);
    if (existed && !booleanFlag(context, 'force')) {
      throw new Error(`${file} already exists; pass --force to overwrite it`);
    }
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, SKILL_MARKDOWN);
    if (booleanFlag(context, 'json')) context.print(JSON.stringify({ path: file, overwritten: existed }));
    else context.print(`${existed ? 'overwrote' : 'wrote'} ${file}`);
    return EXIT.ok;
  },
};

/** The install-skill command. */
export const skillCommands: readonly CommandSpec[] = [installSkillCommand];
