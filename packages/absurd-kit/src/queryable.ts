import type pg from 'pg';

/**
 * Anything with node-postgres's `query`: a `pg.Pool`, a `pg.Client`, a `PoolClient` (for example
 * one inside the caller's transaction), or an object of your own with the same method. Every
 * generated query (`src/queries/*.queries.ts`) accepts one as its connection.
 *
 * @example
 * const rows = await listQueues.run(undefined, pool);
 */
export type Queryable = Pick<pg.Client, 'query'> | Pick<pg.PoolClient, 'query'>;
