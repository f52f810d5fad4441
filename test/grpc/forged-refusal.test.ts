/**
 * Whether an attempt was refused before it reached a server is the mesh's own knowledge (its
 * picker found no connection to the chosen endpoint, or one whose certificate is not the
 * destination's): a server cannot claim it. Real grpc-js servers on 127.0.0.1 that answer with
 * the trailers the picker's refusals used to carry (`x-trellis-connect-failure`,
 * `x-trellis-error: TRELLIS_PEER_IDENTITY`):
 * - a client stream or a bidi stream answered trailers-only UNAVAILABLE with the connect-failure
 *   key, after the server read a message, is not played again on another endpoint: the servers
 *   saw exactly one call, and the application gets the server's status;
 * - a unary call so answered is not retried when its route retries `connect-failure` only;
 * - a unary call answered UNAVAILABLE with `x-trellis-error: TRELLIS_PEER_IDENTITY` is retried
 *   as the UNAVAILABLE it is when the route retries `unavailable`.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { sampleSum } from '../helpers/prometheus.js';
import { EchoClient, EchoService, grpcMesh, grpcResources, serviceYaml } from './helpers.js';
import type { Client, EchoReply, EchoRequest, TestMesh } from './helpers.js';

const SAYS_NO = 'the server says no';
const RR = '  loadBalancer: round-robin\n';
const OK_REPLY: EchoReply = { text: 'ok', server: '', traceparent: '', deadlineLeftMs: 0, note: '' };

/** UNAVAILABLE with trailers `extra` (set on a fresh Metadata). */
function unavailable(extra: Record<string, string>): grpc.StatusObject {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(extra)) md.set(k, v);
  return { code: grpc.status.UNAVAILABLE, details: SAYS_NO, metadata: md };
}
const FORGED_CONNECT_FAILURE = { 'x-trellis-connect-failure': '1' };

interface Ended {
  code: number;
  details: string;
}

function ended(e: grpc.ServiceError | null): Ended {
  return { code: e?.code ?? grpc.status.OK, details: e?.details ?? '' };
}

function clientStreamCall(client: Client, texts: string[]): Promise<Ended> {
  return new Promise((resolve) => {
    const call = (client.clientStream as (cb: (e: grpc.ServiceError | null) => void) => grpc.ClientWritableStream<EchoRequest>)((e) => resolve(ended(e)));
    for (const text of texts) call.write({ text });
    call.end();
  });
}

function bidiCall(client: Client, texts: string[]): Promise<Ended> {
  return new Promise((resolve) => {
    const call = (client.bidi as () => grpc.ClientDuplexStream<EchoRequest, EchoReply>)();
    call.on('data', () => undefined);
    call.on('error', () => undefined);
    call.on('status', (s: grpc.StatusObject) => resolve({ code: s.code, details: s.details }));
    for (const text of texts) call.write({ text });
    call.end();
  });
}

function unaryCall(client: Client): Promise<Ended> {
  return new Promise((resolve) => (client.unary as (r: EchoRequest, cb: (e: grpc.ServiceError | null) => void) => void)({ text: 'x' }, (e) => resolve(ended(e))));
}

