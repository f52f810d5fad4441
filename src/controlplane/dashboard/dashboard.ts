/**
 * The dashboard: the control plane's read-only web view of the fleet, on its own listener
 * (`trellis control-plane --dashboard HOST:PORT`, default 127.0.0.1:7401, plain HTTP).
 *
 * On loopback anyone on the machine may read it (as `linkerd viz dashboard` serves through a
 * local port-forward). Bound anywhere else, every page and API call needs a session obtained by
 * signing in with the admin token (sessions.ts); plain HTTP then carries that token once, so
 * put a TLS terminator or an SSH tunnel in front of it on an untrusted network.
 *
 * Routes: `/` the single-page app (services, topology, one service), `/assets/*` its script and
 * style, `/vendor/*` uPlot and dagre from their npm packages, `/api/stat` the `/v1/stat` body
 * (the page polls it), `/api/info`, `/healthz`, `/login` and `/logout`. Nothing else, GET and
 * HEAD only (POST for sign-in and sign-out), strict CSP: the page loads nothing from elsewhere.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Clock } from '../../core/clock.js';
import { systemClock } from '../../core/clock.js';
import { InvalidArgumentError, isTrellisError } from '../../core/errors.js';
import type { Fleet } from '../fleet/index.js';
import type { Store } from '../store/store.js';
import { PAGE_CSS } from './page-css.js';
import { loginPage, PAGE_HTML } from './page-html.js';
import { PAGE_SCRIPT } from './page-script.js';
import { Sessions } from './sessions.js';
import { loadVendorFiles } from './vendor.js';

export const DEFAULT_DASHBOARD_HOST = '127.0.0.1';
export const DEFAULT_DASHBOARD_PORT = 7401;

export interface DashboardOptions {
  /** Default 127.0.0.1. Anything but loopback requires signing in with the admin token. */
  readonly host?: string | undefined;
  /** Default 7401; 0 for any free port. */
  readonly port?: number | undefined;
  readonly fleet: Fleet;
  readonly store: Store;
  /** The control plane's admin-token check (constant-time). */
  readonly checkAdminToken: (token: string) => boolean;
  readonly clock?: Clock | undefined;
  /** Require signing in even on loopback (a shared machine). Default: only off loopback; false off loopback is refused. */
  readonly requireSignIn?: boolean | undefined;
  /** How often the page refreshes its figures (default 2 s). */
  readonly refreshMs?: number | undefined;
}

export interface Dashboard {
  /** `http://host:port/` */
  readonly url: string;
  readonly requiresSignIn: boolean;
  close(): Promise<void>;
}

/** Whether `host` only accepts connections from this machine. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  // Not no-referrer: under it browsers send `Origin: null` with the sign-in form, which the
  // cross-site check must refuse. same-origin sends nothing to other sites.
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
};

const MAX_FORM = 4096;

function send(res: http.ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type, 'content-length': String(Buffer.byteLength(body)), ...extra });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function json(res: http.ServerResponse, status: number, body: unknown): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(body), { 'cache-control': 'no-store' });
}

function readForm(req: http.IncomingMessage): Promise<URLSearchParams | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_FORM) {
        resolve(undefined);
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', () => resolve(undefined));
  });
}

/**
 * Starts the dashboard's listener.
 *
 * @example
 * const dashboard = await startDashboard({ fleet, store, checkAdminToken: (t) => admin.check(t) });
 * console.log(`dashboard: ${dashboard.url}`);
 */
