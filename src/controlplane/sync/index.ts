/**
 * The control plane's sync side: every instance's stream (POST /v1/stream), the registry it
 * writes, and the snapshots it pushes (docs/control-plane.md, "The instance stream").
 *
 * One replica keeps a copy of the store's resources and instance records (list + watch, re-list
 * on reset). A store change marks the copy dirty; changes are coalesced for COALESCE_MS, then
 * each service with connected instances gets its view computed once (one JSON text per service
 * and revision, the bytes shared by all its streams) and offered to each stream, which sends it
 * when the instance has nothing unacknowledged. A view whose text did not change is not re-sent,
 * so an unrelated change (another service's instance registering) costs a string comparison.
 * `version` is the store revision the view was computed at.
 *
 * When an instance record disappears (lease expired, deregistered) and no stream of this replica
 * holds that instance, its status entry is removed too; an instance that never registered loses
 * its status when its stream ends (a replica it fails over to writes it again).
 */
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import { performance } from 'node:perf_hooks';
import type { Registry } from 'prom-client';
import type { InstanceRecord, Store, StoredResource } from '../store/store.js';
import { KEYS } from '../store/store.js';
import { InstanceStream } from './instance-stream.js';
import type { StreamHub, StreamPeer, View } from './instance-stream.js';
import { MirroredPrefix } from './mirrored-prefix.js';
import { DEFAULT_LEASE_TTL_MS, DELTA_FEATURE, STREAM_FEATURES_HEADER } from './protocol.js';
import { ViewIndex } from './snapshot-view.js';
import { StreamAdmission } from './stream-admission.js';
import { systemClock, type Clock } from '../../core/clock.js';
import { deltaLine, viewContent, type ViewParts } from './snapshot-delta.js';
import { StatusWriter } from './status-writer.js';
import { syncMetrics } from './sync-metrics.js';

export interface SyncDeps {
  store: Store;
  replicaId: string;
  registry: Registry;
  onWarn(message: string): void;
  onReport?(instance: { id: string; service: string }, report: unknown): void;
  leaseTtlMs?: number;
  /**
   * New streams admitted per second (burst `burst`); default 100/s, burst 200. Beyond it a
   * stream is answered 503 TRELLIS_OVERLOADED with a Retry-After that spreads the refused
   * instances over the time the replica needs to take them, and the client waits that long.
   */
  streamAdmission?: StreamAdmissionParams;
  clock?: Clock;
}

export interface StreamAdmissionParams {
  readonly ratePerSecond: number;
  readonly burst: number;
}

export interface Sync {
  /** Serves one POST /v1/stream whose client certificate the caller verified as `peer`. */
  handleStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, peer: StreamPeer): void;
  /** Instances with an open stream to this replica. */
  connected(): number;
  /** Ends every stream (instances fail over to another replica) and stops watching. */
  close(): Promise<void>;
}

/** How long store changes are gathered before views are recomputed and pushed. */
const COALESCE_MS = 20;
const DEFAULT_ADMISSION: StreamAdmissionParams = { ratePerSecond: 100, burst: 200 };

/** Views kept per service as bases for deltas (an instance a few changes behind still gets one). */
const HISTORY = 4;

/** A view with what deltas are computed from, and the deltas already computed to it (by base version). */
interface KeptView extends View {
  readonly content: string;
  readonly parts: ViewParts;
  readonly deltas: Map<string, Buffer | null>;
}

/** The verified caller of a stream: its certificate's service, SPIFFE ID and NotAfter (epoch ms). */
export type { StreamPeer } from './instance-stream.js';
export { MAX_MESSAGE_BYTES, PING_INTERVAL_MS, DEFAULT_LEASE_TTL_MS } from './protocol.js';
export type * from './protocol.js';
export { SYNC_METRIC_NAMES } from './sync-metrics.js';

/**
 * @example
 * const sync = createSync({ store, replicaId: 'cp-1', registry, onWarn: console.warn });
 * server.on('stream', (stream, headers) => {
 *   if (headers[':path'] === '/v1/stream') sync.handleStream(stream, headers, verifiedPeer);
 * });
 */
