/**
 * The dashboard's security model, as Hono middleware:
 *
 * - It binds to a loopback address unless told otherwise, and binding anywhere else needs a token
 *   ({@link checkBinding}); with a token, every request must carry it (a bearer header, or the
 *   session cookie that opening the printed `?token=` link sets).
 * - Without a token only loopback host names are served (`Host: localhost`, `127.0.0.1`, `[::1]`),
 *   so that a page from another site cannot reach it through DNS rebinding.
 * - Actions are POSTs, refused unless the request comes from the dashboard's own pages: the
 *   `Origin` (and `Sec-Fetch-Site`) must be its own, and the form must carry the CSRF token that
 *   only its pages hold. `--read-only` refuses every POST.
 * - Every response forbids framing and scripts from elsewhere (Content-Security-Policy), and pages
 *   are not cached.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import { UsageError } from '../cli-args.js';

/** How the dashboard is exposed. */
export interface SecurityOptions {
  /** The token every request must carry; undefined on loopback without one. */
  readonly token: string | undefined;
  readonly readOnly: boolean;
  /** Secret that forms carry back (a hidden field `_csrf`, or the header `X-CSRF-Token`). */
  readonly csrfToken: string;
  /** The port, to keep the cookies of two dashboards on one host apart. */
  readonly port: number;
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

/**
 * Whether a host to bind or a Host header names this machine only.
 *
 * @example
 * isLoopback('127.0.0.1'); // true
 * isLoopback('0.0.0.0');   // false
 */
export function isLoopback(host: string): boolean {
  const name = host.toLowerCase();
  return LOOPBACK_NAMES.has(name) || /^127(\.\d{1,3}){3}$/.test(name) || name.endsWith('.localhost');
}

/**
 * Refuses (as a usage error) to bind anywhere but loopback without a token, and a token too short
 * to resist guessing.
 *
 * @example
 * checkBinding('0.0.0.0', undefined); // throws: binding to 0.0.0.0 needs --token
 */
export function checkBinding(host: string, token: string | undefined): void {
  if (token !== undefined && token.length < 16) {
    throw new UsageError('--token must be at least 16 characters (for example `openssl rand -hex 16`)');
  }
  if (!isLoopback(host) && token === undefined) {
    throw new UsageError(
      `binding to ${host} exposes the dashboard beyond this machine; give --token <secret> (or set ABSURD_DASHBOARD_TOKEN), ` +
        'or leave --host out to bind to 127.0.0.1',
    );
  }
}

/** Compares two secrets in constant time. */
function sameSecret(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function cookieName(options: SecurityOptions): string {
  return `absurd_dashboard_${options.port}`;
}

/** What the session cookie holds: derived from the token, so that the cookie does not carry the token itself. */
function sessionValue(token: string): string {
  return createHmac('sha256', token).update('absurd dashboard session').digest('hex');
}

/** Headers of every response. */
export function securityHeaders(): MiddlewareHandler {
  return async (c, next) => {
    await next();
    c.header(
      'Content-Security-Policy',
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('X-Frame-Options', 'DENY');
    // Not no-referrer: with it, browsers send `Origin: null` on form posts, which the action guard refuses.
    c.header('Referrer-Policy', 'same-origin');
    c.header('Cross-Origin-Opener-Policy', 'same-origin');
    c.header('Cross-Origin-Resource-Policy', 'same-origin');
    if (!c.res.headers.has('Cache-Control')) c.header('Cache-Control', 'no-store');
  };
}

/** Without a token, serves loopback host names only (DNS rebinding). */
export function hostCheck(options: SecurityOptions): MiddlewareHandler {
  return async (c, next) => {
    if (options.token === undefined) {
      const host = hostName(c.req.header('host') ?? '');
      if (!isLoopback(host)) return c.text(`the dashboard answers to localhost only, not to the host ${JSON.stringify(host)}`, 403);
    }
    return next();
  };
}

function hostName(hostHeader: string): string {
  if (hostHeader.startsWith('[')) return hostHeader.slice(0, hostHeader.indexOf(']') + 1);
  return hostHeader.replace(/:\d+$/, '');
}

/**
 * With a token: lets through requests that carry it (bearer header or session cookie); a `?token=`
 * link sets the cookie and redirects to the same page without it; anything else gets 401 and a
 * form to enter the token.
 */
export function authenticate(options: SecurityOptions): MiddlewareHandler {
  return async (c, next) => {
    const token = options.token;
    if (token === undefined) return next();
    const bearer = /^Bearer (.+)$/.exec(c.req.header('authorization') ?? '')?.[1];
    if (sameSecret(bearer, token) || sameSecret(getCookie(c, cookieName(options)), sessionValue(token))) return next();

    const offered = c.req.method === 'GET' ? c.req.query('token') : undefined;
    if (offered !== undefined && sameSecret(offered, token)) {
      startSession(c, options, token);
      const url = new URL(c.req.url);
      url.searchParams.delete('token');
      // One leading slash: `//host/…` would send the browser to another site.
      return c.redirect(`/${url.pathname.replace(/^\/+/, '')}${url.search}`, 303);
    }
    if (c.req.method === 'POST' && c.req.path === '/login') {
      if (!sameOrigin(c)) return c.text('refused: this form was not sent from the dashboard', 403);
      const form = await c.req.parseBody();
      if (typeof form.token === 'string' && sameSecret(form.token, token)) {
        startSession(c, options, token);
        return c.redirect('/', 303);
      }
    }
    return c.html(loginPage(offered !== undefined || c.req.method === 'POST'), 401);
  };
}

function startSession(c: Context, options: SecurityOptions, token: string): void {
  setCookie(c, cookieName(options), sessionValue(token), { httpOnly: true, sameSite: 'Strict', path: '/' });
}

function loginPage(wrong: boolean): string {
  // Static text only: nothing of the request is echoed.
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>absurd dashboard: token needed</title>
<link rel="stylesheet" href="/assets/dashboard.css"></head><body><main class="login">
<h1>This dashboard needs its token</h1>
<p>Open the link that <code>absurd dashboard</code> printed, or enter the token it was started with.</p>
${wrong ? '<p class="notice error">That token is not the right one.</p>' : ''}
<form method="post" action="/login"><label>Token <input type="password" name="token" autocomplete="current-password" required></label>
<button type="submit">Open</button></form></main></body></html>`;
}

/**
 * Whether a request comes from the dashboard's own pages as far as the browser says: its `Origin`
 * (when sent) is the dashboard's, and `Sec-Fetch-Site` (when sent) is same-origin.
 */
function sameOrigin(c: Context): boolean {
  const origin = c.req.header('origin');
  const host = c.req.header('host');
  if (origin !== undefined && (host === undefined || (origin !== `http://${host}` && origin !== `https://${host}`))) return false;
  const site = c.req.header('sec-fetch-site');
  return site === undefined || site === 'same-origin' || site === 'none';
}

/**
 * Guards the POSTs: refused in read-only mode, from another origin, or without the CSRF token.
 * The token is read from the header `X-CSRF-Token` or the form field `_csrf`.
 */
export function actionGuard(options: SecurityOptions): MiddlewareHandler {
  return async (c, next) => {
    if (c.req.method !== 'POST' || c.req.path === '/login') return next();
    if (options.readOnly) return c.text('refused: the dashboard runs with --read-only', 403);
    if (!sameOrigin(c)) return c.text('refused: this action was not sent from the dashboard (Origin mismatch)', 403);
    const header = c.req.header('x-csrf-token');
    const field = header === undefined ? (await c.req.parseBody())._csrf : undefined;
    const given = header ?? (typeof field === 'string' ? field : undefined);
    if (!sameSecret(given, options.csrfToken)) return c.text('refused: the form carries no valid CSRF token; reload the page', 403);
    return next();
  };
}
