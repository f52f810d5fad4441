/**
 * The bytes a stream keeps for gRPC's transparent retry (src/grpc/grpc-call.ts, `StreamRelay`),
 * against real grpc-js servers on 127.0.0.1. Each upload's first attempt reaches a server that
 * reads every message and then answers with the status the mesh replays when nothing reached a
 * server (UNAVAILABLE marked as a connect failure); the next attempt goes to the other server:
 * - under the bound, the upload is replayed, every message included, and succeeds;
 * - past it the stream committed while it was sent: the caller gets the UNAVAILABLE and no
 *   server saw a second (partial) upload.
 * Both with the default bound (1 MiB; protobuf messages, sized by the method's serializer) and
 * with the channel's `grpc.per_rpc_retry_buffer_size` (raw Buffer messages, sized by length).
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { CONNECT_FAILURE_KEY } from '../../src/grpc/status.js';
import { EchoClient, EchoService, grpcMesh, grpcResources, serviceYaml } from './helpers.js';
import type { Client, EchoReply, EchoRequest } from './helpers.js';

/** A client-streaming method on raw bytes: what the application writes is what is sent. */
const RAW: grpc.ServiceDefinition = {
  upload: {
    path: '/trellis.test.Raw/Upload',
    requestStream: true,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
    originalName: 'upload',
  },
};
const RawClient = grpc.makeGenericClientConstructor(RAW, 'Raw');

/** Each upload a server saw: the messages and bytes it read, and whether it refused it. */
interface Seen {
  readonly messages: number;
  readonly bytes: number;
  readonly refused: boolean;
}

function refusal(): grpc.ServiceError {
  const md = new grpc.Metadata();
  md.set(CONNECT_FAILURE_KEY, '1');
  return Object.assign(new Error('refused'), { code: grpc.status.UNAVAILABLE, details: 'refused', metadata: md });
}

/** Writes `messages` one after another (each after the previous one's callback), then ends. */
function upload<T>(call: grpc.ClientWritableStream<T>, messages: readonly T[]): void {
  let i = 0;
  const next = (): void => {
    if (i < messages.length) call.write(messages[i++] as T, next);
    else call.end();
  };
  next();
}

describe('gRPC streams: the replay buffer is bounded in bytes', () => {
  const res = grpcResources();
  const servers: grpc.Server[] = [];
  after(async () => {
    await res.close();
    for (const s of servers) s.forceShutdown();
  });

  // Both servers refuse the first upload after reading all of it, and answer the others.
  const seen: Seen[] = [];
  let refuseNext = false;
  function take(): boolean {
    const r = refuseNext;
    refuseNext = false;
    return r;
  }
  /** A client-streaming handler that reads the whole upload, then refuses it (the first) or answers `reply(n)`. */
  function reading<T, R>(sizeOf: (m: T) => number, reply: (n: number) => R): grpc.handleClientStreamingCall<T, R> {
    return (call, cb) => {
      const refused = take();
      let n = 0;
      let bytes = 0;
      call.on('data', (m: T) => {
        n++;
        bytes += sizeOf(m);
      });
      call.on('end', () => {
        seen.push({ messages: n, bytes, refused });
        if (refused) cb(refusal());
        else cb(null, reply(n));
      });
    };
  }

  async function start(): Promise<string> {
    const server = new grpc.Server();
    server.addService(EchoService, {
      clientStream: reading<EchoRequest, EchoReply>((m) => (m.text ?? '').length, (n) => ({ text: String(n), server: '', traceparent: '', deadlineLeftMs: 0, note: '' })),
    });
    server.addService(RAW, { upload: reading<Buffer, Buffer>((b) => b.length, (n) => Buffer.from(String(n))) });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    servers.push(server);
    return `127.0.0.1:${port}`;
  }

  /** One upload whose first attempt is refused after the server read it all; the status code and what the servers saw. */
  async function refusedFirst(send: () => Promise<number>): Promise<{ code: number; seen: Seen[] }> {
    seen.length = 0;
    refuseNext = true;
    const code = await send();
    return { code, seen: [...seen] };
  }

  it('with the default bound (1 MiB), a client stream under it is replayed whole; one past it is not replayed and fails UNAVAILABLE', async () => {
    const m = await grpcMesh(serviceYaml('echo', [await start(), await start()], '  loadBalancer: round-robin\n'));
    res.meshes.push(m);
    const client = new EchoClient(m.grpc.target('echo'), m.grpc.credentials(), m.grpc.clientOptions());
    res.clients.push(client);
    const text = 'x'.repeat(256 * 1024);
    const send = (count: number): Promise<number> =>
      new Promise((resolve) => {
        const call = (client as Client)['clientStream']?.call(client, (err: grpc.ServiceError | null) => resolve(err === null ? grpc.status.OK : err.code)) as grpc.ClientWritableStream<EchoRequest>;
        upload(call, Array.from({ length: count }, () => ({ text })));
      });

    // 3 × 256 KiB: under the bound, played again on the other server, every message included.
    const under = await refusedFirst(() => send(3));
    assert.equal(under.code, grpc.status.OK);
    assert.deepEqual(under.seen, [
      { messages: 3, bytes: 3 * text.length, refused: true },
      { messages: 3, bytes: 3 * text.length, refused: false },
    ]);

    // 5 × 256 KiB (the serialized messages pass 1 MiB at the fourth): committed while sent.
    const over = await refusedFirst(() => send(5));
    assert.equal(over.code, grpc.status.UNAVAILABLE);
    assert.deepEqual(over.seen, [{ messages: 5, bytes: 5 * text.length, refused: true }], 'no server saw the upload again');
  });

  it("the channel's grpc.per_rpc_retry_buffer_size is the bound (Buffer messages, sized by their length)", async () => {
    const m = await grpcMesh(serviceYaml('echo', [await start(), await start()], '  loadBalancer: round-robin\n'));
    res.meshes.push(m);
    const client = new RawClient(m.grpc.target('echo'), m.grpc.credentials(), { ...m.grpc.clientOptions(), 'grpc.per_rpc_retry_buffer_size': 4096 });
    res.clients.push(client);
    const chunk = Buffer.alloc(1024, 7);
    const send = (count: number): Promise<number> =>
      new Promise((resolve) => {
        const call = (client as unknown as Client)['upload']?.call(client, (err: grpc.ServiceError | null) => resolve(err === null ? grpc.status.OK : err.code)) as grpc.ClientWritableStream<Buffer>;
        upload(call, Array.from({ length: count }, () => chunk));
      });

    const under = await refusedFirst(() => send(3));
    assert.equal(under.code, grpc.status.OK);
    assert.deepEqual(under.seen.map((s) => [s.messages, s.bytes, s.refused]), [[3, 3072, true], [3, 3072, false]]);

    // 5 KiB: past the channel's 4 KiB (the default 1 MiB would have replayed it).
    const over = await refusedFirst(() => send(5));
    assert.equal(over.code, grpc.status.UNAVAILABLE);
    assert.deepEqual(over.seen.map((s) => [s.messages, s.bytes, s.refused]), [[5, 5120, true]], 'no server saw the upload again');
  });
});
