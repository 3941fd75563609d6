/*
  The embedded database of `npm start` and `absurd dev` (src/embedded-database.ts).

  DatabaseExists           one row when a database of that name exists.
  CreateDatabaseStatement  `create database "<name>"`, the name always double-quoted (embedded
                           quotes doubled): CREATE DATABASE takes an identifier, which no statement
                           parameter can carry.
*/

/* @name DatabaseExists */
select 1 as "found!" from pg_database where datname = :database!;

/* @name CreateDatabaseStatement */
select format('create database "%s"', replace(:database!::text, '"', '""')) as "statement!";
