/**
 * Who called: the verified peer of an inbound connection. It comes from the TLS handshake only —
 * an authorized TLS socket (OpenSSL verified the chain against our bundle) whose certificate is
 * a valid SPIFFE SVID of our trust domain (`spiffe://<td>/svc/<service>`, checked by
 * src/tls/spiffe.ts `peerIdentity`). Anything else — plaintext (permissive mode), a TLS socket
 * the application's own server accepted without verification, an SVID of another trust domain —
 * is the caller `unknown`. Never inferred from headers (docs/security.md: "Permissive plaintext
 * = caller `unknown`, never inferred").
 *
 * The peer is computed once per connection (a TLS 1.3 connection cannot renegotiate, so its
 * certificate never changes) and cached per resolver in a WeakMap keyed by the socket.
 *
 * The service name `unknown` is reserved: a certificate naming it is not a verified peer.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { peerIdentity } from '../tls/spiffe.js';

/** The caller of one inbound request. */
export interface PeerInfo {
  /** The verified caller's service name, or `unknown`. */
  readonly service: string;
  /** The caller's SPIFFE id, when verified. */
  readonly spiffeId: string | undefined;
  /** True only for an mTLS peer whose SVID verified for our trust domain. */
  readonly verified: boolean;
}

/** What authorization and metrics call a caller that is not a verified peer. */
export const UNKNOWN_CALLER = 'unknown';

export const UNKNOWN_PEER: PeerInfo = Object.freeze({ service: UNKNOWN_CALLER, spiffeId: undefined, verified: false });

/**
 * Reads the SVID of an authorized TLS socket: `{ service, spiffeId }` when its certificate is a
 * valid leaf SVID of `trustDomain`, else undefined. src/tls/spiffe.ts `peerIdentity` has this shape.
 */
export type PeerIdentityFn = (socket: TLSSocket, trustDomain: string) => { service: string; spiffeId: string } | undefined;

/**
 * The connection a request arrived on, as the key its peer is cached under: the socket for
 * HTTP/1.1; for an HTTP/2 request the session's socket (node:http2 gives each stream's
 * `req.socket` a proxy of its own, which would cost one certificate check per request).
 */
export function connectionOf(req: { socket: Socket | null; stream?: { session?: { socket?: Socket } | undefined } | undefined }): Socket | null {
  return req.stream?.session?.socket ?? req.socket;
}

export interface PeerResolver {
  readonly trustDomain: string;
  /** The peer behind a connection (`UNKNOWN_PEER` unless verified). */
  of(socket: Socket | null | undefined): PeerInfo;
}

export interface PeerResolverParams {
  trustDomain: string;
  /** Default: src/tls/spiffe.ts `peerIdentity`. */
  identify?: PeerIdentityFn | undefined;
}

function isTlsSocket(socket: Socket): socket is TLSSocket {
  return (socket as Partial<TLSSocket>).encrypted === true;
}

/**
 * Builds the resolver the listener and the inbound step share (so a connection is checked once).
 *
 * @example
 * const peers = peerResolver({ trustDomain: 'example.org' });
 * const peer = peers.of(req.socket); // { service: 'checkout', spiffeId: 'spiffe://...', verified: true }
 */
export function peerResolver(params: PeerResolverParams): PeerResolver {
  const trustDomain = params.trustDomain;
  const identify = params.identify ?? peerIdentity;
  const cache = new WeakMap<Socket, PeerInfo>();
  const resolve = (socket: Socket): PeerInfo => {
    // `authorized` is true only when OpenSSL verified the client's chain against our CA bundle.
    if (!isTlsSocket(socket) || socket.authorized !== true) return UNKNOWN_PEER;
    let id: { service: string; spiffeId: string } | undefined;
    try {
      id = identify(socket, trustDomain);
    } catch {
      id = undefined;
    }
    if (id === undefined || id.service === UNKNOWN_CALLER) return UNKNOWN_PEER;
    return Object.freeze({ service: id.service, spiffeId: id.spiffeId, verified: true });
  };
  return {
    trustDomain,
    of(socket) {
      if (socket === null || socket === undefined) return UNKNOWN_PEER;
      let peer = cache.get(socket);
      if (peer === undefined) {
        peer = resolve(socket);
        cache.set(socket, peer);
      }
      return peer;
    },
  };
}
