import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { createQueue, expectPgError, one, queueName, snapshot, useSession, utf8QueueName57 } from './helpers.js';

const db = useTestDatabase();
const c = useSession(db);

interface Policy {
  queue_name: string;
  storage_mode: string;
  default_partition: string;
  partition_lookahead: string;
  partition_lookback: string;
  cleanup_ttl: string;
  cleanup_limit: number;
  detach_mode: string;
  detach_min_age: string;
}

/** The policy with intervals as text, the way absurdctl reads it. */
async function policy(queue: string): Promise<Policy[]> {
  const { rows } = await c.query<Policy>(
    `select queue_name, storage_mode, default_partition, partition_lookahead::text as partition_lookahead,
            partition_lookback::text as partition_lookback, cleanup_ttl::text as cleanup_ttl, cleanup_limit,
            detach_mode, detach_min_age::text as detach_min_age
       from absurd.get_queue_policy($1)`,
    [queue],
  );
  return rows;
}

async function setPolicy(queue: string, value: unknown): Promise<void> {
  await c.query('select absurd.set_queue_policy($1, $2)', [queue, value === null ? null : JSON.stringify(value)]);
}

const DEFAULTS = {
  storage_mode: 'unpartitioned',
  default_partition: 'enabled',
  partition_lookahead: '28 days',
  partition_lookback: '1 day',
  cleanup_ttl: '30 days',
  cleanup_limit: 1000,
  detach_mode: 'none',
  detach_min_age: '30 days',
};

describe('get_queue_policy', () => {
  it('returns the nine columns in order, with the defaults as real intervals', async () => {
    const q = await createQueue(c, queueName('defaults'));
    const { rows, fields } = await c.query(
      `select *, pg_typeof(partition_lookahead)::text as t1, pg_typeof(cleanup_ttl)::text as t2,
              extract(epoch from partition_lookahead)::int as lookahead_s, extract(epoch from partition_lookback)::int as lookback_s,
              extract(epoch from cleanup_ttl)::int as ttl_s, extract(epoch from detach_min_age)::int as min_age_s
         from absurd.get_queue_policy($1)`,
      [q],
    );
    expect(fields.map((f) => f.name).slice(0, 9)).toEqual([
      'queue_name',
      'storage_mode',
      'default_partition',
      'partition_lookahead',
      'partition_lookback',
      'cleanup_ttl',
      'cleanup_limit',
      'detach_mode',
      'detach_min_age',
    ]);
    expect(one(rows)).toMatchObject({
      t1: 'interval',
      t2: 'interval',
      lookahead_s: 28 * 86400,
      lookback_s: 86400,
      ttl_s: 30 * 86400,
      min_age_s: 30 * 86400,
    });
    expect(await policy(q)).toEqual([{ queue_name: q, ...DEFAULTS }]);
  });

  it('returns no rows for a missing queue and does not validate the name', async () => {
    expect(await policy(queueName('missing'))).toEqual([]);
    expect(await policy('q'.repeat(80))).toEqual([]);
  });

  it('reads a legacy row inserted with only queue_name', async () => {
    const q = queueName('legacy');
    await c.query('insert into absurd.queues (queue_name) values ($1)', [q]);
    expect(await policy(q)).toEqual([{ queue_name: q, ...DEFAULTS }]);
  });
});

