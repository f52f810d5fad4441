/**
 * An endpoint is one address of a destination service, with the labels subsets select on.
 * Discovery sources publish full snapshots (the current set); consumers diff them by `id`.
 */

export interface Endpoint {
  /** Canonical `host:port` (IPv6 hosts in brackets: `[::1]:8080`); unique within a service. */
  readonly id: string;
  /** IP address or host name, without brackets. */
  readonly host: string;
  readonly port: number;
  /** Labels (`version: v2`); routing subsets select on them. */
  readonly labels: Readonly<Record<string, string>>;
  /** Relative weight from discovery (SRV weight); 1 when the source has none. */
  readonly weight: number;
}

/** Builds an endpoint, computing its canonical id. */
export function makeEndpoint(host: string, port: number, labels: Record<string, string> = {}, weight = 1): Endpoint {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const id = bare.includes(':') ? `[${bare}]:${port}` : `${bare}:${port}`;
  return Object.freeze({ id, host: bare, port, labels: Object.freeze({ ...labels }), weight });
}

/**
 * A source of endpoints for one service: static config, DNS, or (later) the control-plane
 * registry. `start` delivers the current set through `onUpdate` whenever it changes (at least
 * once, as soon as it is known); a source that fails keeps its last good set and reports the
 * failure through `onError`. `close` stops every timer and socket the source holds.
 */
export interface EndpointSource {
  /** Human-readable description (`static`, `dns products.svc:8080`), for describe() and logs. */
  readonly description: string;
  start(onUpdate: (endpoints: readonly Endpoint[]) => void, onError: (err: Error) => void): void;
  close(): void;
}
