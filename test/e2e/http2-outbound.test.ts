/**
 * `protocol: http2` outbound, through the public API, against real node:http2 servers on
 * 127.0.0.1 that speak HTTP/2 only (so a request sent as HTTP/1.1, as before this was built,
 * fails): over mTLS with ALPN `h2` and the server checking the caller's certificate, and over
 * plaintext with prior knowledge (h2c). Requests share one connection per endpoint; a GOAWAY and
 * stream resets under load are retried as the retry policy says; an idempotent request on a
 * connection that dies is retried elsewhere and a POST is not; least-request balances streams.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { TLSSocket } from 'node:tls';
import { createAuthority, issueLeaf, isTrellisError, meshClient } from 'trellis';
import type { Clock, Mesh } from 'trellis';
import { quietLogger } from '../helpers/servers.js';
import { closeHttp2Session, refusedByGoaway } from '../../src/server/http2-graceful-close.js';

const TD = 'example.org';
const HOUR = 3_600_000;
const clock: Clock = { now: () => performance.now(), wall: () => Date.now() };

interface Creds {
  ca: string;
  cert: string;
  key: string;
}

type OnStream = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, h: H2Server) => void;

interface H2Server {
  readonly name: string;
  readonly port: number;
  readonly address: string;
  /** Sessions (connections) opened to it. */
  sessions: number;
  /** Requests (streams) that reached it. */
  requests: number;
  /** Client certificate SANs seen (TLS servers). */
  callers: string[];
  onStream: OnStream;
  close(): Promise<void>;
}