describe('set_queue_policy', () => {
  it('updates every supported key, normalising detach_mode', async () => {
    const q = await createQueue(c, queueName('all'));
    await setPolicy(q, {
      partition_lookahead: '35 days',
      partition_lookback: '12345 seconds',
      cleanup_ttl: '7 days',
      cleanup_limit: 50,
      detach_mode: '  EMPTY ',
      detach_min_age: '2 days 03:00:00',
    });
    expect(await policy(q)).toEqual([
      {
        ...DEFAULTS,
        queue_name: q,
        partition_lookahead: '35 days',
        partition_lookback: '03:25:45',
        cleanup_ttl: '7 days',
        cleanup_limit: 50,
        detach_mode: 'empty',
        detach_min_age: '2 days 03:00:00',
      },
    ]);
  });

  it('changes only the keys given, and accepts zero intervals, a limit of 1 and numbers as strings', async () => {
    const q = await createQueue(c, queueName('partial'));
    await setPolicy(q, { cleanup_ttl: '0' });
    expect(await policy(q)).toEqual([{ ...DEFAULTS, queue_name: q, cleanup_ttl: '00:00:00' }]);
    await setPolicy(q, { cleanup_limit: '1' });
    expect(await policy(q)).toEqual([{ ...DEFAULTS, queue_name: q, cleanup_ttl: '00:00:00', cleanup_limit: 1 }]);
    await setPolicy(q, { detach_mode: 'none' });
    expect(await policy(q)).toEqual([{ ...DEFAULTS, queue_name: q, cleanup_ttl: '00:00:00', cleanup_limit: 1 }]);
  });

  it('treats NULL and {} as no change', async () => {
    const q = await createQueue(c, queueName('empty'));
    await setPolicy(q, { cleanup_limit: 7 });
    await setPolicy(q, null);
    await setPolicy(q, {});
    expect(await policy(q)).toEqual([{ ...DEFAULTS, queue_name: q, cleanup_limit: 7 }]);
  });

  it('works on a legacy row and on a queue with a 57-byte UTF-8 name', async () => {
    const legacy = queueName('legacy-set');
    await c.query('insert into absurd.queues (queue_name) values ($1)', [legacy]);
    await setPolicy(legacy, { cleanup_ttl: '1 day' });
    expect(await policy(legacy)).toEqual([{ ...DEFAULTS, queue_name: legacy, cleanup_ttl: '1 day' }]);
    const utf = await createQueue(c, utf8QueueName57());
    await setPolicy(utf, { cleanup_limit: 3 });
    expect(await policy(utf)).toEqual([{ ...DEFAULTS, queue_name: utf, cleanup_limit: 3 }]);
  });

  describe('rejections change nothing', () => {
    async function rejected(queue: string, value: unknown, code: string, message?: string): Promise<void> {
      const before = await snapshot(c, queue);
      await expectPgError(setPolicy(queue, value), code, message);
      expect(await snapshot(c, queue)).toEqual(before);
    }

    it('rejects a policy that is not a JSON object', async () => {
      const q = await createQueue(c, queueName('notobj'));
      await rejected(q, [], 'P0001');
      await rejected(q, 'x', 'P0001');
      await rejected(q, 5, 'P0001');
    });

    it('rejects unknown keys, even alongside valid ones', async () => {
      const q = await createQueue(c, queueName('unknown'));
      await rejected(q, { foo: 1 }, 'P0001', 'Unsupported queue policy key "foo"');
      await rejected(q, { cleanup_limit: 5, storage_mode: 'partitioned' }, 'P0001', 'Unsupported queue policy key "storage_mode"');
    });

    it('rejects a missing queue, after checking the keys', async () => {
      const q = queueName('nosuch');
      await expectPgError(setPolicy(q, { cleanup_limit: 5 }), 'P0001', `Queue "${q}" does not exist`);
      await expectPgError(setPolicy(q, { bogus: 5 }), 'P0001', 'Unsupported queue policy key "bogus"');
      expect(await policy(q)).toEqual([]);
    });

    it('validates the queue name', async () => {
      await expectPgError(setPolicy('q'.repeat(58), { cleanup_limit: 5 }), 'P0001', 'is too long (max 57 bytes).');
      await expectPgError(setPolicy('', {}), 'P0001', 'Queue name must be provided');
    });

    it('rejects cleanup_limit below 1', async () => {
      const q = await createQueue(c, queueName('limit'));
      await rejected(q, { cleanup_limit: 0 }, 'P0001');
      await rejected(q, { cleanup_limit: -3 }, 'P0001');
    });

    it('rejects negative intervals', async () => {
      const q = await createQueue(c, queueName('neg'));
      for (const key of ['partition_lookahead', 'partition_lookback', 'cleanup_ttl', 'detach_min_age']) {
        await rejected(q, { [key]: '-1 day' }, 'P0001');
      }
    });

    it('rejects an unknown detach_mode', async () => {
      const q = await createQueue(c, queueName('detach'));
      await rejected(q, { detach_mode: 'always' }, 'P0001');
    });

    it('rejects the default_partition key on unpartitioned queues even when the value is unchanged', async () => {
      const q = await createQueue(c, queueName('dp'));
      await rejected(q, { default_partition: 'enabled' }, 'P0001', 'only supported for partitioned queues');
      await rejected(q, { default_partition: 'disabled', cleanup_limit: 5 }, 'P0001', 'only supported for partitioned queues');
    });

    it("rejects default_partition 'oops' on a partitioned queue", async () => {
      const q = queueName('dp-part');
      await c.query('select absurd.create_queue($1, $2)', [q, 'partitioned']);
      await rejected(q, { default_partition: 'oops' }, 'P0001');
    });

    it('rejects values that do not cast, with the native error', async () => {
      const q = await createQueue(c, queueName('cast'));
      const before = await snapshot(c, q);
      await expectPgError(setPolicy(q, { cleanup_limit: 'many' }), '22P02');
      await expectPgError(setPolicy(q, { cleanup_ttl: 'soon' }), '22007');
      expect(await snapshot(c, q)).toEqual(before);
    });
  });
});
