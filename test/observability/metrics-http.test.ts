/**
 * The HTTP metrics modules in the real outbound stack (Destinations + HttpClient) against real
 * node:http servers on 127.0.0.1: a retried 503, an injected fault, the body time counted in the
 * logical request and not in the attempt, route names as labels and never a path.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { systemClock, systemRandom } from '../../src/core/clock.js';
import { loadConfig } from '../../src/config/load.js';
import { Destinations } from '../../src/client/destinations.js';
import { HttpClient } from '../../src/client/http-client.js';
import { MeshMetrics, METRIC_NAMES as N } from '../../src/observability/metrics.js';
import { MeshObservability } from '../../src/observability/mesh-observability.js';
import { parseExposition, sampleSum } from '../helpers/prometheus.js';

describe('HTTP metrics modules in the outbound stack', () => {
  let server: http.Server;
  let address = '';
  let flaky = 0;
  let metrics: MeshMetrics;
  let destinations: Destinations;
  let client: HttpClient;

  before(async () => {
    server = http.createServer((req, res) => {
      if (req.url?.startsWith('/catalog/flaky') === true && flaky++ % 2 === 0) {
        res.statusCode = 503;
        res.end('try again');
        return;
      }
      if (req.url?.startsWith('/catalog/broken-body') === true) {
        res.writeHead(200, { 'content-length': '100' });
        res.write('only part');
        setTimeout(() => res.socket?.destroy(), 20);
        return;
      }
      if (req.url?.startsWith('/catalog/endless') === true) {
        res.writeHead(200);
        res.write('more to come');
        return;
      }
      if (req.url?.startsWith('/catalog/slow-body') === true) {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('first,');
        setTimeout(() => res.end('last'), 300);
        return;
      }
      res.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const config = await loadConfig(`apiVersion: trellis/v1
kind: Service
metadata: { name: products }
spec:
  endpoints:
    - address: ${address}
  retries: { attempts: 3, on: [gateway-error], backoff: { base: 1ms, max: 2ms } }
  routes:
    - name: catalog
      match: { pathPrefix: [/catalog] }
    - name: broken
      match: { pathPrefix: [/broken] }
      fault: { abort: { status: 503, percent: 100 } }
    - name: default
`);
    metrics = new MeshMetrics();
    destinations = new Destinations(
      systemClock,
      systemRandom,
      { onEndpoints: () => undefined, onEjection: () => undefined, onBreaker: () => undefined, onBreakerPresence: () => undefined, onWarn: () => undefined },
      new MeshObservability(metrics, systemClock),
    );
    destinations.apply(config);
    client = new HttpClient('products', destinations, {}, () => false);
  });

  after(async () => {
    await destinations.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  /** Waits until `name{match}` sums to `want` (body-completion recording lands a tick later). */
  async function eventually(name: string, match: Record<string, string>, want: number): Promise<string> {
    const until = Date.now() + 2_000;
    for (;;) {
      const text = await metrics.text();
      if (sampleSum(text, name, match) === want || Date.now() > until) return text;
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  it('counts a retried 503 as two attempts and one successful request, labelled by route name', async () => {
    const res = await client.request({ method: 'GET', path: '/catalog/flaky?id=7' });
    assert.equal(res.statusCode, 200);
    await res.body.text();
    const text = await eventually(N.clientRequests, { method: 'GET' }, 1);
    assert.equal(sampleSum(text, N.clientRequests, { service: 'products', route: 'catalog', method: 'GET', status_code: '200', outcome: 'success' }), 1);
    assert.equal(sampleSum(text, N.clientAttempts, { route: 'catalog', method: 'GET', status_code: '503', outcome: 'failure' }), 1);
    assert.equal(sampleSum(text, N.clientAttempts, { route: 'catalog', method: 'GET', status_code: '200', outcome: 'success' }), 1);
  });

  it('counts an injected abort as outcome fault, with no attempt', async () => {
    const res = await client.request({ method: 'POST', path: '/broken/x', body: '{}' });
    assert.equal(res.statusCode, 503);
    await res.body.text();
    const text = await eventually(N.clientRequests, { route: 'broken' }, 1);
    assert.equal(sampleSum(text, N.clientRequests, { route: 'broken', method: 'POST', status_code: '503', outcome: 'fault' }), 1);
    assert.equal(sampleSum(text, N.clientAttempts, { route: 'broken' }), 0);
  });

  it('times the logical request until the body is done, the attempt until its headers', async () => {
    const res = await client.request({ method: 'PATCH', path: '/catalog/slow-body' });
    assert.equal(await res.body.text(), 'first,last');
    const text = await eventually(N.clientRequests, { method: 'PATCH' }, 1);
    const match = { route: 'catalog', method: 'PATCH' };
    assert.equal(sampleSum(text, `${N.clientRequestDuration}_count`, match), 1);
    assert.equal(sampleSum(text, `${N.clientRequestDuration}_bucket`, { ...match, le: '0.25' }), 0, 'the body took 300 ms');
    assert.equal(sampleSum(text, `${N.clientRequestDuration}_bucket`, { ...match, le: '0.5' }), 1);
    assert.equal(sampleSum(text, `${N.clientAttemptDuration}_count`, match), 1);
    assert.equal(sampleSum(text, `${N.clientAttemptDuration}_bucket`, { ...match, le: '0.25' }), 1, 'the headers came at once');
  });

  it('gives a body that broke mid-way outcome reset, and one the caller aborted outcome cancelled, keeping the status', async () => {
    const broken = await client.request({ method: 'PUT', path: '/catalog/broken-body' });
    assert.equal(broken.statusCode, 200);
    await assert.rejects(broken.body.text());
    let text = await eventually(N.clientRequests, { method: 'PUT' }, 1);
    assert.equal(sampleSum(text, N.clientRequests, { method: 'PUT', status_code: '200', outcome: 'reset' }), 1);

    const ac = new AbortController();
    const endless = await client.request({ method: 'DELETE', path: '/catalog/endless', signal: ac.signal });
    assert.equal(endless.statusCode, 200);
    const reading = endless.body.text().catch((e: unknown) => e);
    ac.abort();
    await reading;
    text = await eventually(N.clientRequests, { method: 'DELETE' }, 1);
    assert.equal(sampleSum(text, N.clientRequests, { method: 'DELETE', status_code: '200', outcome: 'cancelled' }), 1);
  });

  it('never labels a series with a path or an endpoint address', async () => {
    for (const path of ['/users/1', '/users/2', '/catalog/9?secret=1']) {
      const res = await client.request({ method: 'OPTIONS', path });
      await res.body.dump();
    }
    const text = await eventually(N.clientRequests, { method: 'OPTIONS' }, 3);
    const values = parseExposition(text).flatMap((s) => Object.values(s.labels));
    for (const v of values) {
      assert.ok(!v.startsWith('/'), `label value ${v} looks like a path`);
      assert.ok(!v.includes(address), `label value ${v} holds the endpoint address`);
    }
    assert.equal(sampleSum(text, N.clientRequests, { method: 'OPTIONS', route: 'default' }), 2, 'two paths, one series');
  });
});
