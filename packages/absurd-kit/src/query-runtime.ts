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
    this.#text = withoutAliasHints(text + ir.statement.slice(at));
  }

  /** Runs the query; result columns hinted with `!` or `?` come back without the suffix. */
  async run(params: TParams, connection: QueryConnection): Promise<TResult[]> {
    const values = this.#names.map((name) => (params as Record<string, unknown>)[name]);
    const { rows } = await connection.query(this.#text, values);
    return rows as TResult[];
  }
}

/**
 * Drops pgtyped's nullability hints from column aliases (`as "run_id!"` → `as "run_id"`), so that
 * the server names the columns as the result type does. Done once on the statement text rather
 * than on every row: renaming keys of the rows `pg` builds would turn each into a slower, larger
 * dictionary-mode object. String literals, comments and dollar-quoted bodies are left alone.
 */
export function withoutAliasHints(sql: string): string {
  let out = '';
  let i = 0;
  while (i < sql.length) {
    const ch = sql[i]!;
    let end = i + 1;
    if (ch === "'") {
      end = closingQuote(sql, i, "'");
    } else if (ch === '-' && sql[i + 1] === '-') {
      const newline = sql.indexOf('\n', i);
      end = newline < 0 ? sql.length : newline;
    } else if (ch === '/' && sql[i + 1] === '*') {
      const close = sql.indexOf('*/', i + 2);
      end = close < 0 ? sql.length : close + 2;
    } else if (ch === '$' && /^\$[A-Za-z_]\w*\$|^\$\$/.test(sql.slice(i, i + 64))) {
      const tag = /^\$(?:[A-Za-z_]\w*)?\$/.exec(sql.slice(i))![0];
      const close = sql.indexOf(tag, i + tag.length);
      end = close < 0 ? sql.length : close + tag.length;
    } else if (ch === '"') {
      end = closingQuote(sql, i, '"');
      const name = sql.slice(i, end);
      if (/[!?]"$/.test(name) && /\bas\s*$/i.test(out)) {
        out += `${name.slice(0, -2)}"`;
        i = end;
        continue;
      }
    }
    out += sql.slice(i, end);
    i = end;
  }
  return out;
}

/** Index just past the quote that closes the one at `start` (a doubled quote is an escaped one). */
function closingQuote(sql: string, start: number, quote: string): number {
  let i = start + 1;
  while (i < sql.length) {
    if (sql[i] === quote) {
      if (sql[i + 1] === quote) i += 2;
      else return i + 1;
    } else {
      i += 1;
    }
  }
  return sql.length;
}
