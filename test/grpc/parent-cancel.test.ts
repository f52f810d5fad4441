/**
 * A mesh call made inside a server handler with `{ parent: call }` follows its parent: the parent's
 * cancellation cancels it (grpc-js's PROPAGATE_CANCELLATION), and once it ends the mesh stops
 * listening to the parent (grpc-js's own per-call listener, which it never removes, stays).
 * Real grpc-js servers on 127.0.0.1: a front server (plain) whose handler calls the back server
 * through the mesh.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { EchoClient, grpcMesh, grpcResources, serviceYaml, startEcho } from './helpers.js';
import type { Client, EchoReply, EchoRequest } from './helpers.js';

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
});
