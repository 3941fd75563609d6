import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { CONTRACT_QUEUE } from './fixtures/workflows/tasks.js';
import { cli, cliJson, uniqueQueue } from './helpers.js';

const db = useTestDatabase();
const d = () => ['--database-url', db.url];
const fixtures = fileURLToPath(new URL('./fixtures/workflows', import.meta.url));
const broken = fileURLToPath(new URL('./fixtures/broken-workflows', import.meta.url));

interface Spawned {
  queue: string;
  taskName: string;
  taskID: string;
  runID: string;
  attempt: number;
  created: boolean;
  validated: boolean;
}

async function newQueue(): Promise<string> {
  const queue = uniqueQueue('spawn');
  expect((await cli(['queue', 'create', queue, ...d()])).code).toBe(0);
  return queue;
}

async function taskRow(queue: string, taskID: string) {
  const { rows } = await db.pool.query(
    `select task_name, params, headers, retry_strategy, max_attempts, cancellation, idempotency_key, state
       from absurd."t_${queue.replaceAll('"', '""')}" where task_id = $1`,
    [taskID],
  );
  return rows[0] as Record<string, unknown> | undefined;
}

async function taskCount(queue: string): Promise<number> {
  const { rows } = await db.pool.query(`select count(*)::int as n from absurd."t_${queue.replaceAll('"', '""')}"`);
  return rows[0]?.n as number;
}

