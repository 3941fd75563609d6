/**
 * Starting and stopping the dashboard: a connection pool on the database (whose engine schema is
 * checked first), the contracts' schemas, the static assets, and an HTTP server on the chosen host
 * and port (127.0.0.1 unless told otherwise; elsewhere only with a token).
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import pg from 'pg';
import { createAdaptorServer } from '@hono/node-server';
import { SchemaMissingError, SchemaOutdatedError, SchemaTooNewError, schemaStatus } from 'absurd-kit';
import { connectDatabase } from '../database/connect.js';
import type { WorkflowContracts } from '../workflow-contracts.js';
import { loadAssets } from './assets.js';
import { DEFAULT_PORT } from './default-port.js';
import { ContractSchemas } from './contract-schemas.js';
import { dashboardApp } from './routes.js';
import { checkBinding, type SecurityOptions } from './security.js';

/** How to run the dashboard. */
export interface DashboardOptions {
  readonly databaseUrl: string;
  /** Default 127.0.0.1. Anything but loopback needs `token`. */
  readonly host?: string;
  /** Default 7890; 0 takes any free port. */
  readonly port?: number;
  /** Required for every request when given; at least 16 characters. */
  readonly token?: string;
  /** Hide and refuse every action. */
  readonly readOnly?: boolean;
  /** `generated/manifest.json` of the project, for the schemas of params, steps and events. */
  readonly manifestFile?: string;
  /** Contracts loaded from the workflows folder (their validators take precedence over the manifest). */
  readonly contracts?: WorkflowContracts;
}

/** A dashboard that is serving. */
export interface RunningDashboard {
  /** `http://127.0.0.1:7890/` */
  readonly url: string;
  /** The URL to open: with `?token=` when a token is required. */
  readonly openUrl: string;
  /** Stops accepting requests, closes open ones, and closes the pool. */
  close(): Promise<void>;
}

export { DEFAULT_PORT };

/**
 * Starts the dashboard. Throws `SchemaMissingError` / `SchemaOutdatedError` / `SchemaTooNewError`
 * when the database's engine schema is not the one this CLI knows, and a usage error for a
 * non-loopback host without a token.
 *
 * @example
 * const dashboard = await startDashboard({ databaseUrl: 'postgresql://localhost/absurd', port: 0 });
 * console.log(dashboard.openUrl);
 * await dashboard.close();
 */
export async function startDashboard(options: DashboardOptions): Promise<RunningDashboard> {
  const host = options.host ?? '127.0.0.1';
  checkBinding(host, options.token);

  // A schema installed by Absurd's own tools ('foreign') is served too: the pages read only the
  // contract's tables; waking needs absurd-kit's kit_wake_task and is left out there.
  const probe = await connectDatabase(options.databaseUrl);
  let canWake = true;
  try {
    const status = await schemaStatus(probe);
    if (status.state === 'not-installed') throw new SchemaMissingError();
    if (status.state === 'outdated') throw new SchemaOutdatedError(status.pending);
    if (status.state === 'newer') throw new SchemaTooNewError(status.unknown);
    canWake = status.state !== 'foreign';
  } finally {
    await probe.end().catch(() => {});
  }

  const schemas = await ContractSchemas.load(options.manifestFile, options.contracts);
  const assets = await loadAssets();
  const pool = new pg.Pool({ connectionString: options.databaseUrl, max: 4, application_name: 'absurd-dashboard' });
  // A connection that drops while idle must not crash the process; the next request reconnects.
  pool.on('error', () => {});

  const security: { -readonly [K in keyof SecurityOptions]: SecurityOptions[K] } = {
    token: options.token,
    readOnly: options.readOnly === true,
    csrfToken: randomBytes(24).toString('base64url'),
    port: options.port ?? DEFAULT_PORT,
  };
  const app = dashboardApp({ pool, schemas, assets, security, taskNames: schemas.taskNames(), canWake });
  const server = createAdaptorServer({ fetch: app.fetch }) as Server;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? DEFAULT_PORT, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    await pool.end().catch(() => {});
    throw error;
  }
  const address = server.address() as AddressInfo;
  security.port = address.port;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${shownHost}:${address.port}/`;
  return {
    url,
    openUrl: options.token === undefined ? url : `${url}?token=${encodeURIComponent(options.token)}`,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await pool.end().catch(() => {});
    },
  };
}
