/**
 * Upgrades through `mesh.dispatcher` and `mesh.http()` as an undici user writes them — undici's
 * own `WebSocket` with `{ dispatcher: mesh.dispatcher }`, `undici.upgrade()`, and
 * `mesh.http('chat').upgrade()` — against real `ws` WebSocketServers on 127.0.0.1: plaintext to
 * a bare node:http server (the server sees the trace context; a dead endpoint's refused connect
 * is retried on the live one; metrics count the connections and their life; the upgrade is a
 * CLIENT span), and strict mTLS to a `mesh.serve` server whose authorization refuses one caller
 * (403 reaches that caller as TRELLIS_FORBIDDEN, and the ws server never sees it).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { createHash, randomBytes } from 'node:crypto';
import { WebSocketServer } from 'ws';
import { WebSocket as UndiciWebSocket, upgrade as undiciUpgrade } from 'undici';
import { SpanKind } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { meshClient, isTrellisError } from 'trellis';
import type { Mesh } from 'trellis';
import { makeIdentities } from '../helpers/identities.js';
import type { Identities } from '../helpers/identities.js';
import { quietLogger } from '../helpers/servers.js';
import { strictChatConfig } from '../helpers/chat-config.js';

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

async function metricValue(mesh: Mesh, name: string, labels: Record<string, string>): Promise<number> {
  const metric = await mesh.metricsRegistry.getSingleMetric(name)?.get();
  return metric?.values.filter((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val)).reduce((a, x) => a + x.value, 0) ?? 0;
}

/** The headers of a WebSocket handshake, and the accept value the server must answer with. */
function wsHandshake(): { headers: Record<string, string>; accept: string } {
  const key = randomBytes(16).toString('base64');
  return { headers: { 'sec-websocket-key': key, 'sec-websocket-version': '13' }, accept: createHash('sha1').update(key + WS_GUID).digest('base64') };
}

/** Reads one unmasked text frame (server to client, < 126 bytes) from a raw upgraded socket. */
function readTextFrame(socket: Duplex): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 2) return;
      const len = (buf[1] ?? 0) & 0x7f;
      if (buf.length < 2 + len) return;
      socket.off('data', onData);
      resolve(buf.subarray(2, 2 + len).toString());
    };
    socket.on('data', onData);
    socket.once('error', reject);
  });
}

/** A masked text frame (client to server). */
function textFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = randomBytes(4);
  const masked = Buffer.from(payload.map((b, i) => b ^ (mask[i % 4] ?? 0)));
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
}

function wsOpen(ws: UndiciWebSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.addEventListener('open', () => resolve(), { once: true });
    ws.addEventListener('close', (e) => reject(new Error(`closed before open: ${e.code} ${e.reason}`)), { once: true });
  });
}

function wsMessage(ws: UndiciWebSocket): Promise<string> {
  return new Promise((resolve) => ws.addEventListener('message', (e) => resolve(String(e.data)), { once: true }));
}

function wsClosed(ws: UndiciWebSocket): Promise<number> {
  return new Promise((resolve) => ws.addEventListener('close', (e) => resolve(e.code), { once: true }));
}

interface PlainChat {
  server: http.Server;
  wss: WebSocketServer;
  port: number;
  upgrades: IncomingMessage[];
}