const answer: OnStream = (stream, headers, h) => {
  if (stream.destroyed || stream.closed) return;
  const body = JSON.stringify({ server: h.name, path: headers[':path'], method: headers[':method'], authority: headers[':authority'] });
  stream.respond({ ':status': 200, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-server': h.name });
  stream.end(body);
};

/** A node:http2 server speaking HTTP/2 only: TLS requiring a client certificate when `tls` is given, else h2c. */
async function startH2(name: string, tls?: Creds): Promise<H2Server> {
  const server = tls === undefined
    ? http2.createServer()
    : http2.createSecureServer({ ca: tls.ca, cert: tls.cert, key: tls.key, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3', allowHTTP1: false });
  const sessions = new Set<http2.ServerHttp2Session>();
  const h: H2Server = {
    name,
    port: 0,
    address: '',
    sessions: 0,
    requests: 0,
    callers: [],
    onStream: answer,
    close: async () => {
      for (const s of sessions) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  server.on('session', (s: http2.ServerHttp2Session) => {
    h.sessions++;
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
    s.on('error', () => undefined);
    const cert = (s.socket as TLSSocket).getPeerCertificate?.();
    if (cert?.subjectaltname !== undefined) h.callers.push(cert.subjectaltname);
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    // A request that arrived after a GOAWAY was sent for: nghttp2 refuses it, do not answer it.
    if (refusedByGoaway(stream)) return;
    h.requests++;
    // Read the request body before answering, as a real handler does.
    stream.resume();
    stream.once('end', () => h.onStream(stream, headers, h));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(h, { port, address: `127.0.0.1:${port}` });
}

const meshDoc = (mtls: 'strict' | 'off'): string => `apiVersion: trellis/v1
kind: Mesh
metadata: { name: default }
spec: { trustDomain: ${TD}, mtls: ${mtls} }
`;

function serviceDoc(name: string, addresses: string[], extra = ''): string {
  return `---
apiVersion: trellis/v1
kind: Service
metadata: { name: ${name} }
spec:
  protocol: http2
  endpoints: [ ${addresses.map((a) => `{ address: "${a}" }`).join(', ')} ]
  timeout: 10s
${extra}`;
}

describe('protocol: http2 outbound', () => {
  let ca: Awaited<ReturnType<typeof createAuthority>>;
  let dir = '';
  const meshes: Mesh[] = [];
  const servers: H2Server[] = [];

  function creds(service: string): Creds {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const leaf = issueLeaf(ca, { service, publicKey, ttlMs: HOUR }, clock);
    return { ca: leaf.caBundlePem, cert: leaf.certificateChainPem, key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
  }

  async function mesh(config: string, service = 'caller', tls = false): Promise<Mesh> {
    let files: { ca: string; cert: string; key: string } | undefined;
    if (tls) {
      const c = creds(service);
      const d = mkdtempSync(path.join(dir, `${service}-`));
      files = { ca: path.join(d, 'ca.pem'), cert: path.join(d, 'svc.pem'), key: path.join(d, 'svc.key') };
      writeFileSync(files.ca, c.ca);
      writeFileSync(files.cert, c.cert);
      writeFileSync(files.key, c.key);
    }
    const m = await meshClient({ service, config, ...(files !== undefined ? { tls: files } : {}), logger: quietLogger() });
    meshes.push(m);
    return m;
  }

  async function h2(name: string, tls?: Creds): Promise<H2Server> {
    const s = await startH2(name, tls);
    servers.push(s);
    return s;
  }

  async function get(m: Mesh, service: string, p = '/x', method: 'GET' | 'POST' = 'GET'): Promise<{ status: number; body: { server: string; authority: string; method: string } }> {
    const r = await m.http(service).request({ method, path: p, ...(method === 'POST' ? { body: 'payload' } : {}) });
    return { status: r.statusCode, body: (await r.body.json()) as { server: string; authority: string; method: string } };
  }

  before(async () => {
    ca = await createAuthority({ trustDomain: TD }, clock);
    dir = mkdtempSync(path.join(os.tmpdir(), 'trellis-h2-'));
  });

  after(async () => {
    await Promise.all(meshes.map((m) => m.close()));
    await Promise.all(servers.map((s) => s.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('over mTLS: HTTP/2 by ALPN to a server that speaks nothing else, every stream on one connection', async () => {
    const server = await h2('tls', creds('products'));
    const m = await mesh(meshDoc('strict') + serviceDoc('products', [server.address]), 'caller', true);
    const results = await Promise.all(Array.from({ length: 24 }, (_, i) => get(m, 'products', `/item/${i}`, i % 2 === 0 ? 'GET' : 'POST')));
    for (const r of results) assert.equal(r.status, 200);
    assert.equal(results[0]?.body.authority, 'products', ':authority is the destination service');
    assert.equal(server.requests, 24);
    assert.equal(server.sessions, 1, 'the streams were multiplexed on one connection');
    assert.deepEqual(server.callers, [`URI:spiffe://${TD}/svc/caller`], 'the server saw the caller certificate');
  });

  it('over plaintext (mtls off): HTTP/2 with prior knowledge (h2c)', async () => {
    const server = await h2('h2c');
    const m = await mesh(meshDoc('off') + serviceDoc('plain', [server.address]));
    const results = await Promise.all(Array.from({ length: 16 }, () => get(m, 'plain', '/y', 'POST')));
    for (const r of results) assert.equal(r.body.server, 'h2c');
    assert.equal(server.sessions, 1);
  });

  it('POSTs are multiplexed, not held back until the connection is quiet (undici’s HTTP/1.1 rule)', async () => {
    // The server answers nothing until four POST streams are open at once: if the mesh let
    // undici hold back a non-idempotent request while another is in flight, the fourth would
    // never be sent and every call would end in the route timeout instead.
    const server = await h2('gate');
    const held: [http2.ServerHttp2Stream, http2.IncomingHttpHeaders][] = [];
    let open = false;
    server.onStream = (stream, headers, h) => {
      if (open) return answer(stream, headers, h);
      held.push([stream, headers]);
      if (held.length < 4) return;
      open = true;
      for (const [s, hd] of held) answer(s, hd, h);
    };
    const m = await mesh(meshDoc('off') + serviceDoc('gated', [server.address]));
    const results = await Promise.all(Array.from({ length: 8 }, () => get(m, 'gated', '/p', 'POST')));
    for (const r of results) assert.equal(r.body.method, 'POST');
    assert.ok(held.length >= 4, `four POST streams were open at once on one connection (held ${held.length})`);
    assert.equal(server.sessions, 1);
  });

  it('a stream refused with REFUSED_STREAM was not processed: a POST is sent again (RFC 9113 §8.7)', async () => {
    const server = await h2('refusing');
    let refused = 0;
    server.onStream = (stream, headers, h) => {
      if (refused++ === 0) {
        stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        return;
      }
      answer(stream, headers, h);
    };
    const m = await mesh(meshDoc('off') + serviceDoc('refusing', [server.address], '  retries: { attempts: 3, on: [connect-failure], backoff: { base: 1ms, max: 5ms }, budget: { ratio: 1, minPerSecond: 1000 } }\n'));
    const r = await get(m, 'refusing', '/p', 'POST');
    assert.equal(r.status, 200);
    assert.equal(r.body.method, 'POST');
    assert.equal(server.requests, 2, 'the refused stream, then the POST sent again');
    assert.equal(m.inspect().services.find((s) => s.name === 'refusing')?.counters.retries, 1);
  });

  it('a GOAWAY under load: retried when the policy retries resets, the caller sees TRELLIS_RESET when it does not', async () => {
    const server = await h2('goaway');
    let seen = 0;
    server.onStream = (stream, headers, h) => {
      // Every 25th request: a graceful GOAWAY, then the answer a little later. Through the
      // product's two-step close: node:http2's own session.close() can corrupt memory when
      // requests keep arriving (see src/server/http2-graceful-close.ts).
      if (++seen % 25 === 0 && stream.session !== undefined) closeHttp2Session(stream.session);
      setTimeout(() => answer(stream, headers, h), 3);
    };
    const retrying = await mesh(meshDoc('off') + serviceDoc('goaway', [server.address], '  retries: { attempts: 4, on: [reset], backoff: { base: 1ms, max: 5ms }, budget: { ratio: 1, minPerSecond: 1000 } }\n'));
    let ok = 0;
    await Promise.all(Array.from({ length: 12 }, async () => {
      for (let i = 0; i < 10; i++) if ((await get(retrying, 'goaway')).status === 200) ok++;
    }));
    assert.equal(ok, 120, 'every request answered');
    assert.ok(server.sessions >= 2, `the GOAWAYs closed connections (${server.sessions} sessions)`);

    const strict = await mesh(meshDoc('off') + serviceDoc('goaway', [server.address], '  retries: { attempts: 4, on: [gateway-error], backoff: { base: 1ms, max: 5ms } }\n'));
    const errors: unknown[] = [];
    await Promise.all(Array.from({ length: 12 }, async () => {
      for (let i = 0; i < 10; i++) await get(strict, 'goaway').catch((err: unknown) => errors.push(err));
    }));
    assert.ok(errors.length > 0, 'a request in flight at a GOAWAY fails when resets are not retried');
    for (const e of errors) assert.ok(isTrellisError(e, 'TRELLIS_RESET'), String(e));
  });

  it('a stream reset (RST_STREAM) under load: retried when the policy retries resets, TRELLIS_RESET when it does not', async () => {
    const server = await h2('rst');
    let resets = 0;
    let n = 0;
    server.onStream = (stream, headers, h) => {
      if (++n % 7 === 0) {
        resets++;
        stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
        return;
      }
      answer(stream, headers, h);
    };
    const retrying = await mesh(meshDoc('off') + serviceDoc('rst', [server.address], '  retries: { attempts: 4, on: [reset], backoff: { base: 1ms, max: 5ms }, budget: { ratio: 1, minPerSecond: 1000 } }\n'));
    let ok = 0;
    await Promise.all(Array.from({ length: 10 }, async () => {
      for (let i = 0; i < 10; i++) if ((await get(retrying, 'rst')).status === 200) ok++;
    }));
    assert.equal(ok, 100);
    assert.ok(resets >= 10, `the server reset ${resets} streams`);
    assert.equal(server.sessions, 1, 'a stream reset does not cost the connection');

    const plain = await mesh(meshDoc('off') + serviceDoc('rst', [server.address], '  retries: { attempts: 4, on: [gateway-error] }\n'));
    const errors: unknown[] = [];
    for (let i = 0; i < 14; i++) await get(plain, 'rst').catch((err: unknown) => errors.push(err));
    assert.equal(errors.length, 2, 'two of fourteen streams were reset, and not retried');
    for (const e of errors) assert.ok(isTrellisError(e, 'TRELLIS_RESET'), String(e));
  });

  it('a connection that dies: the idempotent request in flight is retried on another endpoint, a POST is not', async () => {
    const dying = await h2('dying');
    const healthy = await h2('healthy');
    dying.onStream = (stream) => stream.session?.destroy();
    const m = await mesh(meshDoc('off') + serviceDoc('fragile', [dying.address, healthy.address], '  loadBalancer: round-robin\n  retries: { attempts: 3, backoff: { base: 1ms, max: 5ms }, budget: { ratio: 1, minPerSecond: 1000 } }\n'));
    for (let i = 0; i < 6; i++) assert.equal((await get(m, 'fragile')).body.server, 'healthy');
    assert.ok(dying.requests >= 1, `requests did reach the dying endpoint (${dying.requests})`);


    // A POST is not idempotent: the one attempt that reached the endpoint is not replayed, even
    // where a retry could go (the same endpoint, reconnected).
    const lone = await mesh(meshDoc('off') + serviceDoc('lone', [dying.address], '  retries: { attempts: 3, backoff: { base: 1ms, max: 5ms }, budget: { ratio: 1, minPerSecond: 1000 } }\n'));
    const before = dying.requests;
    const posts: unknown[] = [];
    for (let i = 0; i < 3; i++) await get(lone, 'lone', '/p', 'POST').catch((err: unknown) => posts.push(err));
    assert.equal(posts.length, 3);
    for (const e of posts) assert.ok(isTrellisError(e, 'TRELLIS_RESET'), String(e));
    assert.equal(dying.requests - before, 3, 'each POST reached the endpoint once');
  });

  it('least-request counts streams: held requests split evenly over two endpoints of one connection each', async () => {
    const a = await h2('a');
    const b = await h2('b');
    const held: (() => void)[] = [];
    const hold: OnStream = (stream, headers, h) => held.push(() => answer(stream, headers, h));
    a.onStream = hold;
    b.onStream = hold;
    const m = await mesh(meshDoc('off') + serviceDoc('lr', [a.address, b.address], '  loadBalancer: least-request\n'));
    const pending: Promise<unknown>[] = [];
    for (let i = 0; i < 10; i++) {
      pending.push(get(m, 'lr'));
      // The next request starts once this one is a stream at a server: its load is visible.
      while (a.requests + b.requests < i + 1) await new Promise((r) => setTimeout(r, 2));
    }
    assert.equal(a.requests, 5);
    assert.equal(b.requests, 5);
    assert.equal(a.sessions + b.sessions, 2, 'one connection per endpoint');
    for (const release of held) release();
    await Promise.all(pending);
  });
});
