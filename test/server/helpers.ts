/**
 * Fixtures for the inbound-security tests: a tiny certificate authority made in process (keys
 * from node:crypto, certificates built and signed with node-forge, RSA-2048 as the mesh CA
 * issues them), a stand-in identity provider with the shape of src/tls/identity.ts, and TLS /
 * plaintext clients that report what the server did (status, body, certificate presented, or
 * the handshake error).
 */
import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { EventEmitter } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import forge from 'node-forge';
import { systemClock, systemRandom } from '../../src/core/clock.js';
import type { Clock } from '../../src/core/clock.js';
import { MeshMetrics } from '../../src/observability/metrics.js';
import { MeshObservability } from '../../src/observability/mesh-observability.js';
import { compileAuthorization } from '../../src/server/authorization.js';
import type { AuthorizationSpec } from '../../src/server/authorization.js';
import { meshInboundHandler } from '../../src/server/inbound-security.js';
import { peerResolver } from '../../src/server/peer.js';
import { createMeshListener } from '../../src/server/tls-listener.js';
import type { ListenerTimeouts } from '../../src/server/tls-listener.js';
import { peerIdentity } from '../../src/tls/spiffe.js';
import type { IdentityProvider, TlsMaterial } from '../../src/tls/identity.js';

const DAY = 86_400_000;

function rsaKey(): { pem: string; forgeKey: forge.pki.rsa.PrivateKey; forgePub: forge.pki.rsa.PublicKey } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 65537 });
  const pem = privateKey.export({ format: 'pem', type: 'pkcs1' }).toString();
  const forgeKey = forge.pki.privateKeyFromPem(pem);
  return { pem, forgeKey, forgePub: forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e) };
}

export interface Leaf {
  cert: string;
  key: string;
  notAfter: number;
}

export interface LeafOptions {
  /** URI SANs; default the SPIFFE id of `service` in `trustDomain`. */
  uris?: string[];
  notBefore?: Date;
  notAfter?: Date;
  /** Issue a certificate with CA=true (not a valid SVID). */
  ca?: boolean;
}

export interface TestCa {
  readonly cert: string;
  leaf(service: string, trustDomain?: string, options?: LeafOptions): Promise<Leaf>;
}

