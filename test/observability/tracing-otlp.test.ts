/**
 * The SDK the mesh owns for `tracing.otlp`: spans reach an OTLP/HTTP collector (a fake one on
 * 127.0.0.1) under this service's name, sampling follows the ratio for new traces and the
 * caller's decision otherwise, nothing is registered globally, and close() flushes and stops
 * it. With an application SDK registered, `otlp` is ignored with a warning.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { createMeshTracer, globalSdkProvider } from '../../src/observability/tracer.js';
import { startServerSpan } from '../../src/observability/tracing-inbound.js';

interface OtlpSpan { traceId: string; name: string; kind: number; parentSpanId?: string }
interface OtlpBody {
  resourceSpans: { resource: { attributes: { key: string; value: { stringValue?: string } }[] }; scopeSpans: { scope: { name: string }; spans: OtlpSpan[] }[] }[];
}

const received: OtlpBody[] = [];
let server: http.Server;
let endpoint: string;

before(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      assert.equal(req.url, '/v1/traces');
      assert.match(String(req.headers['content-type']), /json/);
      received.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpBody);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const inbound = (headers: Record<string, string>): IncomingMessage =>
  ({ headers, method: 'GET', url: '/', httpVersion: '1.1', socket: { remoteAddress: '127.0.0.1', remotePort: 1 } }) as unknown as IncomingMessage;

function exportedSpans(): { service: string | undefined; span: OtlpSpan }[] {
  return received.flatMap((b) =>
    b.resourceSpans.flatMap((rs) => {
      const service = rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue;
      return rs.scopeSpans.flatMap((ss) => ss.spans.map((span) => ({ service, span })));
    }),
  );
}

test('spans reach the collector under the service name; close() flushes; nothing global', async () => {
  received.length = 0;
  const tracer = await createMeshTracer({ service: 'checkout', otlp: { endpoint } });
  assert.equal(tracer.ownsProvider, true);
  assert.equal(tracer.mode, 'provided');
  assert.equal(globalSdkProvider(), undefined, 'the owned provider is not registered globally');
  const s = startServerSpan(tracer, inbound({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }), 'checkout');
  s.end(200);
  await tracer.close();
  const spans = exportedSpans();
  assert.equal(spans.length, 1);
  assert.equal(spans[0]?.service, 'checkout');
  assert.equal(spans[0]?.span.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.equal(spans[0]?.span.parentSpanId, '00f067aa0ba902b7');
  assert.equal(spans[0]?.span.kind, 2, 'SPAN_KIND_SERVER');
});

test('sampling: new traces at the ratio (0 here), a sampled caller is still honoured', async () => {
  received.length = 0;
  const tracer = await createMeshTracer({ service: 'orders', sampling: 0, otlp: { endpoint } });
  startServerSpan(tracer, inbound({}), 'orders').end(200);
  startServerSpan(tracer, inbound({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }), 'orders').end(200);
  tracer.update({ sampling: 1, propagation: ['tracecontext'] });
  startServerSpan(tracer, inbound({}), 'orders').end(200);
  await tracer.close();
  const spans = exportedSpans();
  assert.equal(spans.length, 2, 'the unsampled root is dropped; the caller-sampled and the post-update root are kept');
  assert.ok(spans.every((s) => s.service === 'orders'));
});

test('with an application SDK registered, otlp is ignored with a warning', async () => {
  const provider = new BasicTracerProvider();
  trace.setGlobalTracerProvider(provider);
  try {
    const warnings: string[] = [];
    const tracer = await createMeshTracer({ service: 'checkout', otlp: { endpoint }, onWarn: (m) => warnings.push(m) });
    assert.equal(tracer.ownsProvider, false);
    assert.equal(tracer.mode, 'global');
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] as string, /registered an OpenTelemetry SDK/);
    await tracer.close();
  } finally {
    trace.disable();
    await provider.shutdown();
  }
});
