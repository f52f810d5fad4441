/**
 * Balancing gRPC calls through the mesh over three real grpc-js servers: every Trellis
 * algorithm spreads unary calls over all three (through the interceptor's pick ticket), ring-hash
 * keeps a key on one server, and a channel built without the interceptors is balanced by the
 * `trellis` LB policy's picker itself.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { EchoClient, grpcMesh, serviceYaml, startEcho, unary } from './helpers.js';
import type { EchoServer, TestMesh } from './helpers.js';

describe('gRPC balancing through the mesh', () => {
  let servers: EchoServer[] = [];
  const meshes: TestMesh[] = [];
  const clients: grpc.Client[] = [];

  before(async () => {
    servers = await Promise.all(['a', 'b', 'c'].map((n) => startEcho(n)));
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const m of meshes) await m.close();
    await Promise.all(servers.map((s) => s.close()));
  });

  async function clientFor(lb: string, withInterceptors = true): Promise<grpc.Client> {
    const mesh = await grpcMesh(serviceYaml('echo', servers.map((s) => s.address), `  loadBalancer: ${lb}\n`));
    meshes.push(mesh);
    const options = withInterceptors ? mesh.grpc.clientOptions('echo') : {};
    const client = new EchoClient(mesh.grpc.target('echo'), mesh.grpc.credentials(), options);
    clients.push(client);
    return client;
  }

  for (const lb of ['round-robin', 'random', 'least-request', 'ewma']) {
    it(`${lb} spreads unary calls over the three servers`, async () => {
      const client = await clientFor(lb);
      const counts = new Map<string, number>();
      // Some concurrency, so least-request and ewma see outstanding calls.
      for (let round = 0; round < 20; round++) {
        const replies = await Promise.all([0, 1, 2].map((i) => unary(client, { text: `${round}/${i}`, delayMs: 2 })));
        for (const r of replies) counts.set(r.server, (counts.get(r.server) ?? 0) + 1);
      }
      assert.deepEqual([...counts.keys()].sort(), ['a', 'b', 'c'], `${lb}: ${JSON.stringify([...counts])}`);
      for (const [server, n] of counts) assert.ok(n >= 5, `${lb}: ${server} got only ${n} of 60`);
    });
  }

  it('round-robin takes strict turns', async () => {
    const client = await clientFor('round-robin');
    const seen: string[] = [];
    for (let i = 0; i < 9; i++) seen.push((await unary(client, { text: 'x' })).server);
    assert.equal(new Set(seen.slice(0, 3)).size, 3);
    assert.deepEqual(seen.slice(3, 6), seen.slice(0, 3));
    assert.deepEqual(seen.slice(6, 9), seen.slice(0, 3));
  });

  it('ring-hash keeps a route key on one server and spreads keys', async () => {
    const client = await clientFor('ring-hash');
    const md = (key: string): grpc.Metadata => {
      const m = new grpc.Metadata();
      m.set('x-trellis-route-key', key);
      return m;
    };
    const sticky = new Set<string>();
    for (let i = 0; i < 10; i++) sticky.add((await unary(client, { text: 'k' }, { metadata: md('user-42') })).server);
    assert.equal(sticky.size, 1);
    const spread = new Set<string>();
    for (let i = 0; i < 40; i++) spread.add((await unary(client, { text: 'k' }, { metadata: md(`user-${i}`) })).server);
    assert.equal(spread.size, 3);
  });

  it('the route key never reaches the server', async () => {
    const seen: (string | undefined)[] = [];
    const spy = await startEcho('spy', {
      handlers: {
        unary: (call, cb) => {
          const v = call.metadata.get('x-trellis-route-key')[0];
          // The old pick hint entry, or any other of the mesh's own.
          const hint = call.metadata.get('x-trellis-endpoint')[0] ?? Object.keys(call.metadata.getMap()).find((k) => k.startsWith('x-trellis-'));
          seen.push(typeof v === 'string' ? v : undefined, typeof hint === 'string' ? hint : undefined);
          cb(null, { text: '', server: 'spy', traceparent: '', deadlineLeftMs: -1, note: '' });
        },
      },
    });
    const mesh = await grpcMesh(serviceYaml('echo', [spy.address], '  loadBalancer: ring-hash\n'));
    const client = new EchoClient(mesh.grpc.target('echo'), mesh.grpc.credentials(), mesh.grpc.clientOptions());
    const m = new grpc.Metadata();
    m.set('x-trellis-route-key', 'k1');
    await unary(client, {}, { metadata: m });
    client.close();
    await mesh.close();
    await spy.close();
    assert.deepEqual(seen, [undefined, undefined]);
  });

  it('without the interceptors, the trellis LB policy balances by itself', async () => {
    const client = await clientFor('round-robin', false);
    const counts = new Map<string, number>();
    for (let i = 0; i < 30; i++) {
      const r = await unary(client, { text: 'plain' });
      counts.set(r.server, (counts.get(r.server) ?? 0) + 1);
    }
    assert.deepEqual([...counts.keys()].sort(), ['a', 'b', 'c']);
    for (const n of counts.values()) assert.ok(n >= 8, JSON.stringify([...counts]));
  });
});
