/**
 * A call that an application interceptor placed above the mesh's cancels before the call runs
 * (before `start`, or after `start` and before a unary or server-streaming call's `halfClose`)
 * ends as grpc-js's own calls do: the application gets CANCELLED with the interceptor's details,
 * nothing reaches a server, the mesh counts nothing (requests, retry budget, breaker, metrics),
 * and the mesh leaves no 'cancelled' listener on a parent server call (grpc-js's own, one per call
 * opened below with the parent and never removed, are counted by an interceptor below the mesh's).
 *
 * Real grpc-js servers on 127.0.0.1: a front server whose handler makes the call with
 * `{ parent: call, deadline }` through a client whose interceptors are
 * `[appInterceptor, ...mesh's]`, and a back server that counts what reaches it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { sampleSum } from '../helpers/prometheus.js';
import { EchoClient, grpcMesh, grpcResources, serviceYaml, startEcho } from './helpers.js';
import type { Client, EchoReply, EchoRequest, EchoServer, TestMesh } from './helpers.js';

const EMPTY: EchoReply = { text: '', server: 'front', traceparent: '', deadlineLeftMs: -1, note: '' };
const REFUSED = 'refused by the application';

/** An application interceptor that cancels every call at its `start`, then passes the start down (so the listener below hears the end, as grpc-js's calls let it). */
const refuseAtStart: grpc.Interceptor = (options, nextCall) => {
  const call: grpc.InterceptingCall = new grpc.InterceptingCall(nextCall(options), {
    start: (metadata, listener, next) => {
      call.cancelWithStatus(grpc.status.CANCELLED, REFUSED);
      next(metadata, listener);
    },
  });
  return call;
};

/** An application interceptor that lets the call start, then cancels it instead of sending its (one) request message. */
const refuseMessage: grpc.Interceptor = (options, nextCall) => {
  const call: grpc.InterceptingCall = new grpc.InterceptingCall(nextCall(options), {
    sendMessage: () => call.cancelWithStatus(grpc.status.CANCELLED, REFUSED),
  });
  return call;
};

interface Outcome {
  /** The child call's status code and details. */
  code: number;
  details: string;
  /** 'cancelled' listeners the child call left on its parent. */
  added: number;
}

