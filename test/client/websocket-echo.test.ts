/**
 * `mesh.websocket()` against a `ws` WebSocketServer attached to a `mesh.serve` server, on real
 * sockets on 127.0.0.1 with strict mTLS between the services: an echo that tells who the server
 * saw, the upgrade authorized by caller (a refused caller gets 403 before any handshake and the
 * WebSocket server never sees it), the trace context on the upgrade request, balancing over two
 * servers, and connection metrics on both sides.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { WebSocketServer } from 'ws';
import { SpanKind } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type WebSocket from 'ws';
import { meshClient, isTrellisError } from 'trellis';
import { CONNECTION_METRIC_NAMES } from '../../src/observability/connection-metrics.js';
import type { Mesh, MeshServer } from 'trellis';
import { makeIdentities, TRUST_DOMAIN } from '../helpers/identities.js';
import type { Identities } from '../helpers/identities.js';
import { quietLogger } from '../helpers/servers.js';

const meshDoc = `apiVersion: trellis/v1\nkind: Mesh\nmetadata: { name: default }\nspec: { trustDomain: ${TRUST_DOMAIN}, mtls: strict }\n`;

function chatDoc(ports: number[], extra = ''): string {
  return `---
apiVersion: trellis/v1
kind: Service
metadata: { name: chat }
spec:
${ports.length > 0 ? `  endpoints: [ ${ports.map((p) => `"127.0.0.1:${p}"`).join(', ')} ]\n  loadBalancer: round-robin\n` : ''}${extra}`;
}

const AUTHZ = '  inbound:\n    authorization: { allow: [ { from: [c], paths: ["/rooms/*"] } ] }\n';

async function metricValue(mesh: Mesh, name: string, labels: Record<string, string>): Promise<number> {
  const metric = await mesh.metricsRegistry.getSingleMetric(name)?.get();
  const v = metric?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

function nextMessage(ws: WebSocket): Promise<string> {
  return new Promise((resolve, reject) => {
    ws.once('message', (m: Buffer) => resolve(m.toString()));
    ws.once('error', reject);
  });
}

function closed(ws: WebSocket): Promise<void> {
  return new Promise((resolve) => {
    ws.once('close', () => resolve());
    ws.close();
  });
}

interface ChatServer {
  mesh: Mesh;
  server: MeshServer;
  upgrades: IncomingMessage[];
}

describe('mesh.websocket', () => {
  let ids: Identities;
  const meshes: Mesh[] = [];
  const wsServers: WebSocketServer[] = [];
  before(async () => {
    ids = await makeIdentities();
  });
  after(async () => {
    for (const w of wsServers) {
      for (const c of w.clients) c.terminate();
      w.close();
    }
    await Promise.all(meshes.map((m) => m.close({ drainTimeoutMs: 500 })));
    ids.close();
  });

  async function mesh(service: string, config: string): Promise<Mesh> {
    const m = await meshClient({ service, config, identity: ids.identityFor(service), logger: quietLogger() });
    meshes.push(m);
    return m;
  }

  /** A chat server: mesh.serve, with a ws server on the same port echoing `<caller>:<message>`. */
  async function chatServer(): Promise<ChatServer> {
    const m = await mesh('chat', meshDoc + chatDoc([], AUTHZ));
    const server = await m.serve((_req, res) => res.end('no websocket here'));
    const upgrades: IncomingMessage[] = [];
    const wss = new WebSocketServer({ server: server.server });
    wsServers.push(wss);
    wss.on('connection', (ws, req) => {
      upgrades.push(req);
      ws.on('message', (msg: Buffer) => ws.send(`${req.trellis?.peer.service ?? '?'}:${msg.toString()}`));
    });
    return { mesh: m, server, upgrades };
  }

  let one: ChatServer;
  before(async () => {
    one = await chatServer();
  });

  it('echoes over an mTLS WebSocket; the server saw the verified caller and a traceparent on the upgrade', async () => {
    const c = await mesh('c', meshDoc + chatDoc([one.server.port]));
    const ws = await c.websocket('chat', '/rooms/1');
    ws.send('hello');
    assert.equal(await nextMessage(ws), 'c:hello');
    const upgrade = one.upgrades.at(-1);
    assert.equal(upgrade?.url, '/rooms/1');
    assert.match(String(upgrade?.headers.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
    assert.equal((upgrade?.socket as { encrypted?: boolean } | undefined)?.encrypted, true);
    await closed(ws);
    assert.equal(await metricValue(c, CONNECTION_METRIC_NAMES.clientConnections, { service: 'chat', protocol: 'websocket', outcome: 'success' }), 1);
    assert.equal(await metricValue(one.mesh, CONNECTION_METRIC_NAMES.serverConnections, { service: 'chat', caller: 'c', protocol: 'websocket', outcome: 'success' }), 1);
  });

  it('the upgrade is a CLIENT span, and the server makes a SERVER span under it', async () => {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const traced = await meshClient({ service: 'chat', config: meshDoc + chatDoc([], AUTHZ), identity: ids.identityFor('chat'), tracerProvider: provider, logger: quietLogger() });
    meshes.push(traced);
    const tracedServer = await traced.serve((_req, res) => res.end());
    const tracedWss = new WebSocketServer({ server: tracedServer.server });
    wsServers.push(tracedWss);
    const c = await meshClient({ service: 'c', config: meshDoc + chatDoc([tracedServer.port]), identity: ids.identityFor('c'), tracerProvider: provider, logger: quietLogger() });
    meshes.push(c);
    const ws = await c.websocket('chat', '/rooms/traced?x=1');
    await closed(ws);
    const spans = exporter.getFinishedSpans().filter((sp) => sp.attributes['url.scheme'] === 'ws');
    assert.equal(spans.length, 1);
    const span = spans[0];
    assert.equal(span?.kind, SpanKind.CLIENT);
    assert.equal(span?.attributes['url.path'], '/rooms/traced');
    assert.equal(span?.attributes['http.response.status_code'], 101);
    assert.equal(span?.attributes['server.address'], 'chat');
    const server = exporter.getFinishedSpans().find((sp) => sp.kind === SpanKind.SERVER);
    assert.ok(server !== undefined, 'the server recorded the upgrade');
    assert.equal(server.spanContext().traceId, span?.spanContext().traceId);
    assert.equal(server.parentSpanContext?.spanId, span?.spanContext().spanId);
    await provider.shutdown();
  });

  it('a caller the rules do not allow gets 403 before any handshake, and the WebSocket server never sees it', async () => {
    const before = one.upgrades.length;
    const a = await mesh('a', meshDoc + chatDoc([one.server.port]));
    await assert.rejects(a.websocket('chat', '/rooms/1'), (err: unknown) => {
      assert.ok(isTrellisError(err, 'TRELLIS_FORBIDDEN'), String(err));
      assert.equal((err as { statusCode?: number }).statusCode, 403);
      return true;
    });
    // Allowed caller, path outside the rule: refused too.
    const c = await mesh('c', meshDoc + chatDoc([one.server.port]));
    await assert.rejects(c.websocket('chat', '/admin'), (err: unknown) => isTrellisError(err, 'TRELLIS_FORBIDDEN'));
    assert.equal(one.upgrades.length, before);
    assert.equal(await metricValue(one.mesh, CONNECTION_METRIC_NAMES.serverConnections, { service: 'chat', caller: 'a', protocol: 'websocket', outcome: 'forbidden' }), 1);
    // A 403 is the server's answer, not a failure of the endpoint.
    assert.equal(await metricValue(a, 'trellis_client_ejections_total', { service: 'chat' }), 0);
  });

  it('balances WebSockets over the endpoints', async () => {
    const two = await chatServer();
    const c = await mesh('c', meshDoc + chatDoc([one.server.port, two.server.port]));
    const beforeOne = one.upgrades.length;
    const beforeTwo = two.upgrades.length;
    const sockets: WebSocket[] = [];
    for (let i = 0; i < 4; i++) sockets.push(await c.websocket('chat', `/rooms/${i}`));
    assert.equal(one.upgrades.length - beforeOne, 2);
    assert.equal(two.upgrades.length - beforeTwo, 2);
    await Promise.all(sockets.map(closed));
  });

  it('refuses what is the caller\'s mistake: a tcp service, a path without a leading slash', async () => {
    const c = await mesh('c', `${meshDoc + chatDoc([one.server.port])}---
apiVersion: trellis/v1
kind: Service
metadata: { name: kv }
spec: { protocol: tcp, endpoints: ["127.0.0.1:1"] }
`);
    await assert.rejects(c.websocket('kv', '/x'), (err: unknown) => isTrellisError(err, 'TRELLIS_INVALID_ARGUMENT'));
    await assert.rejects(c.websocket('chat', 'rooms/1'), (err: unknown) => isTrellisError(err, 'TRELLIS_INVALID_ARGUMENT'));
  });
});
