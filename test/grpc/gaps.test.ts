/**
 * The gRPC gaps found by running grpc-node's interop suite through the mesh, each against real
 * grpc-js servers on 127.0.0.1:
 * (a) a stream that never reached a server is retried transparently on a live endpoint, as plain
 *     grpc-js does over the same address pair;
 * (b) a call grpc-js refuses locally (over `grpc.max_send_message_length`) is never charged to
 *     the endpoint, the breaker or the budget;
 * (c) per-Service `mtls` for gRPC channels, and permissive gRPC servers (mTLS and plaintext on
 *     one port, `mesh.grpc.listen`);
 * (d) a failed mTLS connection says why (identity mismatch, foreign CA).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { systemClock } from '../../src/core/clock.js';
import { createAuthority, issueLeaf } from '../../src/tls/authority.js';
import type { Authority } from '../../src/tls/authority.js';
import { generateP256KeyPair, privateKeyPem } from '../../src/tls/keys.js';
import { materialFromPem } from '../../src/tls/material.js';
import type { TlsMaterial } from '../../src/tls/material.js';
import { sampleSum } from '../helpers/prometheus.js';
import { EchoClient, grpcMesh, serviceYaml, startEcho, unary, bidi } from './helpers.js';
import type { EchoReply, EchoRequest, EchoServer, TestMesh } from './helpers.js';
import { deadAddress } from '../helpers/servers.js';

class TestIdentity extends EventEmitter {
  readonly material: TlsMaterial;
  constructor(material: TlsMaterial) {
    super();
    this.material = material;
  }
  current(): TlsMaterial | undefined {
    return this.material;
  }
}

async function identityFor(ca: Authority, service: string): Promise<TestIdentity> {
  const keys = await generateP256KeyPair();
  const leaf = issueLeaf(ca, { service, publicKey: keys.publicKey, ttlMs: 3_600_000 }, systemClock);
  return new TestIdentity(materialFromPem({ ca: leaf.caBundlePem, cert: leaf.certificateChainPem, key: privateKeyPem(keys.privateKey) }));
}

const MESH = (mtls?: string): string => `apiVersion: trellis/v1
kind: Mesh
metadata: { name: default }
spec: { trustDomain: example.org${mtls === undefined ? '' : `, mtls: ${mtls}`} }
---
`;


type Client = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

/** A client-streaming call sending `texts`; resolves with the reply. */
function clientStream(client: grpc.Client, texts: string[]): Promise<EchoReply> {
  return new Promise((resolve, reject) => {
    const call = (client as Client)['clientStream']?.call(client, (err: grpc.ServiceError | null, v?: EchoReply) => (err ? reject(err) : resolve(v as EchoReply))) as grpc.ClientWritableStream<EchoRequest>;
    for (const text of texts) call.write({ text });
    call.end();
  });
}


