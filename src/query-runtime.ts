/**
 * A light runtime for pgtyped-generated query modules: `PreparedQuery` with pgtyped's interface
 * (`new PreparedQuery<Params, Result>(ir)`, `run(params, connection)`) for queries whose
 * parameters are all scalar. The statement text is built once, when the module loads, instead of
 * on every call, and nothing of pgtyped's parser is loaded at run time (about 25 MB of a worker's
 * memory). Select it with `queryRuntime` in `absurd.config.ts`; the default stays
 * `@pgtyped/runtime`, which also supports array spreads and picks.
 */

/** The part of pgtyped's query IR this runtime reads. */
interface QueryIR {
  usedParamSet: Record<string, boolean>;
  params: { name: string; transform: { type: string }; locs: { a: number; b: number }[] }[];
  statement: string;
}

/** A connection as pgtyped's runtime expects it (a `pg` pool or client fits). */
export interface QueryConnection {
  query(text: string, values: unknown[]): Promise<{ rows: unknown[] }>;
}

/**
 * A query of a generated module.
 *
 * @example
 * const rows = await claimTasks.run({ queueName: 'orders', workerId: 'w1', claimTimeout: 60, quantity: 8 }, pool);
 */
export class PreparedQuery<TParams, TResult> {
  readonly #text: string;
  readonly #names: string[];

  constructor(ir: QueryIR) {
    const used = ir.params.filter((param) => param.name in ir.usedParamSet);
    const cuts: { a: number; b: number; sub: string }[] = [];
    this.#names = used.map((param, i) => {
      if (param.transform.type !== 'scalar') {
        throw new Error(`query parameter "${param.name}" uses a ${param.transform.type} transform; use @pgtyped/runtime`);
      }
      for (const loc of param.locs) cuts.push({ ...loc, sub: `$${i + 1}` });
      return param.name;
    });
    cuts.sort((x, y) => x.a - y.a);
    let text = '';
    let at = 0;
    for (const cut of cuts) {
      text += ir.statement.slice(at, cut.a) + cut.sub;
      at = cut.b + 1;
    }
    this.#text = text + ir.statement.slice(at);
  }

  /** Runs the query; result columns hinted with `!` or `?` come back without the suffix. */
  async run(params: TParams, connection: QueryConnection): Promise<TResult[]> {
    const values = this.#names.map((name) => (params as Record<string, unknown>)[name]);
    const { rows } = await connection.query(this.#text, values);
    for (const row of rows as Record<string, unknown>[]) {
      for (const column of Object.keys(row)) {
        const last = column[column.length - 1];
        if (last === '!' || last === '?') {
          row[column.slice(0, -1)] = row[column];
          delete row[column];
        }
      }
    }
    return rows as TResult[];
  }
}
