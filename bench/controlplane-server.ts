/**
 * The control plane of `npm run bench -- controlplane`: the real one (`startControlPlane`, the
 * embedded store in the data directory given, no dashboard) in its own process, so its CPU and
 * memory are its own and it can be SIGKILLed and started again on the same data and port.
 *
 * argv: DATA_DIR PORT. Prints one line `READY {"url","port","pin","adminTokenPath"}` once it
 * listens. Over IPC, `{ cmd: 'mem' }` answers `process.memoryUsage()` after a full GC (run with
 * --expose-gc) and the instances connected (the sync gauge). Exits when its parent goes.
 */
import { startControlPlane } from '../src/controlplane/control-plane.js';

const [dataDir, port] = process.argv.slice(2);
if (dataDir === undefined || port === undefined) throw new Error('usage: controlplane-server.ts DATA_DIR PORT');
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);

const cp = await startControlPlane({ dataDir, listen: `127.0.0.1:${port}`, onWarn: (m) => process.stderr.write(`control plane: ${m}\n`) });
process.on('disconnect', () => process.exit(0));
process.on('message', (raw) => {
  const msg = raw as { cmd: string };
  if (msg.cmd !== 'mem') return;
  void cp.registry.getSingleMetric('trellis_controlplane_connected_instances')?.get().then((g) => {
    gc();
    process.send?.({ mem: process.memoryUsage(), connected: g.values[0]?.value ?? 0 });
  });
});
process.stdout.write(`READY ${JSON.stringify({ url: cp.url, port: cp.port, pin: cp.caPin, adminTokenPath: cp.adminTokenPath })}\n`);