export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const host = options.host ?? DEFAULT_DASHBOARD_HOST;
  const clock = options.clock ?? systemClock;
  if (options.requireSignIn === false && !isLoopback(host)) {
    throw new InvalidArgumentError(`dashboard: ${host} is not a loopback address, so signing in with the admin token cannot be turned off`);
  }
  const requiresSignIn = options.requireSignIn ?? !isLoopback(host);
  const sessions = new Sessions(options.checkAdminToken, clock);
  const vendor = await loadVendorFiles();
  const refreshMs = options.refreshMs ?? 2_000;

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    const p = url.pathname;
    const method = req.method ?? 'GET';
    if (p === '/healthz' && (method === 'GET' || method === 'HEAD')) return send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
    // The style sheet says nothing about the fleet, and the sign-in page needs it.
    if (p === '/assets/app.css' && (method === 'GET' || method === 'HEAD')) return send(res, 200, 'text/css; charset=utf-8', PAGE_CSS, { 'cache-control': 'no-cache' });

    if (requiresSignIn && p === '/login') {
      if (method === 'GET' || method === 'HEAD') return send(res, 200, 'text/html; charset=utf-8', loginPage(url.searchParams.get('failed')));
      if (method !== 'POST') return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { allow: 'GET, POST' });
      // A cross-site form cannot sign a victim in to the attacker's session (login CSRF).
      const origin = req.headers.origin;
      if (origin !== undefined && origin !== `http://${req.headers.host ?? ''}`) return send(res, 403, 'text/plain; charset=utf-8', 'cross-origin sign-in refused\n');
      const form = await readForm(req);
      const r = sessions.signIn(form?.get('token')?.trim() ?? '');
      if (!r.ok) return send(res, 303, 'text/plain; charset=utf-8', '', { location: `/login?failed=${r.reason}` });
      return send(res, 303, 'text/plain; charset=utf-8', '', { location: '/', 'set-cookie': Sessions.cookie(r.id) });
    }
    if (requiresSignIn && p === '/logout' && method === 'POST') {
      sessions.signOut(req.headers.cookie);
      return send(res, 303, 'text/plain; charset=utf-8', '', { location: '/login', 'set-cookie': `${Sessions.cookie('')}; Max-Age=0` });
    }
    if (method !== 'GET' && method !== 'HEAD') return send(res, 405, 'text/plain; charset=utf-8', 'the dashboard is read-only\n', { allow: 'GET, HEAD' });
    if (requiresSignIn && !sessions.valid(req.headers.cookie)) {
      if (p.startsWith('/api/')) return json(res, 401, { error: { code: 'TRELLIS_UNAUTHENTICATED', message: 'sign in with the admin token at /login' } });
      return send(res, 303, 'text/plain; charset=utf-8', '', { location: '/login' });
    }

    if (p === '/favicon.ico') return send(res, 204, 'image/x-icon', '');
    if (p === '/') return send(res, 200, 'text/html; charset=utf-8', PAGE_HTML, { 'cache-control': 'no-cache' });
    if (p === '/assets/app.js') return send(res, 200, 'text/javascript; charset=utf-8', PAGE_SCRIPT, { 'cache-control': 'no-cache' });
    if (p.startsWith('/vendor/')) {
      const f = vendor.get(p.slice('/vendor/'.length));
      if (f !== undefined) return send(res, 200, f.type, f.body, { 'cache-control': 'public, max-age=86400' });
    }
    if (p === '/api/stat') {
      try {
        return json(res, 200, await options.fleet.stat(url.searchParams));
      } catch (err) {
        const code = isTrellisError(err) ? err.code : 'TRELLIS_INTERNAL';
        return json(res, code === 'TRELLIS_INVALID_ARGUMENT' ? 400 : code === 'TRELLIS_UPSTREAM_ERROR' ? 502 : 500, { error: { code, message: (err as Error).message } });
      }
    }
    if (p === '/api/info') {
      const [revision, health] = await Promise.all([options.store.revision(), options.store.health()]);
      return json(res, 200, { configRevision: revision, store: { kind: options.store.kind, ok: health.ok }, refreshMs, requiresSignIn });
    }
    return send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) json(res, 500, { error: { code: 'TRELLIS_INTERNAL', message: (err as Error).message } });
      else res.destroy();
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? DEFAULT_DASHBOARD_PORT, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${shown}:${addr.port}/`,
    requiresSignIn,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
