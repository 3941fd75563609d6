/**
 * Migrations 000020 and 000022: each queue's hot statements (claim_task's body, kit_claim_task's
 * statement, kit_complete_runs' and kit_set_checkpoints' statements, spawn_task's inserts and
 * wake-up) live in functions of that queue, kit_q_<md5(q)>_<part>, written with the queue's
 * tables, rewritten by the first call that finds them missing, and dropped with the queue. The
 * claim's and the spawn's own behaviour is covered by claim.test.ts, spawn.test.ts and the rest of
 * the suite, which all go through these functions now.
 */
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { expectPgError, newQueue, one, queueName, spawn, table, useSession, utcClient, type Queryable } from './helpers.js';

const db = useTestDatabase();
const c = useSession(db, { outsideSchema: true, now: null });

const PARTS = ['claim_task', 'complete', 'kit_claim', 'set_checkpoints', 'spawn'];

async function statementFunctions(client: Queryable, queue: string): Promise<string[]> {
  const { rows } = await client.query<{ part: string }>(
    `select substr(proname, 40) as part from pg_proc
      where pronamespace = 'absurd'::regnamespace and proname like 'kit\\_q\\_' || md5($1) || '\\_%'
      order by 1`,
    [queue],
  );
  return rows.map((row) => row.part);
}

describe("a queue's statement functions", () => {
  it('are written by create_queue and dropped by drop_queue', async () => {
    const q = await newQueue(c, 'stmts');
    expect(await statementFunctions(c, q)).toEqual(PARTS);
    await c.query('select absurd.drop_queue($1)', [q]);
    expect(await statementFunctions(c, q)).toEqual([]);
  });

  it('are written again by the first claim or completion that finds them missing', async () => {
    const q = await newQueue(c, 'stmts-missing');
    const { task_id: task } = await spawn(c, q);
    await c.query('select absurd.kit_drop_queue_functions($1)', [q]);
    const { rows } = await c.query<{ task_id: string; run_id: string }>(`select task_id, run_id from absurd.kit_claim_task($1, 'w', 30, 1)`, [q]);
    expect(rows.map((row) => row.task_id)).toEqual([task]);
    expect(await statementFunctions(c, q)).toEqual(PARTS);

    await c.query('select absurd.kit_drop_queue_functions($1)', [q]);
    const done = await c.query<{ outcome: string }>(`select outcome from absurd.kit_complete_runs($1, array[$2::uuid], array['1'::jsonb])`, [
      q,
      one(rows).run_id,
    ]);
    expect(done.rows).toEqual([{ outcome: 'completed' }]);
    await c.query('select absurd.kit_drop_queue_functions($1)', [q]);
    const { task_id: second } = await spawn(c, q);
    const { rows: claimed } = await c.query<{ run_id: string }>(`select run_id from absurd.claim_task($1, 'w', 30, 5)`, [q]);
    expect(claimed).toHaveLength(1);

    await c.query('select absurd.kit_drop_queue_functions($1)', [q]);
    const written = await c.query<{ outcome: string }>(
      `select outcome from absurd.kit_set_checkpoints($1, array[$2::uuid], array['step'], array['{"n": 1}'::jsonb], array[$3::uuid], array[30])`,
      [q, second, one(claimed).run_id],
    );
    expect(written.rows).toEqual([{ outcome: 'ok' }]);
    expect(await statementFunctions(c, q)).toEqual(PARTS);
  });

  it('are written once when two sessions find them missing at the same time', async () => {
    const q = await newQueue(c, 'stmts-race');
    await spawn(c, q);
    await spawn(c, q);
    await c.query('select absurd.kit_drop_queue_functions($1)', [q]);
    const first = await utcClient(db, { outsideSchema: true });
    const second = await utcClient(db, { outsideSchema: true });
    try {
      await first.query('begin');
      expect((await first.query(`select * from absurd.claim_task($1, 'w1', 30, 1)`, [q])).rows).toHaveLength(1);
      // The second waits for the first's functions to commit, then uses (rewrites) them.
      const claimed = second.query(`select * from absurd.claim_task($1, 'w2', 30, 1)`, [q]);
      await new Promise((resolve) => setTimeout(resolve, 200));
      await first.query('commit');
      expect((await claimed).rows).toHaveLength(1);
    } finally {
      await first.end();
      await second.end();
    }
    expect(await statementFunctions(c, q)).toEqual(PARTS);
  });

  it('a queue that does not exist fails as before, and gets no functions', async () => {
    const q = queueName('stmts-nowhere');
    await expectPgError(c.query(`select * from absurd.claim_task($1, 'w', 30, 1)`, [q]), '42P01', `relation "absurd.t_${q}" does not exist`);
    await expectPgError(c.query(`select * from absurd.kit_claim_task($1, 'w', 30, 1)`, [q]), '42P01');
    await expectPgError(c.query(`select * from absurd.kit_complete_runs($1, '{}', '{}')`, [q]), '42P01');
    expect(await statementFunctions(c, q)).toEqual([]);
  });
});

