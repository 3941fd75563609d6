/**
 * Notices shown once after an action: the action stores its outcome under a random id, redirects
 * to a page with `?flash=<id>` (POST, redirect, GET), and that page takes the notice out.
 */
import { randomBytes } from 'node:crypto';
import type { Notice } from './html.js';

/** Notices waiting to be shown once, by a random id carried in the redirect; each kept a minute. */
export class Flash {
  readonly #notices = new Map<string, { notice: Notice; expires: number }>();

  /** Stores `notice` and returns the id to put in the redirect's `?flash=`. */
  put(notice: Notice): string {
    const now = Date.now();
    for (const [id, entry] of this.#notices) if (entry.expires < now) this.#notices.delete(id);
    const id = randomBytes(9).toString('base64url');
    this.#notices.set(id, { notice, expires: now + 60_000 });
    return id;
  }

  /** The notice stored under `id`, removed; undefined when there is none (or it expired). */
  take(id: string | undefined): Notice | undefined {
    if (id === undefined) return undefined;
    const entry = this.#notices.get(id);
    this.#notices.delete(id);
    return entry?.notice;
  }
}
