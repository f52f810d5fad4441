/**
 * mTLS between gRPC clients and servers through the mesh, with workload certificates from a
 * src/tls authority: the server learns the caller's identity from its certificate (metrics,
 * authorization), a client refuses a server that is not the service it targets, a plaintext
 * client cannot reach an mTLS server, and a rotated certificate serves new connections
 * without rebuilding channels or servers.
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
import { EchoClient, grpcMesh, serviceYaml, startEcho, unary } from './helpers.js';
import type { EchoServer, TestMesh } from './helpers.js';

class TestIdentity extends EventEmitter {
  material: TlsMaterial;
  constructor(material: TlsMaterial) {
    super();
    this.material = material;
  }
  current(): TlsMaterial | undefined {
    return this.material;
  }
  rotate(material: TlsMaterial): void {
    this.material = material;
    this.emit('rotated', material);
  }
}

async function identityFor(ca: Authority, service: string): Promise<TlsMaterial> {
  const keys = await generateP256KeyPair();
  const leaf = issueLeaf(ca, { service, publicKey: keys.publicKey, ttlMs: 3_600_000 }, systemClock);
  return materialFromPem({ ca: leaf.caBundlePem, cert: leaf.certificateChainPem, key: privateKeyPem(keys.privateKey) });
}

const MESH = `apiVersion: trellis/v1
kind: Mesh
metadata: { name: default }
spec: { trustDomain: example.org }
---
`;

describe('gRPC over mTLS through the mesh', () => {
  let ca: Authority;
  const meshes: TestMesh[] = [];
  const servers: EchoServer[] = [];
  const clients: grpc.Client[] = [];
  let server: EchoServer;
  let serverIdentity: TestIdentity;

  before(async () => {
    ca = await createAuthority({ trustDomain: 'example.org' }, systemClock);
    serverIdentity = new TestIdentity(await identityFor(ca, 'echo'));
    const serverMesh = await grpcMesh(MESH + serviceYaml('echo', ['127.0.0.1:1'], `  inbound:
    authorization: { allow: [ { from: [checkout] } ] }
`), { service: 'echo', identity: serverIdentity });
    meshes.push(serverMesh);
    server = await startEcho('secure', { interceptors: serverMesh.grpc.serverInterceptors(), credentials: serverMesh.grpc.serverCredentials() });
    servers.push(server);
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const m of meshes) await m.close();
    for (const s of servers) s.kill();
  });

  async function client(service: string, target = 'echo', address = server.address): Promise<{ client: grpc.Client; mesh: TestMesh; identity: TestIdentity }> {
    const identity = new TestIdentity(await identityFor(ca, service));
    const mesh = await grpcMesh(MESH + serviceYaml(target, [address]), { service, identity });
    meshes.push(mesh);
    const c = new EchoClient(mesh.grpc.target(target), mesh.grpc.credentials(), mesh.grpc.clientOptions());
    clients.push(c);
    return { client: c, mesh, identity };
  }

  it('the server sees the verified caller, and authorization admits it', async () => {
    const { client: c } = await client('checkout');
    assert.equal((await unary(c, { text: 'hi' })).text, 'hi');
    const meshText = await meshes[0]!.metrics.text();
    assert.equal(sampleSum(meshText, 'trellis_server_requests_total', { service: 'echo', caller: 'checkout', outcome: 'success' }), 1);
  });

  it('a verified caller the rules do not name gets PERMISSION_DENIED', async () => {
    const { client: c } = await client('intruder');
    await assert.rejects(unary(c, {}), (err: grpc.ServiceError) => err.code === grpc.status.PERMISSION_DENIED && /caller intruder/.test(err.details));
  });

  it('a client refuses a server whose identity is not the targeted service', async () => {
    // The channel targets `payments`, but the endpoint is the echo server (identity echo).
    const { client: c } = await client('checkout', 'payments');
    await assert.rejects(unary(c, {}, { deadline: Date.now() + 3000 }), (err: grpc.ServiceError) => err.code === grpc.status.UNAVAILABLE);
    assert.equal(server.served.get('unary') ?? 0, 1);
  });

  it('a plaintext client cannot reach the mTLS server', async () => {
    const plain = new EchoClient(server.address, grpc.credentials.createInsecure());
    clients.push(plain);
    await assert.rejects(unary(plain, {}, { deadline: Date.now() + 2000 }), (err: grpc.ServiceError) => err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED);
  });

  it('a rotated certificate serves new connections without rebuilding the server', async () => {
    const before = serverIdentity.material.cert;
    serverIdentity.rotate(await identityFor(ca, 'echo'));
    assert.notEqual(serverIdentity.material.cert, before);
    await new Promise((r) => setTimeout(r, 50));
    const { client: c } = await client('checkout');
    assert.equal((await unary(c, { text: 'after rotation' })).text, 'after rotation');
  });
});
