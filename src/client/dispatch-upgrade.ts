/**
 * Upgrade requests through `mesh.dispatcher` and `mesh.http(service)`: a dispatch whose options
 * carry `upgrade` (undici's `upgrade()`, `mesh.http(service).upgrade()`, and undici's own
 * `WebSocket` given `{ dispatcher: mesh.dispatcher }`, whose handshake is a fetch with
 * `upgrade: 'websocket'`). It goes through the upgrade edge (upgrade-stack.ts: route, timeout,
 * retry, rate limit, breaker, balancer, tracing, endpoint, mTLS, connection metrics), the same
 * one `mesh.websocket()` takes; only the handshake differs: undici's own HTTP/1.1 client (a
 * one-request `Client` over the connection the mesh opened) writes the request and parses the
 * answer, so headers are written and read exactly as undici does for any upgrade.
 *
 * The caller's handler gets what an undici dispatcher gives it: `onConnect(abort)` (or
 * `onRequestStart`) at once, then `onUpgrade(101, rawHeaders, socket)` (or `onRequestUpgrade`)
 * once the connection switched, the socket carrying any bytes the server sent after its 101. An
 * answer other than 101 is an error (`onError`/`onResponseError`): TRELLIS_FORBIDDEN for 403,
 * TRELLIS_UPSTREAM_ERROR otherwise, `statusCode` on both; so `undici.upgrade()` rejects with it
 * and a WebSocket fails its handshake. An upgrade carries no request body (refused before the
 * stack by request-validation.ts).
 */
import type { Socket } from 'node:net';
import { Client, util } from 'undici';
import type { Dispatcher } from 'undici';
import type { IncomingHttpHeaders } from 'node:http';
import { CallController } from '../core/call-signal.js';
import { AbortedError, InvalidArgumentError } from '../core/errors.js';
import type { MeshTracer } from '../observability/tracer.js';
import type { ConnectionProtocol } from '../observability/connection-metrics.js';
import { failHandler } from './caller-handler.js';
import { normalizeHeaders } from './http-request.js';
import type { ConnectionEdgeDeps } from './tcp-connect.js';
import { mapTransportError } from './undici-errors.js';
import { settleOnce, UpgradeStacks } from './upgrade-stack.js';
import type { UpgradeHandshake, UpgradeRequest } from './upgrade-stack.js';

/** Sends an upgrade dispatch to `service` through the mesh (see the file comment). */
export type UpgradeDispatch = (service: string, opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler) => boolean;

interface DispatchUpgradeRequest extends UpgradeRequest {
  /** The `Upgrade` header: the protocol asked for. */
  readonly upgrade: string;
  readonly headersTimeout: number | undefined;
  /** undici's `query` option, appended to the path as undici does. */
  readonly query: Record<string, unknown> | undefined;
}

/** The server's answer: switched (with the connection) or refused with a status. */
interface UpgradeAnswer {
  readonly statusCode: number;
  readonly rawHeaders: Buffer[];
  readonly socket: Socket | undefined;
}

/** The metric label: `websocket` for WebSockets, `upgrade` for any other protocol (bounded). */
function protocolLabel(upgrade: string): ConnectionProtocol {
  return upgrade.toLowerCase() === 'websocket' ? 'websocket' : 'upgrade';
}

/** undici's Client sends the upgrade over the connection the mesh opened, and parses the answer. */
const undiciHandshake: UpgradeHandshake<DispatchUpgradeRequest, UpgradeAnswer> = {
  kind: 'upgrade',
  scheme: (req) => (req.upgrade.toLowerCase() === 'websocket' ? 'ws' : 'http'),
  statusOf: (a) => a.statusCode,
  socketOf: (a) => a.socket,
  discard: (a) => a.socket?.destroy(),
  handshake: (socket, req, ctx, spec) =>
    new Promise<UpgradeAnswer>((resolve, reject) => {
      const subject = { service: spec.name, endpoint: ctx.endpoint?.id };
      // Host is the service, as on every mesh request; the connection is the one already open.
      const client = new Client(`http://${spec.name}`, {
        // Called back later, as a real connect is: undici's resume loop, in which it asks for the
        // connection, only writes the request on the next resume.
        connect: (_opts, cb) => {
          queueMicrotask(() => cb(null, socket));
        },
        pipelining: 1,
      });
      const close = (): void => {
        setImmediate(() => void client.destroy().catch(() => undefined));
      };
      const settle = settleOnce(ctx.signal, (reason) => {
        socket.destroy();
        close();
        reject(reason);
      });
      if (settle === undefined) return;
      client.on('connectionError', () => undefined);
      client.dispatch(
        { path: req.path, method: req.method, headers: req.headers, upgrade: req.upgrade, query: req.query, ...(req.headersTimeout !== undefined ? { headersTimeout: req.headersTimeout } : {}) },
        {
          onConnect: () => undefined,
          onHeaders: (statusCode, rawHeaders) => {
            // Not switched: the status is the answer; the body is not read.
            if (statusCode < 200) return true;
            if (settle()) resolve({ statusCode, rawHeaders, socket: undefined });
            close();
            return false;
          },
          onData: () => true,
          onComplete: () => undefined,
          onUpgrade: (statusCode, rawHeaders, upgraded) => {
            const raw = (rawHeaders ?? []) as Buffer[];
            if (!settle()) {
              upgraded.destroy();
              return;
            }
            resolve({ statusCode, rawHeaders: raw, socket: upgraded as Socket });
            close();
          },
          onError: (err) => {
            socket.destroy();
            close();
            if (settle()) reject(mapTransportError(err, subject));
          },
        },
      );
    }),
};

