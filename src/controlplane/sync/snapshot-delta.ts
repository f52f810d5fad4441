/**
 * Snapshot deltas (docs/control-plane.md, "The instance stream"): what changed between two views
 * of one service, and the snapshot an instance rebuilds from the one it ACKed plus a delta.
 *
 * Why: a registration changes one endpoint in the views of every service that may call the
 * registering one, and whole snapshots re-sent every endpoint of those views to every instance
 * of those services (a rollout of 1,000 instances pushed ~1.2 GB). A delta names only the
 * endpoints that came or went (Linkerd's destination Add/Remove, Envoy's delta xDS), so a
 * registration costs about its own size per instance.
 *
 * Both ends compute the same order (services by name, endpoints by address then instance), so
 * a rebuilt snapshot is the snapshot the control plane would have sent whole.
 */
import type { DeltaMessage, SnapshotDocument, SnapshotEndpoint, SnapshotMessage } from './protocol.js';

/** A view as JSON texts of its parts, for cheap comparison (control-plane side). */
export interface ViewParts {
  /** The Mesh document's JSON text (`null` when there is none). */
  readonly mesh: string;
  /** Service name → its document's JSON text, in name order. */
  readonly services: ReadonlyMap<string, string>;
  /** Service name → (endpoint key → the endpoint's JSON text, in list order), for registry services. */
  readonly endpoints: ReadonlyMap<string, ReadonlyMap<string, string>>;
}

/** An endpoint's identity within its service's list. */
export function endpointKey(e: { address: string; instance: string }): string {
  return `${e.address} ${e.instance}`;
}

/** The view's text, `{"mesh":…,"services":[…],"endpoints":{…}}`, exactly as JSON.stringify writes it. */
export function viewContent(parts: ViewParts): string {
  const eps: string[] = [];
  for (const [name, list] of parts.endpoints) eps.push(`${JSON.stringify(name)}:[${[...list.values()].join(',')}]`);
  return `{"mesh":${parts.mesh},"services":[${[...parts.services.values()].join(',')}],"endpoints":{${eps.join(',')}}}`;
}

/**
 * The delta line (`{"type":"delta",…}\n`) taking an instance from `base` to `target`, or
 * undefined when nothing differs.
 */
export function deltaLine(base: ViewParts, baseVersion: string, target: ViewParts, version: string): string | undefined {
  const fields: string[] = [];
  if (base.mesh !== target.mesh) fields.push(`"mesh":${target.mesh}`);

  const setDocs: string[] = [];
  const removeDocs: string[] = [];
  for (const [name, text] of target.services) if (base.services.get(name) !== text) setDocs.push(text);
  for (const name of base.services.keys()) if (!target.services.has(name)) removeDocs.push(JSON.stringify(name));
  if (setDocs.length > 0 || removeDocs.length > 0) {
    const parts: string[] = [];
    if (setDocs.length > 0) parts.push(`"set":[${setDocs.join(',')}]`);
    if (removeDocs.length > 0) parts.push(`"remove":[${removeDocs.join(',')}]`);
    fields.push(`"services":{${parts.join(',')}}`);
  }

  const set: string[] = [];
  const add: string[] = [];
  const remove: string[] = [];
  const drop: string[] = [];
  for (const [name, list] of target.endpoints) {
    const was = base.endpoints.get(name);
    const key = JSON.stringify(name);
    if (was === undefined) {
      set.push(`${key}:[${[...list.values()].join(',')}]`);
      continue;
    }
    const added: string[] = [];
    const removed: string[] = [];
    for (const [k, text] of list) if (was.get(k) !== text) added.push(text);
    // An endpoint still listed under its key is replaced by `add` (applyDelta adds by key): only
    // the ones gone are removed.
    for (const k of was.keys()) {
      if (list.has(k)) continue;
      const sep = k.indexOf(' ');
      removed.push(JSON.stringify({ address: k.slice(0, sep), instance: k.slice(sep + 1) }));
    }
    if (added.length === 0 && removed.length === 0) continue;
    // A list that changed mostly is cheaper whole.
    if (added.length + removed.length >= list.size) set.push(`${key}:[${[...list.values()].join(',')}]`);
    else {
      if (added.length > 0) add.push(`${key}:[${added.join(',')}]`);
      if (removed.length > 0) remove.push(`${key}:[${removed.join(',')}]`);
    }
  }
  for (const name of base.endpoints.keys()) if (!target.endpoints.has(name)) drop.push(JSON.stringify(name));
  const ep: string[] = [];
  if (set.length > 0) ep.push(`"set":{${set.join(',')}}`);
  if (add.length > 0) ep.push(`"add":{${add.join(',')}}`);
  if (remove.length > 0) ep.push(`"remove":{${remove.join(',')}}`);
  if (drop.length > 0) ep.push(`"drop":[${drop.join(',')}]`);
  if (ep.length > 0) fields.push(`"endpoints":{${ep.join(',')}}`);

  if (fields.length === 0) return undefined;
  return `{"type":"delta","version":${JSON.stringify(version)},"base":${JSON.stringify(baseVersion)},${fields.join(',')}}\n`;
}