describe("a queue's _spawn function (migration 000022)", () => {
  async function spawnDefinition(client: Queryable, queue: string): Promise<string> {
    const { rows } = await client.query<{ body: string }>(
      `select prosrc as body from pg_proc where pronamespace = 'absurd'::regnamespace and proname = 'kit_q_' || md5($1) || '_spawn'`,
      [queue],
    );
    return one(rows).body;
  }

  async function tasks(client: Queryable, queue: string): Promise<{ task_id: string; last_attempt_run: string; attempts: number }[]> {
    const { rows } = await client.query<{ task_id: string; last_attempt_run: string; attempts: number }>(
      `select task_id, last_attempt_run, attempts from ${table('t', queue)} order by task_id`,
    );
    return rows;
  }

  it('names the queue\'s tables in static SQL, for its storage mode', async () => {
    const plain = queueName('spawn-plain', 'quoted');
    await c.query('select absurd.create_queue($1)', [plain]);
    const body = await spawnDefinition(c, plain);
    expect(body).toContain(`insert into ${table('t', plain)}`);
    expect(body).toContain(`insert into ${table('r', plain)}`);
    expect(body).toContain('on conflict (idempotency_key) do nothing');
    expect(body).not.toContain('execute');
    expect(body).not.toContain(table('i', plain));

    const partitioned = queueName('spawn-part', 'spaced');
    await c.query(`select absurd.create_queue($1, 'partitioned')`, [partitioned]);
    const partitionedBody = await spawnDefinition(c, partitioned);
    expect(partitionedBody).toContain(`insert into ${table('i', partitioned)}`);
    expect(partitionedBody).not.toContain('execute');
  });

  it('is written again by the first spawn that finds it missing', async () => {
    const q = await newQueue(c, 'spawn-missing');
    await c.query('select absurd.kit_drop_queue_functions($1)', [q]);
    expect(await statementFunctions(c, q)).toEqual([]);
    const spawned = await spawn(c, q, 'job', { n: 1 }, { max_attempts: 3 });
    expect(spawned).toMatchObject({ attempt: 1, created: true });
    expect(await statementFunctions(c, q)).toEqual(PARTS);
    expect(await tasks(c, q)).toEqual([{ task_id: spawned.task_id, last_attempt_run: spawned.run_id, attempts: 1 }]);
  });

  for (const mode of ['unpartitioned', 'partitioned'] as const) {
    it(`keeps a ${mode} queue's idempotency: the existing task and run, created = false`, async () => {
      const q = queueName(`spawn-key-${mode}`, 'quoted');
      await c.query('select absurd.create_queue($1, $2)', [q, mode]);
      const first = await spawn(c, q, 'charge', { amount: 1 }, { idempotency_key: 'order-1' });
      expect(first).toMatchObject({ attempt: 1, created: true });
      const again = await spawn(c, q, 'refund', { amount: 2 }, { idempotency_key: 'order-1', priority: 5 });
      expect(again).toEqual({ task_id: first.task_id, run_id: first.run_id, attempt: 1, created: false });

      // Also when the function was dropped in between (rewritten for the same mode).
      await c.query('select absurd.kit_drop_queue_functions($1)', [q]);
      const third = await spawn(c, q, 'job', {}, { idempotency_key: 'order-1' });
      expect(third).toEqual({ task_id: first.task_id, run_id: first.run_id, attempt: 1, created: false });
      const other = await spawn(c, q, 'job', {}, { idempotency_key: 'order-2' });
      expect(other.created).toBe(true);
      const noKey = await spawn(c, q, 'job', {});
      expect(noKey.created).toBe(true);
      expect((await tasks(c, q)).map((t) => t.task_id).sort()).toEqual([first.task_id, other.task_id, noKey.task_id].sort());
      const { rows: runs } = await c.query<{ n: number }>(`select count(*)::int as n from ${table('r', q)}`);
      expect(runs).toEqual([{ n: 3 }]);
    });
  }

  it("refuses a partitioned queue's key whose task has no run, naming the queue", async () => {
    const q = queueName('spawn-norun', 'quoted');
    await c.query(`select absurd.create_queue($1, 'partitioned')`, [q]);
    const { rows } = await c.query<{ id: string }>('select absurd.portable_uuidv7() as id');
    const id = one(rows).id;
    await c.query(`insert into ${table('i', q)} (idempotency_key, task_id) values ('k', $1)`, [id]);
    await c.query(`insert into ${table('t', q)} (task_id, task_name, params, state, attempts) values ($1, 'job', '{}', 'pending', 0)`, [id]);
    await expectPgError(
      spawn(c, q, 'job', {}, { idempotency_key: 'k' }),
      'P0001',
      `Task "${id}" for idempotency key "k" has no run in queue "${q}"`,
    );
  });

  it('raises 40001 naming the queue when a key is being released', async () => {
    const q = queueName('spawn-released', 'spaced');
    await c.query(`select absurd.create_queue($1, 'partitioned')`, [q]);
    await c.query(`insert into ${table('i', q)} (idempotency_key, task_id) values ('k', absurd.portable_uuidv7())`);
    await expectPgError(
      spawn(c, q, 'job', {}, { idempotency_key: 'k' }),
      '40001',
      `Idempotency key "k" in queue "${q}" is being released concurrently`,
    );
  });

  it('a queue that does not exist fails as before: the options first, then 42P01; no functions', async () => {
    const q = queueName('spawn-nowhere', 'quoted');
    await expectPgError(spawn(c, q, 'job', {}, {}), '42P01', `relation "absurd.t_${q}" does not exist`);
    await expectPgError(spawn(c, q, 'job', {}, { idempotency_key: 'k' }), '42P01', `relation "absurd.t_${q}" does not exist`);
    await expectPgError(spawn(c, q, 'job', {}, { max_attempts: 0 }), 'P0001', 'max_attempts must be >= 1');
    await expectPgError(spawn(c, q, '  ', {}, {}), 'P0001', 'task_name must be provided');
    await expectPgError(spawn(c, q, 'job', {}, { priority: 1.5 }), 'AB003');
    expect(await statementFunctions(c, q)).toEqual([]);
  });

  it('notifies an idle listening worker of the queue, and no one else', async () => {
    const q = queueName('spawn-wake', 'quoted');
    await c.query('select absurd.create_queue($1)', [q]);
    const listener = await utcClient(db, { outsideSchema: true });
    try {
      const channel = `absurd_wake_${(await c.query<{ h: string }>('select md5($1) as h', [q])).rows[0]!.h}`;
      const heard: string[] = [];
      listener.on('notification', (message) => heard.push(message.channel));
      await listener.query(`listen "${channel}"`);
      await spawn(c, q);
      await listener.query('select 1');
      expect(heard).toEqual([]);
      await c.query(
        `insert into absurd.kit_idle_listeners (queue_name, listener, idle_until) values ($1, 'l1', clock_timestamp() + interval '1 minute')`,
        [q],
      );
      await spawn(c, q);
      await listener.query('select 1');
      expect(heard).toEqual([channel]);
    } finally {
      await listener.end();
    }
  });
});
