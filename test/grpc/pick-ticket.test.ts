/**
 * How the mesh's interceptor tells the `trellis` LB policy where each attempt goes and its
 * deadline: on the attempt's pick ticket (src/grpc/pick-ticket.ts, the metadata's options
 * object), not as metadata entries. Judged by what an application interceptor placed below the
 * mesh's saw in the metadata, what real grpc-js servers on 127.0.0.1 received (keys, deadline),
 * and where the calls went: every retry avoids the endpoint that failed, which only holds if the
 * picker placed each attempt where the mesh's balancer chose. Channels to one destination still
 * share its connections (the resolver's config selector stays out of the connection options).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { EchoClient, grpcMesh, grpcResources, serviceYaml, startEcho, unary } from './helpers.js';
import type { Client, EchoReply, EchoRequest } from './helpers.js';

/** Metadata keys of the mesh's own (`x-trellis-*`) in `md`. */
function meshKeys(md: grpc.Metadata): string[] {
  return Object.keys(md.getMap()).filter((k) => k.startsWith('x-trellis-'));
}

function deadlineLeft(call: { getDeadline(): grpc.Deadline }): number {
  const d = call.getDeadline();
  const t = d instanceof Date ? d.getTime() : d;
  return Number.isFinite(t) ? Math.round(t - Date.now()) : -1;
}