/** Thrown when a delta cannot be applied: the instance then asks for whole snapshots. */
export class DeltaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeltaError';
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function arrayOf<T>(v: unknown, what: string): T[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new DeltaError(`delta.${what}: expected a list`);
  return v as T[];
}

function recordOf<T>(v: unknown, what: string): [string, T[]][] {
  if (v === undefined) return [];
  if (!isObject(v)) throw new DeltaError(`delta.${what}: expected an object of lists`);
  return Object.entries(v).map(([k, list]) => [k, arrayOf<T>(list, `${what}.${k}`)]);
}

function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function endpointOrder(a: SnapshotEndpoint, b: SnapshotEndpoint): number {
  return a.address < b.address ? -1 : a.address > b.address ? 1 : a.instance < b.instance ? -1 : a.instance > b.instance ? 1 : 0;
}

/**
 * The snapshot `delta` makes of `base` (the snapshot whose version is `delta.base`).
 *
 * @throws DeltaError when `base` is not the delta's base or the delta is malformed.
 */
export function applyDelta(base: SnapshotMessage, delta: DeltaMessage): SnapshotMessage {
  if (delta.base !== base.version) throw new DeltaError(`delta ${delta.version} is against version ${delta.base}, not ${base.version}`);
  if (typeof delta.version !== 'string') throw new DeltaError('delta.version: expected a string');
  const mesh = delta.mesh === undefined ? base.mesh : delta.mesh;

  const services = new Map<string, SnapshotDocument>();
  for (const d of base.services) services.set(d.metadata.name, d);
  if (delta.services !== undefined && !isObject(delta.services)) throw new DeltaError('delta.services: expected { set, remove }');
  for (const name of arrayOf<unknown>(delta.services?.remove, 'services.remove')) services.delete(String(name));
  for (const d of arrayOf<SnapshotDocument>(delta.services?.set, 'services.set')) {
    if (!isObject(d) || !isObject(d.metadata) || typeof d.metadata.name !== 'string') throw new DeltaError('delta.services.set: a document without metadata.name');
    services.set(d.metadata.name, d);
  }

  const endpoints = new Map<string, SnapshotEndpoint[]>(Object.entries(base.endpoints).map(([k, v]) => [k, [...v]]));
  const ep = delta.endpoints;
  if (ep !== undefined && !isObject(ep)) throw new DeltaError('delta.endpoints: expected { set, add, remove, drop }');
  for (const name of arrayOf<unknown>(ep?.drop, 'endpoints.drop')) endpoints.delete(String(name));
  for (const [name, list] of recordOf<SnapshotEndpoint>(ep?.set, 'endpoints.set')) endpoints.set(name, [...list]);
  for (const [name, gone] of recordOf<{ address: string; instance: string }>(ep?.remove, 'endpoints.remove')) {
    const list = endpoints.get(name);
    if (list === undefined) throw new DeltaError(`delta.endpoints.remove.${name}: no such list in version ${base.version}`);
    const keys = new Set(gone.map((g) => endpointKey(g)));
    endpoints.set(name, list.filter((e) => !keys.has(endpointKey(e))));
  }
  for (const [name, more] of recordOf<SnapshotEndpoint>(ep?.add, 'endpoints.add')) {
    const list = endpoints.get(name);
    if (list === undefined) throw new DeltaError(`delta.endpoints.add.${name}: no such list in version ${base.version}`);
    const keys = new Set(more.map((e) => endpointKey(e)));
    endpoints.set(name, [...list.filter((e) => !keys.has(endpointKey(e))), ...more]);
  }

  const names = [...endpoints.keys()].sort(byName);
  // From entries, not by assignment: a list named `__proto__` stays a key.
  const out: Record<string, SnapshotEndpoint[]> = Object.fromEntries(names.map((name) => [name, (endpoints.get(name) as SnapshotEndpoint[]).sort(endpointOrder)]));
  return {
    type: 'snapshot',
    version: delta.version,
    mesh,
    services: [...services.values()].sort((a, b) => byName(a.metadata.name, b.metadata.name)),
    endpoints: out,
  };
}
