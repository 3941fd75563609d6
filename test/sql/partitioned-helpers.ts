import { createHash } from 'node:crypto';
import { expect } from 'vitest';
import { one, type Queryable } from './helpers.js';

/** The four range-partitioned parents of a partitioned queue. */
export const PARENT_PREFIXES = ['t', 'r', 'c', 'w'] as const;
export type ParentPrefix = (typeof PARENT_PREFIXES)[number];

/** A fixed Monday-morning clock the partition tests start from (2024-04-01 is a Monday). */
export const MONDAY = '2024-04-01T00:30:00.000Z';

const DAY_MS = 86_400_000;

/** Monday 00:00 UTC of the ISO week containing `at`, computed independently of the engine. */
export function weekStart(at: Date | string): Date {
  const d = new Date(at);
  const midnight = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  const sinceMonday = (new Date(midnight).getUTCDay() + 6) % 7;
  return new Date(midnight - sinceMonday * DAY_MS);
}

/** `at` plus whole days. */
export function addDays(at: Date | string, days: number): Date {
  return new Date(new Date(at).getTime() + days * DAY_MS);
}

/** The partition tag of the week starting at `monday`: last ISO-year digit + two-digit ISO week. */
export function weekTag(monday: Date): string {
  // The ISO year and week are those of the week's Thursday.
  const thursday = addDays(monday, 3);
  const isoYear = thursday.getUTCFullYear();
  const jan4 = new Date(Date.UTC(isoYear, 0, 4));
  const week = 1 + Math.round((weekStart(thursday).getTime() - weekStart(jan4).getTime()) / (7 * DAY_MS));
  return `${isoYear % 10}${String(week).padStart(2, '0')}`;
}

/** The smallest UUIDv7 of the millisecond of `at`, as text (the engine's partition bound). */
export function uuidv7Floor(at: Date): string {
  const hex = at.getTime().toString(16).padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7000-8000-000000000000`;
}

/** The bound expression Postgres reports for the weekly partition starting at `monday`. */
export function weeklyBound(monday: Date): string {
  return `FOR VALUES FROM ('${uuidv7Floor(monday)}') TO ('${uuidv7Floor(addDays(monday, 7))}')`;
}

/** Every Monday from the week of `from` through the week of `to`, inclusive. */
export function mondays(from: Date | string, to: Date | string): Date[] {
  const out: Date[] = [];
  for (let m = weekStart(from); m.getTime() <= weekStart(to).getTime(); m = addDays(m, 7)) out.push(m);
  return out;
}

/** First 12 hex digits of md5(text): the cron scope suffix of a queue. */
export function md5Prefix(text: string, length = 12): string {
  return createHash('md5').update(text, 'utf8').digest('hex').slice(0, length);
}

export interface Child {
  name: string;
  bound: string;
}

/** The partitions attached to `absurd.<parent>`, by name, with their bound expressions. */
export async function children(client: Queryable, parent: string): Promise<Child[]> {
  const { rows } = await client.query<Child>(
    `select c.relname as name, pg_get_expr(c.relpartbound, c.oid) as bound
       from pg_inherits i
       join pg_class c on c.oid = i.inhrelid
       join pg_class p on p.oid = i.inhparent
      where p.relnamespace = 'absurd'::regnamespace and p.relname = $1
      order by c.relname`,
    [parent],
  );
  return rows;
}

/** Whether a relation of that name exists in schema `absurd`. */
export async function relationExists(client: Queryable, name: string): Promise<boolean> {
  const { rows } = await client.query<{ ok: boolean }>(
    `select exists (select 1 from pg_class c where c.relnamespace = 'absurd'::regnamespace and c.relname = $1) as ok`,
    [name],
  );
  return one(rows).ok;
}

/** Asserts that each of t_/r_/c_/w_ of `queue` has exactly the weekly partitions of `weeks` (plus `_d` when asked). */
export async function expectWeeklyPartitions(
  client: Queryable,
  queue: string,
  weeks: readonly Date[],
  withDefault: boolean,
): Promise<void> {
  for (const prefix of PARENT_PREFIXES) {
    const parent = `${prefix}_${queue}`;
    const expected: Child[] = weeks.map((m) => ({ name: `${parent}_${weekTag(m)}`, bound: weeklyBound(m) }));
    if (withDefault) expected.push({ name: `${parent}_d`, bound: 'DEFAULT' });
    expected.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    expect(await children(client, parent)).toEqual(expected);
  }
}

export async function createPartitionedQueue(client: Queryable, queue: string): Promise<string> {
  await client.query(`select absurd.create_queue($1, 'partitioned')`, [queue]);
  return queue;
}

export async function setPolicy(client: Queryable, queue: string, policy: Record<string, unknown>): Promise<void> {
  await client.query('select absurd.set_queue_policy($1, $2)', [queue, JSON.stringify(policy)]);
}

export async function ensurePartitions(client: Queryable, queue: string | null): Promise<void> {
  await client.query('select absurd.ensure_partitions($1::text)', [queue]);
}

export interface Candidate {
  queue_name: string;
  parent_table: string;
  partition_table: string;
}

/** list_detach_candidates, sorted (the function itself promises no order). */
export async function detachCandidates(client: Queryable, queue: string | null): Promise<Candidate[]> {
  const { rows } = await client.query<Candidate>(
    'select queue_name, parent_table, partition_table from absurd.list_detach_candidates($1::text) order by 1, 2, 3',
    [queue],
  );
  return rows;
}

/** The name of the child of `absurd.<prefix>_<q>` that holds the row with key `id` (task_id or run_id). */
export async function partitionOf(client: Queryable, prefix: ParentPrefix, queue: string, id: string): Promise<string> {
  const column = prefix === 't' || prefix === 'c' ? 'task_id' : 'run_id';
  const parent = `absurd."${`${prefix}_${queue}`.replace(/"/g, '""')}"`;
  const { rows } = await client.query<{ name: string }>(
    `select c.relname as name from ${parent} x join pg_class c on c.oid = x.tableoid where x.${column} = $1`,
    [id],
  );
  return one(rows).name;
}

/** Installs a stand-in for pg_cron: the `cron.job` table and `cron.schedule`/`cron.unschedule`. */
export async function installMockCron(client: Queryable): Promise<void> {
  await client.query(`
    create schema cron;
    create table cron.job (
      jobid bigint generated always as identity,
      jobname text,
      schedule text,
      command text
    );
    create function cron.schedule(p_job_name text, p_schedule text, p_command text) returns bigint
    language sql as $$
      insert into cron.job (jobname, schedule, command) values (p_job_name, p_schedule, p_command) returning jobid
    $$;
    create function cron.unschedule(p_job_id bigint) returns boolean
    language sql as $$
      with gone as (delete from cron.job j where j.jobid = p_job_id returning 1)
      select exists (select 1 from gone)
    $$;
  `);
}

export interface CronJob {
  jobid: number;
  jobname: string;
  schedule: string;
  command: string;
}

/** Every job of the stand-in `cron.job`, by id. */
export async function cronJobs(client: Queryable): Promise<CronJob[]> {
  const { rows } = await client.query<CronJob>(
    'select jobid::int as jobid, jobname, schedule, command from cron.job order by jobid',
  );
  return rows;
}
