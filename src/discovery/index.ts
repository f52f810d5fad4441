/**
 * Discovery: where a service's endpoints come from (static config, DNS, later the control-plane
 * registry), all behind one `EndpointSource` interface that publishes full snapshots.
 */
export { makeEndpoint, type Endpoint, type EndpointSource } from './endpoint.js';
export { staticSource } from './static-source.js';
export { dnsSource, type DnsSourceOptions, type DnsSourceStatus, type DnsEndpointSource } from './dns-source.js';
export { DnsQueryError } from './dns-resolve.js';
export { makeEndpointSource, type DiscoveryServiceInput, type EndpointSourceDeps } from './make-source.js';
