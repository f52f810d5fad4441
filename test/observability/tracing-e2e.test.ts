/**
 * The trace crosses three real node:http services (edge → orders → stock) through the
 * application's async code, with the pieces `mesh.serve` and the outbound stack wire
 * (inboundTracing + runWithAmbient on the way in, httpTracingModule above an undici transport
 * on the way out), called directly here. No header is forwarded by the handlers.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Writable } from 'node:stream';
import { request as undiciRequest } from 'undici';
import { SpanKind, trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { CallContext } from '../../src/core/context.js';
import { runWithAmbient } from '../../src/core/ambient.js';
import { systemClock } from '../../src/core/clock.js';
import { makeEndpoint } from '../../src/discovery/endpoint.js';
import { normalizeHeaders } from '../../src/client/http-request.js';
import type { HttpRequest } from '../../src/client/http-request.js';
import type { HttpResponse } from '../../src/client/http-transport.js';
import type { Service } from '../../src/core/service.js';
import { MeshTracer } from '../../src/observability/tracer.js';
import { httpTracingModule } from '../../src/observability/tracing-http.js';
import { inboundTracing } from '../../src/observability/tracing-inbound.js';
import { accessLogger, inboundAccessLog } from '../../src/observability/access-log.js';
import type { AccessLogEntry } from '../../src/observability/access-log.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

interface Running {
  port: number;
  close(): Promise<void>;
}

const servers: Running[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** An undici transport to the endpoint the (absent) balancer would have chosen. */
const transport: Service<HttpRequest, HttpResponse> = (req, ctx) =>
  undiciRequest(`http://${ctx.endpoint?.id}${req.path}`, { method: 'GET', headers: req.headers as Record<string, string> });

type Call = (port: number, service: string, path: string) => Promise<string>;

