/**
 * The pieces of pgtyped the query checker drives. pgtyped's CLI runs its work in worker threads,
 * reads the connection from environment variables before its own config, writes files itself and
 * exits 0 whatever went wrong; so the checker calls its parser, type source and generator
 * directly and decides itself what counts as an error.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { SQLQueryAST } from '@pgtyped/parser';
import type { AsyncQueue } from '@pgtyped/wire';

/** The options pgtyped's generator reads (its parsed config): pgtyped's defaults, no overrides. */
export const GENERATOR_CONFIG = {
  failOnError: false,
  camelCaseColumnNames: false,
  hungarianNotation: true,
  nonEmptyArrayParams: false,
  typesOverrides: {},
} as const;

/** A type allocator of pgtyped's generator (`lib/types.js`). */
export interface TypeAllocator {
  /** Problems met while mapping Postgres types to TypeScript (the type becomes `never`). */
  readonly errors: Error[];
  use(type: { name: string; from: string }, scope: string): string;
}

/** What pgtyped's generator returns for one file. */
export interface TypeDeclarationSet {
  typedQueries: unknown[];
  typeDefinitions: unknown;
  fileName: string;
}

/** The exports of `@pgtyped/cli/lib/generator.js` and `lib/types.js` the checker uses. */
export interface PgtypedGenerator {
  generateTypedecsFromFile(
    contents: string,
    fileName: string,
    connection: AsyncQueue,
    transform: { mode: 'sql'; include: string; emitTemplate: undefined },
    types: TypeAllocator,
    config: typeof GENERATOR_CONFIG,
  ): Promise<TypeDeclarationSet>;
  generateDeclarationFile(set: TypeDeclarationSet): string;
  newTypeAllocator(): TypeAllocator;
  /** The scope constant for `TypeAllocator.use` on result types. */
  returnScope: string;
}

/**
 * Loads pgtyped's generator. `@pgtyped/cli` exports only its command line (importing it would run
 * it), so its library files are loaded by path from wherever the package is installed.
 *
 * @example
 * const generator = await loadPgtypedGenerator();
 */
export async function loadPgtypedGenerator(): Promise<PgtypedGenerator> {
  const lib = findCliLibrary();
  const generator = (await import(pathToFileURL(path.join(lib, 'generator.js')).href)) as Pick<
    PgtypedGenerator,
    'generateTypedecsFromFile' | 'generateDeclarationFile'
  >;
  const types = (await import(pathToFileURL(path.join(lib, 'types.js')).href)) as {
    TypeAllocator: new (mapping: unknown) => TypeAllocator;
    TypeMapping: (overrides?: unknown) => unknown;
    TypeScope: { Return: string };
  };
  return {
    generateTypedecsFromFile: generator.generateTypedecsFromFile,
    generateDeclarationFile: generator.generateDeclarationFile,
    newTypeAllocator: () => new types.TypeAllocator(types.TypeMapping(GENERATOR_CONFIG.typesOverrides)),
    returnScope: types.TypeScope.Return,
  };
}

function findCliLibrary(): string {
  const require = createRequire(import.meta.url);
  for (const base of require.resolve.paths('@pgtyped/cli') ?? []) {
    const lib = path.join(base, '@pgtyped', 'cli', 'lib');
    if (existsSync(path.join(lib, 'generator.js')) && existsSync(path.join(lib, 'types.js'))) return lib;
  }
  throw new Error('@pgtyped/cli is not installed — run `npm install --save-dev @pgtyped/cli@2.4`');
}

/**
 * The 1-based line of the query's file that a Postgres error position (1-based character offset
 * into the statement as sent) points at. Parameters are replaced on one line, so lines match.
 */
export function errorLine(ast: SQLQueryAST, sentText: string, position: string | undefined): number {
  const offset = Number(position);
  const before = Number.isInteger(offset) && offset > 0 ? sentText.slice(0, offset - 1) : '';
  return ast.statement.loc.line + (before.match(/\n/g)?.length ?? 0);
}
