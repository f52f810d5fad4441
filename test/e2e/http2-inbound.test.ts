/**
 * `mesh.serve()` speaks HTTP/2 and HTTP/1.1 on one port, through the public API, with real
 * certificates: ALPN `h2` over mTLS (strict and permissive), prior-knowledge h2c over plaintext
 * (permissive and off), each with the whole inbound stack — the verified caller, authorization,
 * metrics. An Express app served by `mesh.serve` answers HTTP/2 requests (route parameters, a
 * JSON body); a Fastify HTTP/2 server with `mesh.fastify()` runs the stack; `close()` lets an
 * HTTP/2 stream in flight finish.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import express from 'express';
import Fastify from 'fastify';
import { Pool } from 'undici';
import { createAuthority, issueLeaf, meshClient } from 'trellis';
import type { Clock, Mesh, MeshServer } from 'trellis';
import { quietLogger } from '../helpers/servers.js';

const TD = 'example.org';
const HOUR = 3_600_000;
const clock: Clock = { now: () => performance.now(), wall: () => Date.now() };

interface Seen {
  version: string;
  caller: string;
  verified: boolean;
  path: string;
}

const meshDoc = (mtls: 'strict' | 'permissive' | 'off'): string => `apiVersion: trellis/v1
kind: Mesh
metadata: { name: default }
spec: { trustDomain: ${TD}, mtls: ${mtls} }
`;

/** The served service `b`: only `caller` may call /private. */
const selfDoc = `---
apiVersion: trellis/v1
kind: Service
metadata: { name: b }
spec:
  protocol: http2
  inbound:
    authorization: { allow: [ { from: [caller], paths: ["/private*"] }, { from: ["*", unknown], paths: ["/open*"] } ] }
`;

function targetDoc(port: number, protocol: 'http' | 'http2'): string {
  return `---
apiVersion: trellis/v1
kind: Service
metadata: { name: b }
spec:
  protocol: ${protocol}
  endpoints: [ { address: "127.0.0.1:${port}" } ]
  timeout: 10s
`;
}

/** A handler answering what the inbound stack told it. */
function whoami(seen: Seen[]) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const peer = req.trellis?.peer;
    const s = { version: req.httpVersion, caller: peer?.service ?? '?', verified: peer?.verified ?? false, path: req.url ?? '' };
    seen.push(s);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(s));
  };
}

/** An h2c client with prior knowledge, outside any mesh (the caller is `unknown`). */
function h2cPool(port: number): Pool {
  return new Pool(`http://127.0.0.1:${port}`, { allowH2: true, connect: { useH2c: true } as Record<string, unknown>, connections: 1, pipelining: 10 });
}

