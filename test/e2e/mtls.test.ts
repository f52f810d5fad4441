/**
 * mTLS end to end through the public API only (`meshClient`, `mesh.serve`, `mesh.http` and the
 * identity helpers exported by 'trellis'), on real sockets on 127.0.0.1, with certificates from
 * an authority made in process and handed out by `issuedIdentity` + `localAuthoritySigner`:
 *
 * (a) strict: plaintext, certificate-less and foreign-CA clients are refused at the handshake;
 * (b) authorization: A calling B where only C may gets 403 `{"error":"TRELLIS_FORBIDDEN",
 *     "service":"b"}`; C gets 200 and B's handler sees `req.trellis.peer.service === 'c'`;
 * (c) an expired client certificate is refused; expired files do not start a mesh client;
 * (d) a server whose certificate names another service is refused by the client
 *     (TRELLIS_PEER_IDENTITY);
 * (e) forged identity headers change nothing, whatever the client;
 * (f) permissive: one port serves a mesh client over mTLS and a plaintext client (`unknown`);
 * (g) rotation: 5 s certificates on both sides, renewed at two thirds of their life, under 30 s
 *     of continuous load: no request fails and both sides go through at least 3 certificates.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { TLSSocket } from 'node:tls';
import { createAuthority, createToken, generateTokenKey, isTrellisError, issueLeaf, issuedIdentity, localAuthoritySigner, meshClient } from 'trellis';
import type { Clock, IdentityProvider, Mesh, MeshServer } from 'trellis';
import { quietLogger } from '../helpers/servers.js';
import { plainRequest, tlsRequest } from '../server/helpers.js';

const TD = 'example.org';
const HOUR = 3_600_000;
const clock: Clock = { now: () => performance.now(), wall: () => Date.now() };

type Authority = Awaited<ReturnType<typeof createAuthority>>;
interface Creds {
  ca: string;
  cert: string;
  key: string;
}

const meshDoc = (mtls: 'strict' | 'permissive' | 'off'): string => `apiVersion: trellis/v1
kind: Mesh
metadata: { name: default }
spec: { trustDomain: ${TD}, mtls: ${mtls} }
`;

/** A Service document; `endpoint` for callers, `spec` lines (indented) for the served side. */
function serviceDoc(name: string, endpoint?: number, spec = ''): string {
  const eps = endpoint === undefined ? '' : `  endpoints: [ { address: "127.0.0.1:${endpoint}" } ]\n  timeout: 5s\n`;
  const body = eps + spec;
  return `---
apiVersion: trellis/v1
kind: Service
metadata: { name: ${name} }
spec:
${body === '' ? '  protocol: http\n' : body}`;
}

/** What every served handler answers: the peer Trellis saw, the headers left, the certificates. */
function echo(req: IncomingMessage, res: ServerResponse): void {
  const socket = req.socket as Partial<TLSSocket>;
  const tls = socket.encrypted === true ? (socket as TLSSocket) : undefined;
  res.setHeader('content-type', 'application/json');
  res.end(
    JSON.stringify({
      peer: req.trellis?.peer,
      headers: req.headers,
      path: req.url,
      clientSerial: tls?.getPeerX509Certificate()?.serialNumber,
      serverSerial: tls?.getX509Certificate()?.serialNumber,
    }),
  );
}

interface Echo {
  peer: { service: string; spiffeId?: string; verified: boolean };
  headers: Record<string, string>;
  path: string;
  clientSerial?: string;
  serverSerial?: string;
}

