/**
 * `makeEndpointSource`: picks the endpoint source for one Service from its normalized config —
 * static `endpoints:`, or `dns:` with the Mesh's DNS settings. It is the one place that maps
 * config to a source; callers (meshClient wiring) never look at `endpoints`/`dns` themselves.
 *
 * Invariant: returns `undefined` when the Service has neither. That is the registry's interface
 * point: endpoints then come from the control-plane registry, whose client will implement
 * `EndpointSource` (same contract: full snapshots through `onUpdate`, failures through
 * `onError` while the last good set stays) and be plugged in by the caller for these services.
 */
import type { DnsSpec, MeshSpec, StaticEndpointSpec } from '../config/types.js';
import type { Clock } from '../core/clock.js';
import { dnsSource } from './dns-source.js';
import type { EndpointSource } from './endpoint.js';
import { staticSource } from './static-source.js';

/** The part of a `ServiceSpec` that discovery reads. */
export interface DiscoveryServiceInput {
  /** The Service's name, for messages. */
  name?: string | undefined;
  endpoints?: StaticEndpointSpec[] | undefined;
  dns?: DnsSpec | undefined;
}

export interface EndpointSourceDeps {
  clock?: Clock | undefined;
  /** Loud warnings (e.g. DNS records deleted, endpoints held for a grace period). */
  onWarn?: ((msg: string) => void) | undefined;
}

/**
 * @example
 * const source = makeEndpointSource(config.services.get('products')!, config.mesh, { clock })
 *   ?? registryClient.source('products');
 */
export function makeEndpointSource(
  service: DiscoveryServiceInput,
  mesh: { dns: MeshSpec['dns'] },
  deps: EndpointSourceDeps = {},
): EndpointSource | undefined {
  if (service.endpoints !== undefined && service.dns !== undefined) {
    // Config validation refuses this; reaching here is a wiring bug, not a user error.
    throw new Error('a service has both static endpoints and dns; config validation should have refused it');
  }
  if (service.endpoints !== undefined) return staticSource(service.endpoints);
  if (service.dns !== undefined) {
    return dnsSource(service.dns, {
      servers: mesh.dns.servers,
      refreshIntervalMs: mesh.dns.refreshIntervalMs,
      minTtlMs: mesh.dns.minTtlMs,
      clock: deps.clock,
      service: service.name,
      onWarn: deps.onWarn,
    });
  }
  return undefined;
}
