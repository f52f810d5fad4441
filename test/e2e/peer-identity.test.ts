/**
 * Outbound peer identity failures (RELIABILITY.md B9) against real TLS servers whose
 * certificates come from the project's own CA code: a valid certificate for another service,
 * a chain from a foreign CA, a CA certificate used as a leaf, a leaf with two URI SANs. Each
 * must fail with TRELLIS_PEER_IDENTITY saying which check failed, after exactly one connection
 * (never retried, however generous the retry policy), without spending the retry budget, and
 * count against that endpoint for outlier detection.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { isTrellisError, trellisErrorOf, meshClient } from 'trellis';
import type { Mesh } from 'trellis';
import { authority, leaf, oddLeaf, type Creds } from '../tls/fixtures.js';
import { quietLogger } from '../helpers/servers.js';
import type { Authority } from '../../src/tls/authority.js';
import { KEY_USAGE } from '../../src/tls/x509-inspect.js';

const TD = 'example.org';

interface CountingServer {
  port: number;
  /** TCP connections accepted (each is one handshake attempt by the client). */
  connections: number;
  /** HTTP requests that reached the handler. */
  requests: number;
  close(): Promise<void>;
}

/** An HTTPS server presenting `creds`, requiring client certificates from `clientCa`, counting what it saw. */
async function countingServer(creds: Creds, clientCa: string): Promise<CountingServer> {
  const s = { port: 0, connections: 0, requests: 0, close: async () => undefined } as CountingServer;
  const server = https.createServer({ cert: creds.cert, key: creds.key, ca: clientCa, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, (_req, res) => {
    s.requests++;
    res.end('served');
  });
  server.on('connection', () => s.connections++);
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  s.port = (server.address() as AddressInfo).port;
  s.close = () => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
  return s;
}

describe('outbound peer identity failures: typed, named, never retried', () => {
  let ca: Authority;
  let foreign: Authority;
  let dir: string;
  const meshes: Mesh[] = [];
  const servers: CountingServer[] = [];

  before(async () => {
    [ca, foreign] = await Promise.all([authority(TD), authority(TD)]);
    dir = mkdtempSync(path.join(os.tmpdir(), 'trellis-peer-identity-'));
    const a = await leaf(ca, 'a');
    writeFileSync(path.join(dir, 'ca.pem'), a.ca);
    writeFileSync(path.join(dir, 'a.pem'), a.cert);
    writeFileSync(path.join(dir, 'a.key'), a.key, { mode: 0o600 });
  });

  after(async () => {
    await Promise.all(meshes.map((m) => m.close()));
    await Promise.all(servers.map((s) => s.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  /** A caller `a` (strict mTLS, generous retries, ejection on the first failure) whose destination `b` is at `port`. */
  async function callerOf(port: number): Promise<Mesh> {
    const config = `apiVersion: trellis/v1
kind: Mesh
metadata: { name: default }
spec: { trustDomain: ${TD}, mtls: strict }
---
apiVersion: trellis/v1
kind: Service
metadata: { name: b }
spec:
  endpoints: [ { address: "127.0.0.1:${port}" } ]
  timeout: 5s
  retries: { attempts: 5, on: [connect-failure, reset, gateway-error, 5xx], backoff: { base: 1ms, max: 2ms } }
  outlierDetection: { consecutiveFailures: 1, ejectionTime: 30s, maxEjectedPercent: 100 }
`;
    const m = await meshClient({ service: 'a', config, tls: { ca: path.join(dir, 'ca.pem'), cert: path.join(dir, 'a.pem'), key: path.join(dir, 'a.key') }, logger: quietLogger() });
    meshes.push(m);
    return m;
  }

  async function expectRefused(serverCreds: Creds, message: RegExp): Promise<void> {
    const server = await countingServer(serverCreds, ca.bundlePem);
    servers.push(server);
    const mesh = await callerOf(server.port);
    await assert.rejects(mesh.http('b').request({ method: 'GET', path: '/x' }), (caught: unknown) => {
      const err = trellisErrorOf(caught, 'TRELLIS_PEER_IDENTITY');
      assert.ok(err, `${(caught as Error).name}: ${(caught as Error).message}`);
      assert.match(err.message, message);
      assert.equal(err.service, 'b');
      assert.equal(err.endpoint, `127.0.0.1:${server.port}`);
      assert.ok(err.cause !== undefined, 'the TLS-level failure is kept as cause');
      return true;
    });
    assert.equal(server.connections, 1, 'exactly one connection attempt: identity failures are never retried');
    assert.equal(server.requests, 0, 'no request reached the impostor');
    const b = mesh.inspect().services.find((s) => s.name === 'b');
    assert.equal(b?.counters.retries, 0);
    assert.equal(b?.budget?.retries ?? 0, 0, 'no retry token spent');
    assert.deepEqual(b?.endpoints.map((e) => e.ejected), [true], 'the endpoint counts the failure (ejected after 1)');
  }

  it('a valid certificate (same CA) for another service: wrong SPIFFE identity, expected b got c', async () => {
    await expectRefused(await leaf(ca, 'c'), /wrong SPIFFE identity: peer is spiffe:\/\/example\.org\/svc\/c, expected spiffe:\/\/example\.org\/svc\/b/);
  });

  it('a chain from a foreign CA: untrusted chain, with the TLS error code', async () => {
    await expectRefused(await leaf(foreign, 'b'), /untrusted certificate chain \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|SELF_SIGNED_CERT_IN_CHAIN)\)/);
  });

  it('a CA certificate presented as the leaf: not a leaf', async () => {
    // With digitalSignature OpenSSL accepts it for a server (purpose check), so the SVID rule is what refuses it.
    const keyUsage = KEY_USAGE.digitalSignature | KEY_USAGE.keyCertSign;
    await expectRefused(await oddLeaf(ca, { uris: [`spiffe://${TD}/svc/b`], role: { kind: 'ca', pathLen: 0 }, keyUsage }), /is a CA certificate, not a leaf SVID/);
  });

  it('a leaf with two URI SANs', async () => {
    await expectRefused(await oddLeaf(ca, { uris: [`spiffe://${TD}/svc/b`, `spiffe://${TD}/svc/c`] }), /has 2 URI SANs; an SVID has exactly one/);
  });
});
