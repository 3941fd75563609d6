import type pg from 'pg';
import type { QueryConnection } from './query-runtime.js';

/**
 * Anything with node-postgres's `query`: a `pg.Pool`, a `pg.Client`, a `PoolClient` (for example
 * one inside the caller's transaction), or an object of your own with the same method. Every
 * generated query (`src/queries/*.queries.ts`) accepts one as its connection.
 */
export type Queryable = Pick<pg.Client, 'query'> | Pick<pg.PoolClient, 'query'>;

/**
 * A {@link Queryable} typed as the connection of a generated query. The runtime passes its
 * connections to generated queries directly; this is kept for tooling that still calls it.
 *
 * @example
 * const rows = await listQueues.run(undefined, queryConnection(pool));
 */
export function queryConnection(con: Queryable): QueryConnection {
  return con;
}
