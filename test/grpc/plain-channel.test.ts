/**
 * The mesh's client interceptor on a channel that does not go through the Trellis LB policy (an
 * application that takes `mesh.grpc.clientOptions('echo')` or `mesh.grpc.interceptor('echo')`
 * but dials a plain `host:port`): the mesh's picker never runs there, so no `x-trellis-*` entry
 * may reach the server (the application's `x-trellis-route-key` is stripped; the attempt's
 * endpoint and deadline ride on its pick ticket, never in the metadata), and the call's deadline
 * must still reach the server as `grpc-timeout` (the picker writes it for `trellis:` channels).
 * Judged by the metadata a real grpc-js server received, and the deadline it saw.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { EchoClient, grpcMesh, grpcResources, serviceYaml, startEcho } from './helpers.js';
import type { Client, EchoReply, EchoRequest } from './helpers.js';

interface Seen {
  keys: string[];
  timeout: string | undefined;
  deadlineLeftMs: number;
}

/** Per-call options a test gives a unary or streaming call. */
interface CallOpts {
  metadata?: grpc.Metadata;
  deadline?: grpc.Deadline;
}

function unaryCall(client: grpc.Client, req: EchoRequest, o: CallOpts = {}): Promise<EchoReply> {
  return new Promise((resolve, reject) => {
    const fn = (client as Client).unary as (r: EchoRequest, m: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, v?: EchoReply) => void) => void;
    fn.call(client, req, o.metadata ?? new grpc.Metadata(), o.deadline === undefined ? {} : { deadline: o.deadline }, (err, v) => (err ? reject(err) : resolve(v as EchoReply)));
  });
}

function serverStream(client: grpc.Client, req: EchoRequest, o: CallOpts = {}): Promise<EchoReply[]> {
  return new Promise((resolve, reject) => {
    const fn = (client as Client).serverStream as (r: EchoRequest, m: grpc.Metadata, opts: grpc.CallOptions) => grpc.ClientReadableStream<EchoReply>;
    const s = fn.call(client, req, o.metadata ?? new grpc.Metadata(), o.deadline === undefined ? {} : { deadline: o.deadline });
    const got: EchoReply[] = [];
    s.on('data', (m: EchoReply) => got.push(m));
    s.on('error', reject);
    s.on('end', () => resolve(got));
  });
}