describe('absurd spawn (no contract)', () => {
  it('builds params from --params, -P key=value, -P key:=json and dotted paths; headers from -H', async () => {
    const queue = await newQueue();
    const spawned = await cliJson<Spawned>([
      'spawn', 'send-invoice', '-q', queue,
      '--params', '{"invoice": {"id": "I-1"}, "copies": 1}',
      '-P', 'customer.email=a@example.com', '-P', 'customer.vip:=true', '-P', 'copies:=2', '-P', 'lines:=[1, 2]',
      '-P', 'note=a=b', '-H', 'trace=abc', '-H', 'tenant=acme', ...d(),
    ]);
    expect(spawned).toMatchObject({ queue, taskName: 'send-invoice', attempt: 1, created: true, validated: false });
    expect(await taskRow(queue, spawned.taskID)).toEqual({
      task_name: 'send-invoice',
      params: { invoice: { id: 'I-1' }, copies: 2, customer: { email: 'a@example.com', vip: true }, lines: [1, 2], note: 'a=b' },
      headers: { trace: 'abc', tenant: 'acme' },
      retry_strategy: null,
      max_attempts: null, // absurdctl's default: unlimited
      cancellation: null,
      idempotency_key: null,
      state: 'pending',
    });
    const { rows } = await db.pool.query(`select state, attempt from absurd."r_${queue}" where run_id = $1`, [spawned.runID]);
    expect(rows[0]).toEqual({ state: 'pending', attempt: 1 });
  });

  it('prints the task, run and attempt as text', async () => {
    const queue = await newQueue();
    const result = await cli(['spawn', 'noop', '-q', queue, ...d()]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^spawned task [0-9a-f-]{36} \\("noop" on queue "${queue}"\\)\\nrun [0-9a-f-]{36}, attempt 1\\n$`));
  });

  it.each([
    [['--retry-base', '5', '--retry-max', '60'], { kind: 'exponential', base_seconds: 5, max_seconds: 60 }],
    [['--retry-factor', '1.5'], { kind: 'exponential', factor: 1.5 }],
    [['--retry-kind', 'fixed', '--retry-base', '0'], { kind: 'fixed', base_seconds: 0 }],
    [['--retry-kind', 'none'], { kind: 'none' }],
  ])('retry flags %j store %j (a retry flag without a kind means exponential)', async (flags, strategy) => {
    const queue = await newQueue();
    const spawned = await cliJson<Spawned>(['spawn', 'flaky', '-q', queue, ...flags, ...d()]);
    expect((await taskRow(queue, spawned.taskID))?.retry_strategy).toEqual(strategy);
  });

  it('stores --max-attempts, --max-duration and --max-delay', async () => {
    const queue = await newQueue();
    const spawned = await cliJson<Spawned>(['spawn', 'slow', '-q', queue, '--max-attempts', '3', '--max-duration', '600', '--max-delay', '30', ...d()]);
    expect(await taskRow(queue, spawned.taskID)).toMatchObject({ max_attempts: 3, cancellation: { max_duration: 600, max_delay: 30 } });
  });

  it('--idempotency-key spawns once and says so the second time', async () => {
    const queue = await newQueue();
    const first = await cliJson<Spawned>(['spawn', 'once', '-q', queue, '--idempotency-key', 'k-1', ...d()]);
    const again = await cli(['spawn', 'once', '-q', queue, '--idempotency-key', 'k-1', ...d()]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`task ${first.taskID} already exists for idempotency key "k-1" on queue "${queue}"; nothing spawned`);
    const json = await cliJson<Spawned>(['spawn', 'once', '-q', queue, '--idempotency-key', 'k-1', ...d()]);
    expect(json).toMatchObject({ taskID: first.taskID, created: false });
    expect(await taskCount(queue)).toBe(1);
  });

  it('uses queue "default" when neither -q nor a contract names one', async () => {
    await cli(['queue', 'create', 'default', ...d()]);
    expect(await cliJson<Spawned>(['spawn', 'unlisted-task', ...d()])).toMatchObject({ queue: 'default' });
  });
});

describe('absurd spawn: bad input writes nothing', () => {
  it('malformed --params: exit 1, line and column, the text around it', async () => {
    const queue = await newQueue();
    const result = await cli(['spawn', 'x', '-q', queue, '--params', '{"orderId": "A-1", "amount": }', ...d()]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      'absurd spawn: --params is not valid JSON: expected a value, found "}" (line 1, column 30)\n' +
        '  {"orderId": "A-1", "amount": }\n' +
        '                               ^\n',
    );
    expect(await taskCount(queue)).toBe(0);
  });

  it('malformed multi-line --params points at the right line', async () => {
    const queue = await newQueue();
    const result = await cli(['spawn', 'x', '-q', queue, '--params', '{\n  "a": 1,\n  "b": [1, 2,]\n}', ...d()]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('expected a value, found "]" (line 3, column 14)\n    "b": [1, 2,]\n               ^');
    expect(await taskCount(queue)).toBe(0);
  });

  it.each([
    ['{"a": 1', "expected ',' or '}' after a property value, found the end of the text (line 1, column 8)"],
    ["{'a': 1}", 'expected a property name in double quotes, found "\'" (line 1, column 2)'],
    ['{"a": 1} x', 'unexpected "x" after the JSON value (line 1, column 10)'],
    ['"open', 'unterminated string (line 1, column 1)'],
    ['', 'expected a value, found the end of the text (line 1, column 1)'],
  ])('--params %j: %s', async (text, message) => {
    const queue = await newQueue();
    const result = await cli(['spawn', 'x', '-q', queue, '--params', text, ...d()]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`--params is not valid JSON: ${message}`);
  });

  it('malformed -P key:=json names the assignment', async () => {
    const queue = await newQueue();
    const result = await cli(['spawn', 'x', '-q', queue, '-P', 'items:=[1,', ...d()]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('-P items:=[1, is not valid JSON: expected a value, found the end of the text (line 1, column 4)');
    expect(await taskCount(queue)).toBe(0);
  });

  it.each([
    [['-P', 'novalue'], '-P "novalue": expected key=value or key:=json'],
    [['-P', 'a=1', '-P', 'a.b=2'], '-P "a.b=2": "a" is already set to a non-object value'],
    [['-P', '.a=1'], 'the key must be a name or a dotted path'],
    [['--params', '[1]', '-P', 'a=1'], '-P needs --params to be a JSON object (got an array)'],
    [['--max-attempts', '0'], '--max-attempts must be an integer >= 1, got "0"'],
    [['--retry-kind', 'linear'], '--retry-kind must be one of fixed, exponential, none; got "linear"'],
    [['--retry-base', 'soon'], '--retry-base must be a non-negative number, got "soon"'],
    [['--max-duration', '1.5'], '--max-duration must be an integer >= 1, got "1.5"'],
  ])('%j is a usage error (exit 2)', async (flags, message) => {
    const queue = await newQueue();
    const result = await cli(['spawn', 'x', '-q', queue, ...flags, ...d()]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message);
    expect(result.stderr).toContain('Usage: absurd spawn <task> [flags]');
    expect(await taskCount(queue)).toBe(0);
  });

  it('an unknown queue: exit 1 and the command that creates it', async () => {
    const result = await cli(['spawn', 'x', '-q', 'nowhere', ...d()]);
    expect(result).toEqual({ code: 1, stdout: '', stderr: 'absurd spawn: queue "nowhere" does not exist — run `absurd queue create nowhere`\n' });
  });
});

describe('absurd spawn with a contract', () => {
  it('validates params, defaults the queue and applies the contract defaults', async () => {
    await cli(['queue', 'create', CONTRACT_QUEUE, ...d()]);
    const spawned = await cliJson<Spawned>([
      'spawn', 'charge-card', '--workflows', fixtures,
      '-P', 'orderId=O-1', '-P', 'amount:=1999', '-P', 'customer.email=a@example.com', ...d(),
    ]);
    expect(spawned).toMatchObject({ queue: CONTRACT_QUEUE, created: true, validated: true });
    expect(await taskRow(CONTRACT_QUEUE, spawned.taskID)).toMatchObject({
      params: { orderId: 'O-1', amount: 1999, customer: { email: 'a@example.com' } },
      max_attempts: 7,
      retry_strategy: { kind: 'fixed', base_seconds: 9 },
      cancellation: { max_duration: 600 },
    });
    const text = await cli([
      'spawn', 'charge-card', '--workflows', fixtures, '--max-attempts', '2', '--retry-kind', 'none',
      '--params', '{"orderId": "O-2", "amount": 5, "customer": {"email": "b@example.com"}}', ...d(),
    ]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('params match the contract');
    const id = /spawned task ([0-9a-f-]{36})/.exec(text.stdout)?.[1] ?? '';
    expect(await taskRow(CONTRACT_QUEUE, id)).toMatchObject({ max_attempts: 2, retry_strategy: { kind: 'none' } });
  });

  it('prints every issue, exits 1 and writes nothing when the params do not match', async () => {
    await cli(['queue', 'create', CONTRACT_QUEUE, ...d()]);
    const before = await taskCount(CONTRACT_QUEUE);
    const result = await cli([
      'spawn', 'charge-card', '--workflows', fixtures, '-P', 'orderId=O-1', '-P', 'amount=12', '-P', 'customer.email=nope', ...d(),
    ]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    const lines = result.stderr.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^absurd spawn: charge-card: params\.amount: expected number, received "12" \(and 1 more issue\(s\)\)$/);
    expect(lines[1]).toBe('2 issue(s) against the contract of "charge-card"; nothing was written:');
    expect(lines.slice(2).map((l) => l.split(':')[0])).toEqual(['  params.amount', '  params.customer.email']);
    expect(await taskCount(CONTRACT_QUEUE)).toBe(before);
  });

  it('refuses a -q that differs from the declared queue', async () => {
    const queue = await newQueue();
    const result = await cli(['spawn', 'charge-card', '--workflows', fixtures, '-q', queue, ...d()]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`task "charge-card" is declared for queue ${JSON.stringify(CONTRACT_QUEUE)}; -q "${queue}" does not match`);
    expect(await taskCount(queue)).toBe(0);
  });

  it('reads workflows/ of the working directory by default (the example order contract)', async () => {
    await cli(['queue', 'create', 'orders', ...d()]);
    const bad = await cli(['spawn', 'order-fulfillment', '-P', 'orderId=A', '-P', 'amount=12', ...d()]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('order-fulfillment: params.amount');
    const good = await cliJson<Spawned>([
      'spawn', 'order-fulfillment', '-P', 'orderId=A', '-P', 'amount:=12', '-P', 'items:=["sku-1"]', '-P', 'email=a@example.com', ...d(),
    ]);
    expect(good).toMatchObject({ queue: 'orders', validated: true });
    expect((await taskRow('orders', good.taskID))?.max_attempts).toBe(5);
  });

  it('fails clearly when --workflows is missing or a contract file does not load', async () => {
    const missing = await cli(['spawn', 'x', '--workflows', 'no/such/dir', ...d()]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('--workflows no/such/dir: no such directory');
    const failing = await cli(['spawn', 'x', '--workflows', broken, ...d()]);
    expect(failing.code).toBe(1);
    expect(failing.stderr).toMatch(/cannot load contracts from .*broken-workflows\/index\.ts: this contracts file is broken on purpose/);
  });
});

describe('absurd emit', () => {
  async function eventRow(queue: string, name: string) {
    const { rows } = await db.pool.query(`select payload, emitted_at from absurd."e_${queue}" where event_name = $1`, [name]);
    return rows[0] as { payload: unknown; emitted_at: Date } | undefined;
  }

  it('emits an event (payload null by default), --key makes it <event>:<key>, a second emit changes nothing', async () => {
    const queue = await newQueue();
    expect(await cliJson(['emit', 'door.opened', '-q', queue, ...d()])).toMatchObject({ queue, event: 'door.opened', emitted: true });
    expect((await eventRow(queue, 'door.opened'))?.payload).toBeNull();

    const first = await cli(['emit', 'parcel.sent', '--key', 'P-1', '-q', queue, '-P', 'carrier=ups', ...d()]);
    expect(first).toEqual({ code: 0, stdout: `emitted event "parcel.sent:P-1" on queue "${queue}"\n`, stderr: '' });
    const stored = await eventRow(queue, 'parcel.sent:P-1');
    expect(stored?.payload).toEqual({ carrier: 'ups' });

    const again = await cli(['emit', 'parcel.sent:P-1', '-q', queue, '--payload', '{"carrier": "dhl"}', ...d()]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('was already emitted');
    expect(await eventRow(queue, 'parcel.sent:P-1')).toEqual(stored);
    expect(await cliJson(['emit', 'parcel.sent', '--key', 'P-1', '-q', queue, ...d()])).toMatchObject({
      emitted: false,
      emittedBefore: stored?.emitted_at.toISOString(),
    });
  });

  it('wakes a task waiting for the event', async () => {
    const queue = await newQueue();
    const spawned = await cliJson<Spawned>(['spawn', 'waiter', '-q', queue, ...d()]);
    await db.pool.query(`select * from absurd.claim_task($1, 'w', 60, 1)`, [queue]);
    await db.pool.query(`select * from absurd.await_event($1, $2, $3, 'wait', 'go:1', null)`, [queue, spawned.taskID, spawned.runID]);
    expect(await cliJson(['emit', 'go', '--key', '1', '-q', queue, '--payload', '{"ok": true}', ...d()])).toMatchObject({ emitted: true });
    const { rows } = await db.pool.query(`select state, event_payload from absurd."r_${queue}" where run_id = $1`, [spawned.runID]);
    expect(rows[0]).toEqual({ state: 'pending', event_payload: { ok: true } });
  });

  it('validates the payload against a contract; also for <event>:<key> written as one word', async () => {
    const queue = await newQueue();
    expect(await cliJson(['emit', 'card.charged', '--key', 'O-1', '-q', queue, '-P', 'chargeId=ch_1', '--workflows', fixtures, ...d()])).toMatchObject({
      event: 'card.charged:O-1',
      validated: true,
    });
    // An event emitted before is still checked: invalid input is refused, not reported as a repeat.
    const badRepeat = await cli(['emit', 'card.charged:O-1', '-q', queue, '--payload', '{"chargeId": ""}', '--workflows', fixtures, ...d()]);
    expect(badRepeat.code).toBe(1);
    expect(badRepeat.stderr).toContain('absurd emit: card.charged:O-1: event.chargeId:');
    const bad = await cli(['emit', 'card.charged:O-2', '-q', queue, '--payload', '{"chargeId": ""}', '--workflows', fixtures, ...d()]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('absurd emit: card.charged:O-2: event.chargeId:');
    expect(bad.stderr).toContain('1 issue(s) against the contract of "card.charged:O-2"; nothing was written:');
    expect(await eventRow(queue, 'card.charged:O-2')).toBeUndefined();
    const nothing = await cli(['emit', 'card.charged', '--key', 'O-3', '-q', queue, '--workflows', fixtures, ...d()]);
    expect(nothing.code).toBe(1);
    expect(nothing.stderr).toContain('expected object, received null');
  });

  it('bad input: malformed --payload (exit 1), unknown queue (exit 1)', async () => {
    const queue = await newQueue();
    const json = await cli(['emit', 'e', '-q', queue, '--payload', '{"a": 1,}', ...d()]);
    expect(json.code).toBe(1);
    expect(json.stderr).toContain('--payload is not valid JSON: expected a property name in double quotes, found "}" (line 1, column 9)');
    const unknown = await cli(['emit', 'e', '-q', 'nowhere', ...d()]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe('absurd emit: queue "nowhere" does not exist — run `absurd queue create nowhere`\n');
  });
});
