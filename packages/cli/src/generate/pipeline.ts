/**
 * `absurd generate` as a pipeline: configuration → introspect (discover the contracts) → load
 * their schemas → model → emit (client, manifest, query modules). Produces file contents only;
 * `apply.ts` compares or writes them.
 */
import path from 'node:path';
import { discoverContracts, relativePath } from './discover.js';
import { emitClient } from './emit-client.js';
import { buildManifest, serializeManifest, type Manifest } from './emit-manifest.js';
import { loadConfig, type LoadedConfig } from './load-config.js';
import { loadContracts } from './load-contracts.js';
import { buildModel, type ContractModel } from './model.js';
import type { GeneratedFile } from './outputs.js';
import { generateQueryModules } from './query-modules.js';

/** Options of {@link generate}. */
export interface GenerateOptions {
  /** Project root (where `absurd.config.ts` is looked for). */
  readonly root: string;
  /** An explicit config file (its folder becomes the root). */
  readonly configFile?: string | undefined;
  /** Database for the query modules; an embedded one is started when absent. */
  readonly databaseUrl?: string | undefined;
  /** Leave the query modules out (no database needed). */
  readonly skipQueries?: boolean | undefined;
  /** Called at the start of each stage (for progress on a terminal). */
  readonly onStage?: ((stage: string) => void) | undefined;
}

/** What {@link generate} produced. */
export interface GenerateResult {
  readonly config: LoadedConfig;
  readonly model: ContractModel;
  readonly manifest: Manifest;
  /** Project-relative path of the manifest (the baseline of the compatibility check). */
  readonly manifestPath: string;
  /** Every generated file, in a fixed order. */
  readonly files: readonly GeneratedFile[];
  /** Generated files that nothing produces any more (query modules of deleted `.sql` files). */
  readonly obsolete: readonly string[];
  /** Stages skipped and why. */
  readonly notes: readonly string[];
}

/**
 * Runs the pipeline for the project at `root` and returns the files it would write.
 *
 * @example
 * const { files } = await generate({ root: process.cwd(), skipQueries: true });
 */
export async function generate(options: GenerateOptions): Promise<GenerateResult> {
  const stage = options.onStage ?? (() => undefined);
  stage('loading the configuration');
  const config = await loadConfig({ root: options.root, configFile: options.configFile });
  const workflowsDir = path.resolve(config.root, config.workflowsDir);
  const outDir = path.resolve(config.root, config.outDir);
  stage(`finding contracts in ${config.workflowsDir}/`);
  const discovered = discoverContracts({ root: config.root, workflowsDir, allowImports: config.allowImports });
  stage('loading their schemas');
  const model = await buildModel(await loadContracts(config.root, discovered));
  const manifest = buildManifest(model);
  const layout = { workflowsDir: relativePath(config.root, workflowsDir), outDir: relativePath(config.root, outDir) };
  const manifestPath = `${layout.outDir}/manifest.json`;
  const files: GeneratedFile[] = [
    { path: `${layout.outDir}/client.ts`, contents: emitClient(model, layout) },
    { path: manifestPath, contents: serializeManifest(manifest) },
  ];
  const notes: string[] = [];
  const obsolete: string[] = [];
  if (options.skipQueries) {
    notes.push('typed query modules skipped (--skip-queries)');
  } else {
    stage('generating the typed query modules');
    const queries = await generateQueryModules({
      root: config.root,
      queryDirs: config.queryDirs,
      queryOutDir: config.queryOutDir,
      queryRuntime: config.queryRuntime,
      databaseUrl: options.databaseUrl,
    });
    files.push(...queries.files);
    obsolete.push(...queries.obsolete);
  }
  return { config, model, manifest, manifestPath, files, obsolete, notes };
}
