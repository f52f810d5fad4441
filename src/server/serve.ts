/**
 * `mesh.serve(handler, { port, host })`: serves a node:http handler or an Express app with the
 * inbound side of the mesh. Today that is the ambient context (the caller's deadline flows into
 * the handler's outbound calls); identity, authorization, rate limits and metrics join the
 * inbound stack as their issues land. `close()` stops accepting, lets requests in flight finish
 * up to a grace period, then cuts what remains.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Clock } from '../core/clock.js';
import { runWithAmbient } from '../core/ambient.js';
import { inboundAmbient } from './inbound-context.js';

export type RequestHandler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

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

export async function serve(handler: RequestHandler, options: ServeOptions, deps: { clock: Clock; service: string | undefined }): Promise<MeshServer> {
  const server = http.createServer((req, res) => {
    runWithAmbient(inboundAmbient(req.headers, deps.clock, deps.service), () => handler(req, res));
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
