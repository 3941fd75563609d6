/**
 * Migration 000025: claim_task, kit_claim_task, kit_complete_runs, kit_set_checkpoints and
 * spawn_task reach the queue's own function (kit_q_<md5(q)>_<part>) through a router,
 * kit_route_<part>, that names every queue's function in static SQL, instead of an EXECUTE planned
 * at every call. kit_queue_statement (the EXECUTE's lookup) is called only for a queue the routers
 * do not name, which is how these tests tell the two paths apart.
 */
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { awkwardQueueNames, callsDuring, createQueue, expectPgError, one, queueName, spawn, table, useSession, utcClient, type Queryable } from './helpers.js';

const db = useTestDatabase();
const c = useSession(db, { outsideSchema: true, now: null });

// spawn_task names each queue's _spawn itself since migration 000029; kit_route_spawn is what it
// falls back on.
const ROUTERS = ['kit_route_claim_task', 'kit_route_complete', 'kit_route_kit_claim', 'kit_route_set_checkpoints', 'kit_route_spawn', 'spawn_task'];

/** Whether every router names queue `q`'s function. */
async function routed(client: Queryable, queue: string): Promise<boolean[]> {
  const { rows } = await client.query<{ named: boolean }>(
    `select position('kit_q_' || md5($1) || '_' in prosrc) > 0 as named
       from pg_proc where pronamespace = 'absurd'::regnamespace and proname = any($2::text[]) order by proname`,
    [queue, ROUTERS],
  );
  return rows.map((row) => row.named);
}

/** Spawns, claims (claim_task and kit_claim_task), writes a checkpoint and completes, in queue `q`. */
async function everyPart(client: Queryable, queue: string): Promise<void> {
  const first = await spawn(client, queue, 'job', { q: queue });
  const second = await spawn(client, queue, 'job', { q: queue });
  const claimed = await client.query<{ run_id: string; params: { q: string } }>(`select run_id, params from absurd.claim_task($1, 'w', 30, 1)`, [queue]);
  expect(claimed.rows).toEqual([{ run_id: first.run_id, params: { q: queue } }]);
  const kitClaimed = await client.query<{ run_id: string }>(`select run_id from absurd.kit_claim_task($1, 'w', 30, 1)`, [queue]);
  expect(kitClaimed.rows).toEqual([{ run_id: second.run_id }]);
  const written = await client.query<{ outcome: string }>(
    `select outcome from absurd.kit_set_checkpoints($1, array[$2::uuid], array['step'], array['1'::jsonb], array[$3::uuid], array[30])`,
    [queue, first.task_id, first.run_id],
  );
  expect(written.rows).toEqual([{ outcome: 'ok' }]);
  const done = await client.query<{ outcome: string }>(
    `select outcome from absurd.kit_complete_runs($1, array[$2::uuid, $3::uuid], array['1'::jsonb, '2'::jsonb])`,
    [queue, first.run_id, second.run_id],
  );
  expect(done.rows).toEqual([{ outcome: 'completed' }, { outcome: 'completed' }]);
}

