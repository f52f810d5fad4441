/**
 * Upgrade requests (WebSockets) on a `mesh.serve` server — or on a server the application owns,
 * given to `mesh.advertise()` or served by a `mesh.fastify()` app — pass the inbound side before
 * any 'upgrade' listener (a `ws` WebSocketServer attached to the server) sees them. node:http
 * hands an upgrade to 'upgrade' listeners directly, around the request handler and so around the
 * inbound stack: without this guard a WebSocket endpoint would skip authorization.
 *
 * Order, as for requests: the connection's TLS identity (already verified by the mesh listener:
 * strict mTLS refused a plaintext or foreign client before any byte of HTTP) → identity headers
 * stripped (`x-forwarded-client-cert`, `x-trellis-*`) → authorization (caller, `GET`, path, as
 * src/server/authorization.ts reads them). A refused upgrade gets a proper HTTP answer before
 * any handshake — `403` with the same body as a refused request, `Connection: close` — and the
 * socket closes; the listeners never see it. An allowed one carries `req.trellis.peer` (so a
 * `ws` server's `connection` handler knows the caller) and is counted in the connection metrics
 * (`protocol: websocket`) until its socket closes. Either way the upgrade is a SERVER span whose
 * parent is the caller's (its `traceparent`), ended once the listeners took the socket.
 */
import type { Server as NetServer } from 'node:net';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Clock } from '../core/clock.js';
import type { ConnectionMetrics } from '../observability/connection-metrics.js';
import type { Authorizer } from './authorization.js';
import { forbiddenBody } from './authorization.js';
import { stripIdentityHeaders } from './identity-headers.js';
import type { PeerResolver } from './peer.js';
import { UNKNOWN_CALLER } from './peer.js';
import type { Socket } from 'node:net';
import type { MeshTracer } from '../observability/tracer.js';
import { startServerSpan } from '../observability/tracing-inbound.js';

export interface UpgradeGuardDeps {
  service: string | undefined;
  peers: PeerResolver;
  clock: Clock;
  /** The authorizer in force (read per upgrade, so a reload applies at once). */
  authorizer: () => Authorizer | undefined;
  metrics: () => ConnectionMetrics;
  tracer: MeshTracer;
}

function forbidden(socket: Duplex, service: string | undefined): void {
  const body = forbiddenBody(service);
  socket.on('error', () => undefined);
  socket.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  const t = setTimeout(() => socket.destroy(), 1000);
  t.unref();
  socket.once('close', () => clearTimeout(t));
}

/**
 * Puts the inbound side in front of `server`'s 'upgrade' listeners (see the file comment). Any
 * node:http or https server: mesh.serve's, or one the application owns (Express's
 * `app.listen()`, Fastify's `fastify.server`) handed over through mesh.advertise / mesh.fastify().
 */
export function guardUpgrades(server: NetServer, deps: UpgradeGuardDeps): void {
  const self = deps.service ?? UNKNOWN_CALLER;
  const emit = server.emit;
  // Every event of the server passes here ('request' included): no rest array, one comparison.
  server.emit = function (this: NetServer, event: string | symbol, req?: unknown, socket?: unknown): boolean {
    // eslint-disable-next-line prefer-rest-params
    if (event !== 'upgrade') return Reflect.apply(emit, this, arguments) as boolean;
    return upgrade(this, arguments, req as IncomingMessage, socket as Duplex);
  } as typeof server.emit;

  const upgrade = (target: NetServer, args: IArguments, req: IncomingMessage, socket: Duplex): boolean => {
    const peer = deps.peers.of(req.socket);
    stripIdentityHeaders(req);
    const authz = deps.authorizer();
    const metrics = deps.metrics();
    // The upgrade is a SERVER span, child of the caller's upgrade span (its traceparent).
    const span = startServerSpan(deps.tracer, req, deps.service);
    if (authz !== undefined && authz.enabled && !authz.authorize({ caller: peer.service, method: req.method ?? '', path: req.url ?? '' }).allowed) {
      metrics.serverAccept(self, peer.service, 'websocket', 'forbidden');
      forbidden(socket, deps.service);
      span.end(403);
      return true;
    }
    req.trellis = { peer };
    metrics.serverAccept(self, peer.service, 'websocket', 'success');
    const since = deps.clock.now();
    const s = socket as Socket;
    socket.once('close', () => {
      metrics.serverClosed(self, peer.service, 'websocket', { durationSec: (deps.clock.now() - since) / 1000, bytesSent: s.bytesWritten ?? 0, bytesReceived: s.bytesRead ?? 0 });
    });
    try {
      return span.run(() => Reflect.apply(emit, target, args) as boolean);
    } finally {
      // The listener took the socket over (a ws server answers 101 or refuses it itself).
      span.end(101);
    }
  };
}