describe('the pick ticket', () => {
  const { servers, meshes, clients, close } = grpcResources();
  after(close);

  it('carries each attempt to the endpoint the mesh chose, with its deadline, and nothing of it is metadata', async () => {
    const serverKeys: string[][] = [];
    const deadlines: number[] = [];
    let failed = 0;
    const bad = await startEcho('bad', {
      handlers: {
        unary: (call, cb) => {
          failed++;
          serverKeys.push(meshKeys(call.metadata));
          cb({ code: grpc.status.UNAVAILABLE, details: 'bad is down' });
        },
      },
    });
    const good = await startEcho('good', {
      handlers: {
        unary: (call, cb) => {
          serverKeys.push(meshKeys(call.metadata));
          deadlines.push(deadlineLeft(call));
          cb(null, { text: call.request.text ?? '', server: 'good', traceparent: '', deadlineLeftMs: deadlineLeft(call), note: '' });
        },
      },
    });
    servers.push(bad, good);
    // Random choice, no ejection: only the balancer's avoidance of the endpoint a try used keeps a retry off `bad`.
    const mesh = await grpcMesh(serviceYaml('echo', [bad.address, good.address], '  loadBalancer: random\n  timeout: 4s\n  outlierDetection: false\n  retries: { attempts: 2, on: [unavailable], backoff: { base: 1ms, max: 2ms } }\n'));
    meshes.push(mesh);
    // Application interceptors below the mesh's: one records what it is given, one passes a clone on.
    const below: string[][] = [];
    const recorder: grpc.Interceptor = (options, nextCall) =>
      new grpc.InterceptingCall(nextCall(options), {
        start: (md, listener, next) => {
          below.push(meshKeys(md));
          next(md, listener);
        },
      });
    const cloner: grpc.Interceptor = (options, nextCall) => new grpc.InterceptingCall(nextCall(options), { start: (md, listener, next) => next(md.clone(), listener) });
    const client = new EchoClient(mesh.grpc.target('echo'), mesh.grpc.credentials(), { interceptors: [mesh.grpc.interceptor('echo'), recorder, cloner] });
    clients.push(client);
    await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 5000, (e) => (e ? reject(e) : resolve())));
    for (let i = 0; i < 24; i++) assert.equal((await unary(client, { text: String(i) })).server, 'good', `call ${i}`);
    assert.ok(failed >= 1, 'some first tries went to the failing endpoint (random over two, 24 calls)');
    assert.equal(below.length, 24 + failed, 'one call below the mesh per attempt');
    assert.deepEqual(below.filter((k) => k.length > 0), [], 'no x-trellis-* entry in the metadata below the mesh');
    assert.deepEqual(serverKeys.filter((k) => k.length > 0), [], 'no x-trellis-* entry reached a server');
    for (const left of deadlines) assert.ok(left > 0 && left <= 4000, `the server saw a deadline ${left} ms away (route timeout 4s, sent as grpc-timeout)`);
  });

  it('a stream through the bound interceptor on a plain channel opens one call below the mesh, no target probe', async () => {
    const s = await startEcho('plain');
    servers.push(s);
    const mesh = await grpcMesh(serviceYaml('echo', [s.address]));
    meshes.push(mesh);
    let opened = 0;
    const counter: grpc.Interceptor = (options, nextCall) => {
      opened++;
      return new grpc.InterceptingCall(nextCall(options));
    };
    const client = new EchoClient(s.address, grpc.credentials.createInsecure(), { interceptors: [mesh.grpc.interceptor('echo'), counter] }) as Client;
    clients.push(client);
    const got = await new Promise<EchoReply[]>((resolve, reject) => {
      const stream = (client.serverStream as (r: EchoRequest, m: grpc.Metadata) => grpc.ClientReadableStream<EchoReply>)({ text: 's', count: 3 }, new grpc.Metadata());
      const out: EchoReply[] = [];
      stream.on('data', (m: EchoReply) => out.push(m));
      stream.on('error', reject);
      stream.on('end', () => resolve(out));
    });
    assert.equal(got.length, 3);
    assert.equal(opened, 1, 'the stream opened exactly one call below the mesh');
    // A unary call reads the channel's target from its first attempt's call: still one call,
    // with a deadline of its own too (the timed path takes no spare call either).
    await unary(client, { text: 'u' }, { deadline: Date.now() + 5000 });
    assert.equal(opened, 2);
  });

  it("keeps the application's metadata options: waitForReady still makes a call wait out a failed resolution", async () => {
    const s = await startEcho('wfr');
    servers.push(s);
    const mesh = await grpcMesh(serviceYaml('echo', [s.address]));
    meshes.push(mesh);
    // A trellis: target naming no open mesh: grpc-js's resolution fails for every call on it.
    const client = new EchoClient('trellis://no-such-mesh/echo', grpc.credentials.createInsecure(), mesh.grpc.clientOptions('echo'));
    clients.push(client);
    const call = (waitForReady: boolean): Promise<grpc.ServiceError> => {
      const md = new grpc.Metadata();
      if (waitForReady) md.setOptions({ waitForReady: true });
      return unary(client, { text: 'w' }, { metadata: md, deadline: Date.now() + 400 }).then(
        () => assert.fail('the call succeeded'),
        (err: grpc.ServiceError) => err,
      );
    };
    const failFast = await call(false);
    assert.equal(failFast.code, grpc.status.UNAVAILABLE, failFast.details);
    const waited = await call(true);
    assert.equal(waited.code, grpc.status.DEADLINE_EXCEEDED, `waitForReady: the call waited for its deadline (${waited.details})`);
  });

  it("two channels to one destination share its connection (the resolver's config selector is the channel's, not the connection's)", async () => {
    const peers: string[] = [];
    const s = await startEcho('shared', {
      handlers: {
        unary: (call, cb) => {
          peers.push(call.getPeer());
          cb(null, { text: '', server: 'shared', traceparent: '', deadlineLeftMs: -1, note: '' });
        },
      },
    });
    servers.push(s);
    const mesh = await grpcMesh(serviceYaml('echo', [s.address]));
    meshes.push(mesh);
    const credentials = mesh.grpc.credentials();
    const a = new EchoClient(mesh.grpc.target('echo'), credentials, mesh.grpc.clientOptions('echo'));
    const b = new EchoClient(mesh.grpc.target('echo'), credentials, mesh.grpc.clientOptions('echo'));
    clients.push(a, b);
    await unary(a, { text: 'a' });
    await unary(b, { text: 'b' });
    assert.equal(peers.length, 2);
    assert.equal(peers[0], peers[1], `one connection from the client side: ${peers.join(', ')}`);
  });
});
