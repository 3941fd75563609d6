/**
 * Migration 000020: each queue's hot statements (claim_task's body, kit_claim_task's statement,
 * kit_complete_runs' statement) live in functions of that queue, kit_q_<md5(q)>_<part>, written
 * with the queue's tables, rewritten by the first call that finds them missing, and dropped with
 * the queue. The claim's own behaviour is covered by claim.test.ts and the rest of the suite,
 * which all go through these functions now.
 */
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { expectPgError, newQueue, one, queueName, useSession, utcClient, type Queryable } from './helpers.js';

const db = useTestDatabase();
const c = useSession(db, { outsideSchema: true, now: null });

const PARTS = ['claim_task', 'complete', 'kit_claim', 'set_checkpoints'];

async function statementFunctions(client: Queryable, queue: string): Promise<string[]> {
  const { rows } = await client.query<{ part: string }>(
    `select substr(proname, 40) as part from pg_proc
      where pronamespace = 'absurd'::regnamespace and proname like 'kit\\_q\\_' || md5($1) || '\\_%'
      order by 1`,
    [queue],
  );
  return rows.map((row) => row.part);
}

async function spawn(client: Queryable, queue: string): Promise<string> {
  const { rows } = await client.query<{ task_id: string }>(`select task_id from absurd.spawn_task($1, 'job', '{}', '{}')`, [queue]);
  return one(rows).task_id;
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
    const task = await spawn(c, q);
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
    const second = await spawn(c, q);
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
