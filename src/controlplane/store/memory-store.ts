/**
 * The store in memory: the reference semantics of `Store` (transactions, revisions, leases,
 * watches), used by tests and as the in-memory half of the embedded store. Not durable.
 *
 * The key space is a `StoreState`, watches a `WatchHub` with recent history. Every change goes
 * through `complete`: applied in memory at once (so the next transaction's conditions see it),
 * then `persist` (nothing here; the embedded store's write-ahead log), then published to
 * watchers in revision order. Reads wait on `barrier` so they never return a change that is not
 * yet durable.
 */
import { randomBytes } from 'node:crypto';
import type { Store, StoreEntry, StoreEvent, StoreOp, StoreWatch, StoreWatchHandlers } from './store.js';
import { StoreLeaseNotFoundError, StoreUnavailableError } from './store.js';
import { StoreState } from './store-state.js';
import type { Applied, StoreRecord } from './store-state.js';
import { WatchHub } from './watch-hub.js';

export interface MemoryStoreOptions {
  /** Milliseconds since the epoch (tests inject a clock). */
  now?: () => number;
  /** How often expired leases are swept (default 250 ms). */
  sweepMs?: number;
  /** Revisions of event history kept for watches from the past (default 1000); older ones get onReset. */
  historyLimit?: number;
}

/** A state to start from and why history before it cannot be replayed (the embedded store after recovery). */
export interface InitialState {
  readonly state: StoreState;
  readonly compactedReason: string;
}

export class MemoryStore implements Store {
  readonly kind: 'memory' | 'embedded' = 'memory';
  protected readonly state: StoreState;
  protected readonly hub: WatchHub;
  protected readonly now: () => number;
  protected closed = false;
  private readonly sweep: NodeJS.Timeout;
  /** Changes applied in memory, waiting to be durable before watchers see them (revision order). */
  private readonly unpublished: { revision: number; events: StoreEvent[] }[] = [];

  constructor(options: MemoryStoreOptions = {}, initial?: InitialState) {
    this.now = options.now ?? Date.now;
    this.state = initial?.state ?? new StoreState();
    this.hub = new WatchHub({ historyLimit: options.historyLimit, compactedRevision: this.state.revision, compactedReason: initial?.compactedReason });
    this.sweep = setInterval(() => this.expireLeases(), options.sweepMs ?? 250);
    this.sweep.unref();
  }

  async commit(ops: readonly StoreOp[]): Promise<number> {
    this.checkOpen();
    return this.complete(this.state.apply(ops));
  }

  /** Persists an applied change, then publishes it (and any earlier one) to watchers. */
  protected async complete(applied: Applied): Promise<number> {
    if (applied.events.length > 0) this.unpublished.push({ revision: applied.revision, events: applied.events });
    if (applied.record !== undefined) await this.persist(applied.record);
    else await this.barrier();
    while (this.unpublished.length > 0 && (this.unpublished[0] as { revision: number }).revision <= applied.revision) {
      const next = this.unpublished.shift() as { revision: number; events: StoreEvent[] };
      this.hub.publish(next.events, next.revision);
    }
    return applied.revision;
  }

  /** Hook for durable subclasses: resolves once `record` (already applied in memory) is durable. */
  protected persist(_record: StoreRecord): Promise<void> {
    return Promise.resolve();
  }

  /** Hook for durable subclasses: resolves once every change applied so far is durable. */
  protected barrier(): Promise<void> {
    return Promise.resolve();
  }

  async get<T = unknown>(key: string): Promise<StoreEntry<T> | undefined> {
    this.checkOpen();
    const e = this.state.data.get(key);
    const copy = e === undefined ? undefined : ({ ...e, value: structuredClone(e.value) } as StoreEntry<T>);
    await this.barrier();
    return copy;
  }

  async list<T = unknown>(prefix: string): Promise<{ entries: StoreEntry<T>[]; revision: number }> {
    this.checkOpen();
    const entries: StoreEntry<T>[] = [];
    for (const [k, e] of this.state.data) if (k.startsWith(prefix)) entries.push({ ...e, value: structuredClone(e.value) } as StoreEntry<T>);
    entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const revision = this.state.revision;
    await this.barrier();
    return { entries, revision };
  }

  watch(prefix: string, afterRevision: number, handlers: StoreWatchHandlers): StoreWatch {
    this.checkOpen();
    return this.hub.watch(prefix, afterRevision, handlers);
  }

  async grantLease(ttlMs: number): Promise<string> {
    this.checkOpen();
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new TypeError(`a lease TTL must be a positive number of milliseconds, got ${ttlMs}`);
    const id = randomBytes(8).toString('hex');
    await this.persist(this.state.grant(id, ttlMs, this.now() + ttlMs));
    return id;
  }

  async keepAlive(lease: string): Promise<void> {
    this.checkOpen();
    const l = this.state.leases.get(lease);
    if (l === undefined) throw new StoreLeaseNotFoundError(lease);
    l.expiresAt = this.now() + l.ttlMs;
  }

  async revokeLease(lease: string): Promise<void> {
    this.checkOpen();
    const l = this.state.leases.get(lease);
    if (l === undefined) return;
    await this.complete(this.state.apply([...l.keys].map((key) => ({ type: 'delete' as const, key })), [lease]));
  }

  async revision(): Promise<number> {
    this.checkOpen();
    const revision = this.state.revision;
    await this.barrier();
    return revision;
  }

  async health(): Promise<{ ok: boolean; detail: string }> {
    return { ok: !this.closed, detail: `${this.kind} store at revision ${this.state.revision}, ${this.state.data.size} keys, ${this.state.leases.size} leases` };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweep);
    this.hub.clear();
  }

  protected expireLeases(): void {
    if (this.closed) return;
    const now = this.now();
    for (const [id, l] of this.state.leases) {
      if (l.expiresAt > now) continue;
      this.revokeLease(id).catch(() => {});
    }
  }

  protected checkOpen(): void {
    if (this.closed) throw new StoreUnavailableError(`the ${this.kind} store is closed`);
  }
}
