/**
 * Migration 000013, part 1: spawns through kit_spawn_task / kit_spawn_tasks notify the queue's wake
 * channel only while a worker of the queue is idle and listening (kit_idle_listeners, written by
 * the six-argument kit_claim_task), and never before the spawning transaction commits; and the
 * race between a spawn and a worker going idle, played in each order the migration's header names.
 *
 * "No notification" is observed without timing: after the statement under test, another session
 * commits a sentinel notification on the same channel; notifications arrive in commit order, so
 * whatever the statement sent arrives before the sentinel.
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { jsonParam, newQueue, one, useSession, utcClient, type Queryable, type SpawnResult } from './helpers.js';

const db = useTestDatabase();
const c = useSession(db, { outsideSchema: true, now: null });
let listener: pg.Client;
let worker: pg.Client;

beforeAll(async () => {
  listener = await utcClient(db, { outsideSchema: true });
  listener.on('notification', (message) => {
    const list = received.get(message.channel) ?? [];
    list.push(message.payload ?? '');
    received.set(message.channel, list);
    arrived();
  });
  worker = await utcClient(db, { outsideSchema: true });
});

const channelOf = (queue: string) => `absurd_wake_${createHash('md5').update(queue, 'utf8').digest('hex')}`;

/** A queue whose wake channel `listener` LISTENs on. */
async function listenedQueue(label: string): Promise<string> {
  const queue = await newQueue(c, label);
  await listener.query(`listen "${channelOf(queue).replaceAll('"', '""')}"`);
  return queue;
}

/** Every notification `listener` received, by channel, not yet taken by `notificationsSoFar`. */
const received = new Map<string, string[]>();
let arrived: () => void = () => {};

/** The notifications the queue's channel received before a sentinel committed now by another session. */
async function notificationsSoFar(queue: string): Promise<string[]> {
  const channel = channelOf(queue);
  const sentinel = `sentinel-${Math.random()}`;
  await c.query('select pg_notify($1, $2)', [channel, sentinel]);
  for (;;) {
    const list = received.get(channel) ?? [];
    const at = list.indexOf(sentinel);
    if (at >= 0) {
      received.set(channel, list.slice(at + 1));
      return list.slice(0, at);
    }
    await new Promise<void>((resolve) => {
      arrived = resolve;
    });
  }
}

async function kitSpawn(client: Queryable, queue: string, options: unknown = {}): Promise<SpawnResult> {
  const { rows } = await client.query<SpawnResult>('select * from absurd.kit_spawn_task($1, $2, $3, $4)', [
    queue,
    'job',
    '{}',
    jsonParam(options),
  ]);
  return one(rows);
}

/** The six-argument claim of a listening worker; returns how many runs it claimed. */
async function listeningClaim(client: Queryable, queue: string, qty = 1, seconds = 60, listener = 'L1'): Promise<number> {
  const { rows } = await client.query('select * from absurd.kit_claim_task($1, $2, 30, $3, $4, $5)', [queue, 'w', qty, listener, seconds]);
  return rows.length;
}

async function marks(queue: string): Promise<{ listener: string; live: boolean }[]> {
  const { rows } = await c.query<{ listener: string; live: boolean }>(
    `select listener, idle_until > clock_timestamp() as live from absurd.kit_idle_listeners where queue_name = $1 order by listener`,
    [queue],
  );
  return rows;
}

describe('who gets woken', () => {
  it('a spawn with no idle listening worker notifies nobody', async () => {
    const q = await listenedQueue('nobody');
    await kitSpawn(c, q);
    expect(await notificationsSoFar(q)).toEqual([]);
  });

  it('a claim that finds fewer runs than asked marks the worker idle, and the next spawn notifies', async () => {
    const q = await listenedQueue('idle');
    expect(await listeningClaim(worker, q)).toBe(0);
    expect(await marks(q)).toEqual([{ listener: 'L1', live: true }]);
    await kitSpawn(c, q);
    expect(await notificationsSoFar(q)).toEqual(['']);
  });

  it('a claim that gets all it asked for removes the mark: spawns stop notifying', async () => {
    const q = await listenedQueue('busy');
    expect(await listeningClaim(worker, q)).toBe(0);
    await kitSpawn(c, q);
    expect(await listeningClaim(worker, q)).toBe(1);
    expect(await marks(q)).toEqual([]);
    await notificationsSoFar(q); // the first spawn's
    await kitSpawn(c, q);
    expect(await notificationsSoFar(q)).toEqual([]);
  });

  it('an expired mark (a worker that died) wakes nobody', async () => {
    const q = await listenedQueue('expired');
    expect(await listeningClaim(worker, q, 1, 0)).toBe(0);
    expect(await marks(q)).toEqual([{ listener: 'L1', live: false }]);
    await kitSpawn(c, q);
    expect(await notificationsSoFar(q)).toEqual([]);
  });

  it('claims without a listener (and the four-argument kit_claim_task) leave no mark', async () => {
    const q = await listenedQueue('nolisten');
    await worker.query('select * from absurd.kit_claim_task($1, $2, 30, 1, null, 60)', [q, 'w']);
    await worker.query('select * from absurd.kit_claim_task($1, $2, 30, 1)', [q, 'w']);
    expect(await marks(q)).toEqual([]);
  });

  it('an idempotent spawn that returns an existing task wakes nobody', async () => {
    const q = await listenedQueue('idem');
    await kitSpawn(c, q, { idempotency_key: 'k' });
    expect(await listeningClaim(worker, q, 5)).toBe(1);
    await notificationsSoFar(q);
    const again = await kitSpawn(c, q, { idempotency_key: 'k' });
    expect(again.created).toBe(false);
    expect(await notificationsSoFar(q)).toEqual([]);
  });

  it('marks are per queue: an idle worker of another queue is not woken', async () => {
    const q = await listenedQueue('mine');
    const other = await newQueue(c, 'other');
    expect(await listeningClaim(worker, other)).toBe(0);
    await kitSpawn(c, q);
    expect(await notificationsSoFar(q)).toEqual([]);
  });
});

