/*
  Databases on a server: the embedded database of `npm start` and `absurd dev`
  (src/database/embedded-database.ts) and the temporary databases `absurd generate` checks queries
  against (src/generate/pgtyped-database.ts).

  DatabaseExists           one row when a database of that name exists.
  CreateDatabaseStatement  `create database "<name>"`, the name always double-quoted (embedded
                           quotes doubled): CREATE DATABASE takes an identifier, which no statement
                           parameter can carry, and cannot run inside a function.
  DropDatabaseStatement    `drop database if exists "<name>" with (force)`, quoted the same way;
                           `with (force)` ends the connections a failed check may have left behind.
*/

/* @name DatabaseExists */
select 1 as "found!" from pg_database where datname = :database!;

/* @name CreateDatabaseStatement */
select format('create database "%s"', replace(:database!::text, '"', '""')) as "statement!";

/* @name DropDatabaseStatement */
select format('drop database if exists "%s" with (force)', replace(:database!::text, '"', '""')) as "statement!";