export async function makeCa(name = 'Trellis Test CA'): Promise<TestCa> {
  const caKey = rsaKey();
  const caCert = forge.pki.createCertificate();
  caCert.publicKey = caKey.forgePub;
  caCert.serialNumber = `01${randomBytes(8).toString('hex')}`;
  caCert.validity.notBefore = new Date(Date.now() - DAY);
  caCert.validity.notAfter = new Date(Date.now() + 30 * DAY);
  const caName = [{ name: 'commonName', value: name }];
  caCert.setSubject(caName);
  caCert.setIssuer(caName);
  caCert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  caCert.sign(caKey.forgeKey, forge.md.sha256.create());
  const caPem = forge.pki.certificateToPem(caCert);
  return {
    cert: caPem,
    async leaf(service, trustDomain = 'example.org', options = {}): Promise<Leaf> {
      const k = rsaKey();
      const c = forge.pki.createCertificate();
      c.publicKey = k.forgePub;
      c.serialNumber = `01${randomBytes(8).toString('hex')}`;
      const notAfter = options.notAfter ?? new Date(Date.now() + DAY);
      c.validity.notBefore = options.notBefore ?? new Date(Date.now() - 60_000);
      c.validity.notAfter = notAfter;
      c.setSubject([{ name: 'commonName', value: service }]);
      c.setIssuer(caName);
      const uris = options.uris ?? [`spiffe://${trustDomain}/svc/${service}`];
      const isCa = options.ca === true;
      c.setExtensions([
        { name: 'basicConstraints', cA: isCa, critical: true },
        isCa ? { name: 'keyUsage', keyCertSign: true, digitalSignature: true, critical: true } : { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
        { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
        { name: 'subjectAltName', altNames: uris.map((value) => ({ type: 6, value })) },
        { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
      ]);
      c.sign(caKey.forgeKey, forge.md.sha256.create());
      return { cert: forge.pki.certificateToPem(c), key: k.pem, notAfter: notAfter.getTime() };
    },
  };
}

/** An identity provider with the shape of src/tls/identity.ts, rotated by hand. */
export class TestIdentity implements IdentityProvider {
  readonly #events = new EventEmitter<{ rotated: [TlsMaterial] }>();
  #material: TlsMaterial | undefined;
  constructor(material?: TlsMaterial) {
    this.#material = material;
  }
  on(event: 'rotated', listener: (m: TlsMaterial) => void): this {
    this.#events.on(event, listener);
    return this;
  }
  off(event: 'rotated', listener: (m: TlsMaterial) => void): this {
    this.#events.off(event, listener);
    return this;
  }
  listenerCount(): number {
    return this.#events.listenerCount('rotated');
  }
  close(): void {
    this.#events.removeAllListeners();
  }
  current(): TlsMaterial | undefined {
    return this.#material;
  }
  async ready(): Promise<TlsMaterial> {
    if (this.#material !== undefined) return this.#material;
    return new Promise((resolve) => this.#events.once('rotated', resolve));
  }
  rotate(material: TlsMaterial): void {
    this.#material = material;
    this.#events.emit('rotated', material);
  }
}

export async function materialFor(ca: TestCa, service: string, trustDomain = 'example.org'): Promise<TlsMaterial> {
  const leaf = await ca.leaf(service, trustDomain);
  return { ca: ca.cert, cert: leaf.cert, key: leaf.key, notBefore: Date.now() - 60_000, notAfter: leaf.notAfter, spiffeId: `spiffe://${trustDomain}/svc/${service}`, service, trustDomain };
}

export interface ClientResult {
  status?: number;
  body?: string;
  headers?: http.IncomingHttpHeaders;
  /** The serial of the certificate the server presented (TLS only). */
  serverSerial?: string;
  error?: NodeJS.ErrnoException;
}

export interface TlsClientOptions {
  port: number;
  path?: string;
  method?: string;
  headers?: http.OutgoingHttpHeaders;
  ca?: string | string[];
  cert?: string;
  key?: string;
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  agent?: https.Agent;
  body?: string;
}

const serverSerials = new WeakMap<TLSSocket, string>();

/** One HTTPS request that never throws: the result says what happened. */
export function tlsRequest(o: TlsClientOptions): Promise<ClientResult> {
  return new Promise((resolve) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: o.port,
        path: o.path ?? '/',
        method: o.method ?? 'GET',
        headers: o.headers,
        ca: o.ca,
        cert: o.cert,
        key: o.key,
        maxVersion: o.maxVersion,
        minVersion: o.minVersion,
        agent: o.agent ?? false,
        // The server's identity is a SPIFFE URI, not a host name; these tests check the server
        // side, so the client only pins the CA.
        checkServerIdentity: () => undefined,
      },
      (res) => {
        let body = '';
        const serial = seen;
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          resolve({ status: res.statusCode, body, headers: res.headers, ...(serial !== undefined ? { serverSerial: serial } : {}) });
        });
        res.on('error', (error) => resolve({ error }));
      },
    );
    // The server certificate, read when the socket becomes secure and remembered per socket: a
    // Node client socket no longer reports its peer certificate once its first response ended.
    let seen: string | undefined;
    req.on('socket', (socket: TLSSocket) => {
      const known = serverSerials.get(socket);
      if (known !== undefined) {
        seen = known;
        return;
      }
      socket.once('secureConnect', () => {
        seen = socket.getPeerX509Certificate()?.serialNumber;
        if (seen !== undefined) serverSerials.set(socket, seen);
      });
    });
    req.on('error', (error: NodeJS.ErrnoException) => resolve({ error }));
    req.setTimeout(5_000, () => req.destroy(new Error('client timeout')));
    req.end(o.body);
  });
}

