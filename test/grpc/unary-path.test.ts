/**
 * The compiled unary path (src/grpc/unary-call.ts over unary-core.ts) against real grpc-js
 * servers on 127.0.0.1: what the gRPC tests elsewhere do not reach — the per-try timeout
 * cancels a stalled try and retries elsewhere, a caller's cancel reaches the server and is
 * charged to no one, an SDK records one CLIENT span per attempt with the RPC attributes, and
 * `describe()` still prints the unary and streaming stacks with roles and reasons. Judged by
 * what the servers saw, the spans exported and the metrics exposed.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { SpanKind } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { EchoClient, grpcMesh, serviceYaml, startEcho, unary, grpcResources, assertRetriedAttemptSpans } from './helpers.js';
import type { Client, EchoReply, EchoRequest, EchoServer } from './helpers.js';
import { sampleSum } from '../helpers/prometheus.js';

/** A server whose unary calls never answer; it counts the calls and the cancellations it saw. */
async function stallingServer(name: string): Promise<{ server: EchoServer; calls: () => number; cancelled: () => number }> {
  let calls = 0;
  let cancelled = 0;
  const server = await startEcho(name, {
    handlers: {
      unary: (call) => {
        calls++;
        call.on('cancelled', () => {
          cancelled++;
        });
      },
    },
  });
  return { server, calls: () => calls, cancelled: () => cancelled };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), what);
}

