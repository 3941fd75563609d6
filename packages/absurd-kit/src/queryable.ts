import type { IDatabaseConnection } from '@pgtyped/runtime';
import type pg from 'pg';

/**
 * Anything with node-postgres's `query`: a `pg.Pool`, a `pg.Client`, a `PoolClient` (for example
 * one inside the caller's transaction), or an object of your own with the same method.
 */
export type Queryable = Pick<pg.Client, 'query'> | Pick<pg.PoolClient, 'query'>;

/**
 * A {@link Queryable} as the connection of a generated query (`src/queries/*.queries.ts`), which
 * calls only `query(text, values)` and reads only `rows`. The cast is needed because pgtyped's
 * connection type declares `rowCount: number` where node-postgres says `number | null`.
 *
 * @example
 * const rows = await listQueues.run(undefined, queryConnection(pool));
 */
export function queryConnection(con: Queryable): IDatabaseConnection {
  return con as IDatabaseConnection;
}
