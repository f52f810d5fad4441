/**
 * Simulated instances of `npm run bench -- controlplane`: a slice of the fleet of
 * bench/controlplane-topology.ts in one process, each the real client stream
 * (`ControlPlaneStream`: HTTP/2 + mTLS on its own connection, hello, register of its endpoint,
 * an ACK for every snapshot as soon as it is read, a ping every 5 s, a report on the same tick
 * when reports are on, reconnection with the real backoff). Instances of one service share that
 * service's certificate (bootstrapped by the orchestrator through /v1/tokens and
 * /v1/certificates). No configuration is built from the snapshots: what is measured is the
 * control plane's side, and the time a snapshot takes to arrive.
 *
 * Each instance records when it received each snapshot (epoch ms, read on arrival, before the
 * ACK) and when its stream last became connected. Commands over IPC (ClientCommand) are answered
 * with one message each. Config in TRELLIS_BENCH_CLIENTS (ClientsConfig). Exits with its parent.
 */
import { performance } from 'node:perf_hooks';
import { ENDPOINTS_EVERY } from '../src/controlplane-client/fleet-report.js';
import { ControlPlaneStream } from '../src/controlplane-client/control-plane-stream.js';
import { materialFromPem, type TlsMaterial } from '../src/tls/material.js';
import { instanceOf, reportOf, serviceName, type ClientCommand, type ClientsConfig, type ReachedAnswer, type ReportSizesAnswer, type SimInstance, type StateAnswer } from './controlplane-topology.js';

const cfg = JSON.parse(process.env.TRELLIS_BENCH_CLIENTS ?? '{}') as ClientsConfig;
const wall = (): number => performance.timeOrigin + performance.now();
const KEEP = 64;

interface Sim {
  readonly inst: SimInstance;
  readonly stream: ControlPlaneStream;
  have: string | null;
  /** Versions received (numbers) and when, newest last, at most KEEP. */
  readonly versions: number[];
  readonly times: number[];
  connectedAt: number;
  reportSeq: number;
  reportFrom: number;
}

let reportsOn = false;
const sizes: ReportSizesAnswer = { plain: { count: 0, bytes: 0 }, lists: { count: 0, bytes: 0 } };
let snapshots = 0;
/** Why streams dropped or failed to connect, by reason (digits folded, so counts group). */
const reasons = new Map<string, number>();
let snapshotBytes = 0;

const materials = new Map<string, TlsMaterial>();
for (const [service, c] of Object.entries(cfg.certificates)) materials.set(service, materialFromPem({ ca: cfg.bundlePem, cert: c.cert, key: c.key }, { trustDomain: cfg.trustDomain, service }));

const sims: Sim[] = [];
for (let index = cfg.from; index < cfg.to; index++) {
  const inst = instanceOf(index);
  const service = serviceName(inst.service);
  const material = materials.get(service);
  const notAfter = cfg.certificates[service]?.notAfter ?? 0;
  const sim: Sim = {
    inst,
    have: null,
    versions: [],
    times: [],
    connectedAt: 0,
    reportSeq: 0,
    reportFrom: 0,
    stream: new ControlPlaneStream({
      urls: [cfg.url],
      service,
      instance: inst.id,
      labels: inst.labels,
      agent: 'trellis-bench/0.1.0',
      trust: () => ({ bundlePem: cfg.bundlePem, trustDomain: cfg.trustDomain }),
      material: () => material,
      onSnapshot: async (snap) => {
        const at = wall();
        // One snapshot in 100 is measured (its JSON as sent, near enough): the size of a view.
        if (snapshots++ % 100 === 0) snapshotBytes = Buffer.byteLength(JSON.stringify(snap)) + 1;
        sim.have = snap.version;
        sim.versions.push(Number(snap.version));
        sim.times.push(at);
        if (sim.versions.length > KEEP) {
          sim.versions.shift();
          sim.times.shift();
        }
        return undefined;
      },
      have: () => sim.have,
      onState: (e) => {
        if (e.state === 'connected') sim.connectedAt = wall();
        else if (e.state === 'disconnected' && e.reason !== undefined) {
          const r = e.reason.replace(/\d+/g, 'N').slice(0, 120);
          reasons.set(r, (reasons.get(r) ?? 0) + 1);
        }
      },
      onWarn: () => {},
      reportSource: () => {
        if (!reportsOn) return undefined;
        const now = Date.now();
        const seq = sim.reportSeq++;
        const report = reportOf(inst, seq, sim.reportFrom, now, notAfter);
        sim.reportFrom = now;
        // The line the stream writes: {...report, type} as JSON plus a newline.
        const kind = seq % ENDPOINTS_EVERY === 0 ? sizes.lists : sizes.plain;
        kind.count++;
        kind.bytes += Buffer.byteLength(JSON.stringify({ ...report, type: 'report' })) + 1;
        return report;
      },
      random: Math.random,
    }),
  };
  sims.push(sim);
}
// Instances start as in a rollout, cfg.startPerSecond in this process (the reconnect storm later
// is the all-at-once case).
for (const [i, s] of sims.entries()) {
  s.stream.register([{ address: s.inst.address, protocol: 'http' }]);
  s.stream.start();
  if (i % 5 === 4) await new Promise((r) => setTimeout(r, (5 * 1000) / cfg.startPerSecond));
}

function answer(msg: ClientCommand): StateAnswer | ReachedAnswer | ReportSizesAnswer | { ok: true } {
  switch (msg.cmd) {
    case 'state': {
      let connected = 0;
      let connectedSince = 0;
      let lastConnectedAt = 0;
      let snapshotSince = 0;
      let lastSnapshotAt = 0;
      for (const s of sims) {
        if (s.stream.state === 'connected') connected++;
        if (s.connectedAt >= msg.since) {
          connectedSince++;
          lastConnectedAt = Math.max(lastConnectedAt, s.connectedAt);
        }
        const t = s.times[s.times.length - 1] ?? 0;
        if (t >= msg.since) {
          snapshotSince++;
          // The first snapshot since `since` is the one that counts as "back".
          let first = t;
          for (let k = s.times.length - 1; k >= 0 && (s.times[k] ?? 0) >= msg.since; k--) first = s.times[k] ?? first;
          lastSnapshotAt = Math.max(lastSnapshotAt, first);
        }
      }
      return { connected, connectedSince, lastConnectedAt, snapshotSince, lastSnapshotAt, snapshots, snapshotBytes, reasons: Object.fromEntries(reasons) };
    }
    case 'reached':
      return {
        at: sims.map((s) => {
          const k = s.versions.findIndex((v) => v >= msg.version);
          return k < 0 ? -1 : (s.times[k] ?? -1);
        }),
      };
    case 'reports':
      reportsOn = msg.on;
      return { ok: true };
    case 'reportSizes':
      return sizes;
  }
}

process.on('message', (raw) => process.send?.(answer(raw as ClientCommand)));
process.on('disconnect', () => {
  for (const s of sims) s.stream.close();
  process.exit(0);
});
process.send?.({ started: sims.length });
// The streams' timers are unref'd: keep the process alive while the parent is.
setInterval(() => {}, 1 << 30);
