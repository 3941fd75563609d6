import { createHash } from 'node:crypto';
import pg from 'pg';
import { listenStatement, unlistenStatement } from './queries/notifications.queries.js';

/**
 * The NOTIFY channel of a queue. Spawns, emitted events and retries notify it so that idle workers
 * claim at once instead of at their next poll. Hashed because channel names are identifiers
 * (at most 63 bytes) and queue names may be up to 57 bytes of anything.
 *
 * @example
 * wakeChannel('orders'); // 'absurd_wake_…' (32 hex digits)
 */
export function wakeChannel(queueName: string): string {
  return `absurd_wake_${createHash('md5').update(queueName, 'utf8').digest('hex')}`;
}

/** Options of {@link QueueListener}. */
export interface QueueListenerOptions {
  /** How to open the dedicated LISTEN connection (a `pg.Client` config). */
  connection: pg.ClientConfig;
  /** Called on connection problems; the listener reconnects by itself. */
  onError?: (error: Error) => void;
  /** Called each time the connection is (re)established and listening. */
  onConnected?: () => void;
}

/**
 * One dedicated connection that LISTENs on queue wake channels and calls subscribers on every
 * notification. Reconnects with backoff when the connection drops and then wakes every subscriber
 * (a notification may have been missed meanwhile). Workers still poll, so a lost notification only
 * costs latency, never work.
 */
export class QueueListener {
  readonly #options: QueueListenerOptions;
  readonly #subscribers = new Map<string, Set<() => void>>();
  #client: pg.Client | undefined;
  #connecting: Promise<void> | undefined;
  #closed = false;
  #retryTimer: NodeJS.Timeout | undefined;

  constructor(options: QueueListenerOptions) {
    this.#options = options;
  }

  /** Calls `onWake` on every notification for `queueName`; returns the unsubscribe function. */
  async subscribe(queueName: string, onWake: () => void): Promise<() => Promise<void>> {
    const channel = wakeChannel(queueName);
    let set = this.#subscribers.get(channel);
    const first = !set;
    if (!set) {
      set = new Set();
      this.#subscribers.set(channel, set);
    }
    set.add(onWake);
    await this.#ensureConnected();
    if (first && this.#client) await setListening(this.#client, channel, true).catch(() => undefined);
    return async () => {
      set.delete(onWake);
      if (set.size === 0) {
        this.#subscribers.delete(channel);
        // With nobody left to wake, hold no connection: it would keep the process alive after
        // `worker.close()` (absurd-sdk programs end their pool and expect the process to exit).
        if (this.#subscribers.size === 0) await this.#disconnect();
        else if (this.#client) await setListening(this.#client, channel, false).catch(() => undefined);
      }
    };
  }

  /** Closes the connection; no more callbacks. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => undefined);
  }

  async #disconnect(): Promise<void> {
    clearTimeout(this.#retryTimer);
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => undefined);
  }

  #ensureConnected(): Promise<void> {
    if (this.#client || this.#closed) return Promise.resolve();
    this.#connecting ??= this.#connect().finally(() => {
      this.#connecting = undefined;
    });
    return this.#connecting;
  }

  async #connect(attempt = 0): Promise<void> {
    const client = new pg.Client(this.#options.connection);
    client.on('error', (error) => this.#lost(client, error));
    client.on('end', () => this.#lost(client, new Error('LISTEN connection ended')));
    client.on('notification', (message) => {
      for (const onWake of this.#subscribers.get(message.channel) ?? []) onWake();
    });
    try {
      await client.connect();
      for (const channel of this.#subscribers.keys()) await setListening(client, channel, true);
    } catch (error) {
      await client.end().catch(() => undefined);
      this.#options.onError?.(error as Error);
      if (this.#closed || this.#subscribers.size === 0) return;
      this.#scheduleReconnect(attempt + 1);
      return;
    }
    if (this.#closed || this.#subscribers.size === 0) {
      await client.end().catch(() => undefined);
      return;
    }
    this.#client = client;
    this.#options.onConnected?.();
    if (attempt > 0) this.#wakeAll();
  }

  #lost(client: pg.Client, error: Error) {
    if (this.#client !== client || this.#closed) return;
    this.#client = undefined;
    this.#options.onError?.(error);
    void client.end().catch(() => undefined);
    this.#scheduleReconnect(1);
  }

  #scheduleReconnect(attempt: number) {
    clearTimeout(this.#retryTimer);
    const delay = Math.min(30_000, 250 * 2 ** Math.min(attempt, 7));
    this.#retryTimer = setTimeout(() => {
      this.#connecting ??= this.#connect(attempt).finally(() => {
        this.#connecting = undefined;
      });
    }, delay);
    this.#retryTimer.unref();
  }

  #wakeAll() {
    for (const set of this.#subscribers.values()) for (const onWake of set) onWake();
  }
}

/**
 * LISTEN or UNLISTEN on `client`. Both take the channel as an identifier, which no statement
 * parameter can carry, so Postgres builds the statement (the name double-quoted) and the same
 * connection then runs it: `listen "absurd_wake_…"`.
 */
async function setListening(client: pg.Client, channel: string, listening: boolean): Promise<void> {
  const query = listening ? listenStatement : unlistenStatement;
  const [row] = await query.run({ channel }, client);
  if (row) await client.query(row.statement);
}
