/**
 * An instance in its own process, configured by the control plane (so a test can SIGKILL it):
 * `meshClient({ service, controlPlane, token, cacheDir })` then `mesh.serve` answering
 * `{ server: NAME }`. Prints `PORT <n>` once serving; on SIGTERM closes the mesh (deregisters,
 * drains) and exits 0.
 * Usage: node --import tsx cp-instance-process.ts NAME SERVICE URL[,URL] TOKEN|- CACHEDIR [PORT]
 */
import { meshClient } from '../../src/mesh-client.js';

const [name = 'inst', service = 'products', urls = '', token = '-', cacheDir = '', port = '0'] = process.argv.slice(2);
const mesh = await meshClient({
  service,
  controlPlane: urls.split(','),
  ...(token !== '-' ? { token } : {}),
  cacheDir,
  labels: { name },
  logger: { warn: (m) => process.stderr.write(`[${name}] ${m}\n`) },
});
const server = await mesh.serve((req, res) => {
  req.resume();
  res.setHeader('x-server', name);
  res.end(JSON.stringify({ server: name }));
}, { port: Number(port) });
process.stdout.write(`PORT ${server.port}\n`);
process.on('SIGTERM', () => {
  void mesh.close({ drainTimeoutMs: 2000 }).then(() => process.exit(0));
});
