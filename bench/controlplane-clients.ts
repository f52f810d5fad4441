/**
 * Lightweight instances for `npm run bench -- controlplane`: N streams in one process, each the
 * real client stream (ControlPlaneStream: hello, register, ACK every snapshot at once, ping,
 * reconnect with backoff and jitter) over its own HTTP/2 + mTLS connection, sharing one
 * certificate. Config in TRELLIS_BENCH_CLIENTS (JSON). Exits when its parent goes.
 */
import { ControlPlaneStream } from '../src/controlplane-client/control-plane-stream.js';
import { materialFromPem } from '../src/tls/material.js';

const cfg = JSON.parse(process.env.TRELLIS_BENCH_CLIENTS ?? '{}') as { url: string; count: number; offset: number; ca: string; cert: string; key: string; trustDomain: string };
const material = materialFromPem({ ca: cfg.ca, cert: cfg.cert, key: cfg.key }, { trustDomain: cfg.trustDomain, service: 'bench' });
const streams: ControlPlaneStream[] = [];
for (let i = 0; i < cfg.count; i++) {
  let have: string | null = null;
  const id = cfg.offset + i;
  const s = new ControlPlaneStream({
    urls: [cfg.url],
    service: 'bench',
    instance: `bench-${id}`,
    labels: {},
    agent: 'bench',
    trust: () => ({ bundlePem: cfg.ca, trustDomain: cfg.trustDomain }),
    material: () => material,
    onSnapshot: async (snap) => {
      have = snap.version;
      return undefined;
    },
    have: () => have,
    onState: () => {},
    onWarn: () => {},
    random: Math.random,
  });
  s.register([{ address: `127.0.0.1:${20_000 + id}`, protocol: 'http' }]);
  s.start();
  streams.push(s);
  // Spread the first connections a little, as instances start at different times.
  if (i % 50 === 49) await new Promise((r) => setTimeout(r, 20));
}
process.on('disconnect', () => {
  for (const s of streams) s.close();
  process.exit(0);
});
process.send?.({ started: cfg.count });
// The streams' timers are unref'd: keep the process alive while the parent is.
setInterval(() => {}, 1 << 30);
