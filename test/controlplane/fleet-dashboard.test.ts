/**
 * The dashboard in a real browser (Debian's chromium driven by playwright-core): a Fleet fed by
 * real reports of real mesh traffic (loadgen -> frontend -> products v1/v2 -> reviews, and a
 * failing frontend -> ratings), the dashboard on 127.0.0.1, and the page checked for what an
 * operator needs: every service with a non-zero rate, the topology's exact edges with the
 * failing one marked, a weight change in the store showing in the routes view, no CSP or
 * script error, keyboard reachability. Screenshots go to test-artifacts/.
 *
 * Without chromium the test is skipped locally with a loud reason, and fails when CI is set.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { access, mkdir, writeFile } from 'node:fs/promises';
import { constants } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Browser, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { createFleet } from '../../src/controlplane/fleet/index.js';
import type { Fleet } from '../../src/controlplane/fleet/index.js';
import { startDashboard } from '../../src/controlplane/dashboard/index.js';
import type { Dashboard } from '../../src/controlplane/dashboard/index.js';
import { MemoryStore } from '../../src/controlplane/store/memory-store.js';
import { KEYS } from '../../src/controlplane/store/store.js';
import { startFleetMesh } from '../helpers/fleet-mesh.js';
import type { FleetMesh } from '../helpers/fleet-mesh.js';

// What the page functions below use of the browser's globals (they run in chromium, not here).
interface PageElement { getAttribute(name: string): string | null; textContent: string | null }
declare const document: { querySelectorAll(selector: string): ArrayLike<PageElement>; activeElement: PageElement | null };

const CHROMIUM = process.env.TRELLIS_CHROMIUM ?? '/usr/bin/chromium';
const hasChromium = await access(CHROMIUM, constants.X_OK).then(() => true, () => false);
if (!hasChromium && process.env.CI !== undefined) throw new Error(`chromium is not installed at ${CHROMIUM} and CI is set: .ci/run installs Debian's chromium`);
if (!hasChromium) process.stderr.write(`\n*** SKIPPING the dashboard browser test: no chromium at ${CHROMIUM} (apt-get install chromium) ***\n\n`);

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const artifacts = join(root, 'test-artifacts');
const cleanup: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

let mesh: FleetMesh;
let store: MemoryStore;
let fleet: Fleet;
let dashboard: Dashboard;
let browser: Browser;
let page: Page;
const problems: string[] = [];
const bytes = new Map<string, number>();

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(artifacts, `dashboard-${name}.png`), fullPage: true });
}

describe('dashboard in a real browser', { skip: !hasChromium }, () => {
  before(async () => {
    await mkdir(artifacts, { recursive: true });
    mesh = await startFleetMesh();
    cleanup.push(() => mesh.close());
    store = new MemoryStore();
    cleanup.push(() => store.close());
    await mesh.register(store);
    fleet = createFleet({ store });
    dashboard = await startDashboard({ host: '127.0.0.1', port: 0, fleet, store, checkAdminToken: () => false, refreshMs: 300 });
    cleanup.push(() => dashboard.close());
    // Traffic and reports keep flowing while the page is open (bounded; stopped in after()).
    let stopped = false;
    const pump = (async () => {
      for (let i = 0; i < 2_000 && !stopped; i++) {
        await mesh.traffic(3);
        await mesh.report(fleet);
        await sleep(250);
      }
    })();
    cleanup.push(async () => {
      stopped = true;
      await pump;
    });
    await mesh.traffic(10);
    await mesh.report(fleet);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    cleanup.push(() => browser.close());
    page = await browser.newPage({ viewport: { width: 1366, height: 800 } });
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('response', (r) => {
      const u = new URL(r.url());
      if (!u.pathname.startsWith('/api/')) void r.body().then((b) => bytes.set(u.pathname, b.length), () => undefined);
    });
  });

  it('shows every service with a non-zero rate, and loads nothing from elsewhere', async () => {
    const started = performance.now();
    await page.goto(dashboard.url);
    await page.waitForFunction(() => {
      const rows = Array.from(document.querySelectorAll('tr[data-service]'));
      return rows.length === 5 && rows.every((r) => Number(r.getAttribute('data-rps')) > 0);
    }, undefined, { timeout: 60_000 });
    const firstLoadMs = performance.now() - started;
    const names = await page.$$eval('tr[data-service]', (rows) => rows.map((r) => r.getAttribute('data-service')));
    assert.deepEqual(names, ['frontend', 'loadgen', 'products', 'ratings', 'reviews']);
    // The rate column shows it too, not only the attribute.
    const productsRow = await page.textContent('tr[data-service="products"]');
    assert.match(productsRow ?? '', /\d+\.\d+ rps/);
    assert.equal(await page.$$eval('tr[data-service] svg.spark', (s) => s.length), 5);
    await shot('services');
    const total = [...bytes.values()].reduce((a, b) => a + b, 0);
    await writeFile(join(artifacts, 'dashboard-figures.json'), JSON.stringify({ firstLoadMs: Math.round(firstLoadMs), bytes: Object.fromEntries(bytes), totalBytes: total }, null, 2));
    process.stderr.write(`dashboard: first load with figures in ${Math.round(firstLoadMs)} ms; ${total} bytes (${[...bytes].map(([k, v]) => `${k} ${v}`).join(', ')})\n`);
  });

  it('draws the topology with exactly the edges of who calls whom, the failing one marked', async () => {
    await page.click('a[data-nav="topology"]');
    await page.waitForSelector('g[data-edge]', { timeout: 30_000 });
    await page.waitForFunction(() => document.querySelectorAll('g[data-edge]').length === 4, undefined, { timeout: 30_000 });
    const edges = await page.$$eval('g[data-edge]', (gs) => gs.map((g) => `${g.getAttribute('data-edge')}:${g.getAttribute('data-failing')}`).sort());
    assert.deepEqual(edges, ['frontend->products:false', 'frontend->ratings:true', 'loadgen->frontend:false', 'products->reviews:false']);
    const failing = await page.textContent('g[data-edge="frontend->ratings"] text');
    assert.match(failing ?? '', /^failing · .* rps · 0\.00 % · p99/);
    const nodes = await page.$$eval('g[data-node]', (gs) => gs.map((g) => g.getAttribute('data-node')).sort());
    assert.deepEqual(nodes, ['frontend', 'loadgen', 'products', 'ratings', 'reviews']);
    // The same edges as a table, for screen readers and keyboards.
    assert.equal(await page.$$eval('tr[data-edge-row]', (r) => r.length), 4);
    await shot('topology');
  });

  it('shows one service: instances with labels and config, charts, and a weight change in the routes view', async () => {
    await page.goto(`${dashboard.url}#/service/products`);
    await page.waitForSelector('tr[data-route="catalog"] [data-weight]', { timeout: 30_000 });
    const weights = (): Promise<string[]> => page.$$eval('tr[data-route="catalog"] [data-weight]', (els) => els.map((e) => `${e.getAttribute('data-backend')}:${e.getAttribute('data-weight')}`));
    assert.deepEqual(await weights(), ['version=v1:50', 'version=v2:50']);
    const instances = await page.$$eval('tr[data-instance]', (rows) => rows.map((r) => r.getAttribute('data-instance')));
    assert.deepEqual(instances, ['products-v1', 'products-v2']);
    assert.match((await page.textContent('tr[data-instance="products-v1"]')) ?? '', /version=v1.*ACK 7/s);
    await page.waitForSelector('#chart-rate canvas', { timeout: 30_000 });
    await page.waitForFunction(() => document.querySelectorAll('.uplot').length === 3, undefined, { timeout: 30_000 });
    await shot('service-before');

    const entry = await store.get(KEYS.resource('Service', 'products'));
    await store.commit([{ type: 'put', key: KEYS.resource('Service', 'products'), value: mesh.productsDocument(90, 10), ifModRevision: entry?.modRevision }]);
    await page.waitForFunction(() => {
      const w = Array.from(document.querySelectorAll('tr[data-route="catalog"] [data-weight]')).map((e) => e.getAttribute('data-weight'));
      return w.join(',') === '90,10';
    }, undefined, { timeout: 30_000 });
    assert.match((await page.textContent('tr[data-route="catalog"]')) ?? '', /weight 90 ·\s+90 % configured/);
    await shot('service-after-weight-change');
  });

  it('asks for the admin token when sign-in is required, and a real browser signs in through the form', async () => {
    const token = `trellis-admin.${'c'.repeat(64)}.${'D'.repeat(43)}`;
    const guarded = await startDashboard({ host: '127.0.0.1', port: 0, fleet, store, checkAdminToken: (t) => t === token, requireSignIn: true, refreshMs: 300 });
    cleanup.push(() => guarded.close());
    const p = await browser.newPage({ viewport: { width: 1280, height: 720 } });
    cleanup.push(() => p.close());
    await p.goto(guarded.url);
    assert.equal(new URL(p.url()).pathname, '/login');
    await p.fill('#token', 'not-it');
    await p.click('button[type="submit"]');
    await p.waitForSelector('[role="alert"]');
    assert.match((await p.textContent('[role="alert"]')) ?? '', /not the admin token/);
    await p.screenshot({ path: join(artifacts, 'dashboard-sign-in.png') });
    await p.fill('#token', token);
    await p.click('button[type="submit"]');
    await p.waitForSelector('tr[data-service="products"]', { timeout: 30_000 });
    assert.equal(new URL(p.url()).pathname, '/');
  });

  it('is usable from the keyboard and raised no script or CSP error', async () => {
    await page.goto(dashboard.url);
    await page.waitForSelector('tr[data-service]');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Skip to content');
    // Tab reaches the services' links, and Enter opens one.
    let focused = '';
    for (let i = 0; i < 12 && !focused.startsWith('#/service/'); i++) {
      await page.keyboard.press('Tab');
      focused = (await page.evaluate(() => document.activeElement?.getAttribute('href'))) ?? '';
    }
    assert.match(focused, /^#\/service\//);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#service-head');
    assert.deepEqual(problems, []);
  });
});
