/**
 * The control plane's own aggregation: every report an instance sends is added to the cells of
 * the series it counts for, in the 10-second slot it arrived in; a window's figures are the sum
 * of its slots. Series per report edge:
 *
 *   out edge (this instance called `to`): edge-by-caller from→to, route to/route, service
 *     outbound of `from`, callers' view of `to`, instance outbound
 *   in edge (`from` called this instance): edge-by-server from→to, service inbound of `to`,
 *     instance inbound
 *
 * `from` of an out edge and `to` of an in edge are the instance's service as its certificate
 * says, never what the report claims. Per instance it keeps the latest states (breakers,
 * endpoints, certificate expiry) and the destination counters (ejections, retries) with their
 * times; an instance that stopped reporting is forgotten after ten minutes, and its cells go
 * with the slots.
 */
import type { FleetDestinationReport, FleetReport } from '../../controlplane-client/fleet-report.js';
import type { Cell } from './cell.js';
import { bucketMap, newCell, quantileOf, requestsOf, successesOf } from './cell.js';
import type { FleetFigures, InstanceFigures } from './fleet-figures.js';
import { FAILING_BELOW, figuresOf, msOrNull } from './fleet-figures.js';
import { SLOT_MS, SLOTS, SlotRing } from './slot-ring.js';
import type { GoldenFigures, StatDestination, StatEdge, StatSeries } from './stat-body.js';

const SEP = '\u0001';
const FORGET_MS = (SLOTS - 1) * SLOT_MS;
/** Destination counter events kept per instance and destination (one per report at most). */
const MAX_EVENTS = 2 * (SLOTS + 1);

interface CounterEvent {
  readonly at: number;
  readonly ejections: number;
  readonly retries: number;
  readonly rateLimited: number;
}

interface InstanceState {
  readonly id: string;
  readonly service: string;
  lastReport: number;
  certificateNotAfter: number | undefined;
  destinations: readonly FleetDestinationReport[];
  events: Map<string, CounterEvent[]>;
}

export interface ReportingInstance {
  readonly id: string;
  readonly service: string;
}

export class MemoryFigures {
  readonly #ring = new SlotRing();
  readonly #instances = new Map<string, InstanceState>();
  /** Protocol last seen per edge from→to, with when. */
  readonly #protocols = new Map<string, { protocol: 'http' | 'grpc'; at: number }>();
  readonly #bucketMaps = new Map<string, number[]>();
  readonly #startedAt: number;
  #lastPrune = 0;

  constructor(startedAt: number) {
    this.#startedAt = startedAt;
  }

