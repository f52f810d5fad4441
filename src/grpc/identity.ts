/**
 * The workload identity as the gRPC edge uses it. These are the shapes of `src/tls/` (an
 * `IdentityProvider` with `current()` and a `rotated` event; `checkServerIdentityFor` in
 * `src/tls/spiffe.ts`), restated here as the little the edge needs so that src/grpc does not
 * depend on that module's internals; the real provider satisfies them structurally.
 *
 * `certificateProvider(identity)` adapts it to grpc-js's `CertificateProvider`, the interface
 * behind grpc-js's rotating credentials: channels and servers built once keep working while the
 * certificate rotates, new connections taking the new one. Updates are delivered
 * asynchronously, as grpc-js needs (a synchronous delivery while a server is starting drops
 * its connections).
 */
import type { PeerCertificate } from 'node:tls';
import type { experimental } from '@grpc/grpc-js';

/** A workload certificate and what it says. */
export interface TlsMaterial {
  /** Trust bundle (PEM) that peers' certificates must chain to. */
  readonly ca: string | Buffer;
  /** This workload's certificate chain (PEM). */
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  /** `spiffe://<trustDomain>/svc/<service>`. */
  readonly spiffeId: string;
  readonly service: string;
  readonly trustDomain: string;
}

/** Where the current certificate comes from; `rotated` fires after each renewal. */
export interface IdentitySource {
  current(): TlsMaterial | undefined;
  on(event: 'rotated', listener: () => void): unknown;
  off(event: 'rotated', listener: () => void): unknown;
}

/** A TLS `checkServerIdentity`: undefined when `cert` is the expected peer, else the reason. */
export type ServerIdentityCheck = (hostname: string, cert: PeerCertificate) => Error | undefined;

/** `checkServerIdentityFor(trustDomain, service)` of src/tls/spiffe.ts. */
export type ServerIdentityCheckFor = (trustDomain: string, service: string) => ServerIdentityCheck;

type CertificateProvider = experimental.CertificateProvider;
type CaListener = experimental.CaCertificateUpdateListener;
type IdentityListener = experimental.IdentityCertificateUpdateListener;

function buf(v: string | Buffer): Buffer {
  return typeof v === 'string' ? Buffer.from(v) : v;
}

/**
 * grpc-js's CertificateProvider over an identity source: the CA and the workload certificate,
 * re-delivered on every rotation.
 *
 * @example
 * const provider = certificateProvider(identity);
 * const creds = grpc.experimental.createCertificateProviderServerCredentials(provider, provider, true);
 */
export function certificateProvider(identity: IdentitySource): CertificateProvider {
  const ca = new Set<CaListener>();
  const ids = new Set<IdentityListener>();
  const deliver = (): void => {
    setImmediate(() => {
      const m = identity.current();
      for (const l of ca) l(m === undefined ? null : { caCertificate: buf(m.ca) });
      for (const l of ids) l(m === undefined ? null : { certificate: buf(m.cert), privateKey: buf(m.key) });
    });
  };
  const onRotated = (): void => deliver();
  const watch = (): void => {
    if (ca.size + ids.size === 1) identity.on('rotated', onRotated);
  };
  const unwatch = (): void => {
    if (ca.size + ids.size === 0) identity.off('rotated', onRotated);
  };
  return {
    addCaCertificateListener(l) {
      ca.add(l);
      watch();
      deliver();
    },
    removeCaCertificateListener(l) {
      ca.delete(l);
      unwatch();
    },
    addIdentityCertificateListener(l) {
      ids.add(l);
      watch();
      deliver();
    },
    removeIdentityCertificateListener(l) {
      ids.delete(l);
      unwatch();
    },
  };
}

/**
 * The service name a verified peer certificate names: its single URI SAN
 * `spiffe://<trustDomain>/svc/<service>`; undefined when it has none, several, or one from
 * another trust domain. (TLS has already verified the chain against the trust bundle.)
 */
export function serviceOfCertificate(cert: PeerCertificate | undefined, trustDomain: string): string | undefined {
  const san = cert?.subjectaltname;
  if (san === undefined || san === '') return undefined;
  const uris = san.split(/,\s*/).filter((s) => s.startsWith('URI:')).map((s) => s.slice(4));
  if (uris.length !== 1) return undefined;
  const prefix = `spiffe://${trustDomain}/svc/`;
  const uri = uris[0] as string;
  if (!uri.startsWith(prefix)) return undefined;
  const name = uri.slice(prefix.length);
  return /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(name) ? name : undefined;
}
