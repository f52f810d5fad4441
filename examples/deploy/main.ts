/**
 * The entry point the deployment examples run (docker compose, systemd, Kubernetes): one meshed
 * service configured entirely from the environment, so the same code runs as any service.
 *
 *   TRELLIS_SERVICE   this workload's service name (required)
 *   TRELLIS_CONFIG    the shared mesh.yaml (default /etc/trellis/mesh.yaml)
 *   TRELLIS_TLS_DIR   a directory written by `trellis cert issue` (ca.pem, svc.pem, svc.key);
 *                     without it the instance has no identity (only for `mtls: off` meshes)
 *   PORT, HOST        where to serve (default 8443 on 0.0.0.0)
 *
 * SIGTERM (what docker, systemd and Kubernetes send) closes the mesh: the server stops taking
 * connections, in-flight requests finish, pools and timers close, and the process exits 0.
 *
 * Run:  TRELLIS_SERVICE=products TRELLIS_CONFIG=examples/deploy/mesh.yaml \
 *         node --import tsx examples/deploy/main.ts
 */
import path from 'node:path';
import { meshClient } from 'trellis';

const service = process.env['TRELLIS_SERVICE'];
if (service === undefined || service === '') {
  console.error('TRELLIS_SERVICE is not set: it names this workload (e.g. TRELLIS_SERVICE=products)');
  process.exit(2);
}
const tlsDir = process.env['TRELLIS_TLS_DIR'];
const mesh = await meshClient({
  service,
  config: process.env['TRELLIS_CONFIG'] ?? '/etc/trellis/mesh.yaml',
  ...(tlsDir !== undefined && tlsDir !== ''
    ? { tls: { ca: path.join(tlsDir, 'ca.pem'), cert: path.join(tlsDir, 'svc.pem'), key: path.join(tlsDir, 'svc.key') } }
    : {}),
});

const server = await mesh.serve(
  (req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ service, path: req.url, caller: req.trellis?.peer.service ?? 'unknown' }));
  },
  { port: Number(process.env['PORT'] ?? 8443), host: process.env['HOST'] ?? '0.0.0.0' },
);
console.log(`${service} serving on ${server.address}`);

process.once('SIGTERM', () => {
  void mesh.close().then(() => process.exit(0));
});
