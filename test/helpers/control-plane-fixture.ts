/**
 * A small control-plane stand-in for the sync tests: a real HTTP/2 + TLS server (certificates
 * from a CA made with src/tls) serving GET /v1/ca, POST /v1/certificates (bootstrap token, or
 * the current certificate for renewals) and POST /v1/stream routed to the sync module after the
 * client certificate is checked; state in a MemoryStore that several fixtures may share (two
 * replicas). Tokens carry the `cah` CA pin. The real server (startControlPlane) replaces it
 * after merge.
 */
import { randomBytes, sign, type KeyObject } from 'node:crypto';
import http2 from 'node:http2';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { Registry } from 'prom-client';
import { systemClock, type Clock } from '../../src/core/clock.js';
import { createAuthority, type Authority } from '../../src/tls/authority.js';
import { generateP256KeyPair, privateKeyPem } from '../../src/tls/keys.js';
import { parseCsr } from '../../src/tls/csr.js';
import { issueLeaf } from '../../src/tls/authority.js';
import { signCsr } from '../../src/tls/signer.js';
import { generateTokenKey, tokenKeyId } from '../../src/tls/tokens.js';
import { peerIdentity } from '../../src/tls/spiffe.js';
import { buildCertificate } from '../../src/tls/x509-build.js';
import { MemoryStore } from '../../src/controlplane/store/memory-store.js';
import { KEYS, type Store } from '../../src/controlplane/store/store.js';
import { createSync, type Sync } from '../../src/controlplane/sync/index.js';
import { caPin } from '../../src/controlplane-client/pin.js';

export interface CaMaterial {
  readonly ca: Authority;
  readonly tokenKey: KeyObject;
  readonly pin: string;
  readonly serving: { cert: string; key: string };
}

export const TRUST_DOMAIN = 'sync.test';

/** A CA, a token key and a serving certificate (`spiffe://<td>/controlplane`), shared by replicas. */
export async function makeCaMaterial(): Promise<CaMaterial> {
  const ca = await createAuthority({ trustDomain: TRUST_DOMAIN }, systemClock);
  const tokenKey = await generateTokenKey();
  const keys = await generateP256KeyPair();
  const now = Date.now();
  const leaf = buildCertificate({
    subject: { commonName: 'controlplane' },
    publicKey: keys.publicKey,
    notBefore: now - 60_000,
    notAfter: now + 86_400_000,
    role: { kind: 'leaf' },
    uris: [`spiffe://${TRUST_DOMAIN}/controlplane`],
    signer: ca.issuer.signer,
  });
  return { ca, tokenKey, pin: caPin(ca.anchor.der), serving: { cert: leaf.pem + ca.issuer.pem, key: privateKeyPem(keys.privateKey) } };
}