export function createSync(deps: SyncDeps): Sync {
  const metrics = syncMetrics(deps.registry);
  const status = new StatusWriter(deps.store, deps.onWarn);
  const streams = new Map<string, Map<string, InstanceStream>>();
  const views = new Map<string, KeptView>();
  /** The last few views of each service, by version: the bases deltas are computed from. */
  const history = new Map<string, Map<string, KeptView>>();
  let count = 0;
  let index: ViewIndex | undefined;
  let dirtySince: number | undefined;
  let flushTimer: NodeJS.Timeout | undefined;
  let closed = false;
  const loaded = { resources: false, instances: false };
  let markReady: () => void = () => {};
  const readyPromise = new Promise<void>((resolve) => (markReady = resolve));
  const now = (): number => performance.now();

  const markDirty = (): void => {
    index = undefined;
    dirtySince ??= now();
    if (flushTimer === undefined && !closed) {
      flushTimer = setTimeout(flush, COALESCE_MS);
      flushTimer.unref();
    }
  };

  const resources = new MirroredPrefix<StoredResource>(deps.store, KEYS.resources, {
    onChange: () => {
      loaded.resources = true;
      if (loaded.instances) markReady();
      markDirty();
    },
    onWarn: deps.onWarn,
  });
  const instances = new MirroredPrefix<InstanceRecord>(deps.store, KEYS.instances, {
    onChange: (_revision, events, previous) => {
      loaded.instances = true;
      if (loaded.resources) markReady();
      const gone: string[] = [];
      if (events !== undefined) for (const e of events) if (e.type === 'delete') gone.push(e.key);
      if (previous !== undefined) for (const k of previous.keys()) if (!instances.entries.has(k)) gone.push(k);
      for (const key of gone) {
        const [service, id] = key.slice(KEYS.instances.length).split('/');
        if (service !== undefined && id !== undefined && streams.get(service)?.has(id) !== true) status.delete(service, id);
      }
      markDirty();
    },
    onWarn: deps.onWarn,
  });
  resources.start().catch(() => {});
  instances.start().catch(() => {});

  const revision = (): number => Math.max(resources.revision, instances.revision);

  /** The latest view of `service`; recomputed when the copy changed, kept when its text did not. */
  const compute = (service: string, changedAt: number | undefined = undefined): View => {
    index ??= new ViewIndex(resources.entries.values(), instances.entries.values());
    const parts = index.parts(service);
    const content = viewContent(parts);
    const cur = views.get(service);
    if (cur !== undefined && cur.content === content) return cur;
    const version = String(revision());
    const bytes = Buffer.from(`{"type":"snapshot","version":${JSON.stringify(version)},${content.slice(1)}\n`);
    const next: KeptView = { version, bytes, changedAt, content, parts, deltas: new Map() };
    views.set(service, next);
    let kept = history.get(service);
    if (kept === undefined) history.set(service, (kept = new Map()));
    kept.set(version, next);
    if (kept.size > HISTORY) kept.delete(kept.keys().next().value as string);
    return next;
  };

  function flush(): void {
    flushTimer = undefined;
    const since = dirtySince;
    dirtySince = undefined;
    if (closed || !(loaded.resources && loaded.instances)) return;
    for (const [service, members] of streams) {
      const v = compute(service, since);
      for (const s of members.values()) s.offer(v);
    }
  }

  const hub: StreamHub = {
    store: deps.store,
    replicaId: deps.replicaId,
    leaseTtlMs: deps.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS,
    metrics,
    status,
    now,
    wall: () => Date.now(),
    onWarn: deps.onWarn,
    ...(deps.onReport !== undefined ? { onReport: deps.onReport } : {}),
    ready: () => readyPromise,
    attach(s) {
      let members = streams.get(s.service);
      if (members === undefined) streams.set(s.service, (members = new Map()));
      const older = members.get(s.id);
      members.set(s.id, s);
      if (older !== undefined) older.fail('TRELLIS_CLOSED', 'replaced by a newer stream of the same instance');
      else {
        count++;
        metrics.connected.inc();
      }
    },
    detach(s) {
      const members = streams.get(s.service);
      if (members?.get(s.id) !== s) return;
      members.delete(s.id);
      // A pure client (never registered) leaves no record whose removal would take its status.
      if (!s.registered) status.delete(s.service, s.id);
      if (members.size === 0) {
        streams.delete(s.service);
        views.delete(s.service);
        history.delete(s.service);
      }
      count--;
      metrics.connected.dec();
    },
    // The view in hand when there is one: a pending flush brings any change (computing on every
    // hello of a connection storm would rebuild the index once per instance).
    view: (service) => views.get(service) ?? compute(service),
    delta(service, view, base) {
      const target = history.get(service)?.get(view.version);
      const from = history.get(service)?.get(base);
      if (target === undefined || from === undefined || from === target) return undefined;
      let bytes = target.deltas.get(base);
      if (bytes === undefined) {
        const line = deltaLine(from.parts, base, target.parts, target.version);
        // Sent only when smaller than the whole snapshot; null remembers "send it whole".
        bytes = line !== undefined && Buffer.byteLength(line) < target.bytes.length ? Buffer.from(line) : null;
        target.deltas.set(base, bytes);
        if (target.deltas.size > HISTORY) target.deltas.delete(target.deltas.keys().next().value as string);
      }
      return bytes ?? undefined;
    },
    knows: (service, version) => history.get(service)?.has(version) === true,
  };

  const admission = new StreamAdmission(deps.streamAdmission ?? DEFAULT_ADMISSION, deps.clock ?? systemClock);

  return {
    handleStream(stream, headers, peer) {
      if (closed) {
        stream.respond({ ':status': 503, 'content-type': 'application/json' });
        stream.end(JSON.stringify({ error: { code: 'TRELLIS_CLOSED', message: 'this control-plane replica is shutting down' } }));
        return;
      }
      const waitS = admission.take();
      if (waitS !== undefined) {
        metrics.refused.inc({ code: 'TRELLIS_OVERLOADED' });
        stream.respond({ ':status': 503, 'content-type': 'application/json', 'retry-after': String(waitS) });
        stream.end(JSON.stringify({ error: { code: 'TRELLIS_OVERLOADED', message: `this replica is taking new streams at ${admission.rate}/s; retry after ${waitS} s` } }));
        return;
      }
      if (!stream.headersSent) stream.respond({ ':status': 200, 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
      const features = String(headers[STREAM_FEATURES_HEADER] ?? '').split(',').map((f) => f.trim());
      new InstanceStream(stream, peer, hub, { deltas: features.includes(DELTA_FEATURE) });
    },
    connected: () => count,
    async close() {
      if (closed) return;
      closed = true;
      if (flushTimer !== undefined) clearTimeout(flushTimer);
      resources.close();
      instances.close();
      for (const members of [...streams.values()]) for (const s of [...members.values()]) s.fail('TRELLIS_CLOSED', 'this control-plane replica is shutting down; connect to another');
      await status.flush();
    },
  };
}
