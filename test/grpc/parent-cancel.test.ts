/**
 * A mesh call made inside a server handler with `{ parent: call }` follows its parent: the parent's
 * cancellation cancels it (grpc-js's PROPAGATE_CANCELLATION), and once it ends the mesh stops
 * listening to the parent (grpc-js's own per-call listener, which it never removes, stays).
 * Real grpc-js servers on 127.0.0.1: a front server (plain) whose handler calls the back server
 * through the mesh.
 *
 * Between attempts (waiting for a concurrency slot, backing off before a retry) the mesh's call
 * has no call below it, so only the mesh's own hook on the parent (followParentCancel) can end
 * it: those tests judge that the call ended CANCELLED before the parent's next turn of the event
 * loop after its 'cancelled' event, and (for the slot) that the back server never saw it.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { sampleSum } from '../helpers/prometheus.js';
import { EchoClient, grpcMesh, grpcResources, serviceYaml, startEcho, unary } from './helpers.js';
import type { Client, EchoReply, EchoRequest, EchoServer, TestMesh } from './helpers.js';

const EMPTY: EchoReply = { text: '', server: 'front', traceparent: '', deadlineLeftMs: -1, note: '' };

describe('gRPC calls with a parent server call', () => {
  const { servers, meshes, clients, close } = grpcResources();
  after(close);

  it('leave no listener of their own on the parent once they end (20 calls in one parent)', async () => {
    const back = await startEcho('back');
    servers.push(back);
    const mesh = await grpcMesh(serviceYaml('echo', [back.address]));
    meshes.push(mesh);
    const viaMesh = new EchoClient(mesh.grpc.target('echo'), mesh.grpc.credentials(), mesh.grpc.clientOptions('echo')) as unknown as Client;
    const plain = new EchoClient(back.address, grpc.credentials.createInsecure()) as unknown as Client;
    clients.push(viaMesh, plain);
    // grpc-js itself leaves one 'cancelled' listener on the parent per call it starts with one
    // (resolving-call.js, never removed): the plain channel's count is that floor.
    const added = async (call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, client: Client): Promise<number> => {
      const before = call.listenerCount('cancelled');
      for (let i = 0; i < 20; i++) {
        await new Promise<void>((resolve, reject) => (client.unary as (r: EchoRequest, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null) => void) => void)({ text: 'x' }, { parent: call }, (e) => (e ? reject(e) : resolve())));
      }
      return call.listenerCount('cancelled') - before;
    };
    const front = await startEcho('front', {
      handlers: {
        unary: (call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) => {
          void (async () => {
            const byPlain = await added(call, plain);
            const byMesh = await added(call, viaMesh);
            cb(null, { ...EMPTY, text: `${byPlain} ${byMesh}` });
          })().catch((e: Error) => cb({ code: grpc.status.INTERNAL, details: e.message }));
        },
      },
    });
    servers.push(front);
    const client = new EchoClient(front.address, grpc.credentials.createInsecure()) as unknown as Client;
    clients.push(client);
    const got = await new Promise<EchoReply>((resolve, reject) => (client.unary as (r: EchoRequest, cb: (e: grpc.ServiceError | null, r: EchoReply) => void) => void)({ text: '' }, (e: grpc.ServiceError | null, r: EchoReply) => (e ? reject(e) : resolve(r))));
    const [byPlain, byMesh] = got.text.split(' ').map(Number) as [number, number];
    assert.ok(byMesh <= byPlain, `20 finished calls left ${byMesh} listeners through the mesh, ${byPlain} through a plain channel`);
    assert.equal(back.served.get('unary'), 40);
  });

  it("the parent's cancellation cancels a call in flight", async () => {
    let started!: () => void;
    const childStarted = new Promise<void>((r) => (started = r));
    let cancelled!: () => void;
    const childCancelled = new Promise<void>((r) => (cancelled = r));
    // The back server never answers: only a cancellation ends its call.
    const back = await startEcho('back', {
      handlers: {
        unary: (call: grpc.ServerUnaryCall<EchoRequest, EchoReply>) => {
          call.on('cancelled', () => cancelled());
          started();
        },
      },
    });
    servers.push(back);
    const mesh = await grpcMesh(serviceYaml('echo', [back.address]));
    meshes.push(mesh);
    const child = new EchoClient(mesh.grpc.target('echo'), mesh.grpc.credentials(), mesh.grpc.clientOptions('echo')) as unknown as Client;
    clients.push(child);
    let childCode: number | undefined;
    const childEnded = new Promise<void>((resolve) => {
      void startEcho('front', {
        handlers: {
          unary: (call: grpc.ServerUnaryCall<EchoRequest, EchoReply>) => {
            (child.unary as (r: EchoRequest, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null) => void) => void)({ text: 'x' }, { parent: call }, (e) => {
              childCode = e?.code;
              resolve();
            });
          },
        },
      }).then((front) => {
        servers.push(front);
        const client = new EchoClient(front.address, grpc.credentials.createInsecure()) as unknown as Client;
        clients.push(client);
        const call = (client.unary as (r: EchoRequest, cb: () => void) => grpc.ClientUnaryCall)({ text: "" }, () => undefined);
        void childStarted.then(() => call.cancel());
      });
    });
    await childCancelled;
    await childEnded;
    assert.equal(childCode, grpc.status.CANCELLED);
  });

  type UnaryFn = (r: EchoRequest, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null) => void) => void;

  /**
   * A front server whose handler calls `child` with `{ parent: call }` and listens to its own
   * call's 'cancelled' after the mesh did (grpc-js's listeners run in order); the test cancels the
   * front call from its client once `ready()` resolves. `judged` resolves on the turn of the event
   * loop after the parent's 'cancelled' event: the child's status code by then (undefined: the
   * child had not ended).
   */
  async function cancelParentWhile(child: Client, text: string, ready: () => Promise<void>): Promise<number | undefined> {
    let judge!: (code: number | undefined) => void;
    const judged = new Promise<number | undefined>((r) => (judge = r));
    let started!: () => void;
    const childStarted = new Promise<void>((r) => (started = r));
    const front = await startEcho('front', {
      handlers: {
        unary: (call: grpc.ServerUnaryCall<EchoRequest, EchoReply>) => {
          let code: number | undefined;
          (child.unary as UnaryFn)({ text }, { parent: call }, (e) => {
            code = e?.code ?? grpc.status.OK;
          });
          call.on('cancelled', () => setImmediate(() => judge(code)));
          started();
        },
      },
    });
    servers.push(front);
    const client = new EchoClient(front.address, grpc.credentials.createInsecure()) as unknown as Client;
    clients.push(client);
    const call = (client.unary as (r: EchoRequest, cb: () => void) => grpc.ClientUnaryCall)({ text: '' }, () => undefined);
    await childStarted;
    await ready();
    call.cancel();
    return judged;
  }

  it("the parent's cancellation ends a call waiting for a concurrency slot, and no attempt of it reaches a server", async () => {
    // One slot: a first call holds it (the back server keeps it until released); the child waits.
    const texts: string[] = [];
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let held!: () => void;
    const holding = new Promise<void>((r) => (held = r));
    const back = await startEcho('back', {
      handlers: {
        unary: (call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) => {
          texts.push(call.request.text ?? '');
          if (call.request.text !== 'hold') cb(null, { ...EMPTY, server: 'back' });
          else {
            held();
            void released.then(() => cb(null, { ...EMPTY, server: 'back' }));
          }
        },
      },
    });
    servers.push(back);
    const mesh: TestMesh = await grpcMesh(serviceYaml('echo', [back.address], '  adaptiveConcurrency: { initial: 1, min: 1, max: 1, maxWait: 60s }\n'));
    meshes.push(mesh);
    const viaMesh = new EchoClient(mesh.grpc.target('echo'), mesh.grpc.credentials(), mesh.grpc.clientOptions('echo')) as unknown as Client;
    clients.push(viaMesh);
    const holder = unary(viaMesh, { text: 'hold' });
    await holding;
    const code = await cancelParentWhile(viaMesh, 'child', async () => undefined);
    assert.equal(code, grpc.status.CANCELLED, 'the waiting call ended CANCELLED at once');
    release();
    await holder;
    // The slot is free again: a call made now is served after anything that was still waiting.
    await unary(viaMesh, { text: 'after' });
    assert.deepEqual(texts, ['hold', 'after'], 'the cancelled call never reached the server');
  });

  it("the parent's cancellation ends a call backing off before its retry", async () => {
    // The back server answers UNAVAILABLE; the retry waits up to 10 minutes (full jitter; no route timeout to cut it short).
    const back: EchoServer = await startEcho('back', {
      handlers: {
        unary: (_call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) => {
          back.served.set('unary', (back.served.get('unary') ?? 0) + 1);
          cb({ code: grpc.status.UNAVAILABLE, details: 'not now' });
        },
      },
    });
    servers.push(back);
    const mesh = await grpcMesh(serviceYaml('echo', [back.address], '  timeout: 0\n  retries: { attempts: 3, on: [unavailable], backoff: { base: 10m, max: 10m } }\n'));
    meshes.push(mesh);
    const viaMesh = new EchoClient(mesh.grpc.target('echo'), mesh.grpc.credentials(), mesh.grpc.clientOptions('echo')) as unknown as Client;
    clients.push(viaMesh);
    let attemptsAtCancel = 0;
    const code = await cancelParentWhile(viaMesh, 'child', async () => {
      // The retry counter moves when the call starts its backoff.
      while (sampleSum(await mesh.metrics.text(), 'trellis_client_retries_total', { service: 'echo' }) < 1) await new Promise((r) => setTimeout(r, 5));
      attemptsAtCancel = back.served.get('unary') ?? 0;
    });
    assert.equal(code, grpc.status.CANCELLED, 'the backing-off call ended CANCELLED at once');
    assert.equal(attemptsAtCancel, 1);
  });
});
