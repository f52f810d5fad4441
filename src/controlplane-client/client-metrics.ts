/**
 * The control-plane client's gauges, on the mesh's metrics registry: whether the stream to a
 * replica is up (1) or not (0), and the version (store revision) of the snapshot in force, so
 * an alert can find an instance that lost the control plane or stopped following it. A gauge
 * already registered under the name (two mesh clients on one registry) is reused.
 */
import { Gauge } from 'prom-client';
import type { AnyRegistry } from '../observability/metrics.js';

export const CONTROL_PLANE_METRIC_NAMES = Object.freeze({
  connected: 'trellis_control_plane_connected',
  configVersion: 'trellis_control_plane_config_version',
});

export interface ControlPlaneGauges {
  setConnected(connected: boolean): void;
  setVersion(version: string | null): void;
}

function gauge(registry: AnyRegistry, name: string, help: string): Gauge<string> {
  return (registry.getSingleMetric(name) as Gauge<string> | undefined) ?? new Gauge({ name, help, labelNames: ['service'], registers: [registry] });
}

export function controlPlaneGauges(registry: AnyRegistry, service: string): ControlPlaneGauges {
  const connected = gauge(registry, CONTROL_PLANE_METRIC_NAMES.connected, 'Whether this instance has a live stream to a control-plane replica (1) or not (0)');
  const version = gauge(registry, CONTROL_PLANE_METRIC_NAMES.configVersion, 'Version (control-plane store revision) of the configuration snapshot in force');
  return {
    setConnected: (c) => connected.set({ service }, c ? 1 : 0),
    setVersion: (v) => {
      const n = v === null ? Number.NaN : Number(v);
      if (Number.isFinite(n)) version.set({ service }, n);
    },
  };
}