describe("a spawn in the caller's transaction", () => {
  it('notifies only when that transaction commits', async () => {
    const q = await listenedQueue('tx');
    expect(await listeningClaim(worker, q)).toBe(0);
    const caller = await utcClient(db, { outsideSchema: true });
    await caller.query('begin');
    await kitSpawn(caller, q);
    expect(await notificationsSoFar(q)).toEqual([]);
    await caller.query('commit');
    expect(await notificationsSoFar(q)).toEqual(['']);
  });

  it('notifies nobody when it rolls back', async () => {
    const q = await listenedQueue('rollback');
    expect(await listeningClaim(worker, q)).toBe(0);
    const caller = await utcClient(db, { outsideSchema: true });
    await caller.query('begin');
    await kitSpawn(caller, q);
    await caller.query('rollback');
    expect(await notificationsSoFar(q)).toEqual([]);
  });
});

describe('the race between a spawn and a worker going idle', () => {
  it('a worker that stays idle is woken even while its renewing claim is uncommitted', async () => {
    const q = await listenedQueue('renew');
    expect(await listeningClaim(worker, q)).toBe(0);
    await worker.query('begin');
    expect(await listeningClaim(worker, q)).toBe(0); // renews the mark, not committed yet
    await kitSpawn(c, q); // reads the committed mark
    await worker.query('commit');
    expect(await notificationsSoFar(q)).toEqual(['']);
  });

  it('a worker going idle while a spawn commits misses the notification, and its next poll finds the run', async () => {
    const q = await listenedQueue('newly-idle');
    // C: the claim takes its snapshot and finds nothing; its mark is not committed yet.
    await worker.query('begin');
    expect(await listeningClaim(worker, q)).toBe(0);
    // S: reads no committed mark, so it sends nothing; it commits after C's snapshot.
    const spawned = await kitSpawn(c, q);
    await worker.query('commit');
    expect(await notificationsSoFar(q)).toEqual([]);
    // The run is due now: a worker with a long poll interval asks this after its empty claim
    // (in a new snapshot) and claims at once; any worker claims it at its next poll.
    const { rows } = await worker.query<{ s: number }>('select absurd.kit_seconds_until_next_run($1) as s', [q]);
    expect(one(rows).s).toBeLessThanOrEqual(0);
    const { rows: claimed } = await worker.query<{ task_id: string }>('select task_id from absurd.kit_claim_task($1, $2, 30, 1, $3, 60)', [
      q,
      'w',
      'L1',
    ]);
    expect(claimed.map((r) => r.task_id)).toEqual([spawned.task_id]);
  });

  it('a worker whose mark committed before the spawn read it is woken', async () => {
    const q = await listenedQueue('committed-first');
    await worker.query('begin');
    expect(await listeningClaim(worker, q)).toBe(0);
    await worker.query('commit');
    await kitSpawn(c, q);
    expect(await notificationsSoFar(q)).toEqual(['']);
  });

  it('a spawn committed before the claim took its snapshot is claimed by it', async () => {
    const q = await listenedQueue('spawn-first');
    const spawned = await kitSpawn(c, q);
    const { rows } = await worker.query<{ task_id: string }>('select task_id from absurd.kit_claim_task($1, $2, 30, 1, $3, 60)', [q, 'w', 'L1']);
    expect(rows.map((r) => r.task_id)).toEqual([spawned.task_id]);
  });
});

/**
 * Migration 000018: the order above no longer loses the run for a poll interval. Notifying writers
 * hold the queue's wake lock (shared) from before they read the marks until they commit, and
 * kit_wakeups_settled tells a worker whose new mark committed whether one is still in flight.
 */
