/**
 * The inbound listener of `mesh.serve`: one port, in the Mesh document's mTLS mode.
 *
 * Every mode listens with one `http.Server` (its connection tracking, timeouts, `close()`,
 * `closeIdleConnections()` and `closeAllConnections()` cover every connection) and decides per
 * connection who speaks to it; HTTP/1.1 and HTTP/2 share the port (src/server/http2-inbound.ts):
 *
 * - `strict`: TLS through a non-listening `tls.Server` with `requestCert` +
 *   `rejectUnauthorized: true` and `minVersion: 'TLSv1.3'` (docs/security.md: the
 *   `rejectUnauthorized: false` + later `authorized` check fails open once someone forgets the
 *   check; TLS 1.3 has no renegotiation, matrix row B11). A client without a certificate, with one
 *   from a foreign CA, with an expired one, or speaking TLS 1.2 fails the handshake. A client whose
 *   chain verifies but whose leaf is not an SVID of our trust domain (src/tls/spiffe.ts) is
 *   disconnected right after the handshake, before a byte of HTTP is read. ALPN picks HTTP/2
 *   (`h2`) when the client offers it, else HTTP/1.1. A plaintext HTTP request gets a plaintext
 *   400 saying mTLS is required, from before TLS, never the handler (plaintext-refusal.ts).
 * - `permissive`: one port for both. The first byte of each connection is peeked at: 0x16 (a
 *   TLS handshake record) goes to the TLS server with the strict settings; anything else is
 *   plaintext — HTTP/2 when it opens with the connection preface (prior knowledge, h2c), else
 *   HTTP/1.1 — whose caller is `unknown` (src/server/peer.ts).
 * - `off`: plaintext, HTTP/2 (prior knowledge) or HTTP/1.1 by the first bytes.
 *
 * Without workload material in `strict` or `permissive` mode the listener is not made:
 * TRELLIS_NO_IDENTITY — it fails closed, never plaintext.
 *
 * Rotation: on the identity's `rotated` event, `setSecureContext()` swaps bundle, certificate
 * and key; new handshakes use the new ones at once. Open connections keep the certificate they
 * negotiated, so each rolls over by itself: every connection opened before the rotation (or
 * older than `maxConnectionAgeMs`, default 5 min) answers its next response with
 * `Connection: close` and is closed after it (an HTTP/2 session: a GOAWAY at its first quiet
 * moment) — no request is cut, the client reconnects and
 * handshakes with the new certificate. Idle ones end by the keep-alive timeout (5 s). So a
 * rotation is complete after at most keepAliveTimeout + the longest request in flight. TLS
 * session tickets are off (`SSL_OP_NO_TICKET`): every connection verifies the chain against the
 * bundle in force, so a removed trust anchor cannot come back through a resumed session.
 *
 * Slow clients (matrix row C4): `headersTimeout` 10 s (Node: 60 s), `requestTimeout` 30 s for
 * the whole request, body included (Node: 300 s; per stream on HTTP/2, http2-inbound.ts), checked every second
 * (`connectionsCheckingInterval`, Node: 30 s, which would let a slowloris hold a socket up to
 * 30 s past its deadline); in TLS modes a hard deadline of 10 s (`handshakeTimeoutMs`) from
 * accept to a finished, verified handshake (permissive: sniff and handshake together), whatever
 * the client sends meanwhile (src/server/handshake-deadline.ts: Node's TLS `handshakeTimeout`
 * is an idle timer, and a `tls.Server` leaves a failed handshake's socket open, which let one
 * 0x16 byte hold a descriptor forever); and in every mode the first request within 10 s of the
 * connection being handed to HTTP (Node starts `headersTimeout` only at the first byte, so a
 * connection that stays silent would be held forever). All are options (`timeouts`, through
 * `mesh.serve(handler, { timeouts })`). `close()` ends at once every connection still in its
 * handshake: it carries no request.
 *
 * Draining (from `close()` on): responses not yet started carry `Connection: close`, and every
 * keep-alive connection closes as soon as its last response ends, so `close()` resolves when the
 * work does; an HTTP/2 session gets its GOAWAY once it has no stream in flight. Node stops checking the header/request timeouts once `close()` is called, so a slow
 * client still sending its headers is held until the caller's drain deadline cuts it.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import tls from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { constants } from 'node:crypto';
import type { Clock } from '../core/clock.js';
import { NoIdentityError } from '../core/errors.js';
import type { MtlsMode } from '../config/types.js';
import type { IdentityProvider, TlsMaterial } from '../tls/identity.js';
import { verifySvid } from '../tls/spiffe.js';
import { HandshakeDeadlines } from './handshake-deadline.js';
import { Http2Inbound, startsHttp2Preface } from './http2-inbound.js';
import { peerResolver, UNKNOWN_CALLER } from './peer.js';
import { answerPlaintextHttp } from './plaintext-refusal.js';
import type { PeerIdentityFn, PeerResolver } from './peer.js';

export interface ListenerTimeouts {
  /** Time to receive the request headers. */
  headersTimeoutMs: number;
  /** Time to receive the whole request, body included. */
  requestTimeoutMs: number;
  /** Idle time before a keep-alive connection is closed. */
  keepAliveTimeoutMs: number;
  /** From accept to a finished, verified TLS handshake (a hard deadline; permissive: sniff included), then again to the first request. */
  handshakeTimeoutMs: number;
  /** How often Node checks the header and request timeouts. */
  checkIntervalMs: number;
}

