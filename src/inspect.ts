/**
 * A plain-data snapshot of a mesh client's destinations, for the demo, the CLI and the
 * dashboard: the stack each service runs, its endpoints with load and ejection state, the
 * breaker's state and the retry budget.
 */
import type { Clock } from './core/clock.js';
import type { Destinations } from './client/destinations.js';
import type { ServiceCounters } from './client/service-state.js';
import type { OverloadGuard } from './server/overload-guard.js';

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
  /** The outbound adaptive concurrency limit and calls in flight, when configured. */
  concurrency?: { limit: number; inflight: number } | undefined;
}

/** The inbound overload guard's state, when `inbound.overload` is configured. */
export interface OverloadInspection {
  /** The adaptive in-flight limit, when on. */
  concurrency: { limit: number; inflight: number } | undefined;
  /** The event loop as the guard saw it in its last window, when on. */
  eventLoop: { utilization: number; delayP99Ms: number; saturated: boolean; admitProbability: number } | undefined;
  /** Recent service time (ms) the deadline check uses. */
  serviceTimeMs: number;
  /** Requests shed since this configuration version, by reason. */
  shed: { deadline: number; 'event-loop': number; concurrency: number };
}

export interface MeshInspection {
  services: ServiceInspection[];
  /** This instance's inbound overload state (undefined when not configured). */
  overload?: OverloadInspection | undefined;
}

export function inspectOverload(guard: OverloadGuard | undefined): OverloadInspection | undefined {
  if (guard === undefined) return undefined;
  const l = guard.limit;
  return {
    concurrency: l === undefined ? undefined : { limit: l.limit, inflight: l.inflight },
    eventLoop: guard.monitor === undefined ? undefined : { ...guard.monitor.state },
    serviceTimeMs: Math.round(guard.serviceTimeMs * 100) / 100,
    shed: { ...guard.shed },
  };
}

export function inspectDestinations(destinations: Destinations, clock: Clock, overload?: OverloadGuard): MeshInspection {
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
      concurrency: st.concurrencyLimit,
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
  return { services, overload: inspectOverload(overload) };
}