describe('a gRPC call cancelled before it runs, by an application interceptor above the mesh', () => {
  const { servers, meshes, clients, close } = grpcResources();
  after(close);
  let back: EchoServer;
  let mesh: TestMesh;

  before(async () => {
    back = await startEcho('back');
    servers.push(back);
    mesh = await grpcMesh(serviceYaml('echo', [back.address], '  timeout: 30s\n  retries: { attempts: 3, on: [unavailable, cancelled] }\n  circuitBreaker: { errorThresholdPercent: 1, volumeThreshold: 1 }\n'));
    meshes.push(mesh);
  });

  /** Runs `child(parent)` in a front server's handler and reports how it ended. */
  async function underParent(child: (parent: grpc.ServerUnaryCall<EchoRequest, EchoReply>) => Promise<grpc.StatusObject>): Promise<Outcome> {
    const front = await startEcho('front', {
      handlers: {
        unary: (call, cb) => {
          const before = call.listenerCount('cancelled');
          child(call).then(
            (s) => cb(null, { ...EMPTY, text: JSON.stringify({ code: s.code, details: s.details, added: call.listenerCount('cancelled') - before }) }),
            (e: Error) => cb({ code: grpc.status.INTERNAL, details: e.message }),
          );
        },
      },
    });
    servers.push(front);
    const client = new EchoClient(front.address, grpc.credentials.createInsecure()) as unknown as Client;
    clients.push(client);
    // The front call's deadline only bounds a child call that never ends (the failure this file guards against).
    const reply = await new Promise<EchoReply>((resolve, reject) =>
      (client.unary as (r: EchoRequest, m: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: EchoReply) => void) => void)({}, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (e, r) =>
        e ? reject(new Error(`the front call failed (${e.code} ${e.details}): the child call threw, or never ended`)) : resolve(r),
      ),
    );
    return JSON.parse(reply.text) as Outcome;
  }

  function unaryUnder(client: Client, parent: grpc.ServerUnaryCall<EchoRequest, EchoReply>): Promise<grpc.StatusObject> {
    return new Promise((resolve) => {
      (client.unary as (r: EchoRequest, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null) => void) => void)({ text: 'x' }, { parent, deadline: Date.now() + 60_000 }, (e) => resolve(e ?? { code: grpc.status.OK, details: '', metadata: new grpc.Metadata() }));
    });
  }

  function streamUnder(client: Client, method: 'serverStream' | 'bidi', parent: grpc.ServerUnaryCall<EchoRequest, EchoReply>): Promise<grpc.StatusObject> {
    return new Promise((resolve) => {
      const o: grpc.CallOptions = { parent, deadline: Date.now() + 60_000 };
      const call = (method === 'serverStream' ? (client.serverStream as (r: EchoRequest, o: grpc.CallOptions) => grpc.ClientReadableStream<EchoReply>)({ text: 'x' }, o) : (client.bidi as (o: grpc.CallOptions) => grpc.ClientDuplexStream<EchoRequest, EchoReply>)(o));
      call.on('data', () => undefined);
      call.on('error', () => undefined);
      call.on('status', resolve);
      if (method === 'bidi') {
        (call as grpc.ClientDuplexStream<EchoRequest, EchoReply>).write({ text: 'x' });
        (call as grpc.ClientDuplexStream<EchoRequest, EchoReply>).end();
      }
    });
  }

  /** The mesh counted nothing for `echo` and no call reached the back server. */
  async function assertUntouched(): Promise<void> {
    assert.equal([...back.served.values()].reduce((a, b) => a + b, 0), 0, 'nothing reached the server');
    const d = mesh.destinations.get('echo');
    const spec = mesh.config.services.get('echo');
    assert.ok(d !== undefined && spec !== undefined);
    assert.equal(d.state.counters.requests, 0, 'no request counted');
    assert.equal(d.state.counters.retries, 0, 'no retry counted');
    assert.equal(d.state.budget(spec).stats().requests, 0, 'nothing deposited in the retry budget');
    assert.equal(d.state.breakerState, 'closed', 'the breaker saw nothing');
    const text = await mesh.metrics.text();
    assert.equal(sampleSum(text, 'trellis_client_requests_total', { service: 'echo' }), 0, 'no logical call recorded');
    assert.equal(sampleSum(text, 'trellis_client_attempts_total', { service: 'echo' }), 0, 'no attempt recorded');
  }

  const cases: { name: string; interceptor: grpc.Interceptor; method: 'unary' | 'serverStream' | 'bidi' }[] = [
    { name: 'a unary call cancelled before start', interceptor: refuseAtStart, method: 'unary' },
    { name: 'a bidi stream cancelled before start', interceptor: refuseAtStart, method: 'bidi' },
    { name: 'a unary call cancelled after start, before it runs', interceptor: refuseMessage, method: 'unary' },
    { name: 'a server stream cancelled after start, before it runs', interceptor: refuseMessage, method: 'serverStream' },
  ];
  for (const c of cases) {
    for (const bound of [true, false]) {
      it(`${c.name} (${bound ? "mesh.grpc.clientOptions('echo')" : 'mesh.grpc.interceptor()'}): CANCELLED, no listener left on the parent, nothing counted`, async () => {
        // Counts the grpc-js calls opened below with the parent: grpc-js hooks one listener on it per call.
        let opened = 0;
        const below: grpc.Interceptor = (options, nextCall) => {
          if (options.parent !== undefined) opened++;
          return new grpc.InterceptingCall(nextCall(options));
        };
        const mine = bound ? mesh.grpc.clientOptions('echo').interceptors : [mesh.grpc.interceptor()];
        const viaMesh = new EchoClient(mesh.grpc.target('echo'), mesh.grpc.credentials(), { interceptors: [c.interceptor, ...mine, below] }) as unknown as Client;
        const plain = new EchoClient(back.address, grpc.credentials.createInsecure(), { interceptors: [c.interceptor, below] }) as unknown as Client;
        clients.push(viaMesh, plain);
        const run = (client: Client) => (parent: grpc.ServerUnaryCall<EchoRequest, EchoReply>) => (c.method === 'unary' ? unaryUnder(client, parent) : streamUnder(client, c.method, parent));
        const byPlain = await underParent(run(plain));
        assert.deepEqual({ code: byPlain.code, details: byPlain.details, added: byPlain.added }, { code: grpc.status.CANCELLED, details: REFUSED, added: opened }, 'grpc-js alone ends the call so, leaving its own listener');
        opened = 0;
        const byMesh = await underParent(run(viaMesh));
        assert.deepEqual({ code: byMesh.code, details: byMesh.details }, { code: grpc.status.CANCELLED, details: REFUSED }, 'the application got its own status');
        assert.equal(byMesh.added, opened, `the call left ${byMesh.added} 'cancelled' listeners on its parent through the mesh, and opened ${opened} grpc-js calls below: the mesh left one of its own`);
        await assertUntouched();
      });
    }
  }
});
