/**
 * A fresh database with the engine installed, for one test file (or one test): a clone of the
 * test server's template, dropped when closed.
 */

/** A database cloned from the engine template; {@link close} drops it. */
export class TestDatabase implements AsyncDisposable {
  /** Its name on the server, `absurd_test_<random>`. */
  readonly name: string;
  /** Its connection URL (for a pool of your own, e.g. for your application's tables). */
  readonly url: string;
  readonly #drop: () => Promise<void>;
  #closed: Promise<void> | undefined;

  /** @internal Made by `createTestDatabase` and `TestServer.createDatabase`. */
  constructor(name: string, url: string, drop: () => Promise<void>) {
    this.name = name;
    this.url = url;
    this.#drop = drop;
  }

  /** Drops the database (closing any connection left on it). Idempotent. */
  close(): Promise<void> {
    this.#closed ??= this.#drop();
    return this.#closed;
  }

  /** `await using db = await createTestDatabase()` closes it at the end of the block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