export const LISTENER_TIMEOUTS: Readonly<ListenerTimeouts> = Object.freeze({
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  handshakeTimeoutMs: 10_000,
  checkIntervalMs: 1_000,
});

export const DEFAULT_MAX_CONNECTION_AGE_MS = 300_000;

export interface MeshListenerOptions {
  mode: MtlsMode;
  /** Workload certificates (src/tls/identity.ts); required in strict and permissive mode. */
  identity?: IdentityProvider | undefined;
  trustDomain: string;
  /** Resolver shared with the inbound step (so each connection is checked once); built from `trustDomain` when absent. */
  peers?: PeerResolver | undefined;
  /** SVID check (default: src/tls/spiffe.ts `peerIdentity`), when `peers` is not given. */
  identify?: PeerIdentityFn | undefined;
  clock: Clock;
  onWarn: (message: string) => void;
  timeouts?: Partial<ListenerTimeouts> | undefined;
  /** Connections older than this close after their next response (default 5 min; 0 = never). */
  maxConnectionAgeMs?: number | undefined;
  /** Name used in messages. */
  service?: string | undefined;
}

/** Settings of every mesh TLS context: TLS 1.3 only, no session tickets. */
export function secureContextOptions(m: TlsMaterial): tls.SecureContextOptions {
  return {
    ca: m.ca,
    cert: m.cert,
    key: m.key,
    minVersion: 'TLSv1.3',
    secureOptions: constants.SSL_OP_NO_TICKET,
  };
}

interface Born {
  readonly at: number;
  readonly generation: number;
  requests: number;
}

/**
 * Creates the listener (not yet listening). Call `listen(port, host)` on it as on any
 * `http.Server`; `close()` removes the rotation listener.
 *
 * @example
 * const server = createMeshListener(handler, { mode: 'strict', identity, trustDomain: 'example.org', clock, onWarn });
 * server.listen(8443, '127.0.0.1');
 * @throws NoIdentityError in strict or permissive mode when `identity` has no material yet
 *   (await `identity.ready()` first).
 */
