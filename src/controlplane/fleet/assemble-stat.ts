/**
 * Joins a window's figures (either mode) with the registry and the Service documents into the
 * `/v1/stat` body: which services exist (documented, registered, reporting, or seen as a
 * destination), how many instances each has, each instance's config version and ACK/NACK, and
 * each route's backends with their configured weight and live share.
 *
 * The live share of a backend is the share of the service's served requests that its subset's
 * instances served in the window (by the instances' labels in the registry): what the split
 * actually did, across all routes of the service, since the metrics carry no backend label.
 */
import type { FleetFigures } from './fleet-figures.js';
import type { StatBackend, StatBody, StatInstance, StatRoute, StatService } from './stat-body.js';
import type { StatQuery } from './stat-query.js';
import type { StoreView } from './store-view.js';
import { matchesSubset } from './store-view.js';

const UNKNOWN = 'unknown';

export function assembleStat(q: StatQuery, f: FleetFigures, view: StoreView, at: number, source: StatBody['source']): StatBody {
  const names = new Set<string>(view.documented);
  for (const i of view.instances) names.add(i.service);
  for (const i of f.instances.values()) names.add(i.service);
  for (const m of [f.inbound, f.outbound, f.callers]) for (const k of m.keys()) names.add(k);
  for (const e of f.edges) {
    names.add(e.from);
    names.add(e.to);
  }
  names.delete(UNKNOWN);

  const registered = new Map<string, number>();
  for (const i of view.instances) registered.set(i.service, (registered.get(i.service) ?? 0) + 1);
  const reporting = new Map<string, number>();
  for (const i of f.instances.values()) reporting.set(i.service, (reporting.get(i.service) ?? 0) + 1);

  const services: StatService[] = [...names]
    .filter((n) => q.service === undefined || n === q.service)
    .sort()
    .map((name) => {
      const inbound = f.inbound.get(name) ?? null;
      const outbound = f.outbound.get(name) ?? null;
      const callers = f.callers.get(name) ?? null;
      const view: StatService['view'] = inbound !== null ? 'inbound' : callers !== null ? 'callers' : outbound !== null ? 'outbound' : 'none';
      const figures = view === 'inbound' ? inbound : view === 'callers' ? callers : view === 'outbound' ? outbound : null;
      const series = f.series?.get(name);
      return { name, instances: registered.get(name) ?? reporting.get(name) ?? 0, inbound, outbound, view, figures, ...(q.series && series !== undefined ? { series } : {}) };
    });

  const edges = f.edges.filter((e) => q.service === undefined || e.from === q.service || e.to === q.service);
  const body: StatBody = { source, window: q.window, windowSeconds: q.windowSeconds, at, service: q.service ?? null, reportingInstances: f.reportingInstances, services, edges };
  if (q.service === undefined) return body;
  return { ...body, routes: routesOf(q.service, f, view), instances: instancesOf(q.service, f, view) };
}

function instancesOf(service: string, f: FleetFigures, view: StoreView): StatInstance[] {
  const out: StatInstance[] = [];
  const seen = new Set<string>();
  for (const r of view.instances) {
    if (r.service !== service) continue;
    seen.add(r.id);
    const st = view.statuses.get(`${r.service}/${r.id}`);
    const fig = f.instances.get(r.id);
    out.push({
      id: r.id,
      service,
      labels: r.labels,
      endpoints: r.endpoints,
      registered: true,
      connectedAt: r.connectedAt,
      agent: r.agent ?? null,
      config: { sent: st?.sent ?? null, acked: st?.acked ?? null, ackedAt: st?.ackedAt ?? null, nacked: st?.nacked ?? null },
      certificateNotAfter: r.certificateNotAfter ?? fig?.certificateNotAfter ?? null,
      lastReport: fig?.lastReport ?? null,
      inbound: fig?.inbound ?? null,
      outbound: fig?.outbound ?? null,
      destinations: fig?.destinations ?? [],
    });
  }
  for (const fig of f.instances.values()) {
    if (fig.service !== service || seen.has(fig.id)) continue;
    out.push({
      id: fig.id,
      service,
      labels: {},
      endpoints: [],
      registered: false,
      connectedAt: null,
      agent: null,
      config: { sent: null, acked: null, ackedAt: null, nacked: null },
      certificateNotAfter: fig.certificateNotAfter,
      lastReport: fig.lastReport,
      inbound: fig.inbound,
      outbound: fig.outbound,
      destinations: fig.destinations,
    });
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : 1));
}

function routesOf(service: string, f: FleetFigures, view: StoreView): StatRoute[] {
  const observed = f.routes.get(service) ?? new Map();
  // Served rps per instance label set, for the live share of each backend's subset.
  const served = view.instances
    .filter((r) => r.service === service)
    .map((r) => ({ labels: r.labels, rps: f.instances.get(r.id)?.inbound?.rps ?? 0 }));
  const total = served.reduce((a, s) => a + s.rps, 0);
  const declared = view.routesOf(service);
  const out: StatRoute[] = declared.map((r) => {
    const weights = r.backends.reduce((a, b) => a + b.weight, 0);
    const backends: StatBackend[] = r.backends.map((b) => {
      const rps = served.filter((s) => matchesSubset(s.labels, b.subset)).reduce((a, s) => a + s.rps, 0);
      return { subset: b.subset, weight: b.weight, configuredShare: weights > 0 ? b.weight / weights : 0, liveShare: total > 0 ? Math.round((rps / total) * 1e4) / 1e4 : null, rps: Math.round(rps * 1000) / 1000 };
    });
    return { service, route: r.route, declared: true, figures: observed.get(r.route) ?? null, backends };
  });
  const names = new Set(declared.map((r) => r.route));
  for (const [route, figures] of observed) if (!names.has(route)) out.push({ service, route, declared: false, figures, backends: [] });
  return out;
}
