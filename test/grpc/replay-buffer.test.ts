/**
 * The bytes a stream keeps for gRPC's transparent retry (src/grpc/grpc-call.ts, `StreamRelay`),
 * against real grpc-js servers on 127.0.0.1. Each destination is a dead address (the picker
 * refuses an attempt sent there: nothing reached a server) and a live server, balanced
 * round-robin, so of four uploads two try the dead address first; each upload is one message
 * (what a call holds before its pick answers):
 * - under the bound, an upload refused at the dead address is replayed on the live server, and
 *   every upload succeeds;
 * - past it the stream committed when the message went to the call: an upload refused at the
 *   dead address fails UNAVAILABLE and the live server never saw it.
 * Both with the default bound (1 MiB; protobuf messages, sized by the method's serializer) and
 * with the channel's `grpc.per_rpc_retry_buffer_size` (raw Buffer messages, sized by length).
 * And the channel's total, `grpc.retry_buffer_size`: while another stream of the channel keeps
 * bytes (its server read them and has not answered), an upload that would take the total past
 * it commits and is not replayed; once that stream ended, its bytes are the channel's again.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { sampleSum } from '../helpers/prometheus.js';
import { deadAddress } from '../helpers/servers.js';
import { EchoClient, EchoService, grpcMesh, grpcResources, serviceYaml } from './helpers.js';
import type { Client, EchoReply, EchoRequest, TestMesh } from './helpers.js';

/** A client-streaming method on raw bytes named `name`: what the application writes is what is sent. */
function rawUpload(name: string): grpc.MethodDefinition<Buffer, Buffer> {
  return {
    path: `/trellis.test.Raw/${name[0]?.toUpperCase()}${name.slice(1)}`,
    requestStream: true,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
    originalName: name,
  };
}

/** `upload`, and `hold`: the server reads the upload and answers only when the test lets it. */
const RAW: grpc.ServiceDefinition = { upload: rawUpload('upload'), hold: rawUpload('hold') };
const RawClient = grpc.makeGenericClientConstructor(RAW, 'Raw');

const UPLOADS = 4;

