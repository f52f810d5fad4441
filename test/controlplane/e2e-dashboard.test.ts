/**
 * The dashboard of a real control-plane process (`--dashboard 127.0.0.1:0`) in a real browser
 * (Debian's chromium via playwright-core), fed by real instance processes' reports: a frontend
 * calling products v1 and v2 (weighted route) over mTLS. The page must show both services with a
 * non-zero rate, the frontend -> products edge in the topology, the products instances with their
 * labels and ACKed config, and a weight change made with `trellis apply` in the routes view.
 * Screenshots go to test-artifacts/e2e-dashboard-*.png.
 *
 * Without chromium the test is skipped locally with a loud reason, and fails when CI is set.
 */
import assert from 'node:assert/strict';
import { access, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { constants } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { bootstrapToken, killAll, startCpProcess, startInstance, trellis, type CpProcess, type InstanceProcess } from '../helpers/cp-process.js';

interface PageElement { getAttribute(name: string): string | null; textContent: string | null }
declare const document: { querySelectorAll(selector: string): ArrayLike<PageElement> };

const CHROMIUM = process.env.TRELLIS_CHROMIUM ?? '/usr/bin/chromium';
const hasChromium = await access(CHROMIUM, constants.X_OK).then(() => true, () => false);
if (!hasChromium && process.env.CI !== undefined) throw new Error(`chromium is not installed at ${CHROMIUM} and CI is set`);
if (!hasChromium) process.stderr.write(`\n*** SKIPPING the control-plane dashboard browser test: no chromium at ${CHROMIUM} ***\n\n`);

const artifacts = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../test-artifacts');
const TD = 'e2e.test';
const products = (v1: number, v2: number): string => `apiVersion: trellis/v1
kind: Service
metadata: { name: products }
spec:
  protocol: http
  timeout: 2s
  routes:
    - name: catalog
      backends: [ { subset: { version: v1 }, weight: ${v1} }, { subset: { version: v2 }, weight: ${v2} } ]
`;
const SHOP = `apiVersion: trellis/v1
kind: Mesh
metadata: { name: default }
spec: { trustDomain: ${TD} }
---
apiVersion: trellis/v1
kind: Service
metadata: { name: frontend }
spec: { protocol: http, timeout: 2s }
---
${products(50, 50)}`;

describe('e2e: the dashboard of a real control plane with real instances', { skip: !hasChromium }, () => {
  let dir: string;
  let cp: CpProcess;
  let fe: InstanceProcess;
  let browser: Browser | undefined;
  let page: Page;
  let calling = true;
  let caller: Promise<void> = Promise.resolve();
  const problems: string[] = [];

  before(async () => {
    await mkdir(artifacts, { recursive: true });
    dir = await mkdtemp(path.join(os.tmpdir(), 'trellis-e2e-dash-'));
    cp = await startCpProcess({ dataDir: path.join(dir, 'cp'), trustDomain: TD, dashboard: '127.0.0.1:0' });
    assert.ok(cp.dashboardUrl !== undefined, cp.stdout.text);
    await writeFile(path.join(dir, 'shop.yaml'), SHOP);
    assert.equal((await trellis(['apply', '-f', path.join(dir, 'shop.yaml')], cp)).code, 0);
    const pToken = await bootstrapToken(cp, 'products');
    await Promise.all(
      ['v1', 'v2'].map((v) => startInstance({ name: `products-${v}`, service: 'products', urls: [cp.url], token: pToken, cacheDir: path.join(dir, `cache-${v}`), labels: { version: v } })),
    );
    fe = await startInstance({ name: 'frontend-1', service: 'frontend', urls: [cp.url], token: await bootstrapToken(cp, 'frontend'), cacheDir: path.join(dir, 'cache-fe'), serve: false });
    await fe.waitFor(/^EVENT configured products 2$/m, 'both products in the frontend');
    // Traffic flows while the page is open (batches back to back; stopped in after()).
    caller = (async () => {
      while (calling) await fe.call('products', 10);
    })().catch(() => {});
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    page = await browser.newPage({ viewport: { width: 1366, height: 800 } });
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  });

  after(async () => {
    calling = false;
    await browser?.close();
    await killAll();
    await caller;
    await rm(dir, { recursive: true, force: true });
  });

  it('shows both services with a non-zero rate, from the instances\' reports', async () => {
    await page.goto(cp.dashboardUrl as string);
    // (No named functions inside page functions: tsx would wrap them in a helper the page lacks.)
    await page.waitForFunction(() => {
      const busy = Array.from(document.querySelectorAll('tr[data-service]')).filter((r) => Number(r.getAttribute('data-rps') ?? 0) > 0).map((r) => r.getAttribute('data-service'));
      return busy.includes('frontend') && busy.includes('products');
    }, undefined, { timeout: 90_000 });
    await page.screenshot({ path: path.join(artifacts, 'e2e-dashboard-services.png'), fullPage: true });
  });

  it('draws the frontend -> products edge', async () => {
    await page.click('a[data-nav="topology"]');
    await page.waitForFunction(() => Array.from(document.querySelectorAll('g[data-edge]')).some((g) => g.getAttribute('data-edge') === 'frontend->products'), undefined, { timeout: 60_000 });
    const edges = await page.$$eval('g[data-edge]', (gs) => gs.map((g) => g.getAttribute('data-edge')));
    assert.deepEqual(edges, ['frontend->products']);
    await page.screenshot({ path: path.join(artifacts, 'e2e-dashboard-topology.png'), fullPage: true });
  });

  it('shows the products instances with their labels and ACKed config, and a weight change made with trellis apply', async () => {
    await page.goto(`${cp.dashboardUrl as string}#/service/products`);
    await page.waitForSelector('tr[data-route="catalog"] [data-weight]', { timeout: 60_000 });
    const weights = (): Promise<string[]> => page.$$eval('tr[data-route="catalog"] [data-weight]', (els) => els.map((e) => `${e.getAttribute('data-backend')}:${e.getAttribute('data-weight')}`));
    assert.deepEqual(await weights(), ['version=v1:50', 'version=v2:50']);
    await page.waitForFunction(() => Array.from(document.querySelectorAll('tr[data-instance]')).filter((r) => /ACK/.test(r.textContent ?? '')).length === 2, undefined, { timeout: 60_000 });
    const rows = await page.$$eval('tr[data-instance]', (rs) => rs.map((r) => r.textContent ?? ''));
    assert.ok(rows.some((r) => /version=v1/.test(r)) && rows.some((r) => /version=v2/.test(r)), rows.join('\n'));

    await writeFile(path.join(dir, 'weights.yaml'), products(90, 10));
    const applied = await trellis(['apply', '-f', path.join(dir, 'weights.yaml')], cp);
    assert.equal(applied.code, 0, applied.err);
    await page.waitForFunction(() => Array.from(document.querySelectorAll('tr[data-route="catalog"] [data-weight]')).map((e) => e.getAttribute('data-weight')).join(',') === '90,10', undefined, { timeout: 60_000 });
    await page.screenshot({ path: path.join(artifacts, 'e2e-dashboard-weight-change.png'), fullPage: true });
    assert.deepEqual(problems, []);
  });
});
