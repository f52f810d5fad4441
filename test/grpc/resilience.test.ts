/**
 * Resilience of gRPC calls through the mesh against real grpc-js servers: a server killed
 * mid-traffic costs no failed unary call (retry on UNAVAILABLE and connect failure, outlier
 * ejection), deadlines (own, propagated, route timeout) end on time with DEADLINE_EXCEEDED,
 * retries on a failing status, the outbound rate limit and the circuit breaker refuse locally,
 * and routes with fault injection match on service and method.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { runWithAmbient } from '../../src/core/ambient.js';
import { systemClock } from '../../src/core/clock.js';
import { AdminClient, EchoClient, grpcMesh, serviceYaml, startEcho, unary, grpcResources } from './helpers.js';
import type { EchoServer, TestMesh } from './helpers.js';

function trailer(err: unknown, key: string): string | undefined {
  const v = (err as grpc.ServiceError).metadata?.get(key)[0];
  return typeof v === 'string' ? v : undefined;
}

describe('gRPC resilience through the mesh', () => {
  const { servers, meshes, clients, close } = grpcResources();
  after(close);

  async function setup(names: string[], extra: string, ctor: grpc.ServiceClientConstructor = EchoClient): Promise<{ client: grpc.Client; mesh: TestMesh; servers: EchoServer[] }> {
    const started = await Promise.all(names.map((n) => startEcho(n)));
    servers.push(...started);
    const mesh = await grpcMesh(serviceYaml('echo', started.map((s) => s.address), extra));
    meshes.push(mesh);
    const client = new ctor(mesh.grpc.target('echo'), mesh.grpc.credentials(), mesh.grpc.clientOptions());
    clients.push(client);
    return { client, mesh, servers: started };
  }

  it('a server killed mid-traffic costs no failed unary call', async () => {
    const { client, servers: s } = await setup(['k1', 'k2', 'k3'], `  loadBalancer: round-robin
  retries: { attempts: 3, backoff: { base: 1ms, max: 5ms } }
  outlierDetection: { consecutiveFailures: 1, ejectionTime: 30s, maxEjectedPercent: 50 }
`);
    const victim = s[0] as EchoServer;
    let ok = 0;
    const failures: string[] = [];
    const after = new Map<string, number>();
    let killed = false;
    const worker = async (): Promise<void> => {
      for (let i = 0; i < 60; i++) {
        // Only calls started after the kill count: one answered just before it can land after.
        const startedAfterKill = killed;
        try {
          const r = await unary(client, { text: 'x', delayMs: 3 });
          ok++;
          if (startedAfterKill) after.set(r.server, (after.get(r.server) ?? 0) + 1);
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    };
    const workers = [worker(), worker(), worker(), worker()];
    await new Promise((r) => setTimeout(r, 60));
    victim.kill();
    killed = true;
    await Promise.all(workers);
    assert.deepEqual(failures, []);
    assert.equal(ok, 240);
    assert.equal(after.get('k1') ?? 0, 0, 'no call was answered by the killed server after it died');
    assert.ok((after.get('k2') ?? 0) > 0 && (after.get('k3') ?? 0) > 0);
  });

  it('a failing status is retried on another endpoint', async () => {
    const bad = await startEcho('bad', { handlers: { unary: (_call, cb) => cb({ code: grpc.status.UNAVAILABLE, details: 'overloaded' }) } });
    const good = await startEcho('good');
    servers.push(bad, good);
    const mesh = await grpcMesh(serviceYaml('echo', [bad.address, good.address], `  loadBalancer: round-robin
  retries: { attempts: 2, backoff: { base: 1ms, max: 2ms } }
`));
    meshes.push(mesh);
    const client = new EchoClient(mesh.grpc.target('echo'), mesh.grpc.credentials(), mesh.grpc.clientOptions('echo'));
    clients.push(client);
    for (let i = 0; i < 10; i++) assert.equal((await unary(client, { text: 'r' })).server, 'good');
    const text = await mesh.metrics.text();
    assert.match(text, /trellis_client_retries_total\{service="echo",route="default",reason="unavailable"\} [1-9]/);
  });

  it('an application status (NOT_FOUND) is answered as is, without retry', async () => {
    const { client, servers: s } = await setup(['nf'], `  retries: { attempts: 3, backoff: { base: 1ms, max: 2ms } }\n`);
    await assert.rejects(unary(client, { failCode: grpc.status.NOT_FOUND }), (err: grpc.ServiceError) => err.code === grpc.status.NOT_FOUND);
    assert.equal(s[0]?.served.get('unary'), 1);
  });

  it('the call deadline ends the call on time with DEADLINE_EXCEEDED', async () => {
    const { client } = await setup(['slow'], '');
    const start = performance.now();
    await assert.rejects(unary(client, { delayMs: 3000 }, { deadline: Date.now() + 200 }), (err: grpc.ServiceError) => err.code === grpc.status.DEADLINE_EXCEEDED);
    const took = performance.now() - start;
    assert.ok(took >= 180 && took < 600, `took ${took} ms`);
  });

  it('an ambient (inbound) deadline shortens the call, and reaches the server as grpc-timeout', async () => {
    const { client } = await setup(['amb'], '');
    const r = await runWithAmbient({ deadline: systemClock.now() + 1500, service: 'front' }, () => unary(client, { text: 'a' }, { deadline: Date.now() + 10_000 }));
    assert.ok(r.deadlineLeftMs > 1000 && r.deadlineLeftMs <= 1500, `server saw ${r.deadlineLeftMs} ms left`);
    const start = performance.now();
    await assert.rejects(
      runWithAmbient({ deadline: systemClock.now() + 150, service: 'front' }, () => unary(client, { delayMs: 3000 })),
      (err: grpc.ServiceError) => err.code === grpc.status.DEADLINE_EXCEEDED,
    );
    const took = performance.now() - start;
    assert.ok(took >= 130 && took < 500, `took ${took} ms`);
  });

  it('the route timeout reaches the server as grpc-timeout; none of the mesh\'s own entries (deadline, pick ticket) does', async () => {
    const seen: unknown[] = [];
    const spy = await startEcho('rt-spy', {
      handlers: {
        unary: (call, cb) => {
          // The old deadline entry, or any other of the mesh's own (the pick ticket carries them now).
          seen.push(call.metadata.get('x-trellis-deadline')[0] ?? Object.keys(call.metadata.getMap()).find((k) => k.startsWith('x-trellis-')));
          const d = call.getDeadline();
          const left = (d instanceof Date ? d.getTime() : d) - Date.now();
          cb(null, { text: '', server: 'rt-spy', traceparent: '', deadlineLeftMs: Number.isFinite(left) ? Math.round(left) : -1, note: '' });
        },
      },
    });
    servers.push(spy);
    const mesh = await grpcMesh(serviceYaml('echo', [spy.address], '  timeout: 4s\n'));
    meshes.push(mesh);
    const client = new EchoClient(mesh.grpc.target('echo'), mesh.grpc.credentials(), mesh.grpc.clientOptions('echo'));
    clients.push(client);
    const r = await unary(client, {});
    assert.ok(r.deadlineLeftMs > 2000 && r.deadlineLeftMs <= 4000, `server saw ${r.deadlineLeftMs} ms left`);
    assert.deepEqual(seen, [undefined]);
  });

  it('the route timeout bounds unary calls', async () => {
    const { client } = await setup(['rt'], '  timeout: 100ms\n');
    const start = performance.now();
    await assert.rejects(unary(client, { delayMs: 2000 }), (err: grpc.ServiceError) => err.code === grpc.status.DEADLINE_EXCEEDED);
    assert.ok(performance.now() - start < 1500, 'ended by the 100 ms route timeout, long before the 2 s answer');
  });

  it('the outbound rate limit refuses locally with RESOURCE_EXHAUSTED', async () => {
    const { client, servers: s, mesh } = await setup(['rl'], '  rateLimit: { requestsPerSecond: 1, burst: 2 }\n');
    await unary(client, {});
    await unary(client, {});
    await assert.rejects(unary(client, {}), (err: grpc.ServiceError) => err.code === grpc.status.RESOURCE_EXHAUSTED && trailer(err, 'x-trellis-error') === 'TRELLIS_RATE_LIMITED');
    assert.equal(s[0]?.served.get('unary'), 2);
    assert.match(await mesh.metrics.text(), /trellis_client_rate_limited_total\{service="echo",route="default",direction="outbound"\} 1/);
  });

  it('the circuit breaker opens on failing statuses and then fails fast without calling', async () => {
    const { client, servers: s } = await setup(['cb'], `  circuitBreaker: { errorThresholdPercent: 50, volumeThreshold: 4, resetTimeout: 10s }\n`);
    for (let i = 0; i < 4; i++) await assert.rejects(unary(client, { failCode: grpc.status.INTERNAL }), (err: grpc.ServiceError) => err.code === grpc.status.INTERNAL);
    const served = s[0]?.served.get('unary');
    await assert.rejects(unary(client, {}), (err: grpc.ServiceError) => err.code === grpc.status.UNAVAILABLE && trailer(err, 'x-trellis-error') === 'TRELLIS_CIRCUIT_OPEN');
    assert.equal(s[0]?.served.get('unary'), served, 'the open circuit sent nothing');
  });

  it('routes match /pkg.Service/ prefixes and exact methods; fault aborts answer grpcStatus', async () => {
    const { mesh, servers: s } = await setup(['rf'], `  routes:
    - name: admin
      match: { pathPrefix: [/trellis.test.Admin/] }
      fault: { abort: { grpcStatus: permission-denied, percent: 100 } }
    - name: unary-only
      match: { path: /trellis.test.Echo/Unary }
      fault: { abort: { status: 503, percent: 100 } }
    - name: default
`);
    const admin = new AdminClient(mesh.grpc.target('echo'), mesh.grpc.credentials(), mesh.grpc.clientOptions());
    const echo = new EchoClient(mesh.grpc.target('echo'), mesh.grpc.credentials(), mesh.grpc.clientOptions());
    clients.push(admin, echo);
    await assert.rejects(unary(admin, {}, {}, 'reset'), (err: grpc.ServiceError) => err.code === grpc.status.PERMISSION_DENIED && trailer(err, 'x-trellis-fault') === 'abort');
    await assert.rejects(unary(echo, {}), (err: grpc.ServiceError) => err.code === grpc.status.UNAVAILABLE && trailer(err, 'x-trellis-fault') === 'abort');
    // Another method of Echo takes the default route and reaches the server.
    const replies = await new Promise<unknown[]>((resolve, reject) => {
      const out: unknown[] = [];
      const stream = (echo as unknown as { serverStream(r: object): grpc.ClientReadableStream<unknown> }).serverStream({ text: 's', count: 2 });
      stream.on('data', (d) => out.push(d));
      stream.on('end', () => resolve(out));
      stream.on('error', reject);
    });
    assert.equal(replies.length, 2);
    assert.equal(s[0]?.served.get('unary') ?? 0, 0);
    assert.match(await mesh.metrics.text(), /trellis_client_requests_total\{service="echo",route="admin",method="POST",status_code="[0-9]*",outcome="fault"\} 1/);
  });

  it('a service without endpoints fails fast with UNAVAILABLE naming it', async () => {
    const mesh = await grpcMesh(`apiVersion: trellis/v1
kind: Service
metadata: { name: echo }
spec: { protocol: grpc, dns: { name: localhost, port: 1 } }
---
apiVersion: trellis/v1
kind: Service
metadata: { name: other }
spec: { protocol: grpc, endpoints: [ { address: 127.0.0.1:1 } ] }
`);
    meshes.push(mesh);
    const client = new EchoClient(mesh.grpc.target('missing'), mesh.grpc.credentials(), mesh.grpc.clientOptions());
    clients.push(client);
    await assert.rejects(unary(client, {}, { deadline: Date.now() + 2000 }), (err: grpc.ServiceError) => err.code === grpc.status.UNAVAILABLE && trailer(err, 'x-trellis-error') === 'TRELLIS_UNKNOWN_SERVICE');
  });
});
