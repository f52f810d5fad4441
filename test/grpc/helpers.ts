/**
 * Helpers for the gRPC tests: the Echo service of fixtures/echo.proto on real grpc-js servers
 * on 127.0.0.1, and a mesh's gRPC side wired by hand from its parts (Destinations, metrics,
 * tracer, inbound policy) exactly as `meshClient` wires them, until `mesh.grpc` is exposed.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { TracerProvider } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { systemClock, systemRandom } from '../../src/core/clock.js';
import { loadConfig } from '../../src/config/load.js';
import { Destinations } from '../../src/client/destinations.js';
import { MeshMetrics } from '../../src/observability/metrics.js';
import { MeshTracer } from '../../src/observability/tracer.js';
import { InboundPolicies } from '../../src/server/inbound-policy.js';
import { MeshGrpc, watchMeshEvents } from '../../src/grpc/channel.js';
import type { MeshConfig } from '../../src/config/types.js';
import type { IdentitySource } from '../../src/grpc/identity.js';
import { checkServerIdentityFor } from '../../src/tls/spiffe.js';

const here = path.dirname(fileURLToPath(import.meta.url));

export interface EchoRequest {
  text?: string;
  delayMs?: number;
  count?: number;
  failCode?: number;
}

export interface EchoReply {
  text: string;
  server: string;
  traceparent: string;
  deadlineLeftMs: number;
  note: string;
}

const definition = protoLoader.loadSync(path.join(here, 'fixtures/echo.proto'), { keepCase: false, longs: String, defaults: true });
const pkg = grpc.loadPackageDefinition(definition) as unknown as {
  trellis: { test: { Echo: grpc.ServiceClientConstructor; Admin: grpc.ServiceClientConstructor } };
};
export const EchoClient = pkg.trellis.test.Echo;
export const AdminClient = pkg.trellis.test.Admin;
export const EchoService = EchoClient.service;
export const AdminService = AdminClient.service;

export type Client = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

/** Promise form of a unary call. */
export function unary(client: grpc.Client, req: EchoRequest, options: { metadata?: grpc.Metadata; deadline?: grpc.Deadline } = {}, method = 'unary'): Promise<EchoReply> {
  return new Promise((resolve, reject) => {
    const fn = (client as Client)[method] as (r: EchoRequest, m: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, v?: EchoReply) => void) => void;
    fn.call(client, req, options.metadata ?? new grpc.Metadata(), options.deadline === undefined ? {} : { deadline: options.deadline }, (err, value) => (err ? reject(err) : resolve(value as EchoReply)));
  });
}

export type EchoHandlers = Partial<{
  unary: grpc.handleUnaryCall<EchoRequest, EchoReply>;
}>;

export interface EchoServer {
  readonly name: string;
  readonly server: grpc.Server;
  readonly port: number;
  readonly address: string;
  /** Calls served, by method. */
  readonly served: Map<string, number>;
  close(): Promise<void>;
  kill(): void;
}

function deadlineLeft(call: { getDeadline(): grpc.Deadline }): number {
  const d = call.getDeadline();
  const t = d instanceof Date ? d.getTime() : d;
  return Number.isFinite(t) ? Math.max(0, Math.round(t - Date.now())) : -1;
}

function reply(name: string, req: EchoRequest, md: grpc.Metadata, call: { getDeadline(): grpc.Deadline }): EchoReply {
  const tp = md.get('traceparent')[0];
  return { text: req.text ?? '', server: name, traceparent: typeof tp === 'string' ? tp : '', deadlineLeftMs: deadlineLeft(call), note: '' };
}

