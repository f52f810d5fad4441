/**
 * The control-plane side of `npm run bench -- controlplane`: the sync module on the test fixture
 * server (HTTP/2 + mTLS) over a MemoryStore, in its own process so its CPU and memory are its
 * own and it can be SIGKILLed and restarted. Driven over IPC by bench/controlplane-fanout.ts:
 *   { cmd: 'stats' }          → { cpuUs, rss, connected }
 *   { cmd: 'apply' }          → commits a change to Service `bench`, waits until every connected
 *                               instance ACKed it, → { revision, latenciesMs } (ackedAt − commit)
 *   { cmd: 'sample', ms, target } → CPU use sampled every 100 ms for `ms` (longer until `target`
 *                               instances are connected): { peakPct, meanPct, allBackMs } with
 *                               allBackMs from this process listening to `target` connected
 * Exits when its parent goes (IPC channel closed).
 */
import { createPrivateKey } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { assembleAuthority } from '../src/tls/authority.js';
import { pemDecodeAll } from '../src/tls/pem.js';
import { KEYS } from '../src/controlplane/store/store.js';
import type { InstanceStatus } from '../src/controlplane/store/store.js';
import { MemoryStore, putResources, meshDoc, serviceDoc, startCpFixture } from '../test/helpers/control-plane-fixture.js';
import type { CaMaterial } from '../test/helpers/control-plane-fixture.js';

export interface ExportedMaterial {
  anchorPem: string;
  issuerPem: string;
  issuerKeyPem: string;
  tokenKeyPem: string;
  pin: string;
  serving: { cert: string; key: string };
}

const exported = JSON.parse(process.env.TRELLIS_BENCH_MATERIAL ?? '{}') as ExportedMaterial;
const port = Number(process.argv[2] ?? 0);
const der = (pem: string): Buffer => (pemDecodeAll(pem, 'CERTIFICATE')[0] as { der: Buffer }).der;
const material: CaMaterial = {
  ca: assembleAuthority({ anchorDer: der(exported.anchorPem), anchorKey: undefined, issuerDer: der(exported.issuerPem), issuerKey: createPrivateKey(exported.issuerKeyPem) }),
  tokenKey: createPrivateKey(exported.tokenKeyPem),
  pin: exported.pin,
  serving: exported.serving,
};
const store = new MemoryStore();
await putResources(store, [meshDoc(), serviceDoc('bench', { endpoints: [{ address: '127.0.0.1:9' }], timeout: '1s' })]);
const cp = await startCpFixture({ material, store, port });
const listeningAt = performance.now();
let timeoutS = 1;

process.on('disconnect', () => process.exit(0));
process.on('message', (raw) => {
  const msg = raw as { cmd: string; ms?: number; target?: number };
  void (async () => {
    if (msg.cmd === 'stats') {
      const u = process.cpuUsage();
      process.send?.({ cpuUs: u.user + u.system, rss: process.memoryUsage().rss, connected: cp.sync.connected() });
    } else if (msg.cmd === 'apply') {
      timeoutS++;
      const pushes = async (): Promise<number> => (await cp.registry.getSingleMetric('trellis_controlplane_pushes_total')?.get())?.values[0]?.value ?? 0;
      const before = await pushes();
      const want = cp.sync.connected();
      const committedAt = Date.now();
      const revision = await putResources(store, [serviceDoc('bench', { endpoints: [{ address: '127.0.0.1:9' }], timeout: `${timeoutS}s` })]);
      // When the last snapshot was written to its stream (the replica's share of the latency).
      while ((await pushes()) < before + want) await new Promise((r) => setTimeout(r, 2));
      const sentMs = Date.now() - committedAt;
      for (;;) {
        const { entries } = await store.list<InstanceStatus>(KEYS.statuses);
        const acked = entries.filter((e) => e.value.acked === String(revision));
        if (acked.length >= want) {
          process.send?.({ revision, sentMs, latenciesMs: acked.map((e) => (e.value.ackedAt ?? 0) - committedAt) });
          return;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    } else if (msg.cmd === 'sample') {
      const samples: number[] = [];
      let last = process.cpuUsage();
      let at = performance.now();
      const end = at + (msg.ms ?? 1000);
      const target = msg.target ?? 0;
      let allBackMs: number | undefined;
      while (performance.now() < end || allBackMs === undefined) {
        if (allBackMs === undefined && cp.sync.connected() >= target) allBackMs = performance.now() - listeningAt;
        await new Promise((r) => setTimeout(r, 100));
        const u = process.cpuUsage(last);
        const now = performance.now();
        samples.push(((u.user + u.system) / 1000 / (now - at)) * 100);
        last = process.cpuUsage();
        at = now;
      }
      process.send?.({ peakPct: Math.max(...samples), meanPct: samples.reduce((a, b) => a + b, 0) / samples.length, allBackMs });
    }
  })();
});
process.stdout.write(`PORT ${cp.port}\n`);