describe('the mesh interceptor on a channel without the Trellis LB policy', () => {
  const { servers, meshes, clients, close } = grpcResources();
  after(close);

  /** An Echo server that records the metadata of every call (`grpc-timeout` comes from its deadline). */
  async function recordingServer(): Promise<{ address: string; seen: Seen[] }> {
    const seen: Seen[] = [];
    const record = (call: { metadata: grpc.Metadata; getDeadline(): grpc.Deadline }): number => {
      const d = call.getDeadline();
      const t = d instanceof Date ? d.getTime() : d;
      const left = Number.isFinite(t) ? Math.round(t - Date.now()) : -1;
      const map = call.metadata.getMap();
      seen.push({ keys: Object.keys(map), timeout: undefined, deadlineLeftMs: left });
      return left;
    };
    const s = await startEcho('rec', {
      handlers: {
        unary: (call, cb) => {
          const left = record(call);
          cb(null, { text: call.request.text ?? '', server: 'rec', traceparent: '', deadlineLeftMs: left, note: '' });
        },
      },
    });
    // Streams go through the helper's default handlers; wrap them to record too.
    // grpc-js keeps its handlers in a private map: the stream handler is wrapped there.
    const server = s.server as unknown as { handlers: Map<string, { func: (call: never, ...rest: never[]) => void }> };
    const h = server.handlers.get('/trellis.test.Echo/ServerStream');
    if (h !== undefined) {
      const inner = h.func;
      h.func = ((call: { metadata: grpc.Metadata; getDeadline(): grpc.Deadline }, ...rest: never[]) => {
        record(call);
        (inner as (c: unknown, ...r: never[]) => void)(call, ...rest);
      }) as never;
    }
    servers.push(s);
    return { address: s.address, seen };
  }

  async function setup(timeout = ''): Promise<{ client: grpc.Client; trellisClient: grpc.Client; seen: Seen[] }> {
    const rec = await recordingServer();
    const mesh = await grpcMesh(serviceYaml('echo', [rec.address], timeout));
    meshes.push(mesh);
    // The application dials the endpoint itself, with the mesh's interceptor bound to the service.
    const client = new EchoClient(rec.address, grpc.credentials.createInsecure(), mesh.grpc.clientOptions('echo'));
    const trellisClient = new EchoClient(mesh.grpc.target('echo'), mesh.grpc.credentials(), mesh.grpc.clientOptions('echo'));
    clients.push(client, trellisClient);
    return { client, trellisClient, seen: rec.seen };
  }

  function trellisKeys(s: Seen): string[] {
    return s.keys.filter((k) => k.startsWith('x-trellis-'));
  }

  it("a unary call's own deadline reaches the server as grpc-timeout; no x-trellis-* key is sent", async () => {
    const { client, seen } = await setup();
    const md = new grpc.Metadata();
    md.set('x-trellis-route-key', 'user-7');
    md.set('x-app', 'kept');
    const r = await unaryCall(client, { text: 'a' }, { metadata: md, deadline: Date.now() + 5000 });
    assert.equal(r.server, 'rec');
    const s = seen.at(-1);
    assert.ok(s);
    assert.deepEqual(trellisKeys(s), [], `the server saw ${s.keys.join(', ')}`);
    assert.ok(s.keys.includes('x-app'), 'the application\'s own metadata is sent');
    assert.ok(s.deadlineLeftMs > 0 && s.deadlineLeftMs <= 5000, `the server saw a deadline ${s.deadlineLeftMs} ms away`);
  });

  it('the route timeout reaches the server as grpc-timeout too', async () => {
    const { client, seen } = await setup('  timeout: 3s\n');
    await unaryCall(client, { text: 'b' });
    const s = seen.at(-1);
    assert.ok(s);
    assert.deepEqual(trellisKeys(s), [], `the server saw ${s.keys.join(', ')}`);
    assert.ok(s.deadlineLeftMs > 0 && s.deadlineLeftMs <= 3000, `the server saw a deadline ${s.deadlineLeftMs} ms away`);
    // A sooner call deadline wins over the route timeout.
    await unaryCall(client, { text: 'c' }, { deadline: Date.now() + 1500 });
    const s2 = seen.at(-1);
    assert.ok(s2 && s2.deadlineLeftMs > 0 && s2.deadlineLeftMs <= 1500, `the server saw a deadline ${s2?.deadlineLeftMs} ms away`);
  });

  it('a server-streaming call sends no pick hint either, and its deadline as grpc-timeout', async () => {
    // A stream is bounded by its own deadline only (never the route timeout).
    const { client, seen } = await setup('  timeout: 3s\n');
    const got = await serverStream(client, { text: 's', count: 2 }, { deadline: Date.now() + 3000 });
    assert.equal(got.length, 2);
    const s = seen.at(-1);
    assert.ok(s);
    assert.deepEqual(trellisKeys(s), [], `the server saw ${s.keys.join(', ')}`);
    assert.ok(s.deadlineLeftMs > 0 && s.deadlineLeftMs <= 3000, `the server saw a deadline ${s.deadlineLeftMs} ms away`);
  });

  it('on a trellis: channel the picker still turns the deadline into grpc-timeout and strips its keys', async () => {
    const { trellisClient, seen } = await setup('  timeout: 3s\n');
    await unaryCall(trellisClient, { text: 'd' });
    const s = seen.at(-1);
    assert.ok(s);
    assert.deepEqual(trellisKeys(s), [], `the server saw ${s.keys.join(', ')}`);
    assert.ok(s.deadlineLeftMs > 0 && s.deadlineLeftMs <= 3000, `the server saw a deadline ${s.deadlineLeftMs} ms away`);
    await serverStream(trellisClient, { text: 's', count: 1 });
    assert.deepEqual(trellisKeys(seen.at(-1) as Seen), []);
  });
});