/** The `DispatchController` handed to controller-style handlers; `abort` cancels the upgrade. */
class UpgradeController implements Dispatcher.DispatchController {
  #reason: Error | null = null;
  readonly #onAbort: (reason: Error) => void;
  constructor(onAbort: (reason: Error) => void) {
    this.#onAbort = onAbort;
  }
  get aborted(): boolean {
    return this.#reason !== null;
  }
  get paused(): boolean {
    return false;
  }
  get reason(): Error | null {
    return this.#reason;
  }
  abort(reason: Error): void {
    if (this.#reason !== null) return;
    this.#reason = reason;
    this.#onAbort(reason);
  }
  pause(): void {}
  resume(): void {}
}

export class UpgradeDispatcher {
  readonly #stacks: UpgradeStacks<DispatchUpgradeRequest, UpgradeAnswer>;

  constructor(deps: ConnectionEdgeDeps, tracer: MeshTracer) {
    this.#stacks = new UpgradeStacks(deps, tracer, undiciHandshake);
  }

  /** Dispatches one upgrade (see the file comment). The options were validated by the caller. */
  readonly dispatch: UpgradeDispatch = (service, opts, handler) => {
    // The controller API when the handler speaks it (as caller-handler.ts decides); fetch's
    // handler has onRequestUpgrade beside the legacy callbacks, so that alone does not decide.
    const modern = typeof handler.onRequestStart === 'function' || typeof handler.onResponseStart === 'function' || typeof handler.onResponseError === 'function';
    if (typeof handler.onUpgrade !== 'function' && typeof handler.onRequestUpgrade !== 'function') {
      failHandler(handler, new InvalidArgumentError('an upgrade needs a handler with onUpgrade (use undici.upgrade(), mesh.http(service).upgrade() or a WebSocket)', { service }));
      return true;
    }
    const ac = new CallController();
    const controller = new UpgradeController((reason) => ac.abort(reason));
    const fail = (err: Error): void => {
      if (modern) handler.onResponseError?.(controller, err);
      else handler.onError?.(err);
    };
    if (modern) handler.onRequestStart?.(controller, {});
    else handler.onConnect?.((err?: Error) => controller.abort(err ?? new AbortedError('the upgrade was aborted by its handler', { service })));
    const upgrade = String(opts.upgrade);
    const req: DispatchUpgradeRequest = {
      method: opts.method ?? 'GET',
      path: opts.path,
      headers: normalizeHeaders(opts.headers),
      upgrade,
      headersTimeout: typeof opts.headersTimeout === 'number' ? opts.headersTimeout : undefined,
      query: opts.query ?? undefined,
    };
    const routeKey = (opts as { routeKey?: unknown }).routeKey;
    this.#stacks.open(service, req, { signal: ac.signal, routeKey: typeof routeKey === 'string' ? routeKey : undefined }, 'an upgrade', protocolLabel(upgrade)).then(
      (answer) => {
        const socket = answer.socket as Socket;
        try {
          if (typeof handler.onUpgrade === 'function' && !(modern && typeof handler.onRequestUpgrade === 'function')) handler.onUpgrade(answer.statusCode, answer.rawHeaders, socket);
          else handler.onRequestUpgrade?.(controller, answer.statusCode, util.parseHeaders(answer.rawHeaders) as IncomingHttpHeaders, socket);
        } catch (err) {
          // The handler refused the socket: it is nobody's.
          socket.destroy(err instanceof Error ? err : undefined);
        }
      },
      (err: unknown) => fail(err instanceof Error ? err : new Error(String(err))),
    );
    return true;
  };
}