describe('mTLS end to end (meshClient, mesh.serve, mesh.http)', () => {
  let ca: Authority;
  let foreign: Authority;
  let tokenKey: Awaited<ReturnType<typeof generateTokenKey>>;
  const identities: IdentityProvider[] = [];
  const meshes: Mesh[] = [];
  const identityWarnings: string[] = [];

  /** An identity issued by `ca` through a bootstrap token, as a control plane would give it. */
  function identityFor(service: string, opts: { ttlMs?: number; renewCheckMs?: number } = {}): IdentityProvider {
    const ttlMs = opts.ttlMs ?? HOUR;
    const token = createToken(tokenKey, { service, ttlMs: HOUR }, clock);
    const id = issuedIdentity(
      { service, trustDomain: TD, ttlMs, sign: localAuthoritySigner(ca, tokenKey, token, { clock, ttlMs }) },
      { clock, onWarn: (m) => identityWarnings.push(`${service}: ${m}`), ...(opts.renewCheckMs !== undefined ? { renewCheckMs: opts.renewCheckMs } : {}) },
    );
    identities.push(id);
    return id;
  }

  async function credsOf(id: IdentityProvider): Promise<Creds> {
    const m = await id.ready();
    return { ca: m.ca, cert: m.cert, key: m.key };
  }

  /** A leaf issued directly (no identity provider), at the wall time `wall` says. */
  function leafFrom(authority: Authority, service: string, ttlMs: number, wall = Date.now()): Creds {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const leaf = issueLeaf(authority, { service, publicKey, ttlMs }, { now: clock.now, wall: () => wall });
    return { ca: leaf.caBundlePem, cert: leaf.certificateChainPem, key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
  }

  async function mesh(service: string, identity: IdentityProvider | undefined, config: string): Promise<Mesh> {
    const m = await meshClient({ service, config, ...(identity !== undefined ? { identity } : {}), logger: quietLogger() });
    meshes.push(m);
    return m;
  }

  /** Serves `echo` as `service` (counting the requests that reach it). */
  async function serveAs(service: string, mtls: 'strict' | 'permissive', spec = '', options: { maxConnectionAgeMs?: number } = {}): Promise<{ mesh: Mesh; server: MeshServer; identity: IdentityProvider; hits: () => number }> {
    const identity = identityFor(service);
    const m = await mesh(service, identity, meshDoc(mtls) + serviceDoc(service, undefined, spec));
    let hits = 0;
    const server = await m.serve(
      (req, res) => {
        hits++;
        echo(req, res);
      },
      options,
    );
    return { mesh: m, server, identity, hits: () => hits };
  }

  /** A strict-mode mesh client for `service` whose destination `target` is at `port`. */
  async function caller(service: string, target: string, port: number, identity = identityFor(service)): Promise<Mesh> {
    return mesh(service, identity, meshDoc('strict') + serviceDoc(target, port));
  }

  async function get(m: Mesh, target: string, urlPath: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
    const r = await m.http(target).request({ method: 'GET', path: urlPath, headers });
    return { status: r.statusCode, text: await r.body.text() };
  }

  before(async () => {
    [ca, foreign, tokenKey] = await Promise.all([createAuthority({ trustDomain: TD }, clock), createAuthority({ trustDomain: TD }, clock), generateTokenKey()]);
  });

  after(async () => {
    await Promise.all(meshes.map((m) => m.close()));
    for (const id of identities) id.close();
  });

  describe('strict', () => {
    let b: Awaited<ReturnType<typeof serveAs>>;
    before(async () => {
      b = await serveAs('b', 'strict', '  inbound:\n    authorization: { allow: [ { from: [c], methods: [GET], paths: ["/list*"] } ] }\n');
    });

    it('(a) refuses a plaintext client, a client without a certificate and a client from another CA', async () => {
      const hits = b.hits();
      // Plaintext gets a plaintext 400 saying mTLS is required, from before TLS: never the handler.
      const plain = await fetch(`http://127.0.0.1:${b.server.port}/list`);
      assert.equal(plain.status, 400);
      assert.match(await plain.text(), /requires mTLS/);

      const noCert = await tlsRequest({ port: b.server.port, path: '/list', ca: ca.bundlePem });
      assert.ok(noCert.error !== undefined, `a client without a certificate got ${noCert.status}`);

      // The intruder trusts our anchor and has a well-formed SVID for `c`: only the server's chain check stops it.
      const intruder = leafFrom(foreign, 'c', HOUR);
      const r = await tlsRequest({ port: b.server.port, path: '/list', ca: ca.bundlePem, cert: intruder.cert, key: intruder.key });
      assert.ok(r.error !== undefined, `a foreign-CA client got ${r.status} ${r.body}`);

      // The same client with a certificate from our CA gets through the handshake (and is then authorized: 200).
      const c = await credsOf(identityFor('c'));
      const ok = await tlsRequest({ port: b.server.port, path: '/list', ...c });
      assert.equal(ok.status, 200, String(ok.error));
      assert.equal(b.hits(), hits + 1);
    });

    it('(b) A calling B where only C may: 403 naming B and no rule; C: 200 and B sees peer c', async () => {
      const hits = b.hits();
      const a = await caller('a', 'b', b.server.port);
      const denied = await get(a, 'b', '/list');
      assert.equal(denied.status, 403);
      assert.deepEqual(JSON.parse(denied.text), { error: 'TRELLIS_FORBIDDEN', service: 'b' });
      assert.equal(b.hits(), hits, 'the handler must not run for a denied request');

      const c = await caller('c', 'b', b.server.port);
      const allowed = await get(c, 'b', '/list?page=2');
      assert.equal(allowed.status, 200, allowed.text);
      const seen = JSON.parse(allowed.text) as Echo;
      assert.deepEqual(seen.peer, { service: 'c', spiffeId: `spiffe://${TD}/svc/c`, verified: true });
      assert.equal(b.hits(), hits + 1);

      // C only for GET /list*.
      assert.equal((await get(c, 'b', '/admin')).status, 403);
      const post = await c.http('b').request({ method: 'POST', path: '/list', body: '{}' });
      await post.body.dump();
      assert.equal(post.statusCode, 403);
    });

    it('(c) an expired certificate is refused by the server, and expired files do not start a mesh client', async () => {
      const hits = b.hits();
      // Issued two hours ago for one minute: expired an hour and 58 minutes ago, by our own CA.
      const expired = leafFrom(ca, 'c', 60_000, Date.now() - 2 * HOUR);
      const r = await tlsRequest({ port: b.server.port, path: '/list', ca: ca.bundlePem, cert: expired.cert, key: expired.key });
      assert.ok(r.error !== undefined, `an expired client certificate got ${r.status} ${r.body}`);
      assert.equal(b.hits(), hits);
      // The control: the same kind of leaf, issued now, is accepted.
      const fresh = leafFrom(ca, 'c', 60_000);
      assert.equal((await tlsRequest({ port: b.server.port, path: '/list', ca: ca.bundlePem, cert: fresh.cert, key: fresh.key })).status, 200);

      const dir = mkdtempSync(path.join(os.tmpdir(), 'trellis-mtls-e2e-'));
      try {
        writeFileSync(path.join(dir, 'ca.pem'), expired.ca);
        writeFileSync(path.join(dir, 'svc.pem'), expired.cert);
        writeFileSync(path.join(dir, 'svc.key'), expired.key, { mode: 0o600 });
        await assert.rejects(
          meshClient({ service: 'c', config: meshDoc('strict') + serviceDoc('b', b.server.port), tls: { ca: path.join(dir, 'ca.pem'), cert: path.join(dir, 'svc.pem'), key: path.join(dir, 'svc.key') }, logger: quietLogger() }),
          (err: unknown) => isTrellisError(err, 'TRELLIS_NO_IDENTITY'),
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('(d) a server whose certificate names another service is refused by the client: TRELLIS_PEER_IDENTITY', async () => {
      // `b`'s endpoint is really a server of `c`: CA-signed, right trust domain, wrong service.
      const impostor = await serveAs('c', 'strict');
      const a = await caller('a', 'b', impostor.server.port);
      await assert.rejects(get(a, 'b', '/list'), (err: unknown) => {
        assert.ok(isTrellisError(err, 'TRELLIS_PEER_IDENTITY'), `${(err as Error).name}: ${(err as Error).message}`);
        assert.match((err as Error).message, /spiffe:\/\/example\.org\/svc\/c.*spiffe:\/\/example\.org\/svc\/b/);
        return true;
      });
      assert.equal(impostor.hits(), 0);
    });

    it('(e) forged identity headers change nothing', async () => {
      const forged = (svc: string): Record<string, string> => ({
        'x-forwarded-client-cert': `By=spiffe://${TD}/svc/b;URI=spiffe://${TD}/svc/${svc}`,
        'x-trellis-caller': svc,
        'X-Trellis-Peer': svc,
      });
      const hits = b.hits();
      // A, through its mesh client and through a raw TLS client with its certificate, claiming to be C.
      const a = await caller('a', 'b', b.server.port);
      assert.equal((await get(a, 'b', '/list', forged('c'))).status, 403);
      const aCreds = await credsOf(identityFor('a'));
      const raw = await tlsRequest({ port: b.server.port, path: '/list', ...aCreds, headers: forged('c') });
      assert.equal(raw.status, 403);
      assert.deepEqual(JSON.parse(raw.body ?? ''), { error: 'TRELLIS_FORBIDDEN', service: 'b' });
      assert.equal(b.hits(), hits);

      // C claiming to be A is still C, and the handler never sees the forged headers.
      const cCreds = await credsOf(identityFor('c'));
      const asC = await tlsRequest({ port: b.server.port, path: '/list', ...cCreds, headers: forged('a') });
      assert.equal(asC.status, 200);
      const seen = JSON.parse(asC.body ?? '') as Echo;
      assert.equal(seen.peer.service, 'c');
      for (const h of ['x-forwarded-client-cert', 'x-trellis-caller', 'x-trellis-peer']) assert.equal(seen.headers[h], undefined, h);
    });
  });

  it('(f) permissive: one port serves a mesh client over mTLS and a plaintext client as unknown', async () => {
    const p = await serveAs('p', 'permissive');
    const c = await caller('c', 'p', p.server.port);
    const overTls = await get(c, 'p', '/x');
    assert.equal(overTls.status, 200, overTls.text);
    const tlsSeen = JSON.parse(overTls.text) as Echo;
    assert.deepEqual(tlsSeen.peer, { service: 'c', spiffeId: `spiffe://${TD}/svc/c`, verified: true });
    assert.ok(tlsSeen.clientSerial !== undefined);

    const plain = await fetch(`http://127.0.0.1:${p.server.port}/y`, { headers: { 'x-trellis-caller': 'c', 'x-forwarded-client-cert': `URI=spiffe://${TD}/svc/c` } });
    assert.equal(plain.status, 200);
    const plainSeen = (await plain.json()) as Echo;
    assert.deepEqual(plainSeen.peer, { service: 'unknown', verified: false });
    assert.equal(plainSeen.headers['x-trellis-caller'], undefined);

    // Plaintext keep-alive requests too, and a foreign-CA TLS client is still refused.
    assert.equal((await plainRequest({ port: p.server.port, path: '/z' })).status, 200);
    const intruder = leafFrom(foreign, 'c', HOUR);
    const r = await tlsRequest({ port: p.server.port, path: '/z', ca: ca.bundlePem, cert: intruder.cert, key: intruder.key });
    assert.ok(r.error !== undefined, `a foreign-CA client got ${r.status}`);
    assert.equal(p.hits(), 3);
  });

  it('(g) rotation: 5 s certificates on both sides under 30 s of load, no failed request', { timeout: 40_000 }, async () => {
    const TTL = 5_000;
    const LOAD_MS = 30_000;
    const WORKERS = 4;
    const warningsBefore = identityWarnings.length;
    // Renewal is checked every 250 ms (the default, 5 s, suits certificateTTL's 1-minute minimum).
    const serverId = identityFor('r', { ttlMs: TTL, renewCheckMs: 250 });
    const clientId = identityFor('q', { ttlMs: TTL, renewCheckMs: 250 });
    let serverRotations = 0;
    let clientRotations = 0;
    serverId.on('rotated', () => serverRotations++);
    clientId.on('rotated', () => clientRotations++);

    const r = await mesh('r', serverId, meshDoc('strict') + serviceDoc('r'));
    const server = await r.serve(echo);
    const q = await caller('q', 'r', server.port, clientId);

    const clientSerials = new Set<string>();
    const serverSerials = new Set<string>();
    const failures: string[] = [];
    let ok = 0;
    const end = Date.now() + LOAD_MS;
    const worker = async (w: number): Promise<void> => {
      for (let i = 0; Date.now() < end; i++) {
        try {
          const res = await get(q, 'r', `/w${w}/${i}`);
          if (res.status !== 200) throw new Error(`status ${res.status}: ${res.text}`);
          const seen = JSON.parse(res.text) as Echo;
          assert.equal(seen.peer.service, 'q');
          if (seen.clientSerial !== undefined) clientSerials.add(seen.clientSerial);
          if (seen.serverSerial !== undefined) serverSerials.add(seen.serverSerial);
          ok++;
        } catch (err) {
          failures.push(`${(err as { code?: string }).code ?? ''} ${(err as Error).message}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    };
    await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));

    assert.deepEqual(failures.slice(0, 5), [], `${failures.length} of ${ok + failures.length} requests failed`);
    assert.ok(ok > 1_000, `only ${ok} requests in ${LOAD_MS} ms`);
    assert.ok(serverRotations >= 2 && clientRotations >= 2, `rotations: server ${serverRotations}, client ${clientRotations}`);
    assert.ok(serverSerials.size >= 3, `the client saw ${serverSerials.size} server certificates`);
    assert.ok(clientSerials.size >= 3, `the server saw ${clientSerials.size} client certificates`);
    assert.deepEqual(identityWarnings.slice(warningsBefore), []);
    console.log(`rotation: ${ok} requests, 0 failed; rotations server ${serverRotations} client ${clientRotations}; certificates seen: server ${serverSerials.size}, client ${clientSerials.size}`);
  });
});
