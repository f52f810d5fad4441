/**
 * The handler-based hot path (src/client/outbound-call.ts) against real node:http servers: every
 * destination takes it (mirroring too), a controller-form undici handler through mesh.dispatcher,
 * mirrored copies through fetch and undici.request, the caller's abort charged to no endpoint,
 * and a retried 503 drained on its keep-alive connection.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';
import { request as undiciRequest } from 'undici';
import { setTimeout as sleep } from 'node:timers/promises';
import { meshClient, isTrellisError } from 'trellis';
import type { AccessLogEntry } from 'trellis';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { quietLogger, serviceYaml, startServer } from '../helpers/servers.js';

describe('outbound hot path', () => {
  const cleanup: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('says in mesh.inspect() that every destination runs on it, a mirroring one too', async () => {
    const s = await startServer('a');
    cleanup.push(() => s.close());
    const mesh = await meshClient({
      config: `${serviceYaml('plain', [{ address: s.address }], 'rateLimit: { requestsPerSecond: 1000, burst: 10 }\nroutes:\n  - name: all\n    timeout: 1s')}---\n${serviceYaml('faulty', [{ address: s.address }], 'routes:\n  - name: all\n    mirror: { subset: { version: v3 }, percent: 5 }')}`,
      logger: quietLogger(),
    });
    cleanup.push(() => mesh.close());
    const byName = new Map(mesh.inspect().services.map((v) => [v.name, v.stack]));
    assert.match(byName.get('plain') ?? '', /^path: handler/);
    assert.match(byName.get('faulty') ?? '', /^path: handler/);
    assert.match(byName.get('faulty') ?? '', /mirror/);
    // Both still answer.
    for (const name of ['plain', 'faulty']) {
      const res = await mesh.http(name).request({ path: '/x' });
      assert.ok(res.statusCode === 200 || name === 'faulty', `${name}: ${res.statusCode}`);
      await res.body.dump();
    }
  });

  it('mirrors through mesh.dispatcher (fetch and undici.request): the copy carries the rewritten path, headers, body and the mark; the primary is answered alone', async () => {
    const primary = await startServer('primary');
    const seen: { path: string; headers: IncomingHttpHeaders; body: string }[] = [];
    const shadow = await startServer('shadow', { kind: 'ok' }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() });
        res.end('shadow');
      });
    });
    cleanup.push(() => primary.close(), () => shadow.close());
    const mesh = await meshClient({
      config: serviceYaml('orders', [{ address: primary.address, labels: { version: 'v1' } }, { address: shadow.address, labels: { version: 'v2' } }], `routes:
  - name: api
    match: { pathPrefix: /api }
    rewrite: { path: /v1, authority: orders.internal }
    backends: [ { subset: { version: v1 } } ]
    mirror: { subset: { version: v2 }, percent: 100 }`),
      logger: quietLogger(),
    });
    cleanup.push(() => mesh.close());
    assert.match(mesh.inspect().services.find((v) => v.name === 'orders')?.stack ?? '', /^path: handler/);
    const dispatcher = mesh.dispatcher;
    // fetch() hands its dispatcher a body as an async iterable, read once: a GET here (a body
    // fetch sends is not replayable, so neither retried nor mirrored, as before).
    const viaFetch = await fetch('http://orders/api/a?x=1', { headers: { 'x-tenant': 't1' }, dispatcher } as unknown as RequestInit);
    assert.equal(viaFetch.status, 200);
    assert.equal(JSON.parse(await viaFetch.text()).server, 'primary');
    const viaRequest = await undiciRequest('http://orders/api/b', { method: 'PUT', body: 'again', headers: { 'x-tenant': 't2' }, dispatcher });
    assert.equal(JSON.parse(await viaRequest.body.text()).server, 'primary');
    for (let i = 0; i < 200 && seen.length < 2; i++) await sleep(10);
    assert.equal(primary.hits, 2);
    assert.equal(seen.length, 2, `each call was copied once: ${JSON.stringify(seen.map((c) => c.path))}`);
    const byPath = new Map(seen.map((c) => [c.path, c]));
    const a = byPath.get('/v1/a?x=1');
    const b = byPath.get('/v1/b');
    assert.ok(a !== undefined && b !== undefined, `copies at ${[...byPath.keys()].join(', ')}`);
    assert.equal(a.body, '');
    assert.equal(a.headers['x-tenant'], 't1');
    assert.equal(a.headers['x-trellis-mirror'], '1');
    assert.equal(a.headers.host, 'orders.internal');
    assert.equal(b.body, 'again');
    assert.equal(b.headers['x-tenant'], 't2');
    const counters = mesh.inspect().services.find((v) => v.name === 'orders')?.counters;
    assert.equal(counters?.mirrored, 2);
    assert.equal(counters?.requests, 2, 'the copies are not logical requests');
  });

  it("drives a controller-form handler (undici 7's onRequestStart/onResponseStart) through mesh.dispatcher; a retried 503 never reaches it", async () => {
    const bad = await startServer('bad', { kind: 'status', status: 503 });
    const good = await startServer('good');
    cleanup.push(() => bad.close(), () => good.close());
    const mesh = await meshClient({
      config: serviceYaml('products', [{ address: bad.address }, { address: good.address }], 'loadBalancer: round-robin\noutlierDetection: false\nretries: { attempts: 2, on: [gateway-error], backoff: { base: 1ms, max: 2ms } }'),
      logger: quietLogger(),
    });
    cleanup.push(() => mesh.close());
    for (let i = 0; i < 4; i++) {
      const got = await new Promise<{ status: number; headers: IncomingHttpHeaders; body: string; starts: number }>((resolve, reject) => {
        const chunks: Buffer[] = [];
        let status = 0;
        let headers: IncomingHttpHeaders = {};
        let starts = 0;
        const handler: Dispatcher.DispatchHandler = {
          onRequestStart: () => {
            starts++;
          },
          onResponseStart: (_c, statusCode, h) => {
            status = statusCode;
            headers = h;
          },
          onResponseData: (_c, chunk) => {
            chunks.push(chunk);
          },
          onResponseEnd: () => resolve({ status, headers, body: Buffer.concat(chunks).toString(), starts }),
          onResponseError: (_c, err) => reject(err),
        };
        mesh.dispatcher.dispatch({ origin: 'http://products', path: `/c${i}`, method: 'GET' }, handler);
      });
      assert.equal(got.status, 200);
      assert.equal(got.headers['x-server'], 'good');
      assert.equal(got.starts, 1);
      assert.equal((JSON.parse(got.body) as { path: string }).path, `/c${i}`);
    }
    // Half the first attempts went to the failing endpoint and were retried on the good one.
    assert.ok(bad.hits >= 1, `bad saw ${bad.hits}`);
    assert.equal(good.hits, 4);
  });

  it("a caller's abort ends the call with TRELLIS_ABORTED, closes the upstream request, and ejects no endpoint", async () => {
    let closed = 0;
    const hung = await startServer('hung', { kind: 'hang' }, (req, res) => {
      res.on('close', () => closed++);
      void req;
    });
    cleanup.push(() => hung.close());
    const mesh = await meshClient({
      config: serviceYaml('products', [{ address: hung.address }], 'timeout: 30s\noutlierDetection: { consecutiveFailures: 1, ejectionTime: 30s, maxEjectedPercent: 100 }'),
      logger: quietLogger(),
    });
    cleanup.push(() => mesh.close());
    for (let i = 0; i < 3; i++) {
      const ac = new AbortController();
      const pending = mesh.http('products').request({ path: '/', signal: ac.signal });
      while (hung.hits <= i) await new Promise((r) => setTimeout(r, 5));
      ac.abort(new Error('caller gave up'));
      await assert.rejects(pending, (err: unknown) => isTrellisError(err, 'TRELLIS_ABORTED') && (err as Error).cause instanceof Error);
    }
    // The upstream saw each request end, and the endpoint was never ejected for the caller's choice.
    while (closed < 3) await new Promise((r) => setTimeout(r, 5));
    assert.equal(mesh.inspect().services[0]?.endpoints[0]?.ejected, false);
  });

  it('a retried 503 with a small body is drained, so the retry and later calls reuse the connection', async () => {
    const sockets = new Set<unknown>();
    let n = 0;
    const s = await startServer('flaky', { kind: 'ok' }, (req, res) => {
      sockets.add(req.socket);
      n++;
      res.statusCode = n % 2 === 1 ? 503 : 200;
      res.end(`answer ${n}`);
    });
    cleanup.push(() => s.close());
    const mesh = await meshClient({
      config: serviceYaml('products', [{ address: s.address }], 'outlierDetection: false\nconnection: { maxConnections: 1 }\nretries: { attempts: 2, on: [gateway-error], backoff: { base: 1ms, max: 2ms } }'),
      logger: quietLogger(),
    });
    cleanup.push(() => mesh.close());
    for (let i = 0; i < 3; i++) {
      const res = await mesh.http('products').request({ path: '/' });
      assert.equal(res.statusCode, 200);
      assert.equal(await res.body.text(), `answer ${2 * (i + 1)}`);
    }
    assert.equal(n, 6);
    assert.equal(sockets.size, 1, 'one keep-alive connection carried every attempt');
  });

  it("a client's classifier sees status and headers: a 200 it calls a retryable failure is retried elsewhere and never reaches the caller", async () => {
    const bad = await startServer('bad', { kind: 'ok' }, (_req, res) => {
      res.setHeader('x-app-error', 'overloaded');
      res.end('{"errors":[1]}');
    });
    const good = await startServer('good');
    cleanup.push(() => bad.close(), () => good.close());
    const mesh = await meshClient({
      config: serviceYaml('graph', [{ address: bad.address }, { address: good.address }], 'loadBalancer: round-robin\noutlierDetection: false\nretries: { attempts: 2, on: [gateway-error], backoff: { base: 1ms, max: 2ms } }'),
      logger: quietLogger(),
    });
    cleanup.push(() => mesh.close());
    const client = mesh.http('graph', { classify: (res) => (res.headers['x-app-error'] !== undefined ? 'retryable-failure' : undefined) });
    for (let i = 0; i < 4; i++) {
      const res = await client.request({ path: '/q' });
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['x-server'], 'good');
      await res.body.dump();
    }
    assert.ok(bad.hits >= 1, `bad saw ${bad.hits}`);
    assert.equal(good.hits, 4);
  });

  it('an injected abort is answered on the hot path as Istio does: never sent, counted as outcome fault', async () => {
    const s = await startServer('upstream');
    cleanup.push(() => s.close());
    const mesh = await meshClient({
      config: serviceYaml('products', [{ address: s.address }], 'routes:\n  - name: teapot\n    fault: { abort: { status: 418, percent: 100 } }'),
      logger: quietLogger(),
    });
    cleanup.push(() => mesh.close());
    assert.match(mesh.inspect().services[0]?.stack ?? '', /^path: handler/);
    for (let i = 0; i < 3; i++) {
      const res = await mesh.http('products').request({ method: 'POST', path: '/brew', body: 'x' });
      assert.equal(res.statusCode, 418);
      assert.equal(res.headers['x-trellis-fault'], 'abort');
      assert.equal(await res.body.text(), 'fault filter abort');
    }
    assert.equal(s.hits, 0);
    assert.equal(mesh.inspect().services[0]?.counters.faults, 3);
    const text = await mesh.metricsRegistry.metrics();
    assert.match(text, /trellis_client_requests_total\{[^}]*route="teapot"[^}]*status_code="418"[^}]*outcome="fault"[^}]*\} 3/);
  });

  it('with an SDK, each attempt is its own CLIENT span and sends its own span id; a retry is a sibling with resend_count', async () => {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    cleanup.push(() => provider.shutdown());
    const sent: string[] = [];
    let n = 0;
    const s = await startServer('traced', { kind: 'ok' }, (req, res) => {
      sent.push(String(req.headers.traceparent));
      res.statusCode = ++n === 1 ? 503 : 200;
      res.end('x');
    });
    cleanup.push(() => s.close());
    const mesh = await meshClient({
      config: serviceYaml('products', [{ address: s.address }], 'outlierDetection: false\nretries: { attempts: 2, on: [gateway-error], backoff: { base: 1ms, max: 2ms } }'),
      tracerProvider: provider,
      logger: quietLogger(),
    });
    cleanup.push(() => mesh.close());
    const res = await mesh.http('products').request({ path: '/list?secret=1' });
    assert.equal(res.statusCode, 200);
    await res.body.text();
    while (exporter.getFinishedSpans().length < 2) await new Promise((r) => setTimeout(r, 5));
    const spans = exporter.getFinishedSpans().filter((x) => x.kind === SpanKind.CLIENT);
    assert.equal(spans.length, 2);
    const [first, second] = spans;
    // Outside any span each attempt is a root (as the promise stack's tracing filter documents).
    assert.equal(first?.attributes['http.response.status_code'], 503);
    assert.equal(first?.attributes['error.type'], '503');
    assert.equal(first?.status.code, SpanStatusCode.ERROR);
    assert.equal(first?.attributes['url.path'], '/list');
    assert.equal(first?.attributes['trellis.route'], 'default');
    assert.equal(second?.attributes['http.request.resend_count'], 1);
    assert.equal(second?.status.code, SpanStatusCode.UNSET);
    assert.deepEqual(sent.map((t) => t.split('-')[2]), spans.map((x) => x.spanContext().spanId));
  });

  it('writes one access-log line per logical request on the handler path: a retried 503 is one line, with route, status, caller and outcome', async () => {
    let n = 0;
    const s = await startServer('logged', { kind: 'ok' }, (req, res) => {
      res.statusCode = ++n === 1 ? 503 : req.url === '/fail' ? 500 : 200;
      res.end('x');
    });
    cleanup.push(() => s.close());
    const lines: AccessLogEntry[] = [];
    const mesh = await meshClient({
      service: 'checkout',
      config: serviceYaml('products', [{ address: s.address }], 'outlierDetection: false\nretries: { attempts: 2, on: [gateway-error], backoff: { base: 1ms, max: 2ms } }'),
      accessLog: (e) => lines.push(e),
      logger: quietLogger(),
    });
    cleanup.push(() => mesh.close());
    assert.match(mesh.inspect().services[0]?.stack ?? '', /^path: handler/);
    assert.match(mesh.inspect().services[0]?.stack ?? '', /access-log/, 'the described stack still names the access-log module');
    const ok = await mesh.http('products').request({ path: '/list' });
    await ok.body.text();
    const bad = await mesh.http('products').request({ path: '/fail' });
    await bad.body.text();
    assert.equal(n, 3, 'the first 503 was retried');
    assert.equal(lines.length, 2, 'one line per logical request, not per attempt');
    const [first, second] = lines;
    assert.equal(first?.direction, 'outbound');
    assert.equal(first?.service, 'products');
    assert.equal(first?.route, 'default');
    assert.equal(first?.method, 'GET');
    assert.equal(first?.status, 200);
    assert.equal(first?.caller, 'checkout');
    assert.equal(first?.outcome, 'success');
    assert.ok(typeof first?.duration_ms === 'number' && first.duration_ms >= 0);
    assert.ok(!Number.isNaN(Date.parse(first?.ts ?? '')));
    assert.equal(second?.status, 500);
    assert.equal(second?.outcome, 'failure');
  });

  it('applies adaptive concurrency on the handler path: attempts over the limit fail fast with TRELLIS_OVERLOADED and never reach the upstream; slots are given back', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const s = await startServer('held', { kind: 'held', until: held });
    cleanup.push(() => s.close());
    const mesh = await meshClient({
      config: serviceYaml('products', [{ address: s.address }], 'adaptiveConcurrency: { initial: 2, min: 2, max: 2 }'),
      logger: quietLogger(),
    });
    cleanup.push(() => mesh.close());
    assert.match(mesh.inspect().services[0]?.stack ?? '', /^path: handler/);
    assert.match(mesh.inspect().services[0]?.stack ?? '', /adaptive-concurrency/, 'the described stack still names the module');
    const calls = Array.from({ length: 5 }, () => mesh.http('products').request({ path: '/' }).then(async (r) => (await r.body.text(), 'ok'), (e: unknown) => e));
    while (s.hits < 2) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 30));
    release();
    const results = await Promise.all(calls);
    assert.equal(results.filter((r) => r === 'ok').length, 2);
    assert.equal(results.filter((r) => isTrellisError(r, 'TRELLIS_OVERLOADED')).length, 3, String(results));
    assert.equal(s.hits, 2, 'refused attempts never reached the upstream');
    assert.equal(mesh.inspect().services[0]?.concurrency?.inflight, 0, 'every slot was given back');
    assert.equal(mesh.inspect().services[0]?.counters.overloaded, 3);
  });
});
