/**
 * `mesh.listen(handler, { port, host })`: a raw TCP server with the mesh's inbound side, in the
 * Mesh (or this service's) mTLS mode, with the same TLS settings and the same handshake deadline
 * as `mesh.serve` (src/server/tls-listener.ts, src/server/handshake-deadline.ts):
 *
 * - `strict`: TLS 1.3 only, `requestCert` + `rejectUnauthorized: true`, no session tickets; a
 *   client whose chain verifies but whose leaf is not a service SVID of our trust domain is
 *   disconnected right after the handshake. A plaintext client fails the handshake.
 * - `permissive`: the first byte decides — a TLS handshake record (0x16) goes to TLS with the
 *   strict settings, anything else is plaintext with caller `unknown`. (So the client must speak
 *   first, as Redis, HTTP or PostgreSQL clients do; a connection silent until the deadline is
 *   closed.)
 * - `off`: plaintext, caller `unknown`.
 *
 * From accept to hand-over (handshake done and verified, authorized) each connection has
 * `handshakeTimeoutMs` (10 s), whatever it sends meanwhile. Then authorization by caller
 * (src/server/tcp-authorization.ts): a refused connection is closed before the handler sees it
 * (no bytes are read or written: a raw protocol has no way to say 403). The handler gets the
 * socket with `socket.trellis.peer` (the verified caller, or `unknown`).
 *
 * `close()` stops accepting, ends connections still in their handshake, lets the handler's
 * connections finish on their own for `drainTimeoutMs`, then destroys what remains.
 */
import net from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import tls from 'node:tls';
import type { TLSSocket } from 'node:tls';
import type { Clock } from '../core/clock.js';
import { NoIdentityError } from '../core/errors.js';
import type { MtlsMode } from '../config/types.js';
import type { IdentityProvider } from '../tls/identity.js';
import type { ConnectionMetrics } from '../observability/connection-metrics.js';
import { HandshakeDeadlines } from './handshake-deadline.js';
import type { PeerInfo, PeerResolver } from './peer.js';
import { UNKNOWN_CALLER } from './peer.js';
import { LISTENER_TIMEOUTS, peek, refusalReason, secureContextOptions } from './tls-listener.js';
import type { CallerAuthorizer } from './tcp-authorization.js';

/** Options of `mesh.listen()`. */
export interface ListenOptions {
  /** Port to listen on (default: any free port). */
  port?: number;
  /** Address to bind (default 127.0.0.1). */
  host?: string;
  /** How long close() lets open connections end by themselves before destroying them (default 10 s). */
  drainTimeoutMs?: number;
  /** From accept to a verified, authorized hand-over (default 10 s). */
  handshakeTimeoutMs?: number;
}

/** What Trellis tells a `mesh.listen` handler about a connection, as `socket.trellis`. */
export interface InboundConnectionInfo {
  /** The verified caller, or `unknown` (plaintext, or not a mesh identity). */
  readonly peer: PeerInfo;
}

/** The socket a `mesh.listen` handler gets (a tls.TLSSocket over mTLS). */
export type MeshInboundSocket = Socket & { readonly trellis: InboundConnectionInfo };

export type ConnectionHandler = (socket: MeshInboundSocket) => void;

/** A listening `mesh.listen` server. */
export interface MeshTcpServer {
  /** The listening server (a net.Server; a tls.Server in strict mode). */
  readonly server: net.Server;
  /** The bound address (`127.0.0.1:6380`). */
  readonly address: string;
  readonly port: number;
  /** Stops accepting and drains (see the file comment). */
  close(drainTimeoutMs?: number): Promise<void>;
}

export interface ListenDeps {
  mode: MtlsMode;
  identity: IdentityProvider | undefined;
  peers: PeerResolver;
  clock: Clock;
  onWarn: (message: string) => void;
  /** This service (metrics, messages). */
  service: string | undefined;
  /** The authorization in force (read per connection, so a reload applies to new connections). */
  authorizer: () => CallerAuthorizer;
  metrics: () => ConnectionMetrics;
}

const DEFAULT_DRAIN_MS = 10_000;

