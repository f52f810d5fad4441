/**
 * The sync side's Prometheus metrics, on the registry the control plane gives: connected
 * instances, snapshots pushed (and their bytes, whole or as deltas), push latency (from the store change reaching this replica to
 * the instance's ACK), and NACKs. A metric already registered under the same name (two
 * replicas in one process sharing a registry) is reused.
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';

export const SYNC_METRIC_NAMES = Object.freeze({
  connected: 'trellis_controlplane_connected_instances',
  pushes: 'trellis_controlplane_pushes_total',
  pushedBytes: 'trellis_controlplane_pushed_bytes_total',
  pushLatency: 'trellis_controlplane_push_latency_seconds',
  nacks: 'trellis_controlplane_nacks_total',
  refused: 'trellis_controlplane_streams_refused_total',
});

export interface SyncMetrics {
  readonly connected: Gauge<string>;
  readonly pushes: Counter<string>;
  readonly pushedBytes: Counter<string>;
  readonly pushLatency: Histogram<string>;
  readonly nacks: Counter<string>;
  readonly refused: Counter<string>;
}

function reuse<M>(registry: Registry, name: string, make: () => M): M {
  return (registry.getSingleMetric(name) as M | undefined) ?? make();
}

export function syncMetrics(registry: Registry): SyncMetrics {
  const n = SYNC_METRIC_NAMES;
  const registers = [registry];
  return {
    connected: reuse(registry, n.connected, () => new Gauge({ name: n.connected, help: 'Instances with an open stream to this control-plane replica', registers })),
    pushes: reuse(registry, n.pushes, () => new Counter({ name: n.pushes, help: 'Snapshots sent to instances', registers })),
    pushedBytes: reuse(registry, n.pushedBytes, () => new Counter({ name: n.pushedBytes, help: 'Bytes of snapshots and deltas sent to instances, by kind (snapshot: the whole view; delta: what changed since the version the instance ACKed)', labelNames: ['kind'], registers })),
    pushLatency: reuse(registry, n.pushLatency, () => new Histogram({ name: n.pushLatency, help: 'From a store change reaching this replica to the instance ACKing the snapshot that carries it (seconds)', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers })),
    nacks: reuse(registry, n.nacks, () => new Counter({ name: n.nacks, help: 'Snapshots instances refused (NACKed)', labelNames: ['service'], registers })),
    refused: reuse(registry, n.refused, () => new Counter({ name: n.refused, help: 'Instance streams closed for a protocol violation', labelNames: ['code'], registers })),
  };
}
