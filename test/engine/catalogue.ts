import pg from 'pg';

/**
 * A textual dump of everything in schema `absurd` that a migration can create: relations with
 * their options, columns with types/defaults/nullability, indexes, constraints, functions with
 * full definitions, triggers, types, view definitions and the tracking rows. Two databases with
 * the same dump have the same engine schema. A schema without the tracking table (one installed by
 * Absurd) has no tracking rows.
 */
export async function dumpAbsurdCatalogue(url: string): Promise<Record<string, string[]>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const lines = async (sql: string) => (await client.query<{ line: string }>(sql)).rows.map((r) => r.line);
  try {
    return {
      relations: await lines(`
        select c.relname || ' ' || c.relkind::text || ' ' || coalesce(array_to_string(c.reloptions, ','), '') as line
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'absurd' order by 1`),
      columns: await lines(`
        select c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
               || case when a.attnotnull then ' not null' else '' end
               || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '') as line
        from pg_attribute a
        join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
        left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
        where n.nspname = 'absurd' and a.attnum > 0 and not a.attisdropped
        order by c.relname, a.attnum`),
      indexes: await lines(`select indexdef as line from pg_indexes where schemaname = 'absurd' order by indexname`),
      constraints: await lines(`
        select c.relname || ' ' || k.conname || ' ' || pg_get_constraintdef(k.oid) as line
        from pg_constraint k join pg_class c on c.oid = k.conrelid join pg_namespace n on n.oid = k.connamespace
        where n.nspname = 'absurd' order by c.relname, k.conname`),
      functions: await lines(`
        select pg_get_functiondef(p.oid) as line
        from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'absurd'
        order by p.proname, pg_get_function_identity_arguments(p.oid)`),
      triggers: await lines(`
        select pg_get_triggerdef(t.oid) as line
        from pg_trigger t join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'absurd' and not t.tgisinternal order by 1`),
      types: await lines(`
        select t.typname || ' ' || t.typtype::text as line
        from pg_type t join pg_namespace n on n.oid = t.typnamespace
        where n.nspname = 'absurd' order by 1`),
      views: await lines(`select viewname || ' ' || definition as line from pg_views where schemaname = 'absurd' order by 1`),
      trackingRows: (await lines(`select to_regclass('absurd.kit_migrations') is not null as line`))[0]
        ? await lines(`select version || ' ' || name || ' ' || checksum as line from absurd.kit_migrations order by version`)
        : [],
    };
  } finally {
    await client.end();
  }
}
