import { expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';

const db = useTestDatabase();

it('runs against a cloned database with the absurd schema', async () => {
  const { rows } = await db.pool.query(`select count(*)::int as n from pg_namespace where nspname = 'absurd'`);
  expect(rows[0].n).toBe(1);
});