/** A bare node:http server with a ws server: greets each connection, echoes messages. */
async function plainChat(): Promise<PlainChat> {
  const server = http.createServer((_req, res) => res.end('no websocket here'));
  const wss = new WebSocketServer({ server });
  const upgrades: IncomingMessage[] = [];
  wss.on('connection', (ws, req) => {
    upgrades.push(req);
    ws.send('hello');
    ws.on('message', (m: Buffer) => ws.send(`echo:${m.toString()}`));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, wss, port: (server.address() as AddressInfo).port, upgrades };
}

/** A port with nothing listening (bound, then closed). */
async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

const plainMesh = `apiVersion: trellis/v1\nkind: Mesh\nmetadata: { name: default }\nspec: { mtls: off }\n`;

describe('upgrades through mesh.dispatcher and mesh.http (plaintext)', () => {
  let chat: PlainChat;
  let mesh: Mesh;
  let exporter: InMemorySpanExporter;
  let provider: BasicTracerProvider;
  let dead: number;
  before(async () => {
    chat = await plainChat();
    dead = await deadPort();
    exporter = new InMemorySpanExporter();
    provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    // Round-robin over a dead endpoint and the live one: every other opening meets the dead one first.
    mesh = await meshClient({
      service: 'c',
      config: `${plainMesh}---\napiVersion: trellis/v1\nkind: Service\nmetadata: { name: chat }\nspec: { endpoints: ["127.0.0.1:${dead}", "127.0.0.1:${chat.port}"], loadBalancer: round-robin }\n`,
      tracerProvider: provider,
      logger: quietLogger(),
    });
  });
  after(async () => {
    for (const c of chat.wss.clients) c.terminate();
    chat.wss.close();
    chat.server.closeAllConnections();
    chat.server.close();
    await mesh.close({ drainTimeoutMs: 200 });
    await provider.shutdown();
  });

  it("undici's WebSocket with { dispatcher: mesh.dispatcher } opens, echoes, and carried the trace context", async () => {
    const ws = new UndiciWebSocket('ws://chat/rooms/1', { dispatcher: mesh.dispatcher });
    const greeting = wsMessage(ws);
    await wsOpen(ws);
    assert.equal(await greeting, 'hello');
    const echo = wsMessage(ws);
    ws.send('hi');
    assert.equal(await echo, 'echo:hi');
    const upgrade = chat.upgrades.at(-1);
    assert.equal(upgrade?.url, '/rooms/1');
    assert.equal(upgrade?.headers.host, 'chat');
    assert.match(String(upgrade?.headers.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
    const closed = wsClosed(ws);
    ws.close();
    assert.equal(await closed, 1005);
  });

  it('undici.upgrade() and mesh.http().upgrade() give { headers, socket } of a switched connection; a dead endpoint is retried on the live one', async () => {
    const before = chat.upgrades.length;
    for (let i = 0; i < 4; i++) {
      const hs = wsHandshake();
      const { headers, socket } =
        i % 2 === 0
          ? await undiciUpgrade(`http://chat/rooms/u${i}`, { dispatcher: mesh.dispatcher, headers: hs.headers, protocol: 'websocket' })
          : await mesh.http('chat').upgrade({ path: `/rooms/u${i}`, query: { n: i }, headers: hs.headers, protocol: 'websocket' });
      assert.equal(headers['sec-websocket-accept'], hs.accept);
      assert.equal(await readTextFrame(socket), 'hello');
      socket.write(textFrame('raw'));
      assert.equal(await readTextFrame(socket), 'echo:raw');
      await new Promise<void>((resolve) => {
        socket.once('close', () => resolve());
        socket.destroy();
      });
    }
    assert.deepEqual(chat.upgrades.slice(before).map((r) => r.url), ['/rooms/u0', '/rooms/u1?n=1', '/rooms/u2', '/rooms/u3?n=3']);
    // The dead endpoint refused some openings, and each was retried on the live one.
    assert.ok((await metricValue(mesh, 'trellis_client_retries_total', { service: 'chat', reason: 'connect-failure' })) >= 1);
  });

  it('counts the connections and their duration, and the upgrade is a CLIENT span', async () => {
    const opened = await metricValue(mesh, 'trellis_client_connections_total', { service: 'chat', protocol: 'websocket', outcome: 'success' });
    assert.ok(opened >= 5, `connections counted: ${opened}`);
    // The connections of the tests above have all closed (a WebSocket's TCP close can trail its 'close' event).
    const active = (): Promise<number> => metricValue(mesh, 'trellis_client_connections_active', { service: 'chat', protocol: 'websocket' });
    for (let i = 0; i < 500 && (await active()) !== 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(await active(), 0);
    const hs = wsHandshake();
    const { socket } = await mesh.http('chat').upgrade({ path: '/rooms/metrics', headers: hs.headers, protocol: 'websocket' });
    assert.equal(await metricValue(mesh, 'trellis_client_connections_active', { service: 'chat', protocol: 'websocket' }), 1);
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.destroy();
    });
    assert.equal(await metricValue(mesh, 'trellis_client_connections_active', { service: 'chat', protocol: 'websocket' }), 0);
    const durations = await mesh.metricsRegistry.getSingleMetric('trellis_client_connection_duration_seconds')?.get();
    const count = durations?.values.find((v) => (v as { metricName?: string }).metricName === 'trellis_client_connection_duration_seconds_count' && v.labels.protocol === 'websocket');
    assert.ok((count?.value ?? 0) >= 6, 'every closed connection has its duration');
    // One span per attempt: a first attempt at the dead endpoint is a span of its own (failed).
    const spans = exporter.getFinishedSpans().filter((s) => s.attributes['url.path'] === '/rooms/metrics' && s.attributes['http.response.status_code'] !== undefined);
    assert.equal(spans.length, 1);
    assert.equal(spans[0]?.kind, SpanKind.CLIENT);
    assert.equal(spans[0]?.attributes['http.response.status_code'], 101);
    assert.equal(spans[0]?.attributes['server.address'], 'chat');
  });

  it("refuses what is the caller's mistake before any connection: a body on an upgrade, request() asked to upgrade", async () => {
    const before = chat.upgrades.length;
    await assert.rejects(mesh.http('chat').upgrade({ path: '/x', body: 'no' } as never), (err: unknown) => isTrellisError(err, 'TRELLIS_INVALID_ARGUMENT'));
    await assert.rejects(mesh.http('chat').request({ path: '/x', upgrade: 'websocket' } as never), (err: unknown) => isTrellisError(err, 'TRELLIS_INVALID_ARGUMENT'));
    assert.equal(chat.upgrades.length, before);
  });
});

describe('upgrade outcomes the layers judge', () => {
  let server: http.Server;
  let mesh: Mesh;
  before(async () => {
    // Answers /busy with 503, holds /hang without an answer.
    server = http.createServer();
    server.on('upgrade', (req, socket) => {
      if (req.url === '/busy') socket.end('HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    mesh = await meshClient({
      service: 'c',
      config: `${plainMesh}---\napiVersion: trellis/v1\nkind: Service\nmetadata: { name: chat }\nspec: { endpoints: ["127.0.0.1:${port}"], outlierDetection: { consecutiveFailures: 1, ejectionTime: 30s, maxEjectedPercent: 100 } }\n`,
      logger: quietLogger(),
    });
  });
  after(async () => {
    server.closeAllConnections();
    server.close();
    await mesh.close({ drainTimeoutMs: 200 });
  });

  it("a caller's abort cancels an upgrade still waiting for its answer", async () => {
    const ac = new AbortController();
    const pending = undiciUpgrade('http://chat/hang', { dispatcher: mesh.dispatcher, signal: ac.signal });
    // Aborted once the server holds the request (its connection is open).
    await new Promise<void>((resolve) => server.once('upgrade', () => resolve()));
    ac.abort(new Error('changed my mind'));
    await assert.rejects(pending, (err: unknown) => isTrellisError(err, 'TRELLIS_ABORTED') && /changed my mind/.test(String((err as Error).cause)));
    // The caller's change of mind is not the endpoint's failure (consecutiveFailures: 1 would eject it).
    assert.equal(await metricValue(mesh, 'trellis_client_ejections_total', { service: 'chat' }), 0);
  });

  it('a 503 answer is TRELLIS_UPSTREAM_ERROR with its status, and counts against the endpoint (ejected)', async () => {
    await assert.rejects(mesh.http('chat').upgrade({ path: '/busy' }), (err: unknown) => {
      assert.ok(isTrellisError(err, 'TRELLIS_UPSTREAM_ERROR'), String(err));
      assert.equal((err as { statusCode?: number }).statusCode, 503);
      return true;
    });
    assert.equal(await metricValue(mesh, 'trellis_client_ejections_total', { service: 'chat' }), 1);
  });
});


describe('upgrades through mesh.dispatcher over strict mTLS, authorized by the server', () => {
  let ids: Identities;
  const meshes: Mesh[] = [];
  let wss: WebSocketServer;
  let port: number;
  const seen: string[] = [];
  before(async () => {
    ids = await makeIdentities();
    const server = await meshClient({ service: 'chat', config: strictChatConfig(undefined), identity: ids.identityFor('chat'), logger: quietLogger() });
    meshes.push(server);
    const served = await server.serve((_req, res) => res.end());
    port = served.port;
    wss = new WebSocketServer({ server: served.server });
    wss.on('connection', (ws, req) => {
      const caller = req.trellis?.peer.service ?? '?';
      seen.push(caller);
      ws.on('message', (m: Buffer) => ws.send(`${caller}:${m.toString()}`));
    });
  });
  after(async () => {
    for (const c of wss.clients) c.terminate();
    wss.close();
    await Promise.all(meshes.map((m) => m.close({ drainTimeoutMs: 200 })));
    ids.close();
  });

  async function caller(service: string): Promise<Mesh> {
    const m = await meshClient({ service, config: strictChatConfig(port), identity: ids.identityFor(service), logger: quietLogger() });
    meshes.push(m);
    return m;
  }

  it('an allowed caller opens an undici WebSocket over mTLS; the server saw its verified identity', async () => {
    const c = await caller('c');
    const ws = new UndiciWebSocket('ws://chat/rooms/1', { dispatcher: c.dispatcher });
    await wsOpen(ws);
    const reply = wsMessage(ws);
    ws.send('hi');
    assert.equal(await reply, 'c:hi');
    const closed = wsClosed(ws);
    ws.close();
    await closed;
  });

  it('a refused caller gets 403 as TRELLIS_FORBIDDEN (undici.upgrade) or a failed handshake (WebSocket); the ws server never sees it; nothing is charged to the endpoint', async () => {
    const a = await caller('a');
    const before = seen.length;
    await assert.rejects(undiciUpgrade('http://chat/rooms/1', { dispatcher: a.dispatcher, headers: wsHandshake().headers, protocol: 'websocket' }), (err: unknown) => {
      assert.ok(isTrellisError(err, 'TRELLIS_FORBIDDEN'), String(err));
      assert.equal((err as { statusCode?: number }).statusCode, 403);
      return true;
    });
    await assert.rejects(a.http('chat').upgrade({ path: '/rooms/2', headers: wsHandshake().headers, protocol: 'websocket' }), (err: unknown) => isTrellisError(err, 'TRELLIS_FORBIDDEN'));
    const ws = new UndiciWebSocket('ws://chat/rooms/3', { dispatcher: a.dispatcher });
    await assert.rejects(wsOpen(ws), /closed before open: 1006/);
    assert.equal(seen.length, before);
    assert.equal(await metricValue(a, 'trellis_client_connections_total', { service: 'chat', outcome: 'forbidden' }), 3);
    assert.equal(await metricValue(a, 'trellis_client_ejections_total', { service: 'chat' }), 0);
  });
});

describe('hostile upstreams during the upgrade handshake', () => {
  let stalled: net.Server;
  let resetting: net.Server;
  const stalledSockets: net.Socket[] = [];
  let resetConnections = 0;
  let mesh: Mesh;
  before(async () => {
    // Accepts the connection, reads the request, never answers.
    stalled = net.createServer((s) => {
      stalledSockets.push(s);
      s.on('error', () => undefined);
      s.resume();
    });
    // The first connection is reset once the request arrived; the next ones switch.
    resetting = net.createServer((s) => {
      const n = ++resetConnections;
      s.on('error', () => undefined);
      s.once('data', (chunk: Buffer) => {
        if (n === 1) {
          s.resetAndDestroy();
          return;
        }
        const key = /sec-websocket-key: *(\S+)/i.exec(chunk.toString())?.[1] ?? '';
        const accept = createHash('sha1').update(key + WS_GUID).digest('base64');
        s.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\nsec-websocket-accept: ${accept}\r\n\r\n`);
      });
    });
    await Promise.all([stalled, resetting].map((srv) => new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))));
    const sp = (stalled.address() as AddressInfo).port;
    const rp = (resetting.address() as AddressInfo).port;
    mesh = await meshClient({
      service: 'c',
      config:
        `${plainMesh}---\napiVersion: trellis/v1\nkind: Service\nmetadata: { name: stall }\nspec: { endpoints: ["127.0.0.1:${sp}"], timeout: 300ms, retries: { attempts: 1 }, outlierDetection: { consecutiveFailures: 1, ejectionTime: 30s, maxEjectedPercent: 100 } }\n` +
        `---\napiVersion: trellis/v1\nkind: Service\nmetadata: { name: nohead }\nspec: { endpoints: ["127.0.0.1:${sp}"], timeout: 60s, retries: { attempts: 1 } }\n` +
        `---\napiVersion: trellis/v1\nkind: Service\nmetadata: { name: flaky }\nspec: { endpoints: ["127.0.0.1:${rp}"], retries: { attempts: 2, on: [reset] } }\n`,
      logger: quietLogger(),
    });
  });
  after(async () => {
    for (const s of stalledSockets) s.destroy();
    stalled.close();
    resetting.close();
    await mesh.close({ drainTimeoutMs: 200 });
  });

  it('an upstream that never answers the upgrade ends by the route timeout as TRELLIS_TIMEOUT, its connection closed and the endpoint charged', async () => {
    await assert.rejects(mesh.http('stall').upgrade({ path: '/x', headers: wsHandshake().headers }), (err: unknown) => isTrellisError(err, 'TRELLIS_TIMEOUT'));
    assert.equal(stalledSockets.length, 1);
    const sock = stalledSockets[0] as net.Socket;
    if (!sock.destroyed) await new Promise<void>((resolve) => sock.once('close', () => resolve()));
    assert.equal(await metricValue(mesh, 'trellis_client_ejections_total', { service: 'stall' }), 1);
  });

  it("undici's headersTimeout ends an unanswered upgrade as TRELLIS_TIMEOUT before the route timeout", async () => {
    // undici's upgrade() types omit headersTimeout, but it passes its options on to dispatch.
    const before = stalledSockets.length;
    await assert.rejects(undiciUpgrade('http://nohead/x', Object.assign({ dispatcher: mesh.dispatcher, headers: wsHandshake().headers }, { headersTimeout: 200 })), (err: unknown) => isTrellisError(err, 'TRELLIS_TIMEOUT'));
    assert.equal(stalledSockets.length, before + 1);
  });

  it('an upstream that resets mid-handshake is retried per policy (on: reset), and the retry switches', async () => {
    const { headers, accept } = wsHandshake();
    const { headers: got, socket } = await mesh.http('flaky').upgrade({ path: '/x', headers });
    assert.equal(got['sec-websocket-accept'], accept);
    assert.equal(resetConnections, 2);
    socket.destroy();
  });
});
