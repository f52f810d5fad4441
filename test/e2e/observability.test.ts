/**
 * Golden metrics and tracing through the whole mesh: exact counters for a known set of requests
 * (with a retry and a failure), no raw path in labels, one trace across three hops with the right
 * parents (with an SDK) and the caller's trace id reaching the last hop (without one), B3 in and
 * traceparent out, and a real Prometheus scraping a running instance.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { TracerProvider } from '@opentelemetry/api';
import { meshClient } from 'trellis';
import type { Mesh } from 'trellis';
import { quietLogger, serviceYaml, startServer } from '../helpers/servers.js';
import { sampleSum } from '../helpers/prometheus.js';
import { findPrometheus, startPrometheus } from '../helpers/prometheus.js';

const cleanup: (() => Promise<void> | void)[] = [];
const prometheus = await findPrometheus();
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function metricsText(mesh: Mesh): Promise<string> {
  return mesh.metricsRegistry.metrics();
}

describe('golden metrics', () => {
  it('counts logical requests and attempts exactly, with route names and no raw paths', async () => {
    let calls = 0;
    const s = await startServer('m', { kind: 'ok' }, (req, res) => {
      calls++;
      if (req.url?.startsWith('/flaky') && calls % 2 === 1) {
        res.statusCode = 503;
        res.end('try again');
        return;
      }
      res.end('ok');
    });
    cleanup.push(() => s.close());
    const mesh = await meshClient({
      config: serviceYaml('products', [{ address: s.address }], `retries: { attempts: 2, on: [gateway-error], backoff: { base: 1ms, max: 2ms } }
routes:
  - name: flaky
    match: { pathPrefix: /flaky }
  - name: default`) + `---\n${serviceYaml('ghost', [{ address: '127.0.0.1:1' }], 'outlierDetection: false')}`,
      logger: quietLogger(),
    });
    cleanup.push(() => mesh.close());
    for (let i = 0; i < 3; i++) await (await mesh.http('products').request({ path: `/items/${i}` })).body.text();
    calls = 0;
    await (await mesh.http('products').request({ path: '/flaky/1' })).body.text();
    await assert.rejects(mesh.http('ghost').request({ path: '/x' }));
    await sleep(20);
    const text = await metricsText(mesh);
    assert.equal(sampleSum(text, 'trellis_client_requests_total', { service: 'products', route: 'default', outcome: 'success', status_code: '200' }), 3);
    assert.equal(sampleSum(text, 'trellis_client_requests_total', { service: 'products', route: 'flaky', outcome: 'success' }), 1);
    assert.equal(sampleSum(text, 'trellis_client_attempts_total', { service: 'products', route: 'flaky' }), 2);
    assert.equal(sampleSum(text, 'trellis_client_attempts_total', { service: 'products', route: 'flaky', status_code: '503', outcome: 'failure' }), 1);
    assert.equal(sampleSum(text, 'trellis_client_retries_total', { service: 'products', route: 'flaky' }), 1);
    assert.equal(sampleSum(text, 'trellis_client_requests_total', { service: 'ghost', outcome: 'connect_failure' }) + sampleSum(text, 'trellis_client_requests_total', { service: 'ghost', outcome: 'failure' }), 1);
    assert.equal(sampleSum(text, 'trellis_client_request_duration_seconds_count', { service: 'products' }), 4);
    assert.doesNotMatch(text, /="\/[^"]*"/, 'no label value is a path');
  });

  it('counts served requests with mesh.serve, and exposes them through mesh.metricsHandler()', async () => {
    const mesh = await meshClient({ service: 'orders' });
    cleanup.push(() => mesh.close());
    const server = await mesh.serve((req, res) => {
      res.statusCode = req.url === '/boom' ? 500 : 200;
      res.end();
    });
    for (const p of ['/a', '/b', '/boom']) await (await fetch(`http://${server.address}${p}`)).text();
    const metricsServer = http.createServer(mesh.metricsHandler());
    await new Promise<void>((r) => metricsServer.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise<void>((r) => metricsServer.close(() => r())));
    const res = await fetch(`http://127.0.0.1:${(metricsServer.address() as AddressInfo).port}/metrics`);
    const text = await res.text();
    assert.equal(sampleSum(text, 'trellis_server_requests_total', { service: 'orders', outcome: 'success' }), 2);
    assert.equal(sampleSum(text, 'trellis_server_requests_total', { service: 'orders', status_code: '500', outcome: 'failure' }), 1);
  });

  const skip = prometheus === undefined && !process.env.CI ? 'prometheus is not installed: SKIPPING the scrape test (apt-get install -y prometheus; in CI it fails instead)' : false;
  it('a real Prometheus scrapes a running instance and reports the request counter', { skip }, async () => {
    assert.ok(prometheus, 'prometheus binary missing (apt-get install -y prometheus)');
    const s = await startServer('scraped');
    cleanup.push(() => s.close());
    const mesh = await meshClient({ service: 'scraper', config: serviceYaml('products', [{ address: s.address }]) });
    cleanup.push(() => mesh.close());
    for (let i = 0; i < 7; i++) await (await mesh.http('products').request({ path: `/p/${i}` })).body.text();
    const metricsServer = http.createServer(mesh.metricsHandler());
    await new Promise<void>((r) => metricsServer.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise<void>((r) => metricsServer.close(() => r())));
    const prom = await startPrometheus(prometheus, [`127.0.0.1:${(metricsServer.address() as AddressInfo).port}`]);
    cleanup.push(() => prom.close());
    const until = Date.now() + 20_000;
    let value = 0;
    while (Date.now() < until) {
      const v = await prom.query('sum(trellis_client_requests_total{service="products",outcome="success"})');
      value = Number(v[0]?.value[1] ?? 0);
      if (value === 7) break;
      await sleep(500);
    }
    assert.equal(value, 7, prom.log());
  });
});

describe('distributed tracing', () => {
  interface Hop {
    mesh: Mesh;
    address: string;
  }
  /** caller → a → b → c(plain server that records what it received) */
  async function chain(provider: TracerProvider | undefined): Promise<{ caller: Mesh; seen: http.IncomingHttpHeaders[] }> {
    const seen: http.IncomingHttpHeaders[] = [];
    const c = await startServer('c', { kind: 'ok' }, (req, res) => {
      seen.push(req.headers);
      res.end('c');
    });
    cleanup.push(() => c.close());
    const opts = (service: string, config: string) => ({ service, config, logger: quietLogger(), ...(provider ? { tracerProvider: provider } : {}) });
    const mk = async (service: string, next: string, nextAddress: string): Promise<Hop> => {
      const mesh = await meshClient(opts(service, serviceYaml(next, [{ address: nextAddress }])));
      cleanup.push(() => mesh.close());
      const server = await mesh.serve((_req, res) => {
        // Application code: no header forwarding, an await in between.
        void (async () => {
          await sleep(1);
          const r = await mesh.http(next).request({ path: '/next' });
          res.end(await r.body.text());
        })();
      });
      return { mesh, address: server.address };
    };
    const b = await mk('b', 'c', c.address);
    const a = await mk('a', 'b', b.address);
    const caller = await meshClient(opts('caller', serviceYaml('a', [{ address: a.address }])));
    cleanup.push(() => caller.close());
    return { caller, seen };
  }

  it('without any SDK, the caller trace id reaches the third hop', async () => {
    const { caller, seen } = await chain(undefined);
    const res = await caller.http('a').request({ path: '/', headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' } });
    assert.equal(await res.body.text(), 'c');
    assert.match(String(seen[0]?.traceparent), /^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
  });

  it('a B3 caller continues into traceparent callees', async () => {
    const { caller, seen } = await chain(undefined);
    const res = await caller.http('a').request({ path: '/', headers: { 'x-b3-traceid': '463ac35c9f6413ad48485a3953bb6124', 'x-b3-spanid': 'a2fb4a1d1a96d312', 'x-b3-sampled': '1' } });
    await res.body.text();
    assert.match(String(seen[0]?.traceparent), /^00-463ac35c9f6413ad48485a3953bb6124-/);
    assert.equal(seen[0]?.['x-b3-traceid'], undefined, 'B3 is read, and written only when configured');
  });

  it('with an SDK, one trace id across three hops, each hop its own span with the right parent', async () => {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    cleanup.push(() => provider.shutdown());
    const { caller, seen } = await chain(provider);
    const res = await caller.http('a').request({ path: '/' });
    await res.body.text();
    await sleep(50);
    const spans = exporter.getFinishedSpans();
    const traceIds = new Set(spans.map((s) => s.spanContext().traceId));
    assert.equal(traceIds.size, 1, `one trace: ${[...traceIds].join(', ')}`);
    // caller client → a server → a client → b server → b client (→ c, not meshed)
    assert.equal(spans.length, 5, spans.map((s) => `${s.name}/${s.kind}`).join(', '));
    const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
    const parentOf = (s: (typeof spans)[number]): string | undefined => s.parentSpanContext?.spanId;
    const roots = spans.filter((s) => parentOf(s) === undefined);
    assert.equal(roots.length, 1);
    let depth = 0;
    for (let cur = roots[0]; cur !== undefined; depth++) {
      const child = spans.find((s) => parentOf(s) === cur?.spanContext().spanId);
      if (child === undefined) break;
      assert.notEqual(child.kind, cur.kind, 'client and server spans alternate');
      cur = child;
    }
    assert.equal(depth, 4);
    const last = [...byId.values()].find((s) => spans.every((o) => parentOf(o) !== s.spanContext().spanId));
    assert.ok(String(seen[0]?.traceparent).includes(last?.spanContext().spanId ?? 'x'), 'c received the last client span as parent');
  });
});