/** A service as `mesh.serve` will run it: server span, ambient trace, access log, outbound filter. */
async function service(name: string, tracer: MeshTracer, log: (e: AccessLogEntry) => void, handler: (req: http.IncomingMessage, call: Call) => Promise<string>): Promise<Running> {
  const send = httpTracingModule(tracer).make(transport);
  const call: Call = async (port, dest, path) => {
    const ctx = new CallContext(dest, true);
    ctx.endpoint = makeEndpoint('127.0.0.1', port);
    const res = await send({ method: 'GET', path, headers: normalizeHeaders({ accept: 'text/plain' }), body: undefined, replayable: true, classify: undefined, rest: {} }, ctx);
    return res.body.text();
  };
  // As inbound-stack.ts calls them: observe (metrics, access log) first, then the trace.
  const tracing = inboundTracing(tracer);
  const observe = inboundAccessLog(log, { clock: systemClock, traceIdOf: tracing.traceIdOf });
  const server = http.createServer((req, res) => {
    observe(req, res, name);
    const span = tracing.startTrace(req, res, name);
    runWithAmbient({ deadline: undefined, service: name, trace: span.ambientTrace }, () =>
      span.run(() => {
        handler(req, call).then(
          (body) => res.end(body),
          (err: unknown) => res.writeHead(500).end(String(err)),
        );
      }),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const running = { port, close: () => new Promise<void>((r) => server.close(() => r())) };
  servers.push(running);
  return running;
}

/** stock answers with the trace headers it received; orders and edge call the next hop after some async work. */
async function threeHops(tracers: [MeshTracer, MeshTracer, MeshTracer], log: (e: AccessLogEntry) => void = () => undefined): Promise<Running> {
  const stock = await service('stock', tracers[2], log, async (req) => JSON.stringify({ traceparent: req.headers.traceparent, b3: req.headers['x-b3-traceid'] }));
  const orders = await service('orders', tracers[1], log, async (_req, call) => {
    await sleep(5);
    await Promise.resolve();
    return call(stock.port, 'stock', '/level');
  });
  return service('edge', tracers[0], log, async (_req, call) => {
    await new Promise((r) => setImmediate(r));
    return call(orders.port, 'orders', '/orders');
  });
}

async function get(port: number, headers: Record<string, string>): Promise<{ traceparent?: string; b3?: string }> {
  const res = await undiciRequest(`http://127.0.0.1:${port}/`, { headers });
  assert.equal(res.statusCode, 200);
  return (await res.body.json()) as { traceparent?: string; b3?: string };
}

describe('no SDK anywhere (propagate only)', () => {
  test("the caller's trace reaches the third hop through async handlers, and every access log line has its id", async () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk: Buffer, _enc, cb) { lines.push(chunk.toString()); cb(); } });
    const log = accessLogger(sink);
    const mk = (): MeshTracer => new MeshTracer({ propagation: ['tracecontext', 'b3'] });
    const edge = await threeHops([mk(), mk(), mk()], log);
    const seen = await get(edge.port, { traceparent: `00-${TRACE}-${SPAN}-01` });
    assert.equal(seen.traceparent, `00-${TRACE}-${SPAN}-01`, 'passed through unchanged: the nearest recorded span stays the parent');
    assert.equal(seen.b3, TRACE);
    await sleep(20);
    const entries = lines.map((l) => JSON.parse(l) as AccessLogEntry);
    assert.equal(entries.length, 3);
    assert.deepEqual(entries.map((e) => e.service).sort(), ['edge', 'orders', 'stock']);
    assert.ok(entries.every((e) => e.trace_id === TRACE && e.direction === 'inbound' && e.status === 200 && e.outcome === 'success'));
  });

  test('B3 in at the edge, traceparent out at the third hop; concurrent requests keep their own traces', async () => {
    const mk = (): MeshTracer => new MeshTracer({ propagation: ['tracecontext'] });
    const edge = await threeHops([mk(), mk(), mk()]);
    const ids = Array.from({ length: 20 }, (_, i) => (i + 1).toString(16).padStart(16, '0'));
    const results = await Promise.all(ids.map((id) => get(edge.port, { 'x-b3-traceid': id, 'x-b3-spanid': SPAN, 'x-b3-sampled': '1' })));
    for (const [i, r] of results.entries()) {
      assert.equal(r.traceparent, `00-${'0'.repeat(16)}${ids[i]}-${SPAN}-01`);
      assert.equal(r.b3, undefined);
    }
  });

  test('a request with no context gets one trace id end to end', async () => {
    const mk = (): MeshTracer => new MeshTracer();
    const edge = await threeHops([mk(), mk(), mk()]);
    const seen = await get(edge.port, {});
    assert.match(seen.traceparent as string, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  });
});

describe('an SDK registered by the application', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  before(() => {
    trace.setGlobalTracerProvider(provider);
  });
  after(async () => {
    trace.disable();
    await provider.shutdown();
  });

  test('one connected tree: server → client attempt → server → client attempt → server', async () => {
    exporter.reset();
    const edge = await threeHops([new MeshTracer({ service: 'edge' }), new MeshTracer({ service: 'orders' }), new MeshTracer({ service: 'stock' })]);
    const seen = await get(edge.port, { traceparent: `00-${TRACE}-${SPAN}-01` });
    await sleep(20);
    const spans = exporter.getFinishedSpans();
    assert.equal(spans.length, 5);
    assert.ok(spans.every((s) => s.spanContext().traceId === TRACE));
    const server = (svc: string) => spans.find((s) => s.kind === SpanKind.SERVER && s.attributes['server.address'] === svc);
    const client = (dest: string) => spans.find((s) => s.kind === SpanKind.CLIENT && s.attributes['server.address'] === dest);
    const chain = [server('edge'), client('orders'), server('orders'), client('stock'), server('stock')];
    assert.ok(chain.every((s) => s !== undefined));
    assert.equal(chain[0]?.parentSpanContext?.spanId, SPAN);
    for (let i = 1; i < chain.length; i++) assert.equal(chain[i]?.parentSpanContext?.spanId, chain[i - 1]?.spanContext().spanId, `hop ${i} is the child of hop ${i - 1}`);
    assert.equal(seen.traceparent, `00-${TRACE}-${client('stock')?.spanContext().spanId}-01`);
    assert.equal(client('stock')?.attributes['network.peer.address'], '127.0.0.1');
    assert.equal(server('stock')?.attributes['http.response.status_code'], 200);
  });
});
