/**
 * Tracing units: the attempt filter and the server span with a fake `next` and fake requests,
 * in each mode — no SDK (propagate only), an SDK registered globally by the application (in
 * memory), and a provider given to the mesh. Global registrations are undone in after(): the
 * OpenTelemetry globals are process-wide (each test file runs in its own process).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { context, propagation, ProxyTracerProvider, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { CallContext } from '../../src/core/context.js';
import { runWithAmbient } from '../../src/core/ambient.js';
import type { TraceContext } from '../../src/core/ambient.js';
import { seededRandom } from '../../src/core/clock.js';
import { TimeoutError } from '../../src/core/errors.js';
import { makeEndpoint } from '../../src/discovery/endpoint.js';
import type { HttpRequest } from '../../src/client/http-request.js';
import type { HttpResponse } from '../../src/client/http-transport.js';
import type { Service } from '../../src/core/service.js';
import { MeshTracer, globalSdkProvider } from '../../src/observability/tracer.js';
import { tracingAttemptFilter } from '../../src/observability/tracing-filter.js';
import { httpTracingDeps } from '../../src/observability/tracing-http.js';
import { startServerSpan } from '../../src/observability/tracing-inbound.js';
import { extract } from '../../src/observability/propagation.js';
import { sequentialTraceIds } from '../../src/observability/trace-ids.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

function request(headers: Record<string, string> = {}, method = 'GET', path = '/list?page=2'): HttpRequest {
  return { method, path, headers: { ...headers }, body: undefined, replayable: true, classify: undefined, rest: {} };
}

function response(statusCode: number): HttpResponse {
  return { statusCode, headers: {}, body: new PassThrough(), trailers: {}, opaque: null, context: {} } as unknown as HttpResponse;
}

function attemptCtx(attempt = 1): CallContext {
  const ctx = new CallContext('products', true);
  ctx.attempt = attempt;
  ctx.endpoint = makeEndpoint('127.0.0.1', 8081);
  ctx.route = 'catalog';
  return ctx;
}

/** A fake transport that records the request each attempt sent. */
function recordingNext(result: (req: HttpRequest) => Promise<HttpResponse>): Service<HttpRequest, HttpResponse> & { sent: HttpRequest[] } {
  const sent: HttpRequest[] = [];
  const svc = ((req: HttpRequest) => {
    sent.push(req);
    return result(req);
  }) as unknown as Service<HttpRequest, HttpResponse> & { sent: HttpRequest[] };
  svc.sent = sent;
  return svc;
}

function fakeInbound(headers: Record<string, string>, method = 'GET', url = '/orders?id=1'): IncomingMessage {
  return { headers, method, url, httpVersion: '1.1', socket: { remoteAddress: '127.0.0.1', remotePort: 50000 } } as unknown as IncomingMessage;
}

const ambient = (trace: TraceContext | undefined) => ({ deadline: undefined, service: 'checkout', trace });