describe('gRPC unary path', () => {
  const { servers, meshes, clients, close } = grpcResources();
  after(close);

  it('a try that outlives its per-try timeout is cancelled and retried on another endpoint', async () => {
    const stall = await stallingServer('stall');
    const ok = await startEcho('ok');
    servers.push(stall.server, ok);
    const mesh = await grpcMesh(serviceYaml('echo', [stall.server.address, ok.address], '  loadBalancer: round-robin\n  retries: { attempts: 2, perTryTimeout: 500ms, on: [timeout, unavailable], backoff: { base: 1ms, max: 2ms } }\n'));
    meshes.push(mesh);
    const client = new EchoClient(mesh.grpc.target('echo'), mesh.grpc.credentials(), mesh.grpc.clientOptions('echo'));
    clients.push(client);
    await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 5000, (e) => (e ? reject(e) : resolve())));
    // Round-robin over two endpoints: at least one of these calls tries the stalling one first.
    for (let i = 0; i < 4; i++) assert.equal((await unary(client, { text: String(i) })).server, 'ok');
    const stalled = stall.calls();
    assert.ok(stalled >= 1, 'the stalling server got a first try');
    await until(() => stall.cancelled() === stalled, `every stalled try was cancelled at the server (${stall.cancelled()} of ${stalled})`);
    const text = await mesh.metrics.text();
    assert.equal(sampleSum(text, 'trellis_client_retries_total', { service: 'echo', route: 'default', reason: 'timeout' }), stalled);
    assert.equal(sampleSum(text, 'trellis_client_attempts_total', { service: 'echo', status_code: '4', outcome: 'timeout' }), stalled, text);
    assert.equal(sampleSum(text, 'trellis_client_requests_total', { service: 'echo', status_code: '0', outcome: 'success' }), 4);
  });

  it("the caller's cancel reaches the server, ends the call CANCELLED and is charged to no one", async () => {
    const stall = await stallingServer('stall2');
    servers.push(stall.server);
    const mesh = await grpcMesh(serviceYaml('echo', [stall.server.address], '  circuitBreaker: { errorThresholdPercent: 1, volumeThreshold: 1 }\n  outlierDetection: { consecutiveFailures: 1, ejectionTime: 30s }\n'));
    meshes.push(mesh);
    const client = new EchoClient(mesh.grpc.target('echo'), mesh.grpc.credentials(), mesh.grpc.clientOptions('echo')) as Client;
    clients.push(client);
    const done = new Promise<grpc.ServiceError | null>((resolve) => {
      const call = (client.unary as (r: EchoRequest, cb: (e: grpc.ServiceError | null, v?: EchoReply) => void) => grpc.ClientUnaryCall)({ text: 'x' }, (err) => resolve(err));
      void until(() => stall.calls() === 1, 'the server got the call').then(() => call.cancel());
    });
    const err = await done;
    assert.equal(err?.code, grpc.status.CANCELLED);
    await until(() => stall.cancelled() === 1, 'the server saw the cancel');
    const state = mesh.destinations.get('echo')?.state;
    assert.equal(state?.breakerState, 'closed', 'the breaker counted nothing');
    assert.equal(state?.endpoints.isEjected(stall.server.address), false, 'the endpoint was not ejected');
    const text = await mesh.metrics.text();
    assert.equal(sampleSum(text, 'trellis_client_requests_total', { service: 'echo', status_code: '1', outcome: 'cancelled' }), 1, text);
  });

  it('with an SDK, one CLIENT span per attempt with the RPC attributes, and each attempt sends its own span id', async () => {
    const seen: string[] = [];
    const flaky = await startEcho('flaky', {
      handlers: {
        unary: (call, cb) => {
          const tp = call.metadata.get('traceparent')[0];
          seen.push(typeof tp === 'string' ? tp : '');
          if (seen.length === 1) cb({ code: grpc.status.UNAVAILABLE, details: 'first try fails' });
          else cb(null, { text: '', server: 'flaky', traceparent: '', deadlineLeftMs: -1, note: '' });
        },
      },
    });
    servers.push(flaky);
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const mesh = await grpcMesh(serviceYaml('echo', [flaky.address], '  retries: { attempts: 2, backoff: { base: 1ms, max: 2ms } }\n'), { tracerProvider: provider });
    meshes.push(mesh);
    const client = new EchoClient(mesh.grpc.target('echo'), mesh.grpc.credentials(), mesh.grpc.clientOptions('echo'));
    clients.push(client);
    const appMd = new grpc.Metadata();
    appMd.set('traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
    await unary(client, {}, { metadata: appMd });
    assertRetriedAttemptSpans(exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.CLIENT), seen, 'Unary', appMd.get('traceparent')[0] as string);
    await provider.shutdown();
  });

  it("without an SDK, a traceparent the application put in the metadata is the parent the server sees", async () => {
    const srv = await startEcho('tp');
    servers.push(srv);
    const mesh = await grpcMesh(serviceYaml('echo', [srv.address]));
    meshes.push(mesh);
    const client = new EchoClient(mesh.grpc.target('echo'), mesh.grpc.credentials(), mesh.grpc.clientOptions('echo'));
    clients.push(client);
    const md = new grpc.Metadata();
    md.set('traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
    const r = await unary(client, { text: 't' }, { metadata: md });
    assert.match(r.traceparent, /^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
    const fresh = await unary(client, { text: 'no parent' });
    assert.doesNotMatch(fresh.traceparent, /0af7651916cd43dd8448eb211c80319c/);
  });

  it("an application interceptor above the mesh's drives the unary call: its metadata reaches the server, it hears headers, reply and status", async () => {
    // The mesh hands its unary call back to grpc-js without an InterceptingCall around it; an
    // interceptor composed above must still drive it and hear every callback.
    const srv = await startEcho('composed', {
      handlers: {
        unary: (call, cb) => {
          const app = call.metadata.get('x-app')[0];
          cb(null, { text: call.request.text ?? '', server: 'composed', traceparent: '', deadlineLeftMs: -1, note: typeof app === 'string' ? app : '' });
        },
      },
    });
    servers.push(srv);
    const mesh = await grpcMesh(serviceYaml('echo', [srv.address]));
    meshes.push(mesh);
    const seen: string[] = [];
    const app: grpc.Interceptor = (options, nextCall) =>
      new grpc.InterceptingCall(nextCall(options), {
        start(metadata, listener, next) {
          metadata.set('x-app', 'from-the-app');
          next(metadata, {
            onReceiveMetadata(md, nextMd) {
              seen.push('metadata');
              nextMd(md);
            },
            onReceiveMessage(message: EchoReply, nextMessage) {
              seen.push(`message ${message.note}`);
              nextMessage(message);
            },
            onReceiveStatus(status, nextStatus) {
              seen.push(`status ${status.code}`);
              nextStatus(status);
            },
          });
        },
      });
    const client = new EchoClient(mesh.grpc.target('echo'), mesh.grpc.credentials(), { interceptors: [app, mesh.grpc.interceptor('echo')] });
    clients.push(client);
    const r = await unary(client, { text: 'a' });
    assert.equal(r.note, 'from-the-app', 'the server saw the entry the application interceptor added');
    assert.deepEqual(seen, ['metadata', 'message from-the-app', `status ${grpc.status.OK}`]);
  });

  it('describe() prints the unary and streaming stacks, with roles and reasons', async () => {
    const mesh = await grpcMesh(serviceYaml('echo', ['127.0.0.1:1'], '  circuitBreaker: { errorThresholdPercent: 50 }\n  rateLimit: { requestsPerSecond: 100 }\n'));
    meshes.push(mesh);
    const text = mesh.grpc.describe('echo') ?? '';
    const [unaryPart, streamPart] = text.split('streaming calls:');
    for (const part of [unaryPart, streamPart]) {
      for (const role of ['metrics', 'timeout', 'attempt-metrics', 'rate-limit', 'circuit-breaker', 'balancer', 'tracing', 'endpoint']) assert.match(part ?? '', new RegExp(`\\b${role}\\b`), `${role} in\n${part}`);
    }
    assert.match(unaryPart ?? '', /\bretry\b.*above rate limit, breaker and balancer/);
    assert.match(streamPart ?? '', /transparent-retry/);
    assert.match(unaryPart ?? '', /timeout.*15s/);
  });
});