export function createMeshListener(handler: http.RequestListener, options: MeshListenerOptions): http.Server {
  const { mode, clock, onWarn } = options;
  const t: ListenerTimeouts = { ...LISTENER_TIMEOUTS, ...options.timeouts };
  const maxAge = options.maxConnectionAgeMs ?? DEFAULT_MAX_CONNECTION_AGE_MS;
  const peers = options.peers ?? peerResolver({ trustDomain: options.trustDomain, identify: options.identify });

  // Connection age and rotation generation, stamped when a connection is handed to HTTP.
  let generation = 0;
  const born = new WeakMap<Socket, Born>();
  // Node's headersTimeout starts with the first byte of a request: a connection (plaintext, or
  // TLS after its handshake) that never sends one would be held forever. Until its first request
  // a connection has `handshakeTimeoutMs`; on timeout node:http destroys the idle socket.
  const stamp = (socket: Socket): void => {
    born.set(socket, { at: clock.now(), generation, requests: 0 });
    socket.setTimeout(t.handshakeTimeoutMs);
  };
  const rolling: http.RequestListener = (req, res) => {
    const socket = req.socket;
    let b = born.get(socket);
    if (b === undefined) {
      b = { at: clock.now(), generation, requests: 0 };
      born.set(socket, b);
    }
    // The first-request timer (see `stamp`) ends with the first request.
    if (b.requests++ === 0) socket.setTimeout(0);
    // Must be decided before the handler writes: the header makes Node close after this response.
    if (draining || b.generation !== generation || (maxAge > 0 && clock.now() - b.at >= maxAge)) res.setHeader('connection', 'close');
    inFlight.add(res);
    res.once('close', () => {
      inFlight.delete(res);
      // A response whose headers went out before the drain began promised keep-alive: its
      // connection is idle now, and nothing else would close it before keepAliveTimeout.
      if (draining) setImmediate(closeIdle);
    });
    handler(req, res);
  };

  // Draining, from close() on: every response not yet started says `Connection: close` (Node
  // then ends its connection after it), a connection idle after its last response is closed at
  // once, and connections not yet handed to HTTP are ended — they carry no request, and a
  // handshake in progress (or an attacker's half-sent ClientHello) would otherwise hold close()
  // until its deadline, since closeAllConnections() sees only HTTP connections. Without this a
  // keep-alive client held its connection for keepAliveTimeout after the work ended, and
  // close() waited for it.
  let draining = false;
  const inFlight = new Set<http.ServerResponse>();
  let closeIdle = (): void => undefined;
  const drainOnClose = (server: http.Server, deadlines: HandshakeDeadlines, h2: Http2Inbound): void => {
    // HTTP/2 sessions are not node:http connections: the server's own idle/all/close cover
    // them through these wrappers, so serve.ts drains both protocols the same way.
    const closeIdleHttp = server.closeIdleConnections.bind(server);
    const closeAllHttp = server.closeAllConnections.bind(server);
    server.closeIdleConnections = () => {
      closeIdleHttp();
      h2.closeIdle();
    };
    server.closeAllConnections = () => {
      closeAllHttp();
      h2.destroyAll();
    };
    closeIdle = () => server.closeIdleConnections();
    const close = server.close;
    server.close = function (this: http.Server, callback?: (err?: Error) => void) {
      if (!draining) {
        draining = true;
        for (const res of inFlight) if (!res.headersSent) res.setHeader('connection', 'close');
      }
      deadlines.destroyAll();
      h2.close();
      return close.call(this, callback);
    } as typeof server.close;
  };

  const httpOptions: http.ServerOptions = {
    headersTimeout: t.headersTimeoutMs,
    requestTimeout: t.requestTimeoutMs,
    keepAliveTimeout: t.keepAliveTimeoutMs,
    connectionsCheckingInterval: t.checkIntervalMs,
  };

  // HTTP/2 on the same port (ALPN `h2` over TLS, the connection preface over plaintext), with
  // the same handler: node:http2's compatibility request and response have node:http's shape.
  const h2 = new Http2Inbound((req, res) => handler(req as unknown as http.IncomingMessage, res as unknown as http.ServerResponse), {
    clock,
    idleTimeoutMs: t.keepAliveTimeoutMs,
    maxConnectionAgeMs: maxAge,
    requestTimeoutMs: t.requestTimeoutMs,
  });
  const deadlines = new HandshakeDeadlines(t.handshakeTimeoutMs);
  // The listening server is always node:http's: its connection tracking, timeouts, `close()`,
  // `closeIdleConnections()` and `closeAllConnections()` cover every connection. Its own
  // connection listener runs only for connections handed to HTTP/1.1.
  const server = http.createServer(httpOptions, rolling);
  const [httpConnection] = server.listeners('connection') as ((socket: Socket) => void)[];
  if (httpConnection === undefined) throw new Error('node:http server has no connection listener');
  server.removeListener('connection', httpConnection);
  const handToHttp = (socket: Socket): void => {
    deadlines.release(socket);
    httpConnection.call(server, socket);
    stamp(socket);
  };
  const handToHttp2 = (socket: Socket): void => {
    deadlines.release(socket);
    h2.accept(socket);
  };
  /** A plaintext connection: HTTP/2 with prior knowledge when it opens with the preface, else HTTP/1.1. */
  const plaintext = (socket: Socket, first: Buffer): void => {
    if (startsHttp2Preface(first)) {
      // node:http2 feeds the session what waits in the stream buffer (the peeked bytes) on the
      // next tick: resuming the socket here would hand them to nobody.
      handToHttp2(socket);
    } else {
      handToHttp(socket);
      // The HTTP parser reads the handle directly; the peeked bytes wait in the stream buffer.
      socket.resume();
    }
  };

  if (mode === 'off') {
    server.on('connection', (socket: Socket) => {
      deadlines.arm(socket);
      peek(socket, (first) => plaintext(socket, first));
    });
    applyTimeouts(server, t);
    drainOnClose(server, deadlines, h2);
    return server;
  }

  const identity = options.identity;
  const material = identity?.current();
  if (identity === undefined || material === undefined) {
    throw new NoIdentityError(`mtls is ${mode} but this instance has no workload certificate yet; it will not serve plaintext in its place`, { service: options.service });
  }

  // Warnings about refused peers are rate limited: a misbehaving client must not flood the log.
  let lastWarn = -Infinity;
  let suppressed = 0;
  const refuse = (socket: TLSSocket): void => {
    // Read before destroy(): a destroyed socket no longer knows its peer (the warning said "from ?").
    const from = `${socket.remoteAddress ?? 'an unknown address'}${socket.remotePort !== undefined ? `:${socket.remotePort}` : ''}`;
    const now = clock.now();
    if (now - lastWarn < 60_000) {
      socket.destroy();
      suppressed++;
      return;
    }
    const reason = refusalReason(socket, peers.trustDomain);
    socket.destroy();
    lastWarn = now;
    const more = suppressed > 0 ? ` (and ${suppressed} more since the last warning)` : '';
    suppressed = 0;
    onWarn(`TRELLIS_PEER_IDENTITY: refused an inbound connection from caller ${UNKNOWN_CALLER} at ${from}: its certificate chains to our CA but is not a service SVID of trust domain "${peers.trustDomain}": ${reason}${more}`);
  };
  const verified = (socket: TLSSocket): boolean => {
    if (peers.of(socket).verified) return true;
    refuse(socket);
    return false;
  };

  const tlsOptions: tls.TlsOptions = {
    ...secureContextOptions(material),
    requestCert: true,
    rejectUnauthorized: true,
    handshakeTimeout: t.handshakeTimeoutMs,
    // Server preference: HTTP/2 when the client offers it; a client offering nothing is HTTP/1.1.
    ALPNProtocols: ['h2', 'http/1.1'],
  };

  const tlsTarget = tls.createServer(tlsOptions);
  tlsTarget.on('secureConnection', (socket: TLSSocket) => {
    if (!verified(socket)) return;
    // The listening server reports its TLS connections as an https.Server would (applications
    // and tests count handshakes on `MeshServer.server`).
    server.emit('secureConnection', socket);
    if (socket.alpnProtocol === 'h2') handToHttp2(socket);
    else handToHttp(socket);
  });
  // A failed handshake (timeout, reset, garbage) must end the connection here: unlike
  // https.Server, a tls.Server leaves the socket open after 'tlsClientError', and an
  // attacker sending one 0x16 byte would hold a descriptor until the process ran out.
  tlsTarget.on('tlsClientError', (err: Error, socket: TLSSocket) => {
    socket.destroy();
    server.emit('tlsClientError', err, socket);
  });
  if (mode === 'strict') {
    // Plaintext HTTP gets a plaintext 400 saying mTLS is required; everything else goes to TLS.
    answerPlaintextHttp(tlsTarget, t.handshakeTimeoutMs);
    server.on('connection', (socket: Socket) => {
      deadlines.arm(socket);
      tlsTarget.emit('connection', socket);
    });
  } else {
    server.on('connection', (socket: Socket) => {
      deadlines.arm(socket);
      peek(socket, (first) => {
        if (first[0] === 0x16) tlsTarget.emit('connection', socket);
        else plaintext(socket, first);
      });
    });
  }
  applyTimeouts(server, t);
  drainOnClose(server, deadlines, h2);

  const onRotated = (): void => {
    const next = identity.current();
    if (next === undefined) return;
    try {
      tlsTarget.setSecureContext(secureContextOptions(next));
      generation++;
      h2.rotate();
    } catch (err) {
      onWarn(`certificate rotation refused by TLS, keeping the previous certificate: ${(err as Error).message}`);
    }
  };
  identity.on('rotated', onRotated);
  server.once('close', () => identity.off('rotated', onRotated));
  return server;
}