/** One plaintext HTTP request that never throws. */
export function plainRequest(o: { port: number; path?: string; method?: string; headers?: http.OutgoingHttpHeaders; agent?: http.Agent; body?: string }): Promise<ClientResult> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port: o.port, path: o.path ?? '/', method: o.method ?? 'GET', headers: o.headers, agent: o.agent ?? false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body, headers: res.headers }));
      res.on('error', (error) => resolve({ error }));
    });
    req.on('error', (error: NodeJS.ErrnoException) => resolve({ error }));
    req.setTimeout(5_000, () => req.destroy(new Error('client timeout')));
    req.end(o.body);
  });
}

/** Serial number of a PEM certificate, as getPeerX509Certificate reports it. */
export function serialOf(certPem: string): string {
  return new X509Certificate(certPem).serialNumber;
}

export interface StackOptions {
  mode: 'strict' | 'permissive' | 'off';
  identity?: IdentityProvider;
  authorization?: AuthorizationSpec;
  service?: string;
  clock?: Clock;
  timeouts?: Partial<ListenerTimeouts>;
  maxConnectionAgeMs?: number;
  /** Handler behind the stack; default: answers the peer and the headers it saw as JSON. */
  handler?: http.RequestListener;
}

export interface Stack {
  readonly server: http.Server;
  readonly port: number;
  readonly metrics: MeshMetrics;
  readonly warnings: string[];
  /** Requests that reached the handler. */
  hits: number;
  close(): Promise<void>;
}

/** The whole inbound side (listener + stack), as mesh.serve will wire it, on 127.0.0.1:0. */
export async function startStack(o: StackOptions): Promise<Stack> {
  const clock = o.clock ?? systemClock;
  const metrics = new MeshMetrics();
  const observability = new MeshObservability(metrics, clock);
  const peers = peerResolver({ trustDomain: 'example.org', identify: peerIdentity });
  const authorizer = compileAuthorization(o.authorization);
  const warnings: string[] = [];
  const stack = { hits: 0 } as { hits: number };
  const handler: http.RequestListener =
    o.handler ??
    ((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ peer: req.trellis?.peer, headers: req.headers, raw: req.rawHeaders }));
    });
  const inbound = meshInboundHandler(
    (req, res) => {
      stack.hits++;
      handler(req, res);
    },
    { clock, random: systemRandom, service: o.service ?? 'b', policy: () => ({ limiter: undefined, fault: undefined, authorizer }), peers, observability },
  );
  const server = createMeshListener(inbound, {
    mode: o.mode,
    identity: o.identity,
    trustDomain: 'example.org',
    peers,
    clock,
    onWarn: (m) => warnings.push(m),
    timeouts: o.timeouts,
    maxConnectionAgeMs: o.maxConnectionAgeMs,
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(stack, {
    server,
    port,
    metrics,
    warnings,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  });
}

/** What the default handler answers. */
export interface Echo {
  peer: { service: string; spiffeId?: string; verified: boolean };
  headers: http.IncomingHttpHeaders;
  raw: string[];
}

/** A Mesh document in `mode` and a plain Service `b`, for listener tests. */
export function listenerConfig(mode: 'strict' | 'permissive' | 'off'): string {
  return `apiVersion: trellis/v1
kind: Mesh
metadata: { name: default }
spec: { trustDomain: example.org, mtls: ${mode} }
---
apiVersion: trellis/v1
kind: Service
metadata: { name: b }
spec:
  protocol: http
`;
}

/** Connections the server holds now, as it counts them. */
export function connectionCount(server: http.Server): Promise<number> {
  return new Promise((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
}

/** Polls until `cond` holds; false if it still does not after `neverMs` (a liveness bound, not a timing claim). */
export async function eventually(cond: () => Promise<boolean> | boolean, neverMs: number): Promise<boolean> {
  const until = performance.now() + neverMs;
  while (performance.now() < until) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}
