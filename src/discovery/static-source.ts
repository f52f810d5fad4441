/**
 * `staticSource`: the `EndpointSource` for a Service whose `endpoints:` are written in config.
 * It sits where DNS or the registry would, so consumers treat every service alike.
 *
 * Invariants: the set is computed once, at construction, and never changes. `start` delivers
 * it synchronously, before `start` returns, so a static service has endpoints from its first
 * request on (no tick in which it looks empty). Endpoints are sorted by id; a repeated
 * `host:port` keeps its first entry (ids are unique within a service). `onError` is never called.
 */
import type { StaticEndpointSpec } from '../config/types.js';
import { makeEndpoint, type Endpoint, type EndpointSource } from './endpoint.js';

/**
 * @example
 * const source = staticSource([{ host: '127.0.0.1', port: 8081, labels: { version: 'v1' } }]);
 * source.start((eps) => balancer.update(eps), () => {}); // eps delivered before start returns
 */
export function staticSource(endpoints: readonly StaticEndpointSpec[]): EndpointSource {
  const byId = new Map<string, Endpoint>();
  for (const spec of endpoints) {
    const ep = makeEndpoint(spec.host, spec.port, spec.labels);
    if (!byId.has(ep.id)) byId.set(ep.id, ep);
  }
  const set: readonly Endpoint[] = Object.freeze([...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)));
  let closed = false;
  return {
    description: `static (${set.length} endpoint${set.length === 1 ? '' : 's'})`,
    start(onUpdate) {
      if (!closed) onUpdate(set);
    },
    close() {
      closed = true;
    },
  };
}
