/**
 * What one service's instances may see (docs/control-plane.md, "The instance stream"): the Mesh
 * document; the service's own Service; every Service whose `inbound.authorization` admits it
 * (no authorization block, no allow rules, or an allow rule with no `from` or naming it or
 * `*`); and the registry endpoints of each Service in the view that has neither `endpoints`
 * nor `dns`. Everything else stays on the control plane (an instance learns nothing about
 * services it may not call).
 *
 * The view is a pure function of the store's copy, computed as JSON texts with a stable order,
 * so two computations of an unchanged view are the same string: the caller compares strings
 * to know whether anything an instance sees changed, shares the bytes between instances, and
 * compares the parts of two views to send a delta (snapshot-delta.ts).
 */
import type { InstanceRecord, StoredResource } from '../store/store.js';
import type { SnapshotDocument, SnapshotEndpoint } from './protocol.js';
import { endpointKey, type ViewParts } from './snapshot-delta.js';

/** The store's copy, indexed once per computation round. */
export class ViewIndex {
  readonly mesh: SnapshotDocument | null;
  readonly services: readonly { name: string; doc: SnapshotDocument; registry: boolean; admits: (caller: string) => boolean }[];
  readonly #endpoints = new Map<string, SnapshotEndpoint[]>();

  constructor(resources: Iterable<StoredResource>, instances: Iterable<InstanceRecord>) {
    let mesh: SnapshotDocument | null = null;
    const services: ViewIndex['services'][number][] = [];
    for (const r of resources) {
      if (r === null || typeof r !== 'object' || typeof r.metadata?.name !== 'string') continue;
      const doc: SnapshotDocument = { apiVersion: 'trellis/v1', kind: r.kind, metadata: { name: r.metadata.name }, spec: r.spec ?? {} };
      if (r.kind === 'Mesh') {
        // One Mesh document is expected; with several, the first by name wins (deterministically).
        if (mesh === null || doc.metadata.name < mesh.metadata.name) mesh = doc;
      } else if (r.kind === 'Service') {
        const spec = (typeof r.spec === 'object' && r.spec !== null ? r.spec : {}) as Record<string, unknown>;
        services.push({ name: doc.metadata.name, doc, registry: spec.endpoints === undefined && spec.dns === undefined, admits: admission(spec) });
      }
    }
    services.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    this.mesh = mesh;
    this.services = services;
    for (const rec of instances) {
      if (rec === null || typeof rec !== 'object' || !Array.isArray(rec.endpoints)) continue;
      let list = this.#endpoints.get(rec.service);
      if (list === undefined) this.#endpoints.set(rec.service, (list = []));
      for (const e of rec.endpoints) list.push({ address: e.address, labels: rec.labels ?? {}, instance: rec.id });
    }
    for (const list of this.#endpoints.values()) list.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : a.instance < b.instance ? -1 : 1));
  }

  /** The view of `service` as the JSON texts of its parts (their concatenation is `viewContent`). */
  parts(service: string): ViewParts {
    const services = new Map<string, string>();
    const endpoints = new Map<string, Map<string, string>>();
    for (const s of this.services) {
      if (s.name !== service && !s.admits(service)) continue;
      services.set(s.name, this.#docText(s.doc));
      if (s.registry) endpoints.set(s.name, this.#listTexts(s.name));
    }
    return { mesh: JSON.stringify(this.mesh), services, endpoints };
  }

  readonly #docTexts = new Map<SnapshotDocument, string>();
  readonly #lists = new Map<string, Map<string, string>>();

  /** Each document and endpoint list is written once per index, however many views share it. */
  #docText(doc: SnapshotDocument): string {
    let t = this.#docTexts.get(doc);
    if (t === undefined) this.#docTexts.set(doc, (t = JSON.stringify(doc)));
    return t;
  }

  #listTexts(service: string): Map<string, string> {
    let m = this.#lists.get(service);
    if (m === undefined) {
      m = new Map();
      for (const e of this.#endpoints.get(service) ?? []) m.set(endpointKey(e), JSON.stringify(e));
      this.#lists.set(service, m);
    }
    return m;
  }
}

function list(v: unknown): unknown[] | undefined {
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v : [v];
}

/** Whether a Service's inbound authorization lets `caller` in at all (so it must see the Service). */
function admission(spec: Record<string, unknown>): (caller: string) => boolean {
  const inbound = spec.inbound as { authorization?: { allow?: unknown } } | undefined;
  const auth = inbound?.authorization;
  if (auth === undefined) return () => true;
  const allow = list(auth.allow) as ({ from?: unknown } | null)[] | undefined;
  if (allow === undefined) return () => true;
  const callers = new Set<string>();
  for (const rule of allow) {
    const from = list(rule?.from);
    if (from === undefined) return () => true;
    for (const f of from) if (typeof f === 'string') callers.add(f);
  }
  if (callers.has('*')) return () => true;
  return (caller) => callers.has(caller);
}
