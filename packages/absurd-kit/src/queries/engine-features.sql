/*
  Which of absurd-kit's additions the database's engine has (src/engine-features.ts): read once
  per client, so that its workers use absurd-kit's functions where they exist and Absurd's standard
  ones where they do not (a schema installed by Absurd, or by an older absurd-kit).

  ProbeEngineFeatures      whether absurd-kit installed or adopted the schema (its tracking table),
                           whether it has the contract's version function, and the names of the
                           kit_ functions schema absurd holds. Raises nothing, whatever the schema.
*/

/* @name ProbeEngineFeatures */
select to_regclass('absurd.kit_migrations') is not null as "tracked!",
       to_regprocedure('absurd.get_schema_version()') is not null as "versioned!",
       array(select distinct p.proname::text
               from pg_proc p
              where p.pronamespace = to_regnamespace('absurd') and p.proname like 'kit\_%'
              order by 1) as "kitFunctions!";