/** A bootstrap token for `service` with the `cah` pin claim (as `trellis token create` makes). */
export function mintToken(m: CaMaterial, service: string, ttlMs = 3_600_000): string {
  const header = Buffer.from(JSON.stringify({ alg: 'EdDSA', typ: 'JWT', kid: tokenKeyId(m.tokenKey) })).toString('base64url');
  const iat = Math.floor(Date.now() / 1000);
  const claims = { aud: 'trellis-ca', sub: service, iat, exp: iat + Math.ceil(ttlMs / 1000), jti: randomBytes(16).toString('base64url'), cah: m.pin };
  const input = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${input}.${sign(null, Buffer.from(input), m.tokenKey).toString('base64url')}`;
}

export interface CpFixture {
  readonly url: string;
  readonly port: number;
  readonly store: Store;
  readonly sync: Sync;
  readonly registry: Registry;
  readonly warnings: string[];
  readonly reports: unknown[];
  /** Certificates issued with a bootstrap token, and renewals authenticated by a current certificate. */
  readonly issued: { bootstrap: number; renewal: number };
  close(): Promise<void>;
}

export interface CpFixtureOptions {
  material: CaMaterial;
  store: Store;
  port?: number;
  leaseTtlMs?: number;
  replicaId?: string;
  /** Workload certificate life (default 1 h). */
  certificateTtlMs?: number;
  /** New streams admitted per second (sync's default when absent). */
  streamAdmission?: { ratePerSecond: number; burst: number };
  /** The clock stream admission refills its tokens by (a test's own, to decide when a token comes back). */
  clock?: Clock;
}

function json(res: Http2ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function readBody(req: Http2ServerRequest): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export async function startCpFixture(o: CpFixtureOptions): Promise<CpFixture> {
  const { ca, tokenKey } = o.material;
  const registry = new Registry();
  const warnings: string[] = [];
  const reports: unknown[] = [];
  const sync = createSync({
    store: o.store,
    replicaId: o.replicaId ?? 'replica',
    registry,
    onWarn: (m) => warnings.push(m),
    onReport: (_i, r) => reports.push(r),
    ...(o.leaseTtlMs !== undefined ? { leaseTtlMs: o.leaseTtlMs } : {}),
    ...(o.streamAdmission !== undefined ? { streamAdmission: o.streamAdmission } : {}),
    ...(o.clock !== undefined ? { clock: o.clock } : {}),
  });
  const ttlMs = o.certificateTtlMs ?? 3_600_000;
  const issued = { bootstrap: 0, renewal: 0 };
  const server = http2.createSecureServer({ allowHTTP1: true, requestCert: true, rejectUnauthorized: false, ca: ca.bundlePem, cert: o.material.serving.cert, key: o.material.serving.key });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.on('request', (req: Http2ServerRequest, res: Http2ServerResponse) => {
    void (async () => {
      const socket = req.socket as unknown as TLSSocket;
      const peer = peerIdentity(socket, TRUST_DOMAIN);
      if (req.method === 'GET' && req.url === '/v1/ca') return json(res, 200, { bundlePem: ca.bundlePem, pins: [o.material.pin], trustDomain: TRUST_DOMAIN });
      if (req.method === 'POST' && req.url === '/v1/certificates') {
        const body = JSON.parse(await readBody(req)) as { service: string; csrPem: string };
        try {
          if (peer !== undefined) {
            if (body.service !== peer.service) return json(res, 403, { error: { code: 'TRELLIS_FORBIDDEN', message: 'not your service' } });
            const leaf = issueLeaf(ca, { service: peer.service, publicKey: parseCsr(body.csrPem).publicKey, ttlMs }, systemClock);
            issued.renewal++;
            return json(res, 200, { certificateChainPem: leaf.certificateChainPem, caBundlePem: leaf.caBundlePem, notAfter: leaf.notAfter, spiffeId: leaf.spiffeId });
          }
          const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
          const r = signCsr({ token, csrPem: body.csrPem, service: body.service }, { issuer: ca, tokenKey, ttlMs, clock: systemClock });
          issued.bootstrap++;
          return json(res, 200, { certificateChainPem: r.certificateChainPem, caBundlePem: r.caBundlePem, notAfter: r.notAfter, spiffeId: r.spiffeId });
        } catch (err) {
          return json(res, 401, { error: { code: (err as { code?: string }).code ?? 'TRELLIS_TOKEN_INVALID', message: (err as Error).message } });
        }
      }
      if (req.method === 'POST' && req.url === '/v1/stream' && req.httpVersion === '2.0') {
        if (peer === undefined) return json(res, 401, { error: { code: 'TRELLIS_PEER_IDENTITY', message: 'the instance stream needs an instance certificate' } });
        const cert = socket.getPeerX509Certificate();
        return sync.handleStream(req.stream, req.headers, { service: peer.service, spiffeId: peer.spiffeId, certificateNotAfter: cert === undefined ? 0 : Date.parse(cert.validTo) });
      }
      json(res, 404, { error: { code: 'TRELLIS_NOT_FOUND', message: req.url } });
    })().catch((err: unknown) => {
      if (!res.headersSent) json(res, 500, { error: { code: 'TRELLIS_INTERNAL', message: String(err) } });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  let closed = false;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    store: o.store,
    sync,
    registry,
    warnings,
    reports,
    issued,
    async close() {
      if (closed) return;
      closed = true;
      await sync.close();
      for (const s of sessions) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Applies documents to the store as the control plane's apply does (no validation: tests may store a bad one on purpose). */
export async function putResources(store: Store, docs: readonly { kind: 'Mesh' | 'Service'; metadata: { name: string }; spec: unknown }[]): Promise<number> {
  return store.commit(docs.map((d) => ({ type: 'put' as const, key: KEYS.resource(d.kind, d.metadata.name), value: { apiVersion: 'trellis/v1', ...d } })));
}

export function meshDoc(spec: Record<string, unknown> = {}): { kind: 'Mesh'; metadata: { name: string }; spec: unknown } {
  return { kind: 'Mesh', metadata: { name: 'default' }, spec: { trustDomain: TRUST_DOMAIN, ...spec } };
}

export function serviceDoc(name: string, spec: Record<string, unknown> = {}): { kind: 'Service'; metadata: { name: string }; spec: unknown } {
  return { kind: 'Service', metadata: { name }, spec };
}

export { MemoryStore };
