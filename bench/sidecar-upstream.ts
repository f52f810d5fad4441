/**
 * The upstream of the sidecar and latency benches, in a child process so its CPU is measured
 * apart (/proc/<pid>/stat): one plain node:http server (what the direct and HAProxy paths
 * reach) and the same handler served by `mesh.serve()` as service `products` with strict mTLS
 * (what the Trellis path reaches: TLS, identity check and the inbound stack run here, as they
 * would in a real meshed upstream). Prints `PORTS <plain> <mesh>` once both listen, and
 * `CONNS <plain> <mesh>` (connections accepted so far) for each line it reads. Exits when
 * its stdin closes (the bench ended or died), on SIGTERM/SIGINT, or after a hard limit.
 *
 * Usage: node --import tsx bench/sidecar-upstream.ts CERT_DIR MAX_SECONDS
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { meshClient } from 'trellis';
import { okHandler } from './ok-handler.js';

const dir = process.argv[2] ?? '.';
const maxSeconds = Number(process.argv[3] ?? 300);

const plain = http.createServer(okHandler);
plain.keepAliveTimeout = 60_000;
await new Promise<void>((resolve, reject) => {
  plain.once('error', reject);
  plain.listen(0, '127.0.0.1', () => resolve());
});

const mesh = await meshClient({
  service: 'products',
  config: `apiVersion: trellis/v1
kind: Mesh
metadata: { name: default }
spec: { trustDomain: bench.local, mtls: strict }
---
apiVersion: trellis/v1
kind: Service
metadata: { name: products }
spec: { protocol: http }
`,
  tls: { ca: path.join(dir, 'ca.pem'), cert: path.join(dir, 'products.pem'), key: path.join(dir, 'products.key') },
  logger: { warn: (m) => process.stderr.write(`[upstream trellis] ${m}\n`) },
});
const served = await mesh.serve(okHandler, { port: 0, host: '127.0.0.1' });
served.server.keepAliveTimeout = 60_000;

// Connections accepted by each server: the bench prints them per round, to show keep-alive holds.
let plainConns = 0;
let meshConns = 0;
plain.on('connection', () => plainConns++);
served.server.on('connection', () => meshConns++);

process.stdout.write(`PORTS ${(plain.address() as AddressInfo).port} ${served.port}\n`);

function stop(): void {
  plain.closeAllConnections();
  plain.close();
  served.server.closeAllConnections();
  void mesh.close({ drainTimeoutMs: 0 }).finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
}

// A line on stdin asks for the counts: answered `CONNS <plain> <mesh>`.
process.stdin.on('data', () => process.stdout.write(`CONNS ${plainConns} ${meshConns}\n`));
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setTimeout(stop, maxSeconds * 1000).unref();