  ingest(instance: ReportingInstance, report: FleetReport, now: number): void {
    const boundsKey = report.bounds.join(',');
    let buckets = this.#bucketMaps.get(boundsKey);
    if (buckets === undefined) {
      if (this.#bucketMaps.size > 16) this.#bucketMaps.clear();
      this.#bucketMaps.set(boundsKey, (buckets = bucketMap(report.bounds)));
    }
    const id = instance.id;
    const self = instance.service;
    const ring = this.#ring;
    for (const e of report.edges) {
      if (e.requests <= 0) continue;
      if (e.dir === 'out') {
        const to = e.to;
        const pair = self + SEP + to;
        ring.add(now, 'ec', pair, e, buckets);
        ring.add(now, 'r', to + SEP + e.route, e, buckets);
        ring.add(now, 'so', self, e, buckets);
        ring.add(now, 'sc', to, e, buckets);
        ring.add(now, 'io', self + SEP + id, e, buckets);
        this.#protocols.set(pair, { protocol: e.protocol, at: now });
      } else {
        const pair = e.from + SEP + self;
        ring.add(now, 'es', pair, e, buckets);
        ring.add(now, 'si', self, e, buckets);
        ring.add(now, 'ii', self + SEP + id, e, buckets);
        if (!this.#protocols.has(pair)) this.#protocols.set(pair, { protocol: e.protocol, at: now });
      }
    }
    let st = this.#instances.get(id);
    if (st === undefined || st.service !== self) {
      st = { id, service: self, lastReport: now, certificateNotAfter: undefined, destinations: [], events: new Map() };
      this.#instances.set(id, st);
    }
    st.lastReport = now;
    st.certificateNotAfter = report.certificateNotAfter;
    // A destination without its endpoint list has the one last sent (see ENDPOINTS_EVERY).
    const before = new Map(st.destinations.map((d) => [d.service, d.endpointList]));
    st.destinations = report.destinations.map((d) => (d.endpointList === undefined && before.get(d.service) !== undefined ? { ...d, endpointList: before.get(d.service) } : d));
    for (const d of report.destinations) {
      if (d.ejections === 0 && d.retries === 0 && d.rateLimited === 0) continue;
      let list = st.events.get(d.service);
      if (list === undefined) st.events.set(d.service, (list = []));
      list.push({ at: now, ejections: d.ejections, retries: d.retries, rateLimited: d.rateLimited });
      if (list.length > MAX_EVENTS) list.splice(0, list.length - MAX_EVENTS);
    }
    if (now - this.#lastPrune > SLOT_MS) this.prune(now);
  }

  /** Forgets instances silent for ten minutes, their counter events, edges' protocols and old slots. */
  prune(now: number): void {
    this.#lastPrune = now;
    for (const [id, st] of this.#instances) {
      if (now - st.lastReport > FORGET_MS) {
        this.#instances.delete(id);
        continue;
      }
      for (const [svc, list] of st.events) {
        const keep = list.filter((e) => now - e.at <= FORGET_MS);
        if (keep.length === 0) st.events.delete(svc);
        else st.events.set(svc, keep);
      }
    }
    for (const [k, p] of this.#protocols) if (now - p.at > FORGET_MS) this.#protocols.delete(k);
    this.#ring.prune(now);
  }

  /** Cells and instances held (memory figures, expiry tests). */
  size(): { cells: number; instances: number } {
    return { cells: this.#ring.size(), instances: this.#instances.size };
  }

  /**
   * The figures of a window ending now. With `service`, only what a stat of that service needs
   * (its row, its edges, routes and instances); without, the fleet's rows and edges and no
   * per-instance cells (a fleet-wide stat never reads them).
   */
  figures(now: number, windowSeconds: number, withSeries: boolean, service?: string): FleetFigures {
    this.prune(now);
    const slotsBack = Math.round((windowSeconds * 1000) / SLOT_MS);
    const full = slotsBack * SLOT_MS + (now - Math.floor(now / SLOT_MS) * SLOT_MS);
    const seconds = Math.max(Math.min(full, now - this.#startedAt), SLOT_MS / 2) / 1000;
    const since = now - full;
    const ring = this.#ring;
    const one = service === undefined ? undefined : (k: string): boolean => k === service;
    const mine = service === undefined ? undefined : (k: string): boolean => k.startsWith(service + SEP);
    const touches = service === undefined ? undefined : (k: string): boolean => k.startsWith(service + SEP) || k.endsWith(SEP + service);
    const named = (m: Map<string, Cell>): Map<string, GoldenFigures> => new Map([...m].map(([k, c]) => [k, figuresOf(c, seconds)]));

    const inbound = named(ring.window(now, slotsBack, 'si', one));
    const outbound = named(ring.window(now, slotsBack, 'so', one));
    const callers = named(ring.window(now, slotsBack, 'sc', one));
    const byCaller = ring.window(now, slotsBack, 'ec', touches);
    const byServer = ring.window(now, slotsBack, 'es', touches);

    // Without mTLS a server sees every caller as `unknown`: that edge only stands for traffic
    // when no reporting caller accounts for the destination.
    const calledByReporters = new Set([...byCaller.keys()].map((k) => k.slice(k.indexOf(SEP) + 1)));
    const edges: StatEdge[] = [];
    for (const key of new Set([...byCaller.keys(), ...byServer.keys()])) {
      const cut = key.indexOf(SEP);
      const from = key.slice(0, cut);
      const to = key.slice(cut + 1);
      const caller = byCaller.get(key);
      if (caller === undefined && from === 'unknown' && calledByReporters.has(to)) continue;
      const cell = caller ?? byServer.get(key);
      if (cell === undefined) continue;
      const f = figuresOf(cell, seconds);
      edges.push({ from, to, protocol: this.#protocols.get(key)?.protocol ?? 'unknown', source: caller !== undefined ? 'caller' : 'server', failing: f.successRate !== null && f.successRate < FAILING_BELOW, ...f });
    }
    edges.sort((x, y) => (x.from + SEP + x.to < y.from + SEP + y.to ? -1 : 1));

    const routes = new Map<string, Map<string, GoldenFigures>>();
    const instIn = service === undefined ? new Map<string, Cell>() : ring.window(now, slotsBack, 'ii', mine);
    const instOut = service === undefined ? new Map<string, Cell>() : ring.window(now, slotsBack, 'io', mine);
    if (service !== undefined) {
      const m = new Map<string, GoldenFigures>();
      for (const [k, c] of ring.window(now, slotsBack, 'r', mine)) m.set(k.slice(service.length + 1), figuresOf(c, seconds));
      routes.set(service, m);
    }

    const instances = new Map<string, InstanceFigures>();
    let reporting = 0;
    for (const st of this.#instances.values()) {
      if (st.lastReport >= since) reporting++;
      const detail = service !== undefined && st.service === service;
      const cin = detail ? instIn.get(st.service + SEP + st.id) : undefined;
      const cout = detail ? instOut.get(st.service + SEP + st.id) : undefined;
      instances.set(st.id, {
        id: st.id,
        service: st.service,
        inbound: cin !== undefined ? figuresOf(cin, seconds) : null,
        outbound: cout !== undefined ? figuresOf(cout, seconds) : null,
        lastReport: st.lastReport,
        certificateNotAfter: st.certificateNotAfter ?? null,
        destinations: detail ? st.destinations.map((d) => destinationOf(d, st.events.get(d.service) ?? [], since)) : [],
      });
    }

    return { reportingInstances: reporting, inbound, outbound, callers, edges, routes, instances, series: withSeries ? this.#series(now, one) : undefined };
  }

  /** Per service, per 10-second step over ten minutes: its row's view (inbound, else callers', else outbound). */
  #series(now: number, keep: ((k: string) => boolean) | undefined): Map<string, StatSeries> {
    const steps = new Map(['si', 'sc', 'so'].map((kind) => [kind, this.#ring.series(now, SLOTS - 1, kind, keep)]));
    const kindsOf = new Map<string, Set<string>>();
    for (const [kind, list] of steps) {
      for (const s of list) {
        for (const name of s.cells.keys()) {
          let kinds = kindsOf.get(name);
          if (kinds === undefined) kindsOf.set(name, (kinds = new Set()));
          kinds.add(kind);
        }
      }
    }
    const out = new Map<string, StatSeries>();
    for (const [name, kinds] of kindsOf) {
      const kind = kinds.has('si') ? 'si' : kinds.has('sc') ? 'sc' : 'so';
      const t: number[] = [];
      const rps: number[] = [];
      const successRate: (number | null)[] = [];
      const p50Ms: (number | null)[] = [];
      const p99Ms: (number | null)[] = [];
      for (const s of steps.get(kind) ?? []) {
        const cell = s.cells.get(name) ?? newCell();
        const n = requestsOf(cell);
        t.push(s.startMs / 1000);
        rps.push(Math.round((n / (SLOT_MS / 1000)) * 1000) / 1000);
        successRate.push(n > 0 ? Math.round((successesOf(cell) / n) * 1e5) / 1e5 : null);
        p50Ms.push(msOrNull(quantileOf(cell, 0.5)));
        p99Ms.push(msOrNull(quantileOf(cell, 0.99)));
      }
      out.set(name, { stepSeconds: SLOT_MS / 1000, t, rps, successRate, p50Ms, p99Ms });
    }
    return out;
  }
}

function destinationOf(d: FleetDestinationReport, events: readonly CounterEvent[], since: number): StatDestination {
  let ejections = 0;
  let retries = 0;
  let rateLimited = 0;
  for (const e of events) {
    if (e.at < since) continue;
    ejections += e.ejections;
    retries += e.retries;
    rateLimited += e.rateLimited;
  }
  return { service: d.service, breaker: d.breaker ?? null, endpoints: d.endpoints, endpointList: d.endpointList ?? [], ejections, retries, rateLimited };
}

