/**
 * A plain-data snapshot of a mesh client's destinations, for the demo, the CLI and the
 * dashboard: the stack each service runs, its endpoints with load and ejection state, the
 * breaker's state and the retry budget.
 */
import type { Clock } from './core/clock.js';
import type { Destinations } from './client/destinations.js';
import type { ServiceCounters } from './client/service-state.js';

export interface EndpointInspection {
  id: string;
  labels: Record<string, string>;
  outstanding: number;
  ewmaMs: number;
  ejected: boolean;
}

export interface ServiceInspection {
  name: string;
  stack: string;
  loadBalancer: string;
  discovery: string;
  breaker: string;
  counters: ServiceCounters;
  budget: { requests: number; retries: number; available: number } | undefined;
  endpoints: EndpointInspection[];
}

export interface MeshInspection {
  services: ServiceInspection[];
}

export function inspectDestinations(destinations: Destinations, clock: Clock): MeshInspection {
  const now = clock.now();
  const services: ServiceInspection[] = [];
  for (const name of destinations.names()) {
    const d = destinations.get(name);
    if (d === undefined) continue;
    const st = d.state;
    services.push({
      name,
      stack: d.http.describe(),
      loadBalancer: st.endpoints.balancerKind,
      discovery: st.endpoints.sourceDescription,
      breaker: st.breakerState ?? 'none',
      counters: { ...st.counters },
      budget: st.retryBudget?.stats(),
      endpoints: st.endpoints.endpoints().map((e) => ({
        id: e.id,
        labels: { ...e.endpoint.labels },
        outstanding: e.outstanding,
        // The estimate as the balancer sees it now (decayed while idle), not as last stored.
        ewmaMs: Math.round((e.cost(now) / (e.outstanding + 1)) * 100) / 100,
        ejected: st.endpoints.isEjected(e.id),
      })),
    });
  }
  return { services };
}