export async function listenTcp(handler: ConnectionHandler, options: ListenOptions, deps: ListenDeps): Promise<MeshTcpServer> {
  const { mode, clock, peers, onWarn } = deps;
  const self = deps.service ?? UNKNOWN_CALLER;
  const handshakeMs = options.handshakeTimeoutMs ?? LISTENER_TIMEOUTS.handshakeTimeoutMs;
  const deadlines = new HandshakeDeadlines(handshakeMs);
  const open = new Set<Socket>();
  let closing: Promise<void> | undefined;

  /** A connection that finished its handshake (or has none): authorize, then hand it over. */
  const accepted = (socket: Socket): void => {
    deadlines.release(socket);
    if (closing !== undefined) {
      socket.destroy();
      return;
    }
    const peer = peers.of(socket);
    const metrics = deps.metrics();
    const decision = deps.authorizer().authorize(peer.service);
    if (!decision.allowed) {
      metrics.serverAccept(self, peer.service, 'tcp', 'forbidden');
      socket.destroy();
      return;
    }
    metrics.serverAccept(self, peer.service, 'tcp', 'success');
    const since = clock.now();
    open.add(socket);
    socket.once('close', () => {
      open.delete(socket);
      metrics.serverClosed(self, peer.service, 'tcp', { durationSec: (clock.now() - since) / 1000, bytesSent: socket.bytesWritten, bytesReceived: socket.bytesRead });
    });
    Object.defineProperty(socket, 'trellis', { value: Object.freeze({ peer }), enumerable: true });
    try {
      handler(socket as MeshInboundSocket);
    } catch (err) {
      socket.destroy();
      onWarn(`mesh.listen handler threw: ${err instanceof Error ? err.message : String(err)}`);
    }
  };

  let server: net.Server;
  let offRotation = (): void => undefined;
  if (mode === 'off') {
    server = net.createServer((socket) => {
      deadlines.arm(socket);
      accepted(socket);
    });
  } else {
    const identity = deps.identity;
    if (identity === undefined) throw new NoIdentityError(`mtls ${mode} needs a workload identity to listen`, { service: deps.service });
    await identity.ready();
    const material = identity.current();
    if (material === undefined) throw new NoIdentityError(`mtls is ${mode} but this instance has no valid workload certificate; it will not listen in plaintext in its place`, { service: deps.service });
    let lastWarn = -Infinity;
    const verified = (socket: TLSSocket): void => {
      if (peers.of(socket).verified) {
        accepted(socket);
        return;
      }
      const now = clock.now();
      const reason = now - lastWarn >= 60_000 ? refusalReason(socket, peers.trustDomain) : undefined;
      deps.metrics().serverAccept(self, UNKNOWN_CALLER, 'tcp', 'peer_identity');
      socket.destroy();
      if (reason !== undefined) {
        lastWarn = now;
        onWarn(`TRELLIS_PEER_IDENTITY: refused an inbound TCP connection: its certificate chains to our CA but is not a service SVID of trust domain "${peers.trustDomain}": ${reason}`);
      }
    };
    const tlsOptions: tls.TlsOptions = { ...secureContextOptions(material), requestCert: true, rejectUnauthorized: true, handshakeTimeout: handshakeMs };
    const tlsServer = tls.createServer(tlsOptions, verified);
    // A tls.Server leaves a failed handshake's socket open: end it here (see tls-listener.ts).
    tlsServer.on('tlsClientError', (_err: Error, socket: TLSSocket) => socket.destroy());
    if (mode === 'strict') {
      tlsServer.on('connection', (socket: Socket) => deadlines.arm(socket));
      server = tlsServer;
    } else {
      server = net.createServer((socket) => {
        deadlines.arm(socket);
        peek(socket, (first) => {
          const tlsHandshake = first[0] === 22;
          if (tlsHandshake) tlsServer.emit('connection', socket);
          else {
            // Flowing again before the handler runs (it may pause it); data waits for its listeners.
            socket.resume();
            accepted(socket);
          }
        });
      });
    }
    const onRotated = (): void => {
      const next = identity.current();
      if (next === undefined) return;
      try {
        tlsServer.setSecureContext(secureContextOptions(next));
      } catch (err) {
        onWarn(`certificate rotation refused by TLS, keeping the previous certificate: ${(err as Error).message}`);
      }
    };
    identity.on('rotated', onRotated);
    offRotation = () => identity.off('rotated', onRotated);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const defaultDrain = options.drainTimeoutMs ?? DEFAULT_DRAIN_MS;
  return {
    server,
    address: `${host}:${addr.port}`,
    port: addr.port,
    close(drainTimeoutMs = defaultDrain): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        offRotation();
        deadlines.destroyAll();
        const cut = setTimeout(() => {
          for (const s of open) s.destroy();
        }, drainTimeoutMs);
        cut.unref();
        server.close(() => {
          clearTimeout(cut);
          resolve();
        });
      });
      return closing;
    },
  };
}
