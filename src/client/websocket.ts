/**
 * `mesh.websocket(service, path)`: a `ws` WebSocket to one endpoint of an HTTP service, opened
 * through the upgrade edge (upgrade-stack.ts: the destination's connection stack, the upgrade a
 * `GET path` matched like any request, traced, counted). The mesh opens the connection and
 * hands it to `ws` (its `createConnection` option), which performs the upgrade over it.
 *
 * It resolves once the upgrade completed (`open`). An upgrade the server answers with a status
 * instead of 101 is a result, classified like an HTTP response (a 5xx counts against the
 * endpoint and the breaker, a 403 does not), and rejects: 403 with TRELLIS_FORBIDDEN (the
 * server's authorization refused this caller), anything else with TRELLIS_UPSTREAM_ERROR naming
 * the status (`statusCode` on the error). The upgrade request carries the trace context and is a
 * CLIENT span of its own. Once open, the WebSocket is the caller's: the timeout no longer
 * applies and `mesh.close()` leaves it open.
 */
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { CallSignal } from '../core/call-signal.js';
import { InvalidArgumentError } from '../core/errors.js';
import type { MeshTracer } from '../observability/tracer.js';
import { normalizeHeaders } from './http-request.js';
import type { ConnectionEdgeDeps } from './tcp-connect.js';
import { mapTransportError } from './undici-errors.js';
import { settleOnce, UpgradeStacks } from './upgrade-stack.js';
import type { UpgradeHandshake, UpgradeRequest } from './upgrade-stack.js';

/** The `ws` client options `mesh.websocket()` passes through (the connection itself is the mesh's). */
export type MeshWebSocketClientOptions = Pick<WebSocket.ClientOptions, 'maxPayload' | 'perMessageDeflate' | 'skipUTF8Validation' | 'origin' | 'protocolVersion'>;

/** Per-call options of `mesh.websocket()`. */
export interface WebSocketOptions {
  /** Subprotocols to offer (`Sec-WebSocket-Protocol`). */
  protocols?: string | string[];
  /** Extra headers on the upgrade request (route matching reads them too). */
  headers?: Record<string, string>;
  /** Cancels the opening (not the WebSocket once open). */
  signal?: AbortSignal;
  /** Key for ring-hash balancing. */
  routeKey?: string;
  /** Options for the `ws` client. */
  ws?: MeshWebSocketClientOptions;
}

interface WsUpgradeRequest extends UpgradeRequest {
  readonly protocols: string | string[] | undefined;
  readonly ws: MeshWebSocketClientOptions | undefined;
}

/** The server answered the upgrade with a status instead of switching protocols. */
interface RefusedUpgrade {
  readonly statusCode: number;
}

type UpgradeResult = WebSocket | RefusedUpgrade;

function isRefused(r: UpgradeResult): r is RefusedUpgrade {
  return !(r instanceof WebSocket);
}

const sockets = new WeakMap<WebSocket, Socket>();

/** A path the upgrade can carry: starts with `/`, no whitespace or control characters. */
function checkPath(path: unknown, service: string): string {
  if (typeof path !== 'string' || !path.startsWith('/') || /[\s\u0000-\u001f\u007f]/.test(path)) {
    throw new InvalidArgumentError(`mesh.websocket() needs a path starting with / and without spaces or control characters, got ${JSON.stringify(path)}`, { service });
  }
  return path;
}

/** `ws` performs the upgrade over the connection the mesh opened (its `createConnection` option). */
const wsHandshake: UpgradeHandshake<WsUpgradeRequest, UpgradeResult> = {
  kind: 'websocket',
  scheme: () => 'ws',
  statusOf: (r) => (isRefused(r) ? r.statusCode : 101),
  socketOf: (r) => (isRefused(r) ? undefined : sockets.get(r)),
  discard: (r) => {
    if (!isRefused(r)) r.terminate();
  },
  handshake: (socket, req, ctx, spec) =>
    new Promise<UpgradeResult>((resolve, reject) => {
      const subject = { service: spec.name, endpoint: ctx.endpoint?.id };
      const ws = new WebSocket(`ws://${spec.name}${req.path}`, req.protocols, {
        ...req.ws,
        headers: req.headers,
        followRedirects: false,
        createConnection: () => socket,
      });
      // A caller that aborted before the handshake began ends it here too (it was left to run).
      const settle = settleOnce(ctx.signal, (reason) => {
        ws.on('error', () => undefined);
        ws.terminate();
        socket.destroy();
        reject(reason);
      });
      if (settle === undefined) return;
      ws.once('open', () => {
        if (!settle()) return;
        sockets.set(ws, socket);
        resolve(ws);
      });
      ws.once('unexpected-response', (creq, res) => {
        ws.on('error', () => undefined);
        res.resume();
        creq.destroy();
        socket.destroy();
        if (settle()) resolve({ statusCode: res.statusCode ?? 0 });
      });
      ws.once('error', (err) => {
        socket.destroy();
        if (settle()) reject(mapTransportError(err, subject));
      });
    }),
};

export class WebSocketConnector {
  readonly #stacks: UpgradeStacks<WsUpgradeRequest, UpgradeResult>;

  constructor(deps: ConnectionEdgeDeps, tracer: MeshTracer) {
    this.#stacks = new UpgradeStacks(deps, tracer, wsHandshake);
  }

  /** Opens a WebSocket (see the file comment). */
  async open(service: string, path: string, options: WebSocketOptions = {}): Promise<WebSocket> {
    checkPath(path, service);
    const req: WsUpgradeRequest = { method: 'GET', path, headers: normalizeHeaders(options.headers), protocols: options.protocols, ws: options.ws };
    const signal = options.signal === undefined ? undefined : CallSignal.fromAbortSignal(options.signal);
    return (await this.#stacks.open(service, req, { signal, routeKey: options.routeKey }, 'mesh.websocket()', 'websocket')) as WebSocket;
  }
}
