/**
 * `mesh.serve(handler, { port, host })`: serves a node:http handler or an Express app behind the
 * whole inbound stack (src/server/inbound-security.ts, then src/server/inbound-stack.ts) on a
 * mesh listener: mTLS (strict), mTLS and plaintext on one port (permissive), or plaintext (off),
 * with live certificate rotation. HTTP/1.1 and HTTP/2 share the port (ALPN over TLS, prior
 * knowledge over plaintext); an HTTP/2 request reaches the handler through node:http2's
 * compatibility API, and an Express app through express-http2.ts. `close()` stops accepting, lets requests in flight finish up
 * to a grace period, then cuts what remains.
 */
import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MtlsMode } from '../config/types.js';
import { NoIdentityError } from '../core/errors.js';
import type { IdentityProvider } from '../tls/identity.js';
import type { NodeHandler } from './inbound-stack.js';
import { http2Ready } from './express-http2.js';
import { meshInboundHandler } from './inbound-security.js';
import type { MeshInboundDeps } from './inbound-security.js';
import { createMeshListener } from './tls-listener.js';
import type { ListenerTimeouts } from './tls-listener.js';

export type RequestHandler = NodeHandler;

export interface ServeOptions {
  port?: number;
  host?: string;
  /** How long close() waits for requests in flight (default 10 s). */
  drainTimeoutMs?: number;
  /** Slow-client limits (headers 10 s, request 30 s, TLS handshake 10 s by default). */
  timeouts?: Partial<ListenerTimeouts>;
  /** Connections older than this close after their next response (default 5 min), so rotated certificates take over. */
  maxConnectionAgeMs?: number;
}

/** How long serve() waits for a first valid certificate. */
const IDENTITY_WAIT_MS = 30_000;

export interface ServeDeps extends MeshInboundDeps {
  mode: MtlsMode;
  identity: IdentityProvider | undefined;
  onWarn: (message: string) => void;
}

export interface MeshServer {
  readonly server: http.Server;
  /** The bound address (`127.0.0.1:8443`). */
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

export async function serve(handler: RequestHandler, options: ServeOptions, deps: ServeDeps): Promise<MeshServer> {
  if (deps.mode !== 'off') {
    if (deps.identity === undefined) throw new NoIdentityError(`mtls ${deps.mode} needs a workload identity to serve`, { service: deps.service });
    // Bounded: an identity that never becomes valid fails serve() closed instead of hanging it.
    const identity = deps.identity;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new NoIdentityError(`no valid workload certificate after ${IDENTITY_WAIT_MS} ms; refusing to serve without one (mtls ${deps.mode})`, { service: deps.service })), IDENTITY_WAIT_MS);
      t.unref();
      identity.ready().then(
        () => {
          clearTimeout(t);
          resolve();
        },
        (err: unknown) => {
          clearTimeout(t);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
  }
  const server = createMeshListener(meshInboundHandler(http2Ready(handler), deps), {
    mode: deps.mode,
    identity: deps.identity,
    trustDomain: deps.peers.trustDomain,
    peers: deps.peers,
    clock: deps.clock,
    onWarn: deps.onWarn,
    service: deps.service,
    timeouts: options.timeouts,
    maxConnectionAgeMs: options.maxConnectionAgeMs,
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const drainMs = options.drainTimeoutMs ?? 10_000;
  let closing: Promise<void> | undefined;
  return {
    server,
    address: `${host}:${addr.port}`,
    port: addr.port,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.closeAllConnections(), drainMs);
        timer.unref();
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}
