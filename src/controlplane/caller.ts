/**
 * Who is calling the control plane, decided once per request from what the connection and the
 * headers prove: the admin token (`Authorization: Bearer trellis-admin....`, compared in
 * constant time against the stored SHA-256 of its secret), an instance certificate (verified by
 * OpenSSL against the CA bundle, then read as an SVID of this trust domain), or nobody. A
 * bootstrap token is not an identity here: only `/v1/certificates` reads it.
 */
import { X509Certificate } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { verifySvid } from '../tls/spiffe.js';
import { adminTokenMatches } from './admin-token.js';

export type Caller =
  | { readonly kind: 'admin' }
  | { readonly kind: 'bad-admin-token'; readonly reason: string }
  | { readonly kind: 'instance'; readonly service: string; readonly spiffeId: string; readonly certificateNotAfter: number }
  | { readonly kind: 'anonymous'; readonly bearer: string | undefined };

export interface CallerParams {
  readonly trustDomain: string;
  /** SHA-256 of the admin token's secret part. */
  readonly adminHash: Buffer;
  readonly pin: string;
}

/** The bearer token of an `Authorization` header, if any. */
export function bearerOf(headers: IncomingHttpHeaders): string | undefined {
  const h = headers.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m?.[1];
}

/** The verified instance identity of a TLS connection, if it presented one. */
export function instanceOf(socket: TLSSocket | undefined, trustDomain: string): Extract<Caller, { kind: 'instance' }> | undefined {
  if (socket === undefined || socket.authorized !== true) return undefined;
  let cert: X509Certificate | undefined;
  try {
    cert = socket.getPeerX509Certificate();
  } catch {
    return undefined;
  }
  if (cert === undefined) return undefined;
  try {
    const id = verifySvid(cert, { trustDomain });
    return { kind: 'instance', service: id.service, spiffeId: id.spiffeId, certificateNotAfter: Date.parse(cert.validTo) };
  } catch {
    return undefined;
  }
}

export function identifyCaller(headers: IncomingHttpHeaders, socket: TLSSocket | undefined, params: CallerParams): Caller {
  const bearer = bearerOf(headers);
  if (bearer !== undefined && bearer.startsWith('trellis-admin.')) {
    const problem = adminTokenMatches(bearer, params.pin, params.adminHash);
    return problem === undefined ? { kind: 'admin' } : { kind: 'bad-admin-token', reason: problem };
  }
  return instanceOf(socket, params.trustDomain) ?? { kind: 'anonymous', bearer };
}
