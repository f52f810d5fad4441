/**
 * Connection metrics of the connection-level edges (mesh.connect and mesh.listen for raw TCP,
 * mesh.websocket and WebSocket upgrades served by mesh.serve): connections opened and refused,
 * open now, how long they lived, and the bytes they carried. They sit beside the request
 * metrics of metrics.ts, in the same registry, made the first time a connection edge is used (a
 * mesh that never opens one exposes none of them).
 *
 * Labels are bounded like the request metrics': `service` (client: the destination; server:
 * this service), `caller` (server: the verified caller or `unknown`), `protocol` (`tcp` or
 * `websocket`), `outcome` (the fixed outcome set of docs/metrics.md). Never an address.
 * Byte counts are added once, when the connection closes (socket `bytesRead`/`bytesWritten`),
 * so nothing is recorded per chunk.
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import type { AnyRegistry } from './metrics.js';
import { normalizeOutcome } from './metrics-labels.js';

export const CONNECTION_METRIC_NAMES = Object.freeze({
  clientConnections: 'trellis_client_connections_total',
  clientConnectionsActive: 'trellis_client_connections_active',
  clientConnectionDuration: 'trellis_client_connection_duration_seconds',
  clientSentBytes: 'trellis_client_connection_sent_bytes_total',
  clientReceivedBytes: 'trellis_client_connection_received_bytes_total',
  serverConnections: 'trellis_server_connections_total',
  serverConnectionsActive: 'trellis_server_connections_active',
  serverConnectionDuration: 'trellis_server_connection_duration_seconds',
  serverSentBytes: 'trellis_server_connection_sent_bytes_total',
  serverReceivedBytes: 'trellis_server_connection_received_bytes_total',
});

/** Connection lifetimes span milliseconds to hours. */
export const CONNECTION_DURATION_BUCKETS: readonly number[] = Object.freeze([0.01, 0.1, 1, 10, 60, 300, 1800, 3600, 14400]);

export type ConnectionProtocol = 'tcp' | 'websocket' | 'upgrade';

type AnyMetric = { readonly type?: unknown; readonly labelNames?: readonly string[] };

/** The metric registered as `name` when it has this type and these labels; a clear error when it differs. */
function reuse<T>(registry: AnyRegistry, name: string, type: string, labels: readonly string[]): T | undefined {
  const found = registry.getSingleMetric(name) as AnyMetric | undefined;
  if (found === undefined) return undefined;
  const have = [...(found.labelNames ?? [])].sort().join(',');
  const want = [...labels].sort().join(',');
  if (found.type !== type || have !== want) throw new Error(`the registry already has a metric named ${name} (type ${String(found.type)}, labels [${have}]); Trellis needs type ${type} with labels [${want}]`);
  return found as T;
}

function counter(r: AnyRegistry, name: string, help: string, labelNames: readonly string[]): Counter<string> {
  return reuse<Counter<string>>(r, name, 'counter', labelNames) ?? new Counter({ name, help, labelNames, registers: [r] });
}

function gauge(r: AnyRegistry, name: string, help: string, labelNames: readonly string[]): Gauge<string> {
  return reuse<Gauge<string>>(r, name, 'gauge', labelNames) ?? new Gauge({ name, help, labelNames, registers: [r] });
}

function histogram(r: AnyRegistry, name: string, help: string, labelNames: readonly string[]): Histogram<string> {
  return reuse<Histogram<string>>(r, name, 'histogram', labelNames) ?? new Histogram({ name, help, labelNames, buckets: [...CONNECTION_DURATION_BUCKETS], registers: [r] });
}

/** What a closed connection reports. */
export interface ClosedConnection {
  durationSec: number;
  bytesSent: number;
  bytesReceived: number;
}

export class ConnectionMetrics {
  readonly #clientTotal: Counter<string>;
  readonly #clientActive: Gauge<string>;
  readonly #clientDuration: Histogram<string>;
  readonly #clientSent: Counter<string>;
  readonly #clientReceived: Counter<string>;
  readonly #serverTotal: Counter<string>;
  readonly #serverActive: Gauge<string>;
  readonly #serverDuration: Histogram<string>;
  readonly #serverSent: Counter<string>;
  readonly #serverReceived: Counter<string>;