describe('mesh.serve: HTTP/2 and HTTP/1.1 on one port', () => {
  let ca: Awaited<ReturnType<typeof createAuthority>>;
  let dir = '';
  const meshes: Mesh[] = [];
  const pools: Pool[] = [];

  function files(service: string): { ca: string; cert: string; key: string } {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const leaf = issueLeaf(ca, { service, publicKey, ttlMs: HOUR }, clock);
    const d = mkdtempSync(path.join(dir, `${service}-`));
    const f = { ca: path.join(d, 'ca.pem'), cert: path.join(d, 'svc.pem'), key: path.join(d, 'svc.key') };
    writeFileSync(f.ca, leaf.caBundlePem);
    writeFileSync(f.cert, leaf.certificateChainPem);
    writeFileSync(f.key, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    return f;
  }

  async function mesh(service: string, config: string, tls: boolean): Promise<Mesh> {
    const m = await meshClient({ service, config, ...(tls ? { tls: files(service) } : {}), logger: quietLogger() });
    meshes.push(m);
    return m;
  }

  async function call(m: Mesh, p: string): Promise<{ status: number; body: Seen }> {
    const r = await m.http('b').request({ method: 'GET', path: p });
    const text = await r.body.text();
    return { status: r.statusCode, body: r.statusCode === 200 ? (JSON.parse(text) as Seen) : ({} as Seen) };
  }

  before(async () => {
    ca = await createAuthority({ trustDomain: TD }, clock);
    dir = mkdtempSync(path.join(os.tmpdir(), 'trellis-h2in-'));
  });

  after(async () => {
    for (const p of pools) await p.close();
    await Promise.all(meshes.map((m) => m.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('strict: HTTP/2 (ALPN) and HTTP/1.1 callers on one port, both verified, authorized and counted', async () => {
    const seen: Seen[] = [];
    const b = await mesh('b', meshDoc('strict') + selfDoc, true);
    const server = await b.serve(whoami(seen));
    const h2 = await mesh('caller', meshDoc('strict') + targetDoc(server.port, 'http2'), true);
    const h1 = await mesh('caller', meshDoc('strict') + targetDoc(server.port, 'http'), true);
    const other = await mesh('other', meshDoc('strict') + targetDoc(server.port, 'http2'), true);

    const r2 = await call(h2, '/private/2');
    const r1 = await call(h1, '/private/1');
    assert.deepEqual(r2.body, { version: '2.0', caller: 'caller', verified: true, path: '/private/2' });
    assert.deepEqual(r1.body, { version: '1.1', caller: 'caller', verified: true, path: '/private/1' });
    // Authorization runs for HTTP/2 requests as for HTTP/1.1 ones: `other` may not, and the handler never runs.
    assert.equal((await call(other, '/private/x')).status, 403);
    assert.equal((await call(other, '/open')).body.caller, 'other');
    assert.equal(seen.length, 3);

    const text = await b.metricsRegistry.metrics();
    assert.match(text, /trellis_server_requests_total\{[^}]*caller="caller"[^}]*status_code="200"[^}]*\} 2/);
    assert.match(text, /trellis_server_requests_total\{[^}]*caller="other"[^}]*outcome="forbidden"[^}]*\} 1/);
  });

  it('permissive: HTTP/2 over mTLS, h2c and HTTP/1.1 plaintext on one port; plaintext callers are unknown', async () => {
    const seen: Seen[] = [];
    const b = await mesh('b', meshDoc('permissive') + selfDoc, true);
    const server = await b.serve(whoami(seen));
    const h2 = await mesh('caller', meshDoc('strict') + targetDoc(server.port, 'http2'), true);
    assert.equal((await call(h2, '/private/tls')).body.version, '2.0');

    const pool = h2cPool(server.port);
    pools.push(pool);
    const plain = await pool.request({ method: 'GET', path: '/open/h2c' });
    assert.deepEqual(await plain.body.json(), { version: '2.0', caller: 'unknown', verified: false, path: '/open/h2c' });
    const denied = await pool.request({ method: 'GET', path: '/private/h2c' });
    assert.equal(denied.statusCode, 403);
    await denied.body.dump();

    const h1 = await fetch(`http://127.0.0.1:${server.port}/open/h1`);
    assert.deepEqual(await h1.json(), { version: '1.1', caller: 'unknown', verified: false, path: '/open/h1' });
  });

  it('off: a mesh caller with protocol http2 (h2c) and one with http share the port', async () => {
    const seen: Seen[] = [];
    const b = await mesh('b', meshDoc('off') + selfDoc, false);
    const server = await b.serve(whoami(seen));
    const h2 = await mesh('caller', meshDoc('off') + targetDoc(server.port, 'http2'), false);
    const h1 = await mesh('caller', meshDoc('off') + targetDoc(server.port, 'http'), false);
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => call(i % 2 === 0 ? h2 : h1, '/open')));
    assert.deepEqual(results.map((r) => r.body.version).sort(), ['1.1', '1.1', '1.1', '1.1', '2.0', '2.0', '2.0', '2.0']);
  });

  it('an Express app served by mesh.serve answers HTTP/2 and HTTP/1.1 requests', async () => {
    const app = express();
    app.use(express.json());
    app.get('/open/users/:id', (req, res) => {
      res.json({ id: req.params.id, version: req.httpVersion, caller: req.trellis?.peer.service });
    });
    app.post('/open/echo', (req, res) => {
      res.status(201).json({ got: req.body as unknown, version: req.httpVersion });
    });
    const b = await mesh('b', meshDoc('off') + selfDoc, false);
    const server = await b.serve(app);
    const h2 = await mesh('caller', meshDoc('off') + targetDoc(server.port, 'http2'), false);
    const r = await h2.http('b').request({ method: 'GET', path: '/open/users/42' });
    assert.deepEqual(await r.body.json(), { id: '42', version: '2.0', caller: 'unknown' });
    const p = await h2.http('b').request({ method: 'POST', path: '/open/echo', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ a: 1 }) });
    assert.equal(p.statusCode, 201);
    assert.deepEqual(await p.body.json(), { got: { a: 1 }, version: '2.0' });
    const h1 = await fetch(`http://127.0.0.1:${server.port}/open/users/7`);
    assert.deepEqual(await h1.json(), { id: '7', version: '1.1', caller: 'unknown' });
  });

  it('Fastify on its own HTTP/2 server runs the inbound stack through mesh.fastify()', async () => {
    const b = await mesh('b', meshDoc('off') + selfDoc, false);
    const app = Fastify({ http2: true });
    await app.register(b.fastify());
    app.get('/open/f', async (request) => ({ version: request.raw.httpVersion, caller: (request.raw as unknown as IncomingMessage).trellis?.peer.service }));
    app.get('/private/f', async () => ({ secret: true }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    const pool = h2cPool((app.server.address() as AddressInfo).port);
    try {
      const ok = await pool.request({ method: 'GET', path: '/open/f' });
      assert.deepEqual(await ok.body.json(), { version: '2.0', caller: 'unknown' });
      const denied = await pool.request({ method: 'GET', path: '/private/f' });
      assert.equal(denied.statusCode, 403);
      await denied.body.dump();
    } finally {
      // Fastify's close() waits for HTTP/2 sessions: the client's goes first.
      await pool.close();
      await app.close();
    }
  });

  it('a handler slower than the keep-alive timeout still answers over HTTP/2 (only idle sessions time out)', async () => {
    const b = await mesh('b', meshDoc('off') + selfDoc, false);
    const server = await b.serve((_req, res) => {
      setTimeout(() => res.end('slow but whole'), 600);
    }, { timeouts: { keepAliveTimeoutMs: 150 } });
    const h2 = await mesh('caller', meshDoc('off') + targetDoc(server.port, 'http2'), false);
    const r = await h2.http('b').request({ method: 'GET', path: '/open/slow' });
    assert.equal(await r.body.text(), 'slow but whole');
  });

  it('close() lets an HTTP/2 stream in flight finish, then resolves', async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => {
      release = r;
    });
    let arrived: () => void = () => undefined;
    const arrival = new Promise<void>((r) => {
      arrived = r;
    });
    const b = await mesh('b', meshDoc('off') + selfDoc, false);
    const server: MeshServer = await b.serve((req, res) => {
      arrived();
      void held.then(() => res.end('late but whole'));
    });
    const h2 = await mesh('caller', meshDoc('off') + targetDoc(server.port, 'http2'), false);
    const pending = h2.http('b').request({ method: 'GET', path: '/open' }).then(async (r) => ({ status: r.statusCode, text: await r.body.text() }));
    await arrival;
    let closed = false;
    const closing = server.close().then(() => {
      closed = true;
    });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(closed, false, 'close() waits for the stream');
    release();
    assert.deepEqual(await pending, { status: 200, text: 'late but whole' });
    await closing;
  });
});
