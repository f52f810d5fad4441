/**
 * Certificates for the TLS tests: authorities, good leaves, and leaves that break one SVID
 * rule each (built with the same builder the CA uses, so only the rule under test differs).
 * Also a TLS server on 127.0.0.1 with mesh settings (mutual, TLS 1.3, rejectUnauthorized).
 */
import type { KeyObject } from 'node:crypto';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { ManualClock, systemClock, type Clock } from '../../src/core/clock.js';
import { createAuthority, issueLeaf, type Authority } from '../../src/tls/authority.js';
import { generateP256KeyPair, privateKeyPem } from '../../src/tls/keys.js';
import { peerIdentity, type PeerIdentity } from '../../src/tls/spiffe.js';
import { buildCertificate, signerFromCertificate, type CertificateRole } from '../../src/tls/x509-build.js';

export interface Creds {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/** A clock at real wall time (certificates must be valid for OpenSSL), advanced by hand. */
export function realTimeManualClock(): ManualClock {
  return new ManualClock(0, Date.now());
}

export async function authority(trustDomain = 'example.org', clock: Clock = systemClock, ttl?: { anchorTtlMs?: number; issuerTtlMs?: number }): Promise<Authority> {
  return createAuthority({ trustDomain, ...ttl }, clock);
}

/** A proper leaf for `service` from `ca`. */
export async function leaf(ca: Authority, service: string, opts: { ttlMs?: number; clock?: Clock } = {}): Promise<Creds> {
  const k = await generateP256KeyPair();
  const l = issueLeaf(ca, { service, publicKey: k.publicKey, ttlMs: opts.ttlMs ?? 3_600_000 }, opts.clock ?? systemClock);
  return { ca: l.caBundlePem, cert: l.certificateChainPem, key: privateKeyPem(k.privateKey) };
}

/** A leaf signed by `ca`'s issuer with chosen defects. */
export async function oddLeaf(
  ca: Authority,
  spec: { uris: string[]; role?: CertificateRole; keyUsage?: number; notBefore?: number; notAfter?: number },
): Promise<Creds & { publicKey: KeyObject }> {
  const k = await generateP256KeyPair();
  const now = Date.now();
  const built = buildCertificate({
    subject: { commonName: 'odd' },
    publicKey: k.publicKey,
    notBefore: spec.notBefore ?? now - 60_000,
    notAfter: spec.notAfter ?? now + 3_600_000,
    role: spec.role ?? { kind: 'leaf' },
    uris: spec.uris,
    signer: signerFromCertificate(ca.issuer.der, ca.issuer.key),
    ...(spec.keyUsage !== undefined ? { keyUsage: spec.keyUsage } : {}),
  });
  return { ca: ca.bundlePem, cert: built.pem + ca.issuer.pem, key: privateKeyPem(k.privateKey), publicKey: k.publicKey };
}

export interface MeshServer {
  readonly port: number;
  /** Identities of callers the server accepted, in order. */
  readonly callers: (PeerIdentity | undefined)[];
  close(): Promise<void>;
}

/** A mutual-TLS server as the mesh runs them: TLS 1.3 only, client certificate required and verified. */
export async function meshServer(creds: Creds, trustDomain = 'example.org'): Promise<MeshServer> {
  const callers: (PeerIdentity | undefined)[] = [];
  const server = tls.createServer({ ...creds, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, (socket) => {
    callers.push(peerIdentity(socket, trustDomain));
    socket.end('hello');
  });
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    callers,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Connects with `opts`; resolves with what the server sent, rejects with the TLS or identity error. */
export function connect(port: number, opts: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    const s = tls.connect({ host: '127.0.0.1', port, minVersion: 'TLSv1.3', servername: 'mesh', ...opts });
    s.setEncoding('utf8');
    s.on('data', (d: string) => (data += d));
    s.on('error', reject);
    // With TLS 1.3 a refused client certificate shows up after 'secureConnect', as an alert
    // or a reset; a clean close with the greeting is success.
    s.on('close', () => (data === 'hello' ? resolve(data) : reject(new Error(`closed without the greeting (got ${JSON.stringify(data)})`))));
  });
}
