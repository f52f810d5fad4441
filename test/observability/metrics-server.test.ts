/**
 * Server request metrics over a real node:http server on 127.0.0.1: one record per request when
 * the response finishes, caller and route read at that moment, 5xx as failure, 4xx as success,
 * a client that goes away mid-response as cancelled.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ManualClock, systemClock } from '../../src/core/clock.js';
import { MeshMetrics, METRIC_NAMES as N } from '../../src/observability/metrics.js';
import { recordServerRequest, serverMetrics } from '../../src/observability/metrics-server.js';
import type { ServerRequestLabels } from '../../src/observability/metrics-server.js';
import { sampleSum } from '../helpers/prometheus.js';

describe('serverMetrics', () => {
  let server: http.Server;
  let base = '';
  const metrics = new MeshMetrics();
  let hung: (() => void) | undefined;

  before(async () => {
    const track = serverMetrics(metrics, { clock: systemClock, service: 'products' });
    server = http.createServer((req, res) => {
      const labels: ServerRequestLabels = {};
      track(req, res, labels);
      // Layers after the hook learn the caller and route; the hook reads them at the end.
      labels.caller = req.headers['x-test-caller'] as string | undefined;
      labels.route = 'items';
      if (req.url === '/teapot') {
        res.statusCode = 418;
        res.end();
      } else if (req.url === '/boom') {
        res.statusCode = 500;
        res.end('boom');
      } else if (req.url === '/denied') {
        labels.outcome = 'forbidden';
        res.statusCode = 403;
        res.end();
      } else if (req.url === '/hang') {
        res.writeHead(200);
        res.write('partial');
        hung?.();
      } else {
        res.end('ok');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('records each request once with this service, the caller and the route name', async () => {
    for (const path of ['/a/1', '/a/2', '/teapot', '/boom', '/denied']) {
      const res = await fetch(`${base}${path}`, { headers: { 'x-test-caller': 'checkout' } });
      await res.arrayBuffer();
    }
    await (await fetch(`${base}/b`)).arrayBuffer();
    const dropped = new Promise<void>((resolve) => {
      hung = resolve;
    });
    const ac = new AbortController();
    const pending = fetch(`${base}/hang`, { signal: ac.signal }).then((r) => r.text()).catch(() => undefined);
    await dropped;
    ac.abort();
    await pending;
    await new Promise((r) => setTimeout(r, 50));

    const text = await metrics.text();
    const count = (labels: Record<string, string>): number => sampleSum(text, N.serverRequests, { service: 'products', route: 'items', ...labels });
    assert.equal(count({ caller: 'checkout', method: 'GET', status_code: '200', outcome: 'success' }), 2);
    assert.equal(count({ caller: 'checkout', status_code: '418', outcome: 'success' }), 1, '4xx is the client\'s error');
    assert.equal(count({ caller: 'checkout', status_code: '500', outcome: 'failure' }), 1);
    assert.equal(count({ caller: 'checkout', status_code: '403', outcome: 'forbidden' }), 1);
    assert.equal(count({ caller: 'unknown', status_code: '200', outcome: 'success' }), 1);
    assert.equal(count({ caller: 'unknown', status_code: '200', outcome: 'cancelled' }), 1);
    assert.equal(sampleSum(text, N.serverRequests), 7);
    assert.equal(sampleSum(text, `${N.serverRequestDuration}_count`), 7);
  });

  it('recordServerRequest takes its outcome from the status when none is given', async () => {
    const m = new MeshMetrics();
    const clock = new ManualClock();
    recordServerRequest(m, { service: 'products', caller: 'unknown', route: 'unknown', method: 'GET', statusCode: '503', durationSec: clock.now() });
    recordServerRequest(m, { service: 'products', caller: 'unknown', route: 'unknown', method: 'GET', statusCode: '', durationSec: 0 });
    recordServerRequest(m, { service: 'products', caller: 'unknown', route: 'unknown', method: 'GET', statusCode: '204', durationSec: 0.001 });
    const text = await m.text();
    assert.equal(sampleSum(text, N.serverRequests, { outcome: 'failure' }), 2);
    assert.equal(sampleSum(text, N.serverRequests, { outcome: 'success', status_code: '204' }), 1);
  });
});
