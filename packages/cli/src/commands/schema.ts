/**
 * Commands that install and inspect the engine schema: `init`, `migrate`, `schema-version`,
 * `schema sql`.
 */
import {
  SchemaMissingError,
  engineMigrations as migrations,
  initSchema,
  installScript,
  latestVersion,
  migrate,
  migrationLabel,
  redactDatabaseUrl,
  schemaStatus,
  type AdoptionIndex,
  type AdoptionReport,
  type MigrationRef,
} from 'absurd-kit';
import { EXIT, type CommandContext, type CommandSpec } from '../cli-command.js';

const jsonFlag = { name: 'json', description: 'Print one JSON object instead of text lines' } as const;

const packageLatest = migrations.at(-1);

function describeVersion(version: number | null): string {
  const known = migrations.find((m) => m.version === version);
  if (known) return migrationLabel(known);
  return version === null ? 'none' : String(version).padStart(6, '0');
}

/** Progress for people watching a terminal; scripts and CI get only the result lines. */
function progress(context: CommandContext): ((migration: MigrationRef) => void) | undefined {
  if (!context.io.stderr.isTTY) return undefined;
  return (migration) => context.io.stderr.write(`applying ${migrationLabel(migration)}…\n`);
}

function printApplied(context: CommandContext, verb: string, applied: readonly MigrationRef[]): void {
  for (const migration of applied) context.print(`${verb} ${migrationLabel(migration)}`);
}

/** `absurd init`: first-time installation. */
export const initCommand: CommandSpec = {
  name: 'init',
  summary: 'Install the engine schema on a database that has none',
  description:
    'Installs schema "absurd" on a database without one. Does nothing on a database that is already ' +
    'current; refuses a schema installed by other tools and tells you to run `absurd migrate` on an outdated one.',
  flags: [],
  async run(context) {
    const url = context.databaseUrl();
    const result = await initSchema(url, { onMigration: progress(context) });
    if (result.state === 'already-current') {
      context.print(`schema absurd is already installed and current (${describeVersion(result.version)}); nothing to do`);
    } else {
      printApplied(context, 'applied', result.applied);
      context.print(`installed schema absurd (${describeVersion(latestVersion(result.applied))}) in ${redactDatabaseUrl(url)}`);
    }
    return EXIT.ok;
  },
};

/** `absurd migrate`: applies what the database lacks. */
export const migrateCommand: CommandSpec = {
  name: 'migrate',
  summary: 'Apply the engine migrations the database lacks',
  description:
    'Applies every migration of this version of absurd-kit that the database lacks, each in its own ' +
    'transaction under an advisory lock (safe to run from several processes at once). Installs the ' +
    'schema on an empty database. With --adopt, takes over a schema installed by Absurd (contract level ' +
    'main) in place: keeps every queue and task, replaces its functions with absurd-kit\'s, adds absurd-kit\'s ' +
    'functions, indexes and tracking table, in one transaction; Absurd workers may keep running.',
  flags: [
    { name: 'dry-run', description: 'List what would be done; change nothing' },
    { name: 'adopt', description: "Adopt a schema installed by Absurd (contract level main) in place" },
    jsonFlag,
  ],
  async run(context) {
    const dryRun = context.flags['dry-run'] === true;
    const adopt = context.flags.adopt === true;
    const onIndex = context.io.stderr.isTTY ? (index: AdoptionIndex) => context.io.stderr.write(`indexing ${index.table}…\n`) : undefined;
    const { applied, adoption } = await migrate(context.databaseUrl(), { dryRun, adopt, onMigration: progress(context), onIndex });
    if (context.flags.json) {
      context.print(JSON.stringify({ dryRun, applied, latest: packageLatest?.version ?? null, ...(adoption ? { adoption } : {}) }));
    } else if (adoption) {
      printAdoption(context, dryRun, applied, adoption);
    } else if (applied.length === 0) {
      context.print(`schema absurd is already current (${describeVersion(packageLatest?.version ?? null)}); nothing to do`);
    } else {
      printApplied(context, dryRun ? 'would apply' : 'applied', applied);
      if (!dryRun) context.print(`schema absurd is current (${describeVersion(latestVersion(applied))})`);
    }
    return EXIT.ok;
  },
};