/**
 * Why a verified chain's leaf is not a caller, for the refusal warning: what the SVID check
 * says (it names the certificate and the identity it claims), never a guess.
 */
export function refusalReason(socket: TLSSocket, trustDomain: string): string {
  const cert = socket.getPeerX509Certificate();
  if (cert === undefined) return 'it presented no certificate';
  try {
    const id = verifySvid(cert, { trustDomain });
    return id.service === UNKNOWN_CALLER ? `${id.spiffeId} names the reserved service "${UNKNOWN_CALLER}"` : `${id.spiffeId} was not accepted by the identity check`;
  } catch (err) {
    return (err as Error).message.replace(/^TRELLIS_PEER_IDENTITY: /, '');
  }
}

function applyTimeouts(server: http.Server, t: ListenerTimeouts): void {
  server.headersTimeout = t.headersTimeoutMs;
  server.requestTimeout = t.requestTimeoutMs;
  server.keepAliveTimeout = t.keepAliveTimeoutMs;
}

/**
 * Waits for the first chunk of a new connection, puts it back, and hands it on (a TLS handshake
 * starts with record type 22). A connection that fails or ends before sending a byte is destroyed;
 * one that stays silent is ended by its handshake deadline (src/server/handshake-deadline.ts).
 */
export function peek(socket: Socket, then: (first: Buffer) => void): void {
  const fail = (): void => {
    socket.destroy();
  };
  socket.on('error', fail);
  // The HTTP server is half-open: a FIN before any byte would otherwise leave the socket open.
  socket.on('end', fail);
  socket.once('data', (chunk: Buffer) => {
    socket.pause();
    socket.removeListener('error', fail);
    socket.removeListener('end', fail);
    socket.unshift(chunk);
    then(chunk);
  });
}