describe('the routers (migration 000025)', () => {
  it("send every part of every queue to that queue's function, in static SQL", async () => {
    // More than four names, so that the routers split them; names that differ in case only, and
    // names that sort differently in byte order than in a language's collation.
    const tag = queueName('');
    const queues = [...awkwardQueueNames(), `route ${tag}`, `Route ${tag}`, `route ${tag}x`, `é ${tag}`, `_${tag}`, `z${tag}`];
    for (const q of queues) await createQueue(c, q);
    for (const q of queues) expect(await routed(c, q)).toEqual([true, true, true, true, true, true]);

    await c.query('begin');
    try {
      await c.query(`set local track_functions = 'all'`);
      const md5s = await c.query<{ q: string; md5: string }>('select q, md5(q) as md5 from unnest($1::text[]) as q', [queues]);
      const own = md5s.rows.flatMap((row) => ['spawn', 'claim_task', 'kit_claim', 'set_checkpoints', 'complete'].map((part) => `kit_q_${row.md5}_${part}`));
      const calls = await callsDuring(c, ['kit_queue_statement', 'kit_route_spawn', ...own], async () => {
        for (const q of queues) await everyPart(c, q);
      });
      // No EXECUTE's lookup, and spawn_task called each _spawn itself; each queue's spawn ran
      // twice, its claim twice (once under kit_claim_task's _kit_claim), its other parts once.
      expect(calls.kit_queue_statement).toBe(0);
      expect(calls.kit_route_spawn).toBe(0);
      for (const row of md5s.rows) {
        expect([
          calls[`kit_q_${row.md5}_spawn`],
          calls[`kit_q_${row.md5}_claim_task`],
          calls[`kit_q_${row.md5}_kit_claim`],
          calls[`kit_q_${row.md5}_set_checkpoints`],
          calls[`kit_q_${row.md5}_complete`],
        ]).toEqual([2, 2, 1, 1, 1]);
      }
    } finally {
      await c.query('rollback');
    }
    for (const q of queues) {
      const { rows } = await c.query<{ n: number }>(`select count(*)::int as n from ${table('t', q)} where params ->> 'q' = $1`, [q]);
      expect(rows).toEqual([{ n: 0 }]); // rolled back: nothing was written anywhere else either
    }
  });

  it('stop naming a queue whose functions are dropped, and name it again once its first call writes them', async () => {
    const q = await createQueue(c, queueName('route-again', 'quoted'));
    await c.query('select absurd.kit_drop_queue_functions($1)', [q]);
    expect(await routed(c, q)).toEqual([false, false, false, false, false, false]);

    await c.query('begin');
    try {
      await c.query(`set local track_functions = 'all'`);
      expect(await callsDuring(c, ['kit_queue_statement'], () => spawn(c, q))).toEqual({ kit_queue_statement: 1 });
      expect(await routed(c, q)).toEqual([true, true, true, true, true, true]);
      const later = await callsDuring(c, ['kit_queue_statement'], async () => {
        await spawn(c, q);
        await c.query(`select * from absurd.claim_task($1, 'w', 30, 2)`, [q]);
      });
      expect(later).toEqual({ kit_queue_statement: 0 });
      await c.query('commit');
    } catch (error) {
      await c.query('rollback');
      throw error;
    }
  });

  it('stop naming a dropped queue, which fails as before (42P01), and name it again when it is created again', async () => {
    const q = await createQueue(c, queueName('route-drop', 'spaced'));
    await spawn(c, q);
    await c.query('select absurd.drop_queue($1)', [q]);
    expect(await routed(c, q)).toEqual([false, false, false, false, false, false]);
    await expectPgError(spawn(c, q), '42P01', `relation "absurd.t_${q}" does not exist`);
    await expectPgError(c.query(`select * from absurd.claim_task($1, 'w', 30, 1)`, [q]), '42P01');

    await createQueue(c, q);
    expect(await routed(c, q)).toEqual([true, true, true, true, true, true]);
    await everyPart(c, q);
  });

  it('are written by a REPEATABLE READ transaction too, naming no function dropped since its snapshot', async () => {
    const kept = await createQueue(c, queueName('route-rr-kept'));
    const dropped = await createQueue(c, queueName('route-rr-dropped'));
    const other = await utcClient(db, { outsideSchema: true });
    try {
      await c.query('begin isolation level repeatable read');
      await c.query('select 1'); // the snapshot
      await other.query('select absurd.drop_queue($1)', [dropped]);
      // The registry row of the dropped queue is still in this snapshot; its functions are gone.
      const q = await createQueue(c, queueName('route-rr-new'));
      await c.query('commit');
      expect(await routed(c, q)).toEqual([true, true, true, true, true, true]);
      expect(await routed(c, kept)).toEqual([true, true, true, true, true, true]);
      expect(await routed(c, dropped)).toEqual([false, false, false, false, false, false]);
      await everyPart(c, q);
      await everyPart(c, kept);
      await expectPgError(spawn(c, dropped), '42P01');
    } catch (error) {
      await c.query('rollback');
      throw error;
    } finally {
      await other.end();
    }
  });

  it('name the queues of two transactions that create them at the same time', async () => {
    const [a, b] = [queueName('route-race-a'), queueName('route-race-b')];
    const first = await utcClient(db, { outsideSchema: true });
    const second = await utcClient(db, { outsideSchema: true });
    try {
      await first.query('begin');
      await createQueue(first, a);
      // The second waits for the first's routers to commit, then writes its own with both queues.
      const created = createQueue(second, b);
      await new Promise((resolve) => setTimeout(resolve, 200));
      await first.query('commit');
      await created;
    } finally {
      await first.end();
      await second.end();
    }
    expect(await routed(c, a)).toEqual([true, true, true, true, true, true]);
    expect(await routed(c, b)).toEqual([true, true, true, true, true, true]);
    await everyPart(c, a);
    await everyPart(c, b);
  });

  it('name at most absurd.kit_router_queues queues, the busiest; the others go through the EXECUTE', async () => {
    const [idle, busy, busier, fresh] = ['route-cap-idle', 'route-cap-busy', 'route-cap-busier', 'route-cap-fresh'].map((label) =>
      queueName(label, 'quoted'),
    ) as [string, string, string, string];
    for (const q of [idle, busy, busier]) await createQueue(c, q);
    // More runs inserted than any other queue of this file has had.
    await c.query(`select count(*) from generate_series(1, 60) g, absurd.spawn_task($1, 'job', jsonb_build_object('i', g), '{}')`, [busy]);
    await c.query(`select count(*) from generate_series(1, 90) g, absurd.spawn_task($1, 'job', jsonb_build_object('i', g), '{}')`, [busier]);
    await c.query('select pg_stat_force_next_flush()');
    await c.query('select 1'); // the counts are flushed when the session goes idle after this
    try {
      await c.query(`set absurd.kit_router_queues = 2`);
      await createQueue(c, fresh);
      expect(await routed(c, busier)).toEqual([true, true, true, true, true, true]);
      expect(await routed(c, busy)).toEqual([true, true, true, true, true, true]);
      expect(await routed(c, idle)).toEqual([false, false, false, false, false, false]);
      expect(await routed(c, fresh)).toEqual([false, false, false, false, false, false]);
      await c.query('begin');
      try {
        await c.query(`set local track_functions = 'all'`);
        expect(await callsDuring(c, ['kit_queue_statement'], () => everyPart(c, fresh))).toEqual({ kit_queue_statement: 6 });
      } finally {
        await c.query('rollback');
      }

      await c.query(`set absurd.kit_router_queues = 'many'`);
      await expectPgError(c.query('select absurd.kit_write_queue_routers()'), '22023', 'absurd.kit_router_queues must be a whole number of queues, got "many"');
    } finally {
      await c.query('reset absurd.kit_router_queues');
    }
    await c.query('select absurd.kit_write_queue_routers()');
    for (const q of [idle, busy, busier, fresh]) expect(await routed(c, q)).toEqual([true, true, true, true, true, true]);
  });

  it('are rewritten for a role that may create and drop queues but owns no function of the schema', async () => {
    const role = `route_role_${queueName('').replace(/[^0-9a-z_]/g, '')}`;
    const q = queueName('route-role');
    await c.query(`create role ${role}`);
    try {
      await c.query(`grant usage, create on schema absurd to ${role}`);
      await c.query(`grant select, insert, update, delete on all tables in schema absurd to ${role}`);
      await c.query('begin');
      try {
        await c.query(`set local track_functions = 'all'`);
        await c.query(`set local role ${role}`);
        await createQueue(c, q);
        expect(await routed(c, q)).toEqual([true, true, true, true, true, true]);
        expect(await callsDuring(c, ['kit_queue_statement'], () => everyPart(c, q))).toEqual({ kit_queue_statement: 0 });
        await c.query('select absurd.drop_queue($1)', [q]);
        expect(await routed(c, q)).toEqual([false, false, false, false, false, false]);
        await expectPgError(spawn(c, q), '42P01');
      } finally {
        await c.query('rollback');
      }
      const owners = await c.query<{ owner: string }>(
        `select distinct pg_get_userbyid(proowner) as owner from pg_proc where pronamespace = 'absurd'::regnamespace and proname = any($1::text[])`,
        [ROUTERS],
      );
      expect(one(owners.rows).owner).not.toBe(role);
    } finally {
      await c.query(`drop owned by ${role}`);
      await c.query(`drop role ${role}`);
    }
  });

  it('keep the checks of the options, in the same order, with the same errors', async () => {
    const q = await createQueue(c, queueName('route-checks'));
    const bad: [unknown, string, string][] = [
      [{ max_attempts: 0 }, 'P0001', 'max_attempts must be >= 1'],
      [{ cancellation: { max_delay: 'soon' } }, 'P0001', 'cancellation.max_delay must be a whole number of seconds, got "soon"'],
      [{ retry_strategy: { base_seconds: 'x' } }, 'P0001', 'retry_strategy.base_seconds must be a number, got "x"'],
      // The priority first, then max_attempts.
      [{ priority: 1.5, max_attempts: 0 }, 'AB003', 'priority must be an integer from -2147483648 to 2147483647, got 1.5'],
    ];
    for (const [options, code, message] of bad) {
      await expectPgError(c.query(`select * from absurd.spawn_task($1, 'job', '{}', $2)`, [q, JSON.stringify(options)]), code, message);
    }
    await expectPgError(c.query(`select * from absurd.spawn_task($1, ' ', '{}')`, [q]), 'P0001', 'task_name must be provided');
    // Null params and options, as spawn_task has always taken them.
    const { rows } = await c.query<{ created: boolean; attempt: number }>(`select created, attempt from absurd.spawn_task($1, 'job', null, null)`, [q]);
    expect(rows).toEqual([{ created: true, attempt: 1 }]);
    const stored = await c.query<{ params: unknown }>(`select params from ${table('t', q)}`);
    expect(stored.rows).toEqual([{ params: null }]);
  });
});