/** What `migrate --adopt` did or, with --dry-run, would do: one line per change, then a summary. */
function printAdoption(context: CommandContext, dryRun: boolean, applied: readonly MigrationRef[], adoption: AdoptionReport): void {
  const verb = (done: string, planned: string) => (dryRun ? `would ${planned}` : done);
  const queues = adoption.queues.map((q) => `${JSON.stringify(q.name)}${q.storageMode === 'partitioned' ? ' (partitioned)' : ''}`);
  context.print(
    `${dryRun ? 'would adopt' : 'adopting'} schema absurd installed by Absurd (contract level ${adoption.schemaVersion}), ` +
      `${adoption.queues.length} queue(s)${queues.length > 0 ? `: ${queues.join(', ')}` : ''}; no queue or task is changed`,
  );
  for (const fn of adoption.replacedFunctions) context.print(`${verb('replaced', 'replace')} function ${fn}`);
  for (const fn of adoption.addedFunctions) context.print(`${verb('added', 'add')} function ${fn}`);
  for (const index of adoption.indexes) {
    context.print(`${verb('created', 'create')} index ${JSON.stringify(index.name)} on ${JSON.stringify(index.table)} (queue ${JSON.stringify(index.queue)})`);
  }
  context.print(`${verb('created', 'create')} table ${adoption.trackingTable}`);
  printApplied(context, dryRun ? 'would record' : 'recorded', applied);
  if (!dryRun) {
    context.print(
      `adopted schema absurd: ${adoption.replacedFunctions.length} function(s) replaced, ${adoption.addedFunctions.length} added, ` +
        `${adoption.indexes.length} index(es) on ${adoption.queues.length} queue(s); schema absurd is current (${describeVersion(latestVersion(applied))})`,
    );
  }
}

function adoptionHint(schemaVersion: string | null): string {
  return schemaVersion === 'main'
    ? '`absurd migrate --adopt` adopts it'
    : "`absurd migrate --adopt` adopts only contract level main";
}

/** `absurd schema-version`: the contract level and the latest migration. */
export const schemaVersionCommand: CommandSpec = {
  name: 'schema-version',
  summary: 'Print the Absurd contract level and the latest applied migration',
  description:
    'Prints what absurd.get_schema_version() returns (the Absurd contract level the schema implements), ' +
    'the latest migration applied to the database, the latest one in this package, and the schema state.',
  flags: [jsonFlag],
  async run(context) {
    const status = await schemaStatus(context.databaseUrl());
    if (status.state === 'not-installed') throw new SchemaMissingError();
    const migration = status.state === 'foreign' ? null : latestVersion(status.applied);
    const report = {
      contract: status.schemaVersion,
      migration,
      packageMigration: packageLatest?.version ?? null,
      state: status.state,
    };
    if (context.flags.json) {
      context.print(JSON.stringify(report));
    } else {
      context.print(`contract: ${report.contract ?? 'unknown'}`);
      context.print(`migration: ${status.state === 'foreign' ? `none (not installed by absurd-kit; ${adoptionHint(status.schemaVersion)})` : describeVersion(migration)}`);
      context.print(`package migration: ${describeVersion(report.packageMigration)}`);
      context.print(`state: ${status.state}`);
    }
    return EXIT.ok;
  },
};

/** `absurd schema sql`: the install script, from the bundled migrations. */
export const schemaSqlCommand: CommandSpec = {
  name: 'schema sql',
  summary: 'Print the single-file install script (sql/absurd.sql); needs no database',
  description:
    'Prints the install script: every migration of this package plus its tracking rows, as plain SQL ' +
    'for `psql -f` or your own migration tool. Run it once, on a database without schema "absurd".',
  flags: [],
  async run(context) {
    context.io.stdout.write(installScript(migrations));
    return EXIT.ok;
  },
};

/** Every schema command, in help order. */
export const schemaCommands: readonly CommandSpec[] = [initCommand, migrateCommand, schemaVersionCommand, schemaSqlCommand];
