/**
 * Permissive mode: one port serves mTLS callers (verified peer) and plaintext callers (peer
 * `unknown`, never inferred from headers); TLS on that port is as strict as in strict mode.
 * Also the `off` mode and the slow-client timeouts (matrix row C4, short form).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeCa, materialFor, plainRequest, startStack, tlsRequest, TestIdentity } from './helpers.js';
import type { Echo, Leaf, Stack, TestCa } from './helpers.js';

describe('permissive listener', () => {
  let ca: TestCa;
  let a: Leaf;
  let stack: Stack;

  before(async () => {
    ca = await makeCa();
    a = await ca.leaf('a');
    stack = await startStack({
      mode: 'permissive',
      identity: new TestIdentity(await materialFor(ca, 'b')),
      authorization: { allow: [{ from: ['a'], methods: [], paths: ['/a-only'] }, { from: [], methods: [], paths: ['/open'] }], deny: [] },
    });
  });
  after(() => stack.close());

  it('serves a TLS and a plaintext client on the same port; plaintext is unknown', async () => {
    const tlsR = await tlsRequest({ port: stack.port, ca: ca.cert, cert: a.cert, key: a.key, path: '/open' });
    assert.equal(tlsR.status, 200, String(tlsR.error));
    assert.deepEqual((JSON.parse(tlsR.body as string) as Echo).peer, { service: 'a', spiffeId: 'spiffe://example.org/svc/a', verified: true });
    const plain = await plainRequest({ port: stack.port, path: '/open' });
    assert.equal(plain.status, 200, String(plain.error));
    assert.deepEqual((JSON.parse(plain.body as string) as Echo).peer, { service: 'unknown', verified: false });
  });

  it('keeps both kinds of connection alive across requests, with request bodies', async () => {
    const tlsAgent = new https.Agent({ keepAlive: true, ca: ca.cert, cert: a.cert, key: a.key, checkServerIdentity: () => undefined });
    const plainAgent = new http.Agent({ keepAlive: true });
    try {
      const sockets = new Set<unknown>();
      for (let i = 0; i < 5; i++) {
        const [t, p] = await Promise.all([
          tlsRequest({ port: stack.port, agent: tlsAgent, path: '/open', method: 'POST', headers: { 'content-length': '0' } }),
          plainRequest({ port: stack.port, agent: plainAgent, path: '/open' }),
        ]);
        assert.equal(t.status, 200);
        assert.equal(p.status, 200);
        sockets.add(tlsAgent.freeSockets);
      }
      const big = 'x'.repeat(256 * 1024);
      const res = await new Promise<number | undefined>((resolve) => {
        const req = http.request({ host: '127.0.0.1', port: stack.port, path: '/open', method: 'POST', agent: plainAgent }, (r) => {
          r.resume();
          r.on('end', () => resolve(r.statusCode));
        });
        req.end(big);
      });
      assert.equal(res, 200);
    } finally {
      tlsAgent.destroy();
      plainAgent.destroy();
    }
  });

  it('authorization sees plaintext callers as unknown, whatever headers they send', async () => {
    const plain = await plainRequest({ port: stack.port, path: '/a-only', headers: { 'x-trellis-caller': 'a', 'x-forwarded-client-cert': 'URI=spiffe://example.org/svc/a' } });
    assert.equal(plain.status, 403);
    assert.deepEqual(JSON.parse(plain.body as string), { error: 'TRELLIS_FORBIDDEN', service: 'b' });
    const tlsR = await tlsRequest({ port: stack.port, ca: ca.cert, cert: a.cert, key: a.key, path: '/a-only' });
    assert.equal(tlsR.status, 200);
  });

  it('TLS on the permissive port is still mTLS 1.3: no certificate or TLS 1.2 is refused', async () => {
    const before = stack.hits;
    const noCert = await tlsRequest({ port: stack.port, ca: ca.cert, path: '/open' });
    const old = await tlsRequest({ port: stack.port, ca: ca.cert, cert: a.cert, key: a.key, path: '/open', maxVersion: 'TLSv1.2' });
    assert.equal(noCert.status, undefined);
    assert.equal(old.status, undefined);
    assert.equal(stack.hits, before);
  });
});

describe('off mode and slow clients', () => {
  it('off serves plaintext, caller unknown', async () => {
    const s = await startStack({ mode: 'off' });
    try {
      const r = await plainRequest({ port: s.port, path: '/' });
      assert.equal(r.status, 200);
      assert.equal((JSON.parse(r.body as string) as Echo).peer.service, 'unknown');
    } finally {
      await s.close();
    }
  });

  for (const mode of ['off', 'permissive', 'strict'] as const) {
    it(`${mode}: a client that sends nothing or drips its headers is closed; others are served meanwhile`, async () => {
      const ca = await makeCa();
      const s = await startStack({
        mode,
        ...(mode === 'off' ? {} : { identity: new TestIdentity(await materialFor(ca, 'b')) }),
        timeouts: { headersTimeoutMs: 400, requestTimeoutMs: 800, handshakeTimeoutMs: 400, checkIntervalMs: 100 },
      });
      try {
        const closedAfter: number[] = [];
        const t0 = performance.now();
        const sockets = Array.from({ length: 20 }, (_, i) => {
          const sock = net.connect(s.port, '127.0.0.1');
          sock.on('error', () => undefined);
          sock.resume(); // read the server's 408, so 'close' can follow its FIN
          sock.on('close', () => closedAfter.push(performance.now() - t0));
          // Half of them send nothing; the other half drip a plaintext request line (in TLS modes
          // that is garbage to the handshake, or nothing the peek accepts as TLS).
          if (i % 2 === 1) {
            const timer = setInterval(() => sock.write('G'), 100);
            sock.on('close', () => clearInterval(timer));
          }
          return sock;
        });
        // And in TLS modes, clients that finish the handshake and then say nothing.
        const leaf = await ca.leaf('a');
        if (mode !== 'off') {
          for (let i = 0; i < 4; i++) {
            const sock = tls.connect({ host: '127.0.0.1', port: s.port, ca: ca.cert, cert: leaf.cert, key: leaf.key, checkServerIdentity: () => undefined });
            sock.on('error', () => undefined);
            sock.resume();
            sock.on('close', () => closedAfter.push(performance.now() - t0));
            sockets.push(sock);
          }
        }
        const expected = mode === 'off' ? 20 : 24;
        // Meanwhile a legitimate client is served promptly.
        const r = mode === 'off' ? await plainRequest({ port: s.port }) : await tlsRequest({ port: s.port, ca: ca.cert, cert: leaf.cert, key: leaf.key });
        assert.equal(r.status, 200, String(r.error));
        // Counted, not timed (a loaded machine stretches every delay): the server must close all
        // of them by itself; 15 s is a liveness bound, far above the 400 / 800 ms limits.
        const until = performance.now() + 15_000;
        while (closedAfter.length < expected && performance.now() < until) await sleep(50);
        assert.equal(closedAfter.length, expected, `${closedAfter.length} of ${expected} slow sockets closed`);
        for (const sock of sockets) sock.destroy();
      } finally {
        await s.close();
      }
    });
  }
});
