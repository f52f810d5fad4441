/**
 * The /metrics endpoint: a node:http handler serving a prom-client registry in its exposition
 * format (Prometheus text, or OpenMetrics for an OpenMetrics registry), with the registry's own
 * content type. The mesh exposes it as `mesh.metricsHandler()`; an application that already
 * serves its registry needs nothing from here, since MeshMetrics writes into that registry.
 *
 * GET and HEAD only (405 otherwise). A failing collector answers 500 with the reason, never
 * throws into the server.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AnyRegistry } from './metrics.js';

/**
 * Builds the handler.
 *
 * @example
 * http.createServer(metricsHandler(mesh.metrics.registry)).listen(9464, '127.0.0.1');
 */
export function metricsHandler(registry: AnyRegistry): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
      res.end('method not allowed\n');
      return;
    }
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': registry.contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: unknown) => {
        if (res.headersSent) {
          res.destroy();
          return;
        }
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`collecting metrics failed: ${err instanceof Error ? err.message : String(err)}\n`);
      },
    );
  };
}