describe('gRPC streams: the replay buffer is bounded in bytes', () => {
  const res = grpcResources();
  const servers: grpc.Server[] = [];
  after(async () => {
    await res.close();
    for (const s of servers) s.forceShutdown();
  });

  /** The bytes of each upload the live server read. */
  const seen: number[] = [];
  /** Held uploads: called when the server read one; answered when `release` runs. */
  let holding: () => void = () => undefined;
  let release: () => void = () => undefined;
  function reading<T, R>(sizeOf: (m: T) => number, reply: (n: number) => R): grpc.handleClientStreamingCall<T, R> {
    return (call, cb) => {
      let bytes = 0;
      call.on('data', (m: T) => (bytes += sizeOf(m)));
      call.on('end', () => {
        seen.push(bytes);
        cb(null, reply(bytes));
      });
    };
  }

  async function live(): Promise<string> {
    const server = new grpc.Server();
    server.addService(EchoService, {
      clientStream: reading<EchoRequest, EchoReply>((m) => (m.text ?? '').length, (n) => ({ text: String(n), server: '', traceparent: '', deadlineLeftMs: 0, note: '' })),
    });
    server.addService(RAW, {
      upload: reading<Buffer, Buffer>((b) => b.length, (n) => Buffer.from(String(n))),
      hold: (call: grpc.ServerReadableStream<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        const released = new Promise<void>((r) => (release = r));
        call.once('data', () => holding());
        call.on('end', () => void released.then(() => cb(null, Buffer.from('held'))));
      },
    });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    servers.push(server);
    return `127.0.0.1:${port}`;
  }

  /** A fresh destination (dead address, live server; round-robin) and a ready client of it, built by `make`. */
  async function destination<C extends grpc.Client>(make: (m: TestMesh) => C): Promise<{ m: TestMesh; client: C }> {
    const m = await grpcMesh(serviceYaml('echo', [await deadAddress(), await live()], '  loadBalancer: round-robin\n'));
    res.meshes.push(m);
    const client = make(m);
    res.clients.push(client);
    // Resolved before the first upload: the channel's retry buffer size is on each attempt's ticket from its start.
    await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 10_000, (e) => (e ? reject(e) : resolve())));
    return { m, client };
  }

  /** `UPLOADS` one-message uploads; the status codes, what the live server saw, and the retries. */
  async function uploads(m: TestMesh, send: () => Promise<number>): Promise<{ codes: number[]; seen: number[]; retries: number }> {
    seen.length = 0;
    const codes: number[] = [];
    for (let i = 0; i < UPLOADS; i++) codes.push(await send());
    return { codes, seen: [...seen], retries: sampleSum(await m.metrics.text(), 'trellis_client_retries_total', { service: 'echo' }) };
  }

  it('with the default bound (1 MiB), an upload under it is replayed after a refusal; one past it is not, and fails UNAVAILABLE', async () => {
    const send = (client: grpc.Client, text: string) => (): Promise<number> =>
      new Promise((resolve) => {
        const call = (client as Client)['clientStream']?.call(client, (err: grpc.ServiceError | null) => resolve(err === null ? grpc.status.OK : err.code)) as grpc.ClientWritableStream<EchoRequest>;
        call.write({ text });
        call.end();
      });

    // 768 KiB: under the bound, replayed on the live server.
    const under = await destination((m) => new EchoClient(m.grpc.target('echo'), m.grpc.credentials(), m.grpc.clientOptions()));
    const small = 'x'.repeat(768 * 1024);
    const u = await uploads(under.m, send(under.client, small));
    assert.deepEqual(u.codes, Array(UPLOADS).fill(grpc.status.OK));
    assert.deepEqual(u.seen, Array(UPLOADS).fill(small.length), 'the live server read each upload once, whole');
    assert.ok(u.retries >= 1, 'some uploads were refused at the dead address first, and replayed');

    // 1.5 MiB (the serialized message is past 1 MiB): committed when sent, not replayed.
    const over = await destination((m) => new EchoClient(m.grpc.target('echo'), m.grpc.credentials(), m.grpc.clientOptions()));
    const big = 'x'.repeat(1536 * 1024);
    const o = await uploads(over.m, send(over.client, big));
    const failed = o.codes.filter((c) => c !== grpc.status.OK);
    assert.ok(failed.length >= 1, 'some uploads were refused at the dead address first');
    assert.deepEqual(failed, Array(failed.length).fill(grpc.status.UNAVAILABLE));
    assert.deepEqual(o.seen, Array(UPLOADS - failed.length).fill(big.length), 'the live server saw only the uploads that went to it first');
    assert.equal(o.retries, 0, 'never replayed');
  });

  it("the channel's grpc.per_rpc_retry_buffer_size is the bound (Buffer messages, sized by their length)", async () => {
    const send = (client: grpc.Client, chunk: Buffer) => (): Promise<number> =>
      new Promise((resolve) => {
        const call = (client as unknown as Client)['upload']?.call(client, (err: grpc.ServiceError | null) => resolve(err === null ? grpc.status.OK : err.code)) as grpc.ClientWritableStream<Buffer>;
        call.write(chunk);
        call.end();
      });
    const options = (m: TestMesh): grpc.ClientOptions => ({ ...m.grpc.clientOptions(), 'grpc.per_rpc_retry_buffer_size': 4096 });

    const under = await destination((m) => new RawClient(m.grpc.target('echo'), m.grpc.credentials(), options(m)));
    const u = await uploads(under.m, send(under.client, Buffer.alloc(3072, 7)));
    assert.deepEqual(u.codes, Array(UPLOADS).fill(grpc.status.OK));
    assert.deepEqual(u.seen, Array(UPLOADS).fill(3072));
    assert.ok(u.retries >= 1, 'some uploads were refused at the dead address first, and replayed');

    // 5 KiB: past the channel's 4 KiB (the default 1 MiB would have replayed it).
    const over = await destination((m) => new RawClient(m.grpc.target('echo'), m.grpc.credentials(), options(m)));
    const o = await uploads(over.m, send(over.client, Buffer.alloc(5120, 7)));
    const failed = o.codes.filter((c) => c !== grpc.status.OK);
    assert.ok(failed.length >= 1, 'some uploads were refused at the dead address first');
    assert.deepEqual(failed, Array(failed.length).fill(grpc.status.UNAVAILABLE));
    assert.deepEqual(o.seen, Array(UPLOADS - failed.length).fill(5120), 'the live server saw only the uploads that went to it first');
    assert.equal(o.retries, 0, 'never replayed');
  });

  it("the channel's grpc.retry_buffer_size bounds the bytes all its uncommitted streams keep together", async () => {
    const options = (m: TestMesh): grpc.ClientOptions => ({ ...m.grpc.clientOptions(), 'grpc.retry_buffer_size': 8192 });
    const { m, client } = await destination((mesh) => new RawClient(mesh.grpc.target('echo'), mesh.grpc.credentials(), options(mesh)));
    const send = (chunk: Buffer) => (): Promise<number> =>
      new Promise((resolve) => {
        const call = (client as unknown as Client)['upload']?.call(client, (err: grpc.ServiceError | null) => resolve(err === null ? grpc.status.OK : err.code)) as grpc.ClientWritableStream<Buffer>;
        call.write(chunk);
        call.end();
      });
    // A 6 KiB upload the live server reads and holds unanswered: its stream keeps 6 KiB of the channel's 8.
    const read = new Promise<void>((r) => (holding = r));
    const held = new Promise<number>((resolve) => {
      const call = (client as unknown as Client)['hold']?.call(client, (err: grpc.ServiceError | null) => resolve(err === null ? grpc.status.OK : err.code)) as grpc.ClientWritableStream<Buffer>;
      call.write(Buffer.alloc(6144, 1));
      call.end();
    });
    await read;

    // 3 KiB uploads meanwhile: under their own 1 MiB, past the channel's total: committed when sent, not replayed.
    const retriesBefore = sampleSum(await m.metrics.text(), 'trellis_client_retries_total', { service: 'echo' });
    const during = await uploads(m, send(Buffer.alloc(3072, 7)));
    const failed = during.codes.filter((c) => c !== grpc.status.OK);
    assert.ok(failed.length >= 1, 'some uploads were refused at the dead address first');
    assert.deepEqual(failed, Array(failed.length).fill(grpc.status.UNAVAILABLE));
    assert.deepEqual(during.seen, Array(UPLOADS - failed.length).fill(3072), 'the live server saw only the uploads that went to it first');
    assert.equal(during.retries, retriesBefore, 'never replayed');

    // The held stream ends: its bytes go back to the channel, and the same uploads are replayed again.
    release();
    assert.equal(await held, grpc.status.OK);
    const afterwards = await uploads(m, send(Buffer.alloc(3072, 7)));
    assert.deepEqual(afterwards.codes, Array(UPLOADS).fill(grpc.status.OK));
    assert.deepEqual(afterwards.seen, Array(UPLOADS).fill(3072));
    assert.ok(afterwards.retries > during.retries, 'some uploads were refused at the dead address first, and replayed');
  });
});