describe('settled wake-ups', () => {
  async function settled(client: Queryable, queue: string): Promise<boolean> {
    const { rows } = await client.query<{ s: boolean }>('select absurd.kit_wakeups_settled($1) as s', [queue]);
    return one(rows).s;
  }

  it('is false while a spawn that missed a new mark is uncommitted; the claim after it turns true finds the run', async () => {
    const q = await listenedQueue('settle');
    await worker.query('begin');
    expect(await listeningClaim(worker, q)).toBe(0); // a new mark, uncommitted
    const caller = await utcClient(db, { outsideSchema: true });
    await caller.query('begin');
    const spawned = await kitSpawn(caller, q); // reads no committed mark
    await worker.query('commit');
    expect(await settled(worker, q)).toBe(false);
    expect(await listeningClaim(worker, q)).toBe(0); // the spawn is not visible yet
    expect(await settled(worker, q)).toBe(false);
    await caller.query('commit');
    await caller.end();
    expect(await notificationsSoFar(q)).toEqual([]); // nothing was sent: the probe is what finds it
    expect(await settled(worker, q)).toBe(true);
    const { rows } = await worker.query<{ task_id: string }>('select task_id from absurd.kit_claim_task($1, $2, 30, 1, $3, 60)', [q, 'w', 'L1']);
    expect(rows.map((r) => r.task_id)).toEqual([spawned.task_id]);
  });

  it("holds for Absurd's spawn_task called directly, and for kit_spawn_tasks", async () => {
    const q = await listenedQueue('settle-writers');
    const caller = await utcClient(db, { outsideSchema: true });
    for (const spawn of [
      `select * from absurd.spawn_task($1, 'job', '{}', '{}')`,
      `select * from absurd.kit_spawn_tasks($1, '[{"task_name": "job", "params": {}}, {"task_name": "job", "params": {}}]')`,
    ]) {
      await caller.query('begin');
      await caller.query(spawn, [q]);
      expect(await settled(c, q)).toBe(false);
      await caller.query('commit');
      expect(await settled(c, q)).toBe(true);
    }
    await caller.end();
  });

  it('is true with nothing in flight, ignores spawns on other queues and idempotent spawns that create nothing, and leaves no lock behind', async () => {
    const q = await listenedQueue('settle-quiet');
    const other = await newQueue(c, 'settle-other');
    await kitSpawn(c, q, { idempotency_key: 'once' });
    expect(await settled(worker, q)).toBe(true);
    const caller = await utcClient(db, { outsideSchema: true });
    await caller.query('begin');
    await kitSpawn(caller, other);
    await kitSpawn(caller, q, { idempotency_key: 'once' }); // returns the existing task
    expect(await settled(worker, q)).toBe(true);
    await caller.query('commit');
    await caller.end();
    const { rows } = await worker.query<{ n: number }>(
      `select count(*)::int as n from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()`,
    );
    expect(one(rows).n).toBe(0);
  });

  it('a spawn that starts after the probe sees the committed mark and notifies', async () => {
    const q = await listenedQueue('settle-after');
    expect(await listeningClaim(worker, q)).toBe(0);
    expect(await settled(worker, q)).toBe(true);
    await kitSpawn(c, q);
    expect(await notificationsSoFar(q)).toEqual(['']);
  });
});

describe('emit_event wakes idle workers when it makes a run due (000018)', () => {
  /** A run of q suspended waiting for event `ev`. */
  async function waitingRun(q: string, ev: string): Promise<{ task_id: string; run_id: string }> {
    const spawned = await kitSpawn(c, q);
    const { rows } = await c.query<{ task_id: string; run_id: string }>('select task_id, run_id from absurd.claim_task($1, $2, 30, 1)', [q, 'w0']);
    const claimed = one(rows);
    expect(claimed.task_id).toBe(spawned.task_id);
    const { rows: waited } = await c.query<{ should_suspend: boolean }>(
      `select should_suspend from absurd.await_event($1, $2, $3, 'wait', $4, null)`,
      [q, claimed.task_id, claimed.run_id, ev],
    );
    expect(one(waited).should_suspend).toBe(true);
    return claimed;
  }

  it('an emit that wakes a run notifies an idle listening worker; one that wakes nothing does not', async () => {
    const q = await listenedQueue('emit-wakes');
    await waitingRun(q, 'ev');
    await notificationsSoFar(q); // the spawn's, if any
    expect(await listeningClaim(worker, q)).toBe(0);
    await c.query(`select absurd.emit_event($1, 'other', '{}')`, [q]);
    expect(await notificationsSoFar(q)).toEqual([]);
    await c.query(`select absurd.emit_event($1, 'ev', '{"n": 1}')`, [q]);
    expect(await notificationsSoFar(q)).toEqual(['']);
    expect(await listeningClaim(worker, q)).toBe(1);
  });

  it('an emit in flight that woke a run holds the wake lock until it commits', async () => {
    const q = await listenedQueue('emit-settle');
    await waitingRun(q, 'ev');
    const caller = await utcClient(db, { outsideSchema: true });
    await caller.query('begin');
    await caller.query(`select absurd.emit_event($1, 'ev', 'null')`, [q]);
    expect(await c.query<{ s: boolean }>('select absurd.kit_wakeups_settled($1) as s', [q]).then((r) => one(r.rows).s)).toBe(false);
    await caller.query('commit');
    await caller.end();
    expect(await c.query<{ s: boolean }>('select absurd.kit_wakeups_settled($1) as s', [q]).then((r) => one(r.rows).s)).toBe(true);
  });
});