describe("a server cannot forge the picker's refusal", () => {
  const res = grpcResources();
  const plain: grpc.Server[] = [];
  after(async () => {
    await res.close();
    for (const s of plain) s.forceShutdown();
  });

  /** A grpc-js server on 127.0.0.1 with the given Echo handlers. */
  async function server(impl: grpc.UntypedServiceImplementation): Promise<string> {
    const s = new grpc.Server();
    s.addService(EchoService, impl);
    const port = await new Promise<number>((resolve, reject) => s.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    plain.push(s);
    return `127.0.0.1:${port}`;
  }
  async function client(endpoints: string[], extra: string): Promise<{ mesh: TestMesh; client: Client }> {
    const mesh = await grpcMesh(serviceYaml('echo', endpoints, extra));
    res.meshes.push(mesh);
    const c = new EchoClient(mesh.grpc.target('echo'), mesh.grpc.credentials(), mesh.grpc.clientOptions()) as unknown as Client;
    res.clients.push(c);
    return { mesh, client: c };
  }

  it('a client stream or a bidi stream answered trailers-only UNAVAILABLE with x-trellis-connect-failure, after the server read a message, is not replayed', async () => {
    const calls: string[] = [];
    // Each endpoint reads the first message, then answers with no headers and the connect-failure key in its trailers.
    const impl = (name: string): grpc.UntypedServiceImplementation => ({
      clientStream: (call: grpc.ServerReadableStream<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) => {
        call.once('data', (m: EchoRequest) => {
          calls.push(`${name} clientStream ${m.text ?? ''}`);
          cb(unavailable(FORGED_CONNECT_FAILURE));
        });
      },
      bidi: (call: grpc.ServerDuplexStream<EchoRequest, EchoReply>) => {
        call.on('error', () => undefined);
        call.once('data', (m: EchoRequest) => {
          calls.push(`${name} bidi ${m.text ?? ''}`);
          call.emit('error', unavailable(FORGED_CONNECT_FAILURE));
        });
      },
    });
    const { mesh, client: c } = await client([await server(impl('a')), await server(impl('b'))], RR);
    for (let i = 0; i < 2; i++) {
      assert.deepEqual(await clientStreamCall(c, [`c${i}`, 'more']), { code: grpc.status.UNAVAILABLE, details: SAYS_NO }, "the application got the server's status");
      assert.deepEqual(await bidiCall(c, [`b${i}`, 'more']), { code: grpc.status.UNAVAILABLE, details: SAYS_NO }, "the application got the server's status");
    }
    // Round-robin would have sent a replay to the other endpoint: each stream reached one server, once.
    assert.deepEqual(calls.map((s) => s.split(' ').slice(1).join(' ')), ['clientStream c0', 'bidi b0', 'clientStream c1', 'bidi b1'], calls.join(', '));
    const text = await mesh.metrics.text();
    assert.equal(sampleSum(text, 'trellis_client_retries_total', { service: 'echo' }), 0, 'nothing was retried');
    assert.equal(sampleSum(text, 'trellis_client_attempts_total', { service: 'echo' }), 4, 'one attempt per stream');
  });

  it('a unary call answered UNAVAILABLE with x-trellis-connect-failure is not retried on a route that retries connect-failure only', async () => {
    let served = 0;
    const impl: grpc.UntypedServiceImplementation = {
      unary: (_call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) => {
        served++;
        cb(unavailable(FORGED_CONNECT_FAILURE));
      },
    };
    const { mesh, client: c } = await client([await server(impl), await server(impl)], `${RR}  retries: { attempts: 3, on: [connect-failure], backoff: { base: 1ms, max: 2ms } }\n`);
    assert.deepEqual(await unaryCall(c), { code: grpc.status.UNAVAILABLE, details: SAYS_NO });
    assert.equal(served, 1, 'one server saw the call, once');
    assert.equal(sampleSum(await mesh.metrics.text(), 'trellis_client_retries_total', { service: 'echo' }), 0);
  });

  it('a unary call answered UNAVAILABLE with x-trellis-error: TRELLIS_PEER_IDENTITY is retried as the UNAVAILABLE it is', async () => {
    let served = 0;
    // The first call either endpoint serves claims the picker's identity refusal; the next ones answer.
    const impl: grpc.UntypedServiceImplementation = {
      unary: (_call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) => {
        if (served++ === 0) cb(unavailable({ 'x-trellis-error': 'TRELLIS_PEER_IDENTITY' }));
        else cb(null, OK_REPLY);
      },
    };
    const { mesh, client: c } = await client([await server(impl), await server(impl)], `${RR}  retries: { attempts: 3, on: [unavailable], backoff: { base: 1ms, max: 2ms } }\n`);
    assert.deepEqual(await unaryCall(c), { code: grpc.status.OK, details: '' });
    assert.equal(served, 2, 'retried once');
    assert.equal(sampleSum(await mesh.metrics.text(), 'trellis_client_retries_total', { service: 'echo', reason: 'unavailable' }), 1);
  });
});
