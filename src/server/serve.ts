/**
 * `mesh.serve(handler, { port, host })`: serves a node:http handler or an Express app behind the
 * inbound stack (src/server/inbound-stack.ts). `close()` stops accepting, lets requests in
 * flight finish up to a grace period, then cuts what remains.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { inboundHandler } from './inbound-stack.js';
import type { InboundDeps, NodeHandler } from './inbound-stack.js';

export type RequestHandler = NodeHandler;

export interface ServeOptions {
  port?: number;
  host?: string;
  /** How long close() waits for requests in flight (default 10 s). */
  drainTimeoutMs?: number;
}

export interface MeshServer {
  readonly server: http.Server;
  /** The bound address (`127.0.0.1:8443`). */
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

export async function serve(handler: RequestHandler, options: ServeOptions, deps: InboundDeps): Promise<MeshServer> {
  const server = http.createServer(inboundHandler(handler, deps));
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