describe('propagate-only (no SDK registered)', () => {
  test('the mode is propagate-only', () => {
    assert.equal(globalSdkProvider(), undefined);
    assert.equal(new MeshTracer().mode, 'propagate-only');
  });

  test('an attempt inside an inbound request passes the caller context through, in both formats, replacing stale headers', async () => {
    const tracer = new MeshTracer({ service: 'checkout', propagation: ['tracecontext', 'b3'] });
    const filter = tracingAttemptFilter(tracer, httpTracingDeps);
    const next = recordingNext(async () => response(200));
    const inbound = { traceId: TRACE, spanId: SPAN, sampled: true, traceState: 'rojo=1' };
    const stale = { traceparent: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-00`, b3: `${'1'.repeat(32)}-${'2'.repeat(16)}-0`, accept: 'application/json' };
    await runWithAmbient(ambient(inbound), () => filter(request(stale), attemptCtx(), next));
    const h = next.sent[0]?.headers;
    assert.equal(h?.traceparent, `00-${TRACE}-${SPAN}-01`);
    assert.equal(h?.tracestate, 'rojo=1');
    assert.equal(h?.['x-b3-traceid'], TRACE);
    assert.equal(h?.['x-b3-spanid'], SPAN);
    assert.equal(h?.['x-b3-sampled'], '1');
    assert.equal(h?.b3, undefined, 'stale single b3 header removed');
    assert.equal(h?.accept, 'application/json');
  });

  test('a B3 caller is continued as traceparent (B3 in, W3C out)', async () => {
    const tracer = new MeshTracer({ service: 'checkout', propagation: ['tracecontext'] });
    const span = startServerSpan(tracer, fakeInbound({ 'x-b3-traceid': 'a3ce929d0e0e4736', 'x-b3-spanid': SPAN, 'x-b3-sampled': '1' }), 'checkout');
    assert.deepEqual(span.ambientTrace, { traceId: '0000000000000000a3ce929d0e0e4736', spanId: SPAN, sampled: true });
    const next = recordingNext(async () => response(200));
    await runWithAmbient(ambient(span.ambientTrace), () => span.run(() => tracingAttemptFilter(tracer, httpTracingDeps)(request(), attemptCtx(), next)));
    assert.equal(next.sent[0]?.headers.traceparent, `00-0000000000000000a3ce929d0e0e4736-${SPAN}-01`);
    assert.equal(next.sent[0]?.headers['x-b3-traceid'], undefined, 'only the configured format is injected');
    span.end(200);
  });

  test('outside any request: a new root per attempt, sampled by the ratio', async () => {
    const ids = sequentialTraceIds();
    const sampled = new MeshTracer({ sampling: 1, ids });
    const next = recordingNext(async () => response(200));
    await tracingAttemptFilter(sampled, httpTracingDeps)(request(), attemptCtx(), next);
    assert.equal(next.sent[0]?.headers.traceparent, '00-00000000000000000000000000000001-0000000000000002-01');

    const never = new MeshTracer({ sampling: 0, random: seededRandom(1) });
    await tracingAttemptFilter(never, httpTracingDeps)(request(), attemptCtx(), next);
    assert.match(next.sent[1]?.headers.traceparent as string, /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);

    const half = new MeshTracer({ sampling: 0.5, random: seededRandom(7) });
    let on = 0;
    for (let i = 0; i < 400; i++) if (half.newRoot().sampled) on++;
    assert.ok(on > 150 && on < 250, `about half sampled, got ${on}`);
  });

  test('outside any request, a trace context the application put on the request is its parent', async () => {
    const tracer = new MeshTracer();
    const next = recordingNext(async () => response(200));
    await tracingAttemptFilter(tracer, httpTracingDeps)(request({ traceparent: `00-${TRACE}-${SPAN}-01` }), attemptCtx(), next);
    assert.equal(next.sent[0]?.headers.traceparent, `00-${TRACE}-${SPAN}-01`);
  });

  test('an inbound request with no context gets a new root; end() is harmless', () => {
    const tracer = new MeshTracer({ ids: sequentialTraceIds(16) });
    const span = startServerSpan(tracer, fakeInbound({}), 'checkout');
    assert.deepEqual(span.ambientTrace, { traceId: '00000000000000000000000000000010', spanId: '0000000000000011', sampled: true });
    span.end(200);
    assert.equal(span.run(() => 42), 42);
  });

  test('update() changes the injected formats', () => {
    const tracer = new MeshTracer();
    assert.deepEqual(tracer.formats, ['tracecontext'], 'W3C only by default');
    tracer.update({ sampling: 0.5, propagation: ['b3', 'b3'] });
    assert.deepEqual(tracer.formats, ['b3']);
    assert.equal(tracer.sampling, 0.5);
    assert.throws(() => tracer.update({ sampling: 2, propagation: ['b3'] }), RangeError);
  });
});

describe('an SDK registered by the application (global, no context manager)', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  before(() => {
    assert.equal(trace.setGlobalTracerProvider(provider), true);
  });
  after(async () => {
    trace.disable();
    await provider.shutdown();
  });
  const spans = (): ReadableSpan[] => exporter.getFinishedSpans();
  const byKind = (kind: SpanKind): ReadableSpan[] => spans().filter((s) => s.kind === kind);

  test('the mode is global', () => {
    assert.equal(new MeshTracer().mode, 'global');
  });

  test('server span child of the caller; attempt spans children of the server span, one per attempt, each propagated', async () => {
    exporter.reset();
    const tracer = new MeshTracer({ service: 'checkout', propagation: ['tracecontext', 'b3'] });
    const server = startServerSpan(tracer, fakeInbound({ traceparent: `00-${TRACE}-${SPAN}-01`, tracestate: 'rojo=1', 'user-agent': 'test' }), 'checkout');
    assert.equal(server.ambientTrace.traceId, TRACE);
    assert.notEqual(server.ambientTrace.spanId, SPAN);
    assert.equal(server.ambientTrace.traceState, 'rojo=1');

    const filter = tracingAttemptFilter(tracer, httpTracingDeps);
    let n = 0;
    const next = recordingNext(async () => response(++n === 1 ? 503 : 200));
    const results = await runWithAmbient(ambient(server.ambientTrace), async () => [
      await filter(request(), attemptCtx(1), next),
      await filter(request(), attemptCtx(2), next),
    ]);
    for (const r of results) (r.body as unknown as PassThrough).destroy();
    await new Promise((r) => setImmediate(r));
    server.end(200);

    const [srv] = byKind(SpanKind.SERVER);
    const clients = byKind(SpanKind.CLIENT);
    assert.ok(srv);
    assert.equal(clients.length, 2);
    assert.equal(srv.spanContext().traceId, TRACE);
    assert.equal(srv.parentSpanContext?.spanId, SPAN);
    assert.equal(srv.parentSpanContext?.isRemote, true);
    assert.equal(srv.name, 'GET');
    assert.deepEqual(srv.attributes, {
      'url.scheme': 'http',
      'url.path': '/orders',
      'network.protocol.version': '1.1',
      'http.request.method': 'GET',
      'server.address': 'checkout',
      'network.peer.address': '127.0.0.1',
      'network.peer.port': 50000,
      'user_agent.original': 'test',
      'http.response.status_code': 200,
    });
    assert.equal(srv.status.code, SpanStatusCode.UNSET);

    for (const [i, c] of clients.entries()) {
      assert.equal(c.spanContext().traceId, TRACE);
      assert.equal(c.parentSpanContext?.spanId, srv.spanContext().spanId, 'attempt is a child of the server span');
      const sent = extract(next.sent[i]?.headers as Record<string, string>);
      assert.equal(sent?.spanId, c.spanContext().spanId, 'the attempt carries its own span id');
      assert.equal(sent?.traceState, 'rojo=1');
      assert.equal(next.sent[i]?.headers['x-b3-spanid'], c.spanContext().spanId);
    }
    const [first, second] = clients as [ReadableSpan, ReadableSpan];
    assert.deepEqual(first.attributes, {
      'url.scheme': 'http',
      'url.path': '/list',
      'server.address': 'products',
      'http.request.method': 'GET',
      'network.peer.address': '127.0.0.1',
      'network.peer.port': 8081,
      'trellis.route': 'catalog',
      'http.response.status_code': 503,
      'error.type': '503',
    });
    assert.equal(first.status.code, SpanStatusCode.ERROR);
    assert.equal(second.attributes['http.request.resend_count'], 1);
    assert.equal(second.attributes['error.type'], undefined);
    assert.equal(second.status.code, SpanStatusCode.UNSET);
  });

  test('the attempt span ends when the body is done, not at the headers', async () => {
    exporter.reset();
    const tracer = new MeshTracer();
    const res = await tracingAttemptFilter(tracer, httpTracingDeps)(request(), attemptCtx(), recordingNext(async () => response(200)));
    assert.equal(spans().length, 0);
    (res.body as unknown as PassThrough).destroy();
    await new Promise((r) => setImmediate(r));
    assert.equal(spans().length, 1);
  });

  test('a failed attempt: status error, error.type is the Trellis code; the error reaches the caller', async () => {
    exporter.reset();
    const tracer = new MeshTracer();
    const err = new TimeoutError('per-try timeout', { service: 'products' });
    await assert.rejects(
      tracingAttemptFilter(tracer, httpTracingDeps)(request({}, 'PURGE'), attemptCtx(), recordingNext(() => Promise.reject(err))),
      (e) => e === err,
    );
    const [c] = spans();
    assert.equal(c?.attributes['error.type'], 'TRELLIS_TIMEOUT');
    assert.equal(c?.status.code, SpanStatusCode.ERROR);
    assert.equal(c?.name, 'HTTP');
    assert.equal(c?.attributes['http.request.method'], '_OTHER');
    assert.equal(c?.attributes['http.request.method_original'], 'PURGE');
    assert.equal(c?.parentSpanContext, undefined, 'no parent: a root span');
  });

  test('a 5xx server response and an incomplete response mark the server span as an error', () => {
    exporter.reset();
    const tracer = new MeshTracer();
    startServerSpan(tracer, fakeInbound({}), 'checkout').end(500);
    const s2 = startServerSpan(tracer, fakeInbound({}), 'checkout');
    s2.end(undefined, { code: 'response_incomplete', message: 'gone' });
    s2.end(200);
    const [a, b] = spans();
    assert.equal(a?.attributes['error.type'], '500');
    assert.equal(a?.status.code, SpanStatusCode.ERROR);
    assert.equal(b?.attributes['error.type'], 'response_incomplete');
    assert.equal(b?.attributes['http.response.status_code'], undefined, 'end() is idempotent');
    assert.equal(spans().length, 2);
  });

  test('an unsampled caller: spans not recorded, context still propagated with the flag off', async () => {
    exporter.reset();
    const tracer = new MeshTracer();
    const server = startServerSpan(tracer, fakeInbound({ traceparent: `00-${TRACE}-${SPAN}-00` }), 'checkout');
    assert.equal(server.ambientTrace.sampled, false);
    const next = recordingNext(async () => response(200));
    await runWithAmbient(ambient(server.ambientTrace), () => tracingAttemptFilter(tracer, httpTracingDeps)(request(), attemptCtx(), next));
    server.end(200);
    assert.equal(spans().length, 0);
    assert.match(next.sent[0]?.headers.traceparent as string, new RegExp(`^00-${TRACE}-[0-9a-f]{16}-00$`));
  });

  test('after close() the mesh makes no more spans', async () => {
    exporter.reset();
    const tracer = new MeshTracer();
    await tracer.close();
    assert.equal(tracer.spanTracer(), undefined);
    startServerSpan(tracer, fakeInbound({}), 'checkout').end(200);
    assert.equal(spans().length, 0);
  });
});

describe('an SDK with a context manager (NodeTracerProvider.register)', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  before(() => provider.register());
  after(async () => {
    trace.disable();
    context.disable();
    propagation.disable();
    await provider.shutdown();
  });

  test("the application's own span, made inside the handler, is the server span's child and the attempt's parent", async () => {
    exporter.reset();
    const tracer = new MeshTracer();
    const server = startServerSpan(tracer, fakeInbound({ traceparent: `00-${TRACE}-${SPAN}-01` }), 'checkout');
    const next = recordingNext(async () => response(200));
    const appTracer = trace.getTracer('app');
    await runWithAmbient(ambient(server.ambientTrace), () =>
      server.run(() =>
        appTracer.startActiveSpan('load-cart', async (appSpan) => {
          await tracingAttemptFilter(tracer, { ...httpTracingDeps, whenDone: undefined })(request(), attemptCtx(), next);
          appSpan.end();
        }),
      ),
    );
    server.end(200);
    const app = exporter.getFinishedSpans().find((s) => s.name === 'load-cart');
    const client = exporter.getFinishedSpans().find((s) => s.kind === SpanKind.CLIENT);
    assert.equal(app?.parentSpanContext?.spanId, server.ambientTrace.spanId);
    assert.equal(client?.parentSpanContext?.spanId, app?.spanContext().spanId);
    assert.equal(extract(next.sent[0]?.headers as Record<string, string>)?.spanId, client?.spanContext().spanId);
  });

  test('a SERVER span an HTTP instrumentation already made is reused, not doubled', () => {
    exporter.reset();
    const tracer = new MeshTracer();
    const instr = trace.getTracer('instrumentation-http').startSpan('GET', { kind: SpanKind.SERVER });
    const handle = context.with(trace.setSpan(context.active(), instr), () => startServerSpan(tracer, fakeInbound({}), 'checkout'));
    assert.equal(handle.ambientTrace.spanId, instr.spanContext().spanId);
    handle.end(200);
    instr.end();
    assert.equal(exporter.getFinishedSpans().length, 1);
  });

  test('a non-SERVER span active when the request arrives is not taken for the request', () => {
    exporter.reset();
    const tracer = new MeshTracer();
    const startup = trace.getTracer('app').startSpan('startup');
    const handle = context.with(trace.setSpan(context.active(), startup), () => startServerSpan(tracer, fakeInbound({}), 'checkout'));
    assert.notEqual(handle.ambientTrace.traceId, startup.spanContext().traceId);
    handle.end(200);
    startup.end();
  });
});

describe('a provider given to the mesh (not global)', () => {
  test('spans go to it; nothing is registered globally', async () => {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const tracer = new MeshTracer({ tracerProvider: provider });
    assert.equal(tracer.mode, 'provided');
    const server = startServerSpan(tracer, fakeInbound({ b3: `${TRACE}-${SPAN}-1` }), 'checkout');
    await runWithAmbient(ambient(server.ambientTrace), () => tracingAttemptFilter(tracer, { ...httpTracingDeps, whenDone: undefined })(request(), attemptCtx(), recordingNext(async () => response(200))));
    server.end(200);
    const finished = exporter.getFinishedSpans();
    assert.equal(finished.length, 2);
    assert.ok(finished.every((s) => s.spanContext().traceId === TRACE));
    assert.equal(globalSdkProvider(), undefined);
    assert.ok(trace.getTracerProvider() instanceof ProxyTracerProvider);
    await provider.shutdown();
  });
});