/** Starts an Echo server named `name` on 127.0.0.1 (port 0 unless given). */
export async function startEcho(name: string, opts: { interceptors?: grpc.ServerInterceptor[]; credentials?: grpc.ServerCredentials; port?: number; handlers?: EchoHandlers } = {}): Promise<EchoServer> {
  const server = new grpc.Server({ interceptors: opts.interceptors ?? [] });
  const served = new Map<string, number>();
  const count = (m: string): void => {
    served.set(m, (served.get(m) ?? 0) + 1);
  };
  const impl: grpc.UntypedServiceImplementation = {
    unary: opts.handlers?.unary ?? ((call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) => {
      count('unary');
      const req = call.request;
      const answer = (): void => {
        if ((req.failCode ?? 0) !== 0) cb({ code: req.failCode as number, details: `asked to fail by ${name}` });
        else cb(null, reply(name, req, call.metadata, call));
      };
      if ((req.delayMs ?? 0) > 0) setTimeout(answer, req.delayMs);
      else answer();
    }),
    serverStream: (call: grpc.ServerWritableStream<EchoRequest, EchoReply>) => {
      count('serverStream');
      const n = call.request.count ?? 1;
      for (let i = 0; i < n; i++) call.write({ ...reply(name, call.request, call.metadata, call), text: `${call.request.text ?? ''}#${i}` });
      call.end();
    },
    clientStream: (call: grpc.ServerReadableStream<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) => {
      count('clientStream');
      const texts: string[] = [];
      call.on('data', (m: EchoRequest) => texts.push(m.text ?? ''));
      call.on('end', () => cb(null, { ...reply(name, {}, call.metadata, call), text: texts.join(',') }));
    },
    bidi: (call: grpc.ServerDuplexStream<EchoRequest, EchoReply>) => {
      count('bidi');
      call.on('data', (m: EchoRequest) => call.write({ ...reply(name, m, call.metadata, call), text: `echo:${m.text ?? ''}` }));
      call.on('end', () => call.end());
    },
  };
  server.addService(EchoService, impl);
  server.addService(AdminService, {
    reset: (call: grpc.ServerUnaryCall<EchoRequest, EchoReply>, cb: grpc.sendUnaryData<EchoReply>) => cb(null, reply(name, call.request, call.metadata, call)),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${opts.port ?? 0}`, opts.credentials ?? grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    name,
    server,
    port,
    address: `127.0.0.1:${port}`,
    served,
    close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
    kill: () => server.forceShutdown(),
  };
}

export interface TestMesh {
  readonly grpc: MeshGrpc;
  readonly metrics: MeshMetrics;
  readonly tracer: MeshTracer;
  readonly destinations: Destinations;
  readonly events: EventEmitter;
  readonly config: MeshConfig;
  apply(yaml: string): Promise<void>;
  close(): Promise<void>;
}

/** A mesh's gRPC side from YAML, wired as meshClient wires a Mesh's parts. */
export async function grpcMesh(yaml: string, opts: { service?: string; tracerProvider?: TracerProvider; identity?: IdentitySource } = {}): Promise<TestMesh> {
  const clock = systemClock;
  const random = systemRandom;
  let config = await loadConfig(yaml);
  const events = new EventEmitter();
  const metrics = new MeshMetrics();
  const tracer = new MeshTracer({ service: opts.service, propagation: config.mesh.tracing?.propagation, tracerProvider: opts.tracerProvider });
  const destinations = new Destinations(clock, random, {
    onEndpoints: (service, endpoints) => events.emit('endpoints', { service, endpoints }),
    onEjection: (service, endpoint, ejected) => events.emit('ejection', { service, endpoint, ejected }),
    onBreaker: (service, state) => events.emit('breaker', { service, state }),
    onBreakerPresence: () => undefined,
    onWarn: () => undefined,
  });
  const inbound = new InboundPolicies(opts.service, { clock, random, onWarn: () => undefined });
  const apply = (c: MeshConfig): void => {
    destinations.apply(c);
    inbound.apply(c);
    config = c;
    events.emit('config', { version: 0, services: [...c.services.keys()] });
  };
  apply(config);
  const meshGrpc = new MeshGrpc({
    service: opts.service,
    clock,
    random,
    destinations,
    config: () => config,
    watch: watchMeshEvents(events),
    metrics,
    tracer,
    inboundPolicy: () => inbound.current(),
    identity: opts.identity,
    checkServerIdentityFor,
  });
  return {
    grpc: meshGrpc,
    metrics,
    tracer,
    destinations,
    events,
    get config() {
      return config;
    },
    apply: async (y) => apply(await loadConfig(y)),
    close: async () => {
      meshGrpc.close();
      inbound.close();
      await destinations.close();
    },
  };
}

/** A YAML Service document for `name` with `endpoints` and extra spec lines (indented by 2). */
export function serviceYaml(name: string, endpoints: readonly string[], extra = ''): string {
  return `apiVersion: trellis/v1
kind: Service
metadata: { name: ${name} }
spec:
  protocol: grpc
  endpoints:
${endpoints.map((a) => `    - { address: ${a} }`).join('\n')}
${extra}`;
}

/** What a gRPC test file starts, closed together in its `after` (clients, then meshes, then servers). */
export function grpcResources(): { servers: EchoServer[]; meshes: TestMesh[]; clients: grpc.Client[]; close: () => Promise<void> } {
  const servers: EchoServer[] = [];
  const meshes: TestMesh[] = [];
  const clients: grpc.Client[] = [];
  return {
    servers,
    meshes,
    clients,
    close: async () => {
      for (const c of clients) c.close();
      for (const m of meshes) await m.close();
      for (const s of servers) s.kill();
    },
  };
}

/**
 * The spans of a call retried once after UNAVAILABLE, as the mesh must record them: one CLIENT
 * span per attempt, named after the method and carrying the attempt's attributes, each attempt
 * sent with its own span id in `traceparent` (`seen`: the traceparents the server saw, in order),
 * and the application's own metadata left as it was.
 */
export function assertRetriedAttemptSpans(spans: readonly ReadableSpan[], seen: readonly string[], method: string, appTraceparent: string): void {
  assert.equal(spans.length, 2, 'one span per attempt');
  const [first, second] = spans;
  assert.equal(first?.name, `trellis.test.Echo/${method}`);
  assert.equal(first?.attributes['rpc.system'], 'grpc');
  assert.equal(first?.attributes['rpc.service'], 'trellis.test.Echo');
  assert.equal(first?.attributes['rpc.method'], method);
  assert.equal(first?.attributes['server.address'], 'echo');
  assert.equal(first?.attributes['rpc.grpc.status_code'], grpc.status.UNAVAILABLE);
  assert.equal(first?.attributes['error.type'], 'UNAVAILABLE');
  assert.equal(second?.attributes['rpc.grpc.status_code'], grpc.status.OK);
  assert.equal(second?.attributes['trellis.attempt'], 2);
  assert.equal(seen.length, 2);
  assert.match(seen[0] ?? '', new RegExp(`-${first?.spanContext().spanId}-`), 'the first try carried its own span id');
  assert.match(seen[1] ?? '', new RegExp(`-${second?.spanContext().spanId}-`), 'the second try carried its own span id');
  assert.equal(appTraceparent, '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', "the application's metadata is not changed");
}

/** A bidi call: writes `texts`, collects the replies. */
export function bidi(client: grpc.Client, texts: string[], options: grpc.CallOptions = {}): Promise<EchoReply[]> {
  return new Promise((resolve, reject) => {
    const call = (client as Client)['bidi']?.call(client, new grpc.Metadata(), options) as grpc.ClientDuplexStream<EchoRequest, EchoReply>;
    const out: EchoReply[] = [];
    call.on('data', (m: EchoReply) => out.push(m));
    call.on('error', reject);
    call.on('end', () => resolve(out));
    for (const text of texts) call.write({ text });
    call.end();
  });
}
