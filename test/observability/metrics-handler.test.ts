/**
 * metricsHandler over a real node:http server on 127.0.0.1: the text format with the registry's
 * content type, HEAD, 405 for other methods, and 500 (not a crash) when a collector fails.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Gauge, Registry } from 'prom-client';
import type { OpenMetricsContentType } from 'prom-client';
import { MeshMetrics, METRIC_NAMES as N } from '../../src/observability/metrics.js';
import { metricsHandler } from '../../src/observability/metrics-handler.js';
import { sampleSum } from '../helpers/prometheus.js';

async function listen(handler: http.RequestListener): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('metricsHandler', () => {
  const closers: (() => Promise<void>)[] = [];
  after(async () => {
    await Promise.all(closers.map((c) => c()));
  });

  it('serves the Prometheus text format with the registry content type', async () => {
    const metrics = new MeshMetrics();
    metrics.recordClientRequest('products', 'catalog', 'GET', '200', 'success', 0.02);
    metrics.recordServerRequest('checkout', 'frontend', 'unknown', 'POST', '500', 'failure', 0.1);
    const s = await listen(metricsHandler(metrics.registry));
    closers.push(s.close);
    const res = await fetch(s.url);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), metrics.registry.contentType);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    assert.match(text, /^# HELP trellis_client_requests_total /m);
    assert.match(text, /^# TYPE trellis_client_request_duration_seconds histogram$/m);
    assert.equal(sampleSum(text, N.clientRequests, { service: 'products', outcome: 'success' }), 1);
    assert.equal(sampleSum(text, N.serverRequests, { service: 'checkout', caller: 'frontend', status_code: '500' }), 1);

    const head = await fetch(s.url, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
    const post = await fetch(s.url, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    await post.arrayBuffer();
  });

  it('serves an OpenMetrics registry as OpenMetrics', async () => {
    const registry = new Registry<OpenMetricsContentType>();
    registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    new MeshMetrics({ registry }).recordClientAttempt('products', 'default', 'GET', '200', 'success', 0.01);
    const s = await listen(metricsHandler(registry));
    closers.push(s.close);
    const res = await fetch(s.url);
    assert.match(res.headers.get('content-type') ?? '', /^application\/openmetrics-text/);
    const text = await res.text();
    assert.match(text, /# EOF\s*$/);
    assert.match(text, /trellis_client_attempts_total\{service="products"/);
  });

  it('answers 500 when a collector fails, and keeps serving', async () => {
    const registry = new Registry();
    let fail = true;
    new Gauge({
      name: 'app_flaky',
      help: 'fails once',
      registers: [registry],
      collect() {
        if (fail) {
          fail = false;
          throw new Error('collector broke');
        }
        this.set(1);
      },
    });
    const s = await listen(metricsHandler(registry));
    closers.push(s.close);
    const bad = await fetch(s.url);
    assert.equal(bad.status, 500);
    assert.match(await bad.text(), /collector broke/);
    const good = await fetch(s.url);
    assert.equal(good.status, 200);
    assert.match(await good.text(), /app_flaky 1/);
  });
});