  constructor(registry: AnyRegistry) {
    const n = CONNECTION_METRIC_NAMES;
    const client = ['service', 'protocol'];
    const server = ['service', 'caller', 'protocol'];
    this.#clientTotal = counter(registry, n.clientConnections, 'Outbound connections asked for (mesh.connect, mesh.websocket), by destination service, protocol and outcome (success: opened).', [...client, 'outcome']);
    this.#clientActive = gauge(registry, n.clientConnectionsActive, 'Outbound connections open now, by destination service and protocol.', client);
    this.#clientDuration = histogram(registry, n.clientConnectionDuration, 'Lifetime of outbound connections in seconds, from open to close.', client);
    this.#clientSent = counter(registry, n.clientSentBytes, 'Bytes written to outbound connections (counted when they close), by destination service and protocol.', client);
    this.#clientReceived = counter(registry, n.clientReceivedBytes, 'Bytes read from outbound connections (counted when they close), by destination service and protocol.', client);
    this.#serverTotal = counter(registry, n.serverConnections, 'Inbound connections (mesh.listen, WebSocket upgrades through mesh.serve), by this service, verified caller, protocol and outcome (success: handed to the handler; forbidden: refused by authorization).', [...server, 'outcome']);
    this.#serverActive = gauge(registry, n.serverConnectionsActive, 'Inbound connections open now, by this service and protocol.', ['service', 'protocol']);
    this.#serverDuration = histogram(registry, n.serverConnectionDuration, 'Lifetime of inbound connections in seconds, from hand-over to close.', server);
    this.#serverSent = counter(registry, n.serverSentBytes, 'Bytes written to inbound connections (counted when they close).', server);
    this.#serverReceived = counter(registry, n.serverReceivedBytes, 'Bytes read from inbound connections (counted when they close).', server);
  }

  /** A logical outbound connect ended: opened (`success`) or refused with an outcome. */
  clientConnect(service: string, protocol: ConnectionProtocol, outcome: string): void {
    this.#clientTotal.inc({ service, protocol, outcome: normalizeOutcome(outcome) });
    if (outcome === 'success') this.#clientActive.inc({ service, protocol });
  }

  clientClosed(service: string, protocol: ConnectionProtocol, c: ClosedConnection): void {
    const labels = { service, protocol };
    this.#clientActive.dec(labels);
    this.#clientDuration.observe(labels, c.durationSec);
    if (c.bytesSent > 0) this.#clientSent.inc(labels, c.bytesSent);
    if (c.bytesReceived > 0) this.#clientReceived.inc(labels, c.bytesReceived);
  }

  /** An inbound connection was handed to the handler (`success`) or refused with an outcome. */
  serverAccept(service: string, caller: string, protocol: ConnectionProtocol, outcome: string): void {
    this.#serverTotal.inc({ service, caller, protocol, outcome: normalizeOutcome(outcome) });
    if (outcome === 'success') this.#serverActive.inc({ service, protocol });
  }

  serverClosed(service: string, caller: string, protocol: ConnectionProtocol, c: ClosedConnection): void {
    this.#serverActive.dec({ service, protocol });
    const labels = { service, caller, protocol };
    this.#serverDuration.observe(labels, c.durationSec);
    if (c.bytesSent > 0) this.#serverSent.inc(labels, c.bytesSent);
    if (c.bytesReceived > 0) this.#serverReceived.inc(labels, c.bytesReceived);
  }
}

/** The outcome label of an error (its Trellis code's outcome), `failure` for anything else. */
export function outcomeOf(err: unknown): string {
  const info = typeof err === 'object' && err !== null ? (err as { info?: { outcome?: unknown } }).info : undefined;
  return typeof info?.outcome === 'string' ? info.outcome : 'failure';
}
