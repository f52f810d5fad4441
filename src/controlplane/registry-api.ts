/**
 * Read-only routes over the registry and the replica: `GET /v1/instances` (registry records
 * joined with what each instance did with its snapshots: versions sent, ACKed, NACKed with the
 * reason, clock skew) and `GET /v1/status` (this replica, its store, the config version, counts,
 * CA and serving-certificate expiry, and its clock, for skew checks by the CLI).
 */
import type { Clock } from '../core/clock.js';
import { isServiceName } from '../tls/spiffe.js';
import { ApiError } from './api-error.js';
import type { ControlPlaneAuthority } from './authority-state.js';
import type { Router } from './router.js';
import type { Sync } from './sync/index.js';
import { KEYS, type InstanceRecord, type InstanceStatus, type Store } from './store/store.js';

export interface RegistryApiDeps {
  readonly store: Store;
  readonly sync: Sync;
  readonly authority: ControlPlaneAuthority;
  readonly replicaId: string;
  readonly clock: Clock;
  readonly servingNotAfter: () => number;
}

/** One instance as the API shows it: its registry record (null once gone) and its status (null before its first snapshot). */
export interface InstanceView {
  readonly id: string;
  readonly service: string;
  readonly record: InstanceRecord | null;
  readonly status: InstanceStatus | null;
}

export async function listInstances(store: Store, service: string | undefined): Promise<{ revision: number; items: InstanceView[] }> {
  const suffix = service === undefined ? '' : `${service}/`;
  const [records, statuses] = await Promise.all([store.list<InstanceRecord>(KEYS.instances + suffix), store.list<InstanceStatus>(KEYS.statuses + suffix)]);
  const byId = new Map<string, { id: string; service: string; record: InstanceRecord | null; status: InstanceStatus | null }>();
  for (const e of records.entries) byId.set(`${e.value.service}/${e.value.id}`, { id: e.value.id, service: e.value.service, record: e.value, status: null });
  for (const e of statuses.entries) {
    const k = `${e.value.service}/${e.value.id}`;
    const v = byId.get(k);
    if (v !== undefined) v.status = e.value;
    else byId.set(k, { id: e.value.id, service: e.value.service, record: null, status: e.value });
  }
  const items = [...byId.values()].sort((a, b) => (a.service === b.service ? (a.id < b.id ? -1 : 1) : a.service < b.service ? -1 : 1));
  return { revision: Math.max(records.revision, statuses.revision), items };
}

export function registerRegistryApi(router: Router, deps: RegistryApiDeps): void {
  const { store, sync, authority, clock } = deps;

  router.route(
    'GET',
    '/v1/instances',
    async (req) => {
      const service = req.query.get('service') ?? undefined;
      if (service !== undefined && !isServiceName(service)) throw new ApiError(400, 'TRELLIS_INVALID_ARGUMENT', `"${service.slice(0, 64)}" is not a service name`);
      return { body: await listInstances(store, service) };
    },
    { auth: 'admin', query: ['service'] },
  );

  router.route(
    'GET',
    '/v1/status',
    async () => {
      const [health, revision, instances] = await Promise.all([
        store.health().catch((err: unknown) => ({ ok: false, detail: err instanceof Error ? err.message : String(err) })),
        store.revision().catch(() => -1),
        store.list(KEYS.instances).then((l) => l.entries.length).catch(() => -1),
      ]);
      return {
        body: {
          replica: deps.replicaId,
          now: clock.wall(),
          version: String(revision),
          store: { kind: store.kind, ok: health.ok, detail: health.detail },
          instances: { registered: instances, connected: sync.connected() },
          ca: {
            trustDomain: authority.ca.trustDomain,
            pins: authority.pins,
            issuerNotAfter: authority.ca.issuer.notAfter,
            anchorNotAfter: Math.min(...authority.ca.anchors.map((a) => a.notAfter)),
          },
          servingCertificateNotAfter: deps.servingNotAfter(),
        },
      };
    },
    { auth: 'admin', query: [] },
  );
}