describe('gRPC gaps', () => {
  const meshes: TestMesh[] = [];
  const servers: EchoServer[] = [];
  const clients: grpc.Client[] = [];
  let ca: Authority;

  before(async () => {
    ca = await createAuthority({ trustDomain: 'example.org' }, systemClock);
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const m of meshes) await m.close();
    for (const s of servers) s.kill();
  });

  async function echo(name: string, opts: Parameters<typeof startEcho>[1] = {}): Promise<EchoServer> {
    const s = await startEcho(name, opts);
    servers.push(s);
    return s;
  }
  async function mesh(yaml: string, opts: Parameters<typeof grpcMesh>[1] = {}): Promise<TestMesh> {
    const m = await grpcMesh(yaml, opts);
    meshes.push(m);
    return m;
  }
  function track<C extends grpc.Client>(c: C): C {
    clients.push(c);
    return c;
  }

  it('(a) streams that never reached a server go to a live endpoint, as plain grpc-js does', async () => {
    const live = await echo('live');
    const dead = await deadAddress();
    // Plain grpc-js over the same pair: every stream succeeds.
    const plain = track(new EchoClient(`ipv4:${dead},${live.address}`, grpc.credentials.createInsecure(), { 'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }) }));
    assert.equal((await clientStream(plain, ['a', 'b'])).text, 'a,b');

    const m = await mesh(MESH() + serviceYaml('echo', [dead, live.address], '  loadBalancer: round-robin\n'));
    const client = track(new EchoClient(m.grpc.target('echo'), m.grpc.credentials(), m.grpc.clientOptions()));
    for (let i = 0; i < 6; i++) {
      assert.equal((await clientStream(client, [`x${i}`, 'y', 'z'])).text, `x${i},y,z`);
      const replies = await bidi(client, [`p${i}`, 'q']);
      assert.deepEqual(replies.map((r) => r.text), [`echo:p${i}`, 'echo:q']);
    }
    assert.equal(live.served.get('clientStream'), 7, 'six through the mesh, one plain');
    assert.equal(live.served.get('bidi'), 6);
    // Round-robin sent some of them to the dead endpoint first: they were retried, not failed.
    const text = await m.metrics.text();
    assert.ok(sampleSum(text, 'trellis_client_retries_total', { service: 'echo' }) >= 1, 'transparent retries happened');
  });

  it('(b) a call grpc-js refuses locally is never charged to the endpoint, the breaker or the budget', async () => {
    const server = await echo('big');
    const m = await mesh(MESH() + serviceYaml('echo', [server.address], `  retries: { attempts: 3, on: [resource-exhausted, unavailable], backoff: { base: 1ms, max: 2ms } }
  outlierDetection: { consecutiveFailures: 1, ejectionTime: 30s, maxEjectedPercent: 100 }
  circuitBreaker: { errorThresholdPercent: 10, volumeThreshold: 2, resetTimeout: 30s }
`));
    const events: string[] = [];
    m.events.on('ejection', (e: { endpoint: string }) => events.push(`ejected ${e.endpoint}`));
    m.events.on('breaker', (e: { state: string }) => events.push(`breaker ${e.state}`));
    const client = track(new EchoClient(m.grpc.target('echo'), m.grpc.credentials(), { ...m.grpc.clientOptions(), 'grpc.max_send_message_length': 64 }));
    for (let i = 0; i < 5; i++) {
      await assert.rejects(unary(client, { text: 'x'.repeat(1000) }), (err: grpc.ServiceError) => err.code === grpc.status.RESOURCE_EXHAUSTED && /larger than 64/.test(err.details));
    }
    assert.deepEqual(events, [], 'no ejection, no breaker transition');
    assert.equal(server.served.get('unary') ?? 0, 0, 'nothing was sent');
    assert.equal((await unary(client, { text: 'small' })).text, 'small', 'the endpoint still takes calls');
    const text = await m.metrics.text();
    assert.equal(sampleSum(text, 'trellis_client_retries_total', { service: 'echo' }), 0, 'never retried');
    assert.equal(sampleSum(text, 'trellis_client_requests_total', { service: 'echo', outcome: 'invalid_argument' }), 5);
    assert.equal(m.destinations.get('echo')?.state.breakerState, 'closed');
  });

  it('(c) per-Service mtls: one credentials object reaches an mTLS service and a `mtls: off` one', async () => {
    const serverMesh = await mesh(MESH('strict') + serviceYaml('secure', ['127.0.0.1:1']), { service: 'secure', identity: await identityFor(ca, 'secure') });
    const secure = await echo('secure', { interceptors: serverMesh.grpc.serverInterceptors(), credentials: serverMesh.grpc.serverCredentials() });
    const legacy = await echo('legacy');
    const m = await mesh(MESH('strict') + serviceYaml('secure', [secure.address]) + '---\n' + serviceYaml('legacy', [legacy.address], '  mtls: off\n'), { service: 'checkout', identity: await identityFor(ca, 'checkout') });
    const creds = m.grpc.credentials();
    const toSecure = track(new EchoClient(m.grpc.target('secure'), creds, m.grpc.clientOptions()));
    const toLegacy = track(new EchoClient(m.grpc.target('legacy'), creds, m.grpc.clientOptions()));
    assert.equal((await unary(toSecure, { text: 's' }, { deadline: Date.now() + 5000 })).server, 'secure');
    assert.equal((await unary(toLegacy, { text: 'l' }, { deadline: Date.now() + 5000 })).server, 'legacy');
    const bound = track(new EchoClient(m.grpc.target('legacy'), m.grpc.credentials('legacy'), m.grpc.clientOptions()));
    assert.equal((await unary(bound, { text: 'l' }, { deadline: Date.now() + 5000 })).server, 'legacy');
    const served = await serverMesh.metrics.text();
    assert.equal(sampleSum(served, 'trellis_server_requests_total', { caller: 'checkout' }), 1, 'the mTLS server saw the verified caller');
  });

  it('(c) a permissive gRPC server takes mTLS and plaintext callers on one port; strict refuses plaintext', async () => {
    const own = (mtls: string): string => MESH() + serviceYaml('echo', ['127.0.0.1:1'], `  mtls: ${mtls}\n`);
    const serverMesh = await mesh(own('permissive'), { service: 'echo', identity: await identityFor(ca, 'echo') });
    const server = new grpc.Server({ interceptors: serverMesh.grpc.serverInterceptors() });
    const impl = await echo('impl-only');
    void impl;
    const { EchoService } = await import('./helpers.js');
    server.addService(EchoService, {
      unary: (call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) => cb(null, { text: call.request.text ?? '', server: 'permissive', traceparent: '', deadlineLeftMs: 0, note: '' }),
    });
    const listener = await serverMesh.grpc.listen(server);
    try {
      const client = await mesh(MESH('strict') + serviceYaml('echo', [listener.address]), { service: 'checkout', identity: await identityFor(ca, 'checkout') });
      const tlsClient = track(new EchoClient(client.grpc.target('echo'), client.grpc.credentials(), client.grpc.clientOptions()));
      assert.equal((await unary(tlsClient, { text: 'tls' }, { deadline: Date.now() + 5000 })).text, 'tls');
      const plain = track(new EchoClient(listener.address, grpc.credentials.createInsecure()));
      assert.equal((await unary(plain, { text: 'plain' }, { deadline: Date.now() + 5000 })).text, 'plain');
      const text = await serverMesh.metrics.text();
      assert.equal(sampleSum(text, 'trellis_server_requests_total', { caller: 'checkout' }), 1);
      assert.equal(sampleSum(text, 'trellis_server_requests_total', { caller: 'unknown' }), 1);
    } finally {
      await listener.close();
      server.forceShutdown();
    }

    const strictMesh = await mesh(own('strict'), { service: 'echo', identity: await identityFor(ca, 'echo') });
    const strictServer = new grpc.Server({ interceptors: strictMesh.grpc.serverInterceptors() });
    strictServer.addService(EchoService, { unary: (_call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) => cb(null, { text: 'no', server: 'strict', traceparent: '', deadlineLeftMs: 0, note: '' }) });
    const strictListener = await strictMesh.grpc.listen(strictServer);
    try {
      const plain = track(new EchoClient(strictListener.address, grpc.credentials.createInsecure()));
      await assert.rejects(unary(plain, {}, { deadline: Date.now() + 2000 }), (err: grpc.ServiceError) => err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED);
    } finally {
      await strictListener.close();
      strictServer.forceShutdown();
    }
  });

  it('(d) a failed mTLS connection says why: the identity seen and expected, or an untrusted chain', async () => {
    const serverMesh = await mesh(MESH() + serviceYaml('echo', ['127.0.0.1:1']), { service: 'echo', identity: await identityFor(ca, 'echo') });
    const server = await echo('tls', { interceptors: serverMesh.grpc.serverInterceptors(), credentials: serverMesh.grpc.serverCredentials() });

    // Retries on UNAVAILABLE: the picker's identity refusal (known from the attempt's pick ticket) is still never retried.
    const wrongTarget = await mesh(MESH() + serviceYaml('payments', [server.address], '  retries: { attempts: 3, on: [unavailable], backoff: { base: 1ms, max: 2ms } }\n'), { service: 'checkout', identity: await identityFor(ca, 'checkout') });
    const c1 = track(new EchoClient(wrongTarget.grpc.target('payments'), wrongTarget.grpc.credentials(), wrongTarget.grpc.clientOptions()));
    await assert.rejects(unary(c1, {}, { deadline: Date.now() + 5000 }), (err: grpc.ServiceError) => {
      assert.equal(err.code, grpc.status.UNAVAILABLE);
      assert.match(err.details, /TRELLIS_PEER_IDENTITY: payments at 127\.0\.0\.1:\d+: .*spiffe:\/\/example\.org\/svc\/echo.*spiffe:\/\/example\.org\/svc\/payments/);
      assert.equal(err.metadata.get('x-trellis-error')[0], 'TRELLIS_PEER_IDENTITY');
      return true;
    });
    assert.equal(sampleSum(await wrongTarget.metrics.text(), 'trellis_client_retries_total', { service: 'payments' }), 0, 'an identity refusal is not retried');

    const foreign = await createAuthority({ trustDomain: 'example.org' }, systemClock);
    const otherCa = await mesh(MESH() + serviceYaml('echo', [server.address]), { service: 'checkout', identity: await identityFor(foreign, 'checkout') });
    const c2 = track(new EchoClient(otherCa.grpc.target('echo'), otherCa.grpc.credentials(), otherCa.grpc.clientOptions()));
    await assert.rejects(unary(c2, {}, { deadline: Date.now() + 5000 }), (err: grpc.ServiceError) => {
      assert.match(err.details, /TRELLIS_PEER_IDENTITY: echo at 127\.0\.0\.1:\d+: untrusted certificate chain/);
      return true;
    });
    assert.equal(server.served.get('unary') ?? 0, 0);
  });
});
