/**
 * Streaming calls through the mesh's per-call object (src/grpc/stream-call.ts), against real
 * grpc-js servers on 127.0.0.1 — what the rest of test/grpc does not pin down on its own:
 * - a client stream whose first attempt went to an address that refuses connections is played
 *   again, every message it had sent included, on another endpoint (gRPC's transparent retry);
 * - once the application has seen a response header or message, the stream is never played
 *   again, even on a status whose trailers claim the picker's refusal (only the picker's pick
 *   ticket says that nothing was sent: forged-refusal.test.ts);
 * - a stream refused before reaching a server (a dead address) whose deadline leaves no time to
 *   place it again ends with DEADLINE_EXCEEDED;
 * - the stream's deadline reaches the server as `grpc-timeout`, on a `trellis:` channel (the
 *   picker writes it from the pick ticket) and on a plain channel (the call writes it);
 * - the application's cancel ends the server's side of the call;
 * - with an SDK, each attempt of a stream is its own CLIENT span and sends its own span id;
 * - metrics count each logical stream once, however many attempts it took.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { SpanKind } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { sampleSum } from '../helpers/prometheus.js';
import { EchoClient, EchoService, grpcMesh, grpcResources, serviceYaml, startEcho, bidi } from './helpers.js';
import type { Client, EchoReply, EchoRequest, EchoServer, TestMesh } from './helpers.js';
import { deadAddress } from '../helpers/servers.js';


/** A client-streaming call writing `texts` at once (before any attempt is known to fail); resolves with the reply. */
function clientStream(client: grpc.Client, texts: string[]): Promise<EchoReply> {
  return new Promise((resolve, reject) => {
    const call = (client as Client)['clientStream']?.call(client, (err: grpc.ServiceError | null, v?: EchoReply) => (err ? reject(err) : resolve(v as EchoReply))) as grpc.ClientWritableStream<EchoRequest>;
    for (const text of texts) call.write({ text });
    call.end();
  });
}


/** A server-streaming call: the replies and how it ended (status code, OK included). */
function serverStream(client: grpc.Client, req: EchoRequest, options: grpc.CallOptions = {}): Promise<{ replies: EchoReply[]; headers: number; code: number }> {
  return new Promise((resolve) => {
    const call = (client as Client)['serverStream']?.call(client, req, new grpc.Metadata(), options) as grpc.ClientReadableStream<EchoReply>;
    const replies: EchoReply[] = [];
    let headers = 0;
    call.on('metadata', () => headers++);
    call.on('data', (m: EchoReply) => replies.push(m));
    call.on('error', () => undefined);
    call.on('status', (s: grpc.StatusObject) => resolve({ replies, headers, code: s.code }));
  });
}

/** A grpc-js server on 127.0.0.1 with only the given Echo handlers (others answer UNIMPLEMENTED). */
async function startServer(impl: grpc.UntypedServiceImplementation): Promise<{ address: string; server: grpc.Server }> {
  const server = new grpc.Server();
  server.addService(EchoService, impl);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return { address: `127.0.0.1:${port}`, server };
}

/** A server's UNAVAILABLE whose trailers claim what the picker's refusals once carried (nothing was sent). */
function claimedRefusal(): Partial<grpc.StatusObject> {
  const md = new grpc.Metadata();
  md.set('x-trellis-connect-failure', '1');
  return { code: grpc.status.UNAVAILABLE, details: 'refused', metadata: md };
}

const RR = '  loadBalancer: round-robin\n';

