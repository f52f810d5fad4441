/**
 * What the fleet view reads from the store for one stat: the registry (instance records and
 * their push status) and the routes of Service documents. Read per request: the store is the
 * truth and there is nothing to keep in step; a stat is an admin read, rate-limited upstream.
 */
import type { InstanceRecord, InstanceStatus, Store, StoredResource } from '../store/store.js';
import { KEYS } from '../store/store.js';

export interface RouteBackends {
  readonly route: string;
  readonly backends: readonly { readonly subset: Readonly<Record<string, string>>; readonly weight: number }[];
}

export interface StoreView {
  /** Service names with a Service document. */
  readonly documented: ReadonlySet<string>;
  readonly instances: readonly InstanceRecord[];
  /** By `service/id`. */
  readonly statuses: ReadonlyMap<string, InstanceStatus>;
  /** Routes of the service asked for, in declaration order. */
  routesOf(service: string): readonly RouteBackends[];
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function stringMap(v: unknown): Record<string, string> {
  if (!isRecord(v)) return {};
  return Object.fromEntries(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

/** Routes as written in a Service document (`spec.routes[].backends[]`, weight 1 when omitted). */
function routesOfDocument(doc: StoredResource): RouteBackends[] {
  const spec = isRecord(doc.spec) ? doc.spec : {};
  const routes = Array.isArray(spec.routes) ? spec.routes : [];
  return routes.map((r: unknown, i: number) => {
    const route = isRecord(r) ? r : {};
    const backends = Array.isArray(route.backends) ? route.backends : [];
    return {
      route: typeof route.name === 'string' ? route.name : `route-${i}`,
      backends: backends.map((b: unknown) => {
        const backend = isRecord(b) ? b : {};
        return { subset: stringMap(backend.subset), weight: typeof backend.weight === 'number' ? backend.weight : 1 };
      }),
    };
  });
}

export async function readStoreView(store: Store): Promise<StoreView> {
  const [resources, instances, statuses] = await Promise.all([
    store.list<StoredResource>(KEYS.resources),
    store.list<InstanceRecord>(KEYS.instances),
    store.list<InstanceStatus>(KEYS.statuses),
  ]);
  const services = new Map<string, StoredResource>();
  for (const e of resources.entries) if (e.value.kind === 'Service') services.set(e.value.metadata.name, e.value);
  return {
    documented: new Set(services.keys()),
    instances: instances.entries.map((e) => e.value),
    statuses: new Map(statuses.entries.map((e) => [`${e.value.service}/${e.value.id}`, e.value])),
    routesOf: (service) => {
      const doc = services.get(service);
      return doc === undefined ? [] : routesOfDocument(doc);
    },
  };
}

/** Whether `labels` carry every pair of `subset` (an empty subset matches every instance). */
export function matchesSubset(labels: Readonly<Record<string, string>>, subset: Readonly<Record<string, string>>): boolean {
  return Object.entries(subset).every(([k, v]) => labels[k] === v);
}
