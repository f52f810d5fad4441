/**
 * Both edges together on real grpc-js servers: the server interceptors (authorization, inbound
 * rate limit, metrics, tracing and the ambient context) and the client interceptors, with
 * server-streaming, client-streaming and bidirectional calls passing through both.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { currentAmbient, runWithAmbient } from '../../src/core/ambient.js';
import { systemClock } from '../../src/core/clock.js';
import { EchoClient, AdminClient, grpcMesh, serviceYaml, startEcho, unary, grpcResources } from './helpers.js';
import type { EchoReply, EchoServer, TestMesh } from './helpers.js';
import { sampleSum } from '../helpers/prometheus.js';

type Streams = {
  serverStream(req: object, md?: grpc.Metadata): grpc.ClientReadableStream<EchoReply>;
  clientStream(cb: (err: grpc.ServiceError | null, r?: EchoReply) => void): grpc.ClientWritableStream<object>;
  bidi(): grpc.ClientDuplexStream<object, EchoReply>;
};

function collect<T>(stream: grpc.ClientReadableStream<T> | grpc.ClientDuplexStream<object, T>): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const out: T[] = [];
    stream.on('data', (d: T) => out.push(d));
    stream.on('end', () => resolve(out));
    stream.on('error', reject);
  });
}

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';

describe('gRPC server interceptors and streams through the mesh', () => {
  const { servers, meshes, clients, close } = grpcResources();
  after(close);

  /** A server mesh for service `echo` (with `inbound` lines), its server, and a client mesh calling it. */
  async function pair(inbound = ''): Promise<{ server: EchoServer; serverMesh: TestMesh; clientMesh: TestMesh; client: grpc.Client }> {
    const placeholder = serviceYaml('echo', ['127.0.0.1:1'], inbound);
    const serverMesh = await grpcMesh(placeholder, { service: 'echo' });
    meshes.push(serverMesh);
    const server = await startEcho('s', { interceptors: serverMesh.grpc.serverInterceptors(), credentials: serverMesh.grpc.serverCredentials() });
    servers.push(server);
    const clientMesh = await grpcMesh(serviceYaml('echo', [server.address]), { service: 'checkout' });
    meshes.push(clientMesh);
    const client = new EchoClient(clientMesh.grpc.target('echo'), clientMesh.grpc.credentials(), clientMesh.grpc.clientOptions());
    clients.push(client);
    return { server, serverMesh, clientMesh, client };
  }

  it('authorization without TLS denies `unknown` callers with PERMISSION_DENIED before the handler', async () => {
    const { client, server, serverMesh } = await pair(`  inbound:
    authorization: { allow: [ { from: [checkout] } ] }
`);
    await assert.rejects(unary(client, { text: 'x' }), (err: grpc.ServiceError) => err.code === grpc.status.PERMISSION_DENIED && /TRELLIS_FORBIDDEN/.test(err.details));
    assert.equal(server.served.get('unary') ?? 0, 0);
    const text = await serverMesh.metrics.text();
    assert.equal(sampleSum(text, 'trellis_server_requests_total', { service: 'echo', caller: 'unknown', outcome: 'forbidden' }), 1);
  });

  it('authorization by path: /pkg.Service/* allows one service and not another', async () => {
    const { clientMesh, server } = await pair(`  inbound:
    authorization:
      allow: [ { paths: [/trellis.test.Echo/*], methods: [POST] } ]
      deny: [ { paths: [/trellis.test.Echo/ClientStream] } ]
`);
    const echo = new EchoClient(clientMesh.grpc.target('echo'), clientMesh.grpc.credentials(), clientMesh.grpc.clientOptions());
    const admin = new AdminClient(clientMesh.grpc.target('echo'), clientMesh.grpc.credentials(), clientMesh.grpc.clientOptions());
    clients.push(echo, admin);
    assert.equal((await unary(echo, { text: 'ok' })).text, 'ok');
    await assert.rejects(unary(admin, {}, {}, 'reset'), (err: grpc.ServiceError) => err.code === grpc.status.PERMISSION_DENIED);
    await assert.rejects(
      new Promise((resolve, reject) => {
        const w = (echo as unknown as Streams).clientStream((err, r) => (err ? reject(err) : resolve(r)));
        w.write({ text: 'a' });
        w.end();
      }),
      (err: grpc.ServiceError) => err.code === grpc.status.PERMISSION_DENIED,
    );
    assert.equal(server.served.get('unary'), 1);
  });

  it('the inbound rate limit answers RESOURCE_EXHAUSTED with retry-after-ms', async () => {
    const { client, server } = await pair(`  inbound:
    rateLimit: { requestsPerSecond: 1, burst: 1 }
`);
    await unary(client, {});
    await assert.rejects(unary(client, {}), (err: grpc.ServiceError) => err.code === grpc.status.RESOURCE_EXHAUSTED && err.metadata.get('retry-after-ms').length === 1);
    assert.equal(server.served.get('unary'), 1);
  });

  it('server-streaming, client-streaming and bidi calls pass through both interceptors', async () => {
    const { client, server } = await pair();
    const s = client as unknown as Streams;
    const streamed = await collect(s.serverStream({ text: 'n', count: 5 }));
    assert.deepEqual(streamed.map((r) => r.text), ['n#0', 'n#1', 'n#2', 'n#3', 'n#4']);

    const joined = await new Promise<EchoReply | undefined>((resolve, reject) => {
      const w = s.clientStream((err, r) => (err ? reject(err) : resolve(r)));
      for (const t of ['a', 'b', 'c']) w.write({ text: t });
      w.end();
    });
    assert.equal(joined?.text, 'a,b,c');

    const duplex = s.bidi();
    const got: string[] = [];
    const done = new Promise<void>((resolve, reject) => {
      duplex.on('data', (r: EchoReply) => {
        got.push(r.text);
        if (got.length < 3) duplex.write({ text: `m${got.length}` });
        else duplex.end();
      });
      duplex.on('end', resolve);
      duplex.on('error', reject);
    });
    duplex.write({ text: 'm0' });
    await done;
    assert.deepEqual(got, ['echo:m0', 'echo:m1', 'echo:m2']);
    assert.deepEqual([server.served.get('serverStream'), server.served.get('clientStream'), server.served.get('bidi')], [1, 1, 1]);
  });

  it('a streaming call ends with DEADLINE_EXCEEDED at its deadline', async () => {
    const { client } = await pair();
    const duplex = (client as unknown as { bidi(md: grpc.Metadata, o: grpc.CallOptions): grpc.ClientDuplexStream<object, EchoReply> }).bidi(new grpc.Metadata(), { deadline: Date.now() + 150 });
    const start = performance.now();
    await assert.rejects(collect(duplex), (err: grpc.ServiceError) => err.code === grpc.status.DEADLINE_EXCEEDED);
    assert.ok(performance.now() - start < 5000);
  });

  it('records client and server metrics with the gRPC code as the literal status_code label', async () => {
    // docs/metrics.md: gRPC calls carry the numeric gRPC code in status_code (OK "0", NOT_FOUND
    // "5", UNAVAILABLE "14"). The expected values are written out here, never derived from the
    // code under test, so a label set that drops gRPC codes (status_code="") fails this test.
    const { client, clientMesh, serverMesh, server } = await pair();
    for (let i = 0; i < 3; i++) await unary(client, { text: 'm' });
    await assert.rejects(unary(client, { failCode: grpc.status.NOT_FOUND }));
    const before = server.served.get('unary') ?? 0;
    await assert.rejects(unary(client, { failCode: grpc.status.UNAVAILABLE }));
    // UNAVAILABLE may be retried by the default policy: the server's own count says how often it was sent.
    const unavailableSent = (server.served.get('unary') ?? 0) - before;
    assert.ok(unavailableSent >= 1);
    const ct = await clientMesh.metrics.text();
    assert.equal(sampleSum(ct, 'trellis_client_requests_total', { service: 'echo', route: 'default', method: 'POST' }), 5);
    assert.equal(sampleSum(ct, 'trellis_client_requests_total', { service: 'echo', status_code: '0', outcome: 'success' }), 3, ct);
    assert.equal(sampleSum(ct, 'trellis_client_requests_total', { service: 'echo', status_code: '5' }), 1, ct);
    assert.equal(sampleSum(ct, 'trellis_client_requests_total', { service: 'echo', status_code: '14' }), 1, ct);
    assert.equal(sampleSum(ct, 'trellis_client_requests_total', { service: 'echo', status_code: '' }), 0, ct);
    assert.equal(sampleSum(ct, 'trellis_client_attempts_total', { service: 'echo', status_code: '14' }), unavailableSent, ct);
    assert.match(ct, /trellis_client_requests_total\{[^}]*status_code="14"[^}]*\} 1\n/);
    const st = await serverMesh.metrics.text();
    assert.equal(sampleSum(st, 'trellis_server_requests_total', { service: 'echo', caller: 'unknown', route: '/trellis.test.Echo/Unary', method: 'POST', status_code: '0', outcome: 'success' }), 3, st);
    assert.equal(sampleSum(st, 'trellis_server_requests_total', { service: 'echo', status_code: '5' }), 1, st);
    assert.equal(sampleSum(st, 'trellis_server_requests_total', { service: 'echo', status_code: '14' }), unavailableSent, st);
    assert.equal(sampleSum(st, 'trellis_server_request_duration_seconds_count', { service: 'echo' }), 4 + unavailableSent);
  });

  it('propagates the trace: traceparent metadata at the server, continuing the ambient trace', async () => {
    const { client } = await pair();
    const r = await runWithAmbient({ deadline: undefined, service: 'front', trace: { traceId: TRACE_ID, spanId: '00f067aa0ba902b7', sampled: true } }, () => unary(client, { text: 't' }));
    assert.match(r.traceparent, new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-01$`));
    const root = await unary(client, { text: 'no parent' });
    assert.match(root.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
  });

  it("a handler's outbound calls continue the inbound trace and inherit its deadline (grpc-timeout)", async () => {
    // backend <- front (a mesh server whose handler calls backend through its own mesh) <- client
    const backend = await startEcho('backend');
    servers.push(backend);
    const frontMesh = await grpcMesh(serviceYaml('backend', [backend.address]) + `---\n` + serviceYaml('front', ['127.0.0.1:1']), { service: 'front' });
    meshes.push(frontMesh);
    const toBackend = new EchoClient(frontMesh.grpc.target('backend'), frontMesh.grpc.credentials(), frontMesh.grpc.clientOptions());
    clients.push(toBackend);
    let ambientDeadlineLeft = -1;
    const front = await startEcho('front', {
      interceptors: frontMesh.grpc.serverInterceptors(),
      handlers: {
        unary: (call, cb) => {
          const d = currentAmbient()?.deadline;
          ambientDeadlineLeft = d === undefined ? -1 : d - systemClock.now();
          unary(toBackend, call.request).then((r) => cb(null, r), (e: grpc.ServiceError) => cb(e));
        },
      },
    });
    servers.push(front);
    const callerMesh = await grpcMesh(serviceYaml('front', [front.address]), { service: 'caller' });
    meshes.push(callerMesh);
    const toFront = new EchoClient(callerMesh.grpc.target('front'), callerMesh.grpc.credentials(), callerMesh.grpc.clientOptions());
    clients.push(toFront);
    const md = new grpc.Metadata();
    md.set('traceparent', `00-${TRACE_ID}-00f067aa0ba902b7-01`);
    const r = await runWithAmbient({ deadline: undefined, service: undefined }, () => unary(toFront, { text: 'chain' }, { metadata: md, deadline: Date.now() + 1500 }));
    assert.equal(r.server, 'backend');
    assert.ok(ambientDeadlineLeft > 1000 && ambientDeadlineLeft <= 1500, `front's ambient deadline: ${ambientDeadlineLeft}`);
    assert.ok(r.deadlineLeftMs > 900 && r.deadlineLeftMs <= 1500, `backend saw ${r.deadlineLeftMs} ms left`);
    assert.match(r.traceparent, new RegExp(`^00-${TRACE_ID}-`));
  });
});
