/**
 * The dashboard's HTTP surface without a browser: read-only (only sign-in and sign-out take a
 * POST), strict CSP on every page, and sign-in with the admin token when it is required (off
 * loopback always; here forced on 127.0.0.1): API and pages refused without a session, a wrong
 * token refused, a cross-site sign-in refused, a session cookie that is HttpOnly and
 * SameSite=Strict, sign-out ending it, and attempts rate-limited.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, timingSafeEqual } from 'node:crypto';
import { createFleet } from '../../src/controlplane/fleet/index.js';
import { isLoopback, startDashboard } from '../../src/controlplane/dashboard/index.js';
import { MemoryStore } from '../../src/controlplane/store/memory-store.js';

const TOKEN = `trellis-admin.${'a'.repeat(64)}.${'B'.repeat(43)}`;
const hash = (s: string): Buffer => createHash('sha256').update(s).digest();
const check = (t: string): boolean => timingSafeEqual(hash(t), hash(TOKEN));

const cleanup: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function start(requireSignIn: boolean) {
  const store = new MemoryStore();
  cleanup.push(() => store.close());
  const d = await startDashboard({ host: '127.0.0.1', port: 0, fleet: createFleet({ store }), store, checkAdminToken: check, requireSignIn });
  cleanup.push(() => d.close());
  return d;
}

const get = (url: string, cookie?: string) => fetch(url, { redirect: 'manual', headers: cookie !== undefined ? { cookie } : {} });
const signIn = (base: string, token: string, origin?: string) =>
  fetch(new URL('/login', base), { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', ...(origin !== undefined ? { origin } : {}) }, body: new URLSearchParams({ token }).toString() });

describe('dashboard HTTP', () => {
  it('knows loopback addresses', () => {
    for (const h of ['127.0.0.1', '127.3.2.1', '::1', '[::1]', 'localhost']) assert.equal(isLoopback(h), true, h);
    for (const h of ['0.0.0.0', '10.0.0.1', '::', 'example.org', '128.0.0.1']) assert.equal(isLoopback(h), false, h);
  });

  it('refuses to turn sign-in off on a non-loopback address', async () => {
    const store = new MemoryStore();
    cleanup.push(() => store.close());
    await assert.rejects(startDashboard({ host: '10.0.0.1', port: 0, fleet: createFleet({ store }), store, checkAdminToken: check, requireSignIn: false }), { code: 'TRELLIS_INVALID_ARGUMENT' });
  });

  it('on loopback: open, read-only, with a strict CSP', async () => {
    const d = await start(false);
    assert.equal(d.requiresSignIn, false);
    const page = await get(d.url);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'; script-src 'self'/);
    assert.match(await page.text(), /<script src="\/vendor\/uplot\.js" defer><\/script>/);
    for (const v of ['/vendor/uplot.js', '/vendor/uplot.css', '/vendor/dagre.js', '/assets/app.js', '/assets/app.css']) {
      const r = await get(new URL(v, d.url).href);
      assert.equal(r.status, 200, v);
      assert.ok((await r.arrayBuffer()).byteLength > 1000, v);
    }
    const stat = await get(new URL('/api/stat?window=10s', d.url).href);
    assert.equal(stat.status, 200);
    assert.equal(((await stat.json()) as { window: string }).window, '10s');
    const bad = await get(new URL('/api/stat?window=3h', d.url).href);
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: { code: string } }).error.code, 'TRELLIS_INVALID_ARGUMENT');
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const r = await fetch(new URL('/api/stat', d.url), { method });
      assert.equal(r.status, 405, method);
      await r.arrayBuffer();
    }
  });

  it('off loopback (forced here): nothing without a session, then sign-in with the admin token', async () => {
    const d = await start(true);
    assert.equal(d.requiresSignIn, true);
    const api = await get(new URL('/api/stat', d.url).href);
    assert.equal(api.status, 401);
    const page = await get(d.url);
    assert.equal(page.status, 303);
    assert.equal(page.headers.get('location'), '/login');
    assert.equal((await get(new URL('/healthz', d.url).href)).status, 200, 'health needs no session and says nothing');
    assert.equal((await get(new URL('/assets/app.css', d.url).href)).status, 200, 'the sign-in page has its style');
    assert.equal((await get(new URL('/assets/app.js', d.url).href)).status, 303);
    const login = await get(new URL('/login', d.url).href);
    assert.match(await login.text(), /<label for="token">Admin token<\/label>/);

    const wrong = await signIn(d.url, `trellis-admin.${'a'.repeat(64)}.${'C'.repeat(43)}`);
    assert.equal(wrong.status, 303);
    assert.equal(wrong.headers.get('location'), '/login?failed=invalid');
    assert.equal(wrong.headers.get('set-cookie'), null);

    const crossSite = await signIn(d.url, TOKEN, 'http://evil.example');
    assert.equal(crossSite.status, 403);
    assert.equal(crossSite.headers.get('set-cookie'), null);

    const ok = await signIn(d.url, TOKEN, d.url.replace(/\/$/, ''));
    assert.equal(ok.status, 303);
    const cookie = ok.headers.get('set-cookie') ?? '';
    assert.match(cookie, /^trellis_dashboard=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\//);
    const session = cookie.split(';')[0] ?? '';
    assert.equal((await get(new URL('/api/stat', d.url).href, session)).status, 200);
    assert.equal((await get(d.url, session)).status, 200);

    const out = await fetch(new URL('/logout', d.url), { method: 'POST', redirect: 'manual', headers: { cookie: session } });
    assert.equal(out.status, 303);
    assert.equal((await get(new URL('/api/stat', d.url).href, session)).status, 401);
  });

  it('rate-limits sign-in attempts', async () => {
    const d = await start(true);
    const reasons: string[] = [];
    for (let i = 0; i < 15; i++) reasons.push((await signIn(d.url, 'nope')).headers.get('location') ?? '');
    assert.ok(reasons.filter((r) => r === '/login?failed=limited').length >= 3, reasons.join(' '));
    // Even the right token waits its turn.
    assert.equal((await signIn(d.url, TOKEN)).headers.get('location'), '/login?failed=limited');
  });
});