describe('gRPC streams on the per-call path', () => {
  const res = grpcResources();
  const plainServers: grpc.Server[] = [];
  after(async () => {
    await res.close();
    for (const s of plainServers) s.forceShutdown();
  });

  async function echo(name: string): Promise<EchoServer> {
    const s = await startEcho(name);
    res.servers.push(s);
    return s;
  }
  async function mesh(yaml: string, opts: Parameters<typeof grpcMesh>[1] = {}): Promise<TestMesh> {
    const m = await grpcMesh(yaml, opts);
    res.meshes.push(m);
    return m;
  }
  function track<C extends grpc.Client>(c: C): C {
    res.clients.push(c);
    return c;
  }
  async function server(impl: grpc.UntypedServiceImplementation): Promise<string> {
    const s = await startServer(impl);
    plainServers.push(s.server);
    return s.address;
  }

  it('a client stream refused by a dead address is replayed, every message included, on a live endpoint; counted once', async () => {
    const live = await echo('live');
    const dead = await deadAddress();
    const m = await mesh(serviceYaml('echo', [dead, live.address], RR));
    const client = track(new EchoClient(m.grpc.target('echo'), m.grpc.credentials(), m.grpc.clientOptions()));
    for (let i = 0; i < 4; i++) assert.equal((await clientStream(client, [`a${i}`, 'b', 'c'])).text, `a${i},b,c`);
    for (let i = 0; i < 3; i++) assert.deepEqual((await bidi(client, [`p${i}`, 'q'])).map((r) => r.text), [`echo:p${i}`, 'echo:q']);
    for (let i = 0; i < 3; i++) {
      const got = await serverStream(client, { text: `s${i}`, count: 2 });
      assert.deepEqual([got.code, got.replies.map((r) => r.text)], [grpc.status.OK, [`s${i}#0`, `s${i}#1`]]);
    }
    // Each logical stream reached the live server exactly once, with all it sent.
    assert.deepEqual([live.served.get('clientStream'), live.served.get('bidi'), live.served.get('serverStream')], [4, 3, 3]);
    const text = await m.metrics.text();
    const retries = sampleSum(text, 'trellis_client_retries_total', { service: 'echo' });
    assert.ok(retries >= 1, 'round-robin sent some streams to the dead address first');
    // Metrics: one logical call per stream (10), one attempt per try (10 + the replays).
    assert.equal(sampleSum(text, 'trellis_client_requests_total', { service: 'echo' }), 10);
    assert.equal(sampleSum(text, 'trellis_client_requests_total', { service: 'echo', status_code: '0', outcome: 'success' }), 10);
    assert.equal(sampleSum(text, 'trellis_client_attempts_total', { service: 'echo' }), 10 + retries);
    assert.equal(sampleSum(text, 'trellis_client_attempts_total', { service: 'echo', status_code: '14' }), retries);
  });

  it('a stream whose headers or first message reached the application is never replayed', async () => {
    // Both endpoints answer a server stream with headers (or a message) and then UNAVAILABLE
    // claiming a refusal in its trailers: it must reach the application as it is.
    let served = 0;
    const impl = (mode: 'headers' | 'message'): grpc.UntypedServiceImplementation => ({
      serverStream: (call: grpc.ServerWritableStream<EchoRequest, EchoReply>) => {
        served++;
        if (mode === 'headers') call.sendMetadata(new grpc.Metadata());
        else call.write({ text: 'first', server: '', traceparent: '', deadlineLeftMs: 0, note: '' });
        setTimeout(() => call.emit('error', claimedRefusal()), 20);
      },
    });
    for (const mode of ['headers', 'message'] as const) {
      served = 0;
      const a = await server(impl(mode));
      const b = await server(impl(mode));
      const m = await mesh(serviceYaml('echo', [a, b], RR));
      const client = track(new EchoClient(m.grpc.target('echo'), m.grpc.credentials(), m.grpc.clientOptions()));
      const got = await serverStream(client, { text: 'x' });
      assert.equal(got.code, grpc.status.UNAVAILABLE, mode);
      assert.equal(served, 1, `${mode}: the stream went to one server only`);
      assert.deepEqual(got.replies.map((r) => r.text), mode === 'message' ? ['first'] : [], mode);
      assert.equal(sampleSum(await m.metrics.text(), 'trellis_client_retries_total', { service: 'echo' }), 0, mode);
    }
  });

  it('a stream refused before it reached a server, with no time left to place it again, ends with DEADLINE_EXCEEDED', async () => {
    // The only endpoint refuses connections: the picker refuses the attempt; the backoff before a
    // replay (up to 10 minutes, jittered) overshoots the stream's 2 s deadline but for a 1 in
    // 300 draw: the stream ends as its deadline says, not with the refusal's UNAVAILABLE.
    const m = await mesh(serviceYaml('echo', [await deadAddress()], '  retries: { attempts: 3, on: [unavailable], backoff: { base: 10m, max: 10m } }\n'));
    const client = track(new EchoClient(m.grpc.target('echo'), m.grpc.credentials(), m.grpc.clientOptions()));
    const got = await serverStream(client, { text: 'x' }, { deadline: Date.now() + 2000 });
    const text = await m.metrics.text();
    if (sampleSum(text, 'trellis_client_retries_total', { service: 'echo' }) > 0) return; // the rare draw under 2 s: replayed, nothing to judge
    assert.equal(got.code, grpc.status.DEADLINE_EXCEEDED);
    assert.equal(sampleSum(text, 'trellis_client_requests_total', { service: 'echo', status_code: String(grpc.status.DEADLINE_EXCEEDED), outcome: 'timeout' }), 1);
  });

  it("the stream's deadline reaches the server as grpc-timeout, on a trellis: channel and on a plain one", async () => {
    const e = await echo('deadline');
    const m = await mesh(serviceYaml('echo', [e.address]));
    const viaPicker = track(new EchoClient(m.grpc.target('echo'), m.grpc.credentials(), m.grpc.clientOptions()));
    const viaPlain = track(new EchoClient(e.address, grpc.credentials.createInsecure(), m.grpc.clientOptions('echo')));
    for (const [name, client] of [['trellis:', viaPicker], ['plain', viaPlain]] as const) {
      const s = await serverStream(client, { text: 'd', count: 1 }, { deadline: Date.now() + 4000 });
      assert.equal(s.code, grpc.status.OK, name);
      const left = s.replies[0]?.deadlineLeftMs ?? -1;
      assert.ok(left > 0 && left <= 4000, `${name} server stream: the server saw ${left} ms left`);
      const r = await bidi(client, ['d'], { deadline: Date.now() + 4000 });
      const leftBidi = r[0]?.deadlineLeftMs ?? -1;
      assert.ok(leftBidi > 0 && leftBidi <= 4000, `${name} bidi: the server saw ${leftBidi} ms left`);
      // Without a deadline, none is sent.
      const none = await bidi(client, ['n']);
      assert.equal(none[0]?.deadlineLeftMs, -1, name);
    }
  });

  it('with an SDK, a replayed stream has one CLIENT span per attempt, each sent as its traceparent', async () => {
    // Round-robin over a dead address and a live server: of two streams, one tries the dead address first.
    const seen: string[] = [];
    const live = await server({
      serverStream: (call: grpc.ServerWritableStream<EchoRequest, EchoReply>) => {
        const tp = call.metadata.get('traceparent')[0];
        seen.push(typeof tp === 'string' ? tp : '');
        call.write({ text: 'ok', server: '', traceparent: '', deadlineLeftMs: 0, note: '' });
        call.end();
      },
    });
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const m = await mesh(serviceYaml('echo', [await deadAddress(), live], RR), { tracerProvider: provider });
    const client = track(new EchoClient(m.grpc.target('echo'), m.grpc.credentials(), m.grpc.clientOptions('echo')));
    const appTraceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    let spans: ReturnType<InMemorySpanExporter['getFinishedSpans']> = [];
    for (let i = 0; i < 2 && spans.length < 2; i++) {
      exporter.reset();
      seen.length = 0;
      const appMd = new grpc.Metadata();
      appMd.set('traceparent', appTraceparent);
      const got = await new Promise<{ texts: string[]; code: number }>((resolve) => {
        const call = (client as Client)['serverStream']?.call(client, { text: 'x' }, appMd) as grpc.ClientReadableStream<EchoReply>;
        const texts: string[] = [];
        call.on('data', (r: EchoReply) => texts.push(r.text));
        call.on('error', () => undefined);
        call.on('status', (st: grpc.StatusObject) => resolve({ texts, code: st.code }));
      });
      assert.deepEqual(got, { texts: ['ok'], code: grpc.status.OK });
      assert.equal(appMd.get('traceparent')[0], appTraceparent, "the application's metadata is not changed");
      spans = exporter.getFinishedSpans().filter((sp) => sp.kind === SpanKind.CLIENT);
    }
    assert.equal(spans.length, 2, 'one of the streams was refused at the dead address, then replayed: one span per attempt');
    const [first, second] = spans;
    assert.equal(first?.name, 'trellis.test.Echo/ServerStream');
    assert.equal(first?.attributes['rpc.method'], 'ServerStream');
    assert.equal(first?.attributes['rpc.grpc.status_code'], grpc.status.UNAVAILABLE);
    assert.equal(first?.attributes['error.type'], 'UNAVAILABLE');
    assert.equal(second?.attributes['rpc.grpc.status_code'], grpc.status.OK);
    assert.equal(second?.attributes['trellis.attempt'], 2);
    // The refused attempt never left the process; the replay reached the server with its own span id.
    assert.equal(seen.length, 1);
    assert.match(seen[0] ?? '', new RegExp(`-${second?.spanContext().spanId}-`), 'the replay carried its own span id');
    await provider.shutdown();
  });

  it("the application's cancel ends the server's side of the stream", async () => {
    let serverCancelled!: () => void;
    const cancelled = new Promise<void>((r) => (serverCancelled = r));
    const addr = await server({
      bidi: (call: grpc.ServerDuplexStream<EchoRequest, EchoReply>) => {
        call.on('cancelled', () => serverCancelled());
        call.on('error', () => undefined);
        call.on('data', (msg: EchoRequest) => call.write({ text: `echo:${msg.text ?? ''}`, server: '', traceparent: '', deadlineLeftMs: 0, note: '' }));
      },
    });
    const m = await mesh(serviceYaml('echo', [addr]));
    const client = track(new EchoClient(m.grpc.target('echo'), m.grpc.credentials(), m.grpc.clientOptions()));
    const call = (client as Client)['bidi']?.call(client) as grpc.ClientDuplexStream<EchoRequest, EchoReply>;
    const ended = new Promise<number>((resolve) => {
      call.on('error', (err: grpc.ServiceError) => resolve(err.code));
      call.on('data', () => call.cancel());
    });
    call.write({ text: 'one' });
    assert.equal(await ended, grpc.status.CANCELLED);
    // Bounded: a server call the mesh left open would never see its cancel.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const seen = await Promise.race([cancelled.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 10_000)))]);
    clearTimeout(timer);
    assert.ok(seen, 'the server saw the call cancelled');
    const text = await m.metrics.text();
    assert.equal(sampleSum(text, 'trellis_client_requests_total', { service: 'echo' }), 1);
    assert.equal(sampleSum(text, 'trellis_client_requests_total', { service: 'echo', status_code: String(grpc.status.CANCELLED) }), 1);
  });
});
