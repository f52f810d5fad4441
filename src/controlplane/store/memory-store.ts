/**
 * The store in memory: the reference semantics of `Store` (transactions, revisions, leases,
 * watches), used by tests and as the in-memory half of the embedded store. Not durable.
 */
import { randomBytes } from 'node:crypto';
import type { Store, StoreEntry, StoreEvent, StoreOp, StoreWatch, StoreWatchHandlers } from './store.js';
import { StoreConflictError } from './store.js';

interface Lease {
  ttlMs: number;
  expiresAt: number;
  keys: Set<string>;
}

interface Watcher {
  prefix: string;
  handlers: StoreWatchHandlers;
}

export interface MemoryStoreOptions {
  /** Milliseconds since the epoch (tests inject a clock). */
  now?: () => number;
  /** How often expired leases are swept (default 250 ms). */
  sweepMs?: number;
}

export class MemoryStore implements Store {
  readonly kind: 'memory' | 'embedded' = 'memory';
  protected readonly data = new Map<string, StoreEntry>();
  protected rev = 0;
  private readonly leases = new Map<string, Lease>();
  private readonly watchers = new Set<Watcher>();
  private readonly now: () => number;
  private readonly sweep: NodeJS.Timeout;
  private closed = false;

  constructor(options: MemoryStoreOptions = {}) {
    this.now = options.now ?? Date.now;
    this.sweep = setInterval(() => this.expireLeases(), options.sweepMs ?? 250);
    this.sweep.unref();
  }

  /** Applies ops synchronously (after checks); subclasses persist before resolving. */
  protected applyOps(ops: readonly StoreOp[]): { revision: number; events: StoreEvent[] } {
    for (const op of ops) {
      if (op.ifModRevision === undefined) continue;
      const actual = this.data.get(op.key)?.modRevision ?? 0;
      if (actual !== op.ifModRevision) throw new StoreConflictError(op.key, op.ifModRevision, actual);
    }
    for (const op of ops) {
      if (op.type === 'put' && op.lease !== undefined && !this.leases.has(op.lease)) throw new Error(`lease ${op.lease} not found`);
    }
    const revision = ++this.rev;
    const events: StoreEvent[] = [];
    for (const op of ops) {
      const prev = this.data.get(op.key);
      if (prev?.lease !== undefined) this.leases.get(prev.lease)?.keys.delete(op.key);
      if (op.type === 'put') {
        const entry: StoreEntry = { key: op.key, value: structuredClone(op.value), modRevision: revision, createRevision: prev?.createRevision ?? revision, lease: op.lease };
        this.data.set(op.key, entry);
        if (op.lease !== undefined) this.leases.get(op.lease)?.keys.add(op.key);
        events.push({ type: 'put', entry });
      } else if (prev !== undefined) {
        this.data.delete(op.key);
        events.push({ type: 'delete', key: op.key, modRevision: revision });
      }
    }
    return { revision, events };
  }

  protected notify(events: readonly StoreEvent[], revision: number): void {
    if (events.length === 0) return;
    for (const w of this.watchers) {
      const mine = events.filter((e) => (e.type === 'put' ? e.entry.key : e.key).startsWith(w.prefix));
      if (mine.length > 0) w.handlers.onEvents(mine, revision);
    }
  }

  async commit(ops: readonly StoreOp[]): Promise<number> {
    this.checkOpen();
    const { revision, events } = this.applyOps(ops);
    await this.persist(ops, revision);
    this.notify(events, revision);
    return revision;
  }

  /** Hook for durable subclasses: called after a transaction applied in memory, before it is acknowledged. */
  protected async persist(_ops: readonly StoreOp[], _revision: number): Promise<void> {}

  async get<T = unknown>(key: string): Promise<StoreEntry<T> | undefined> {
    this.checkOpen();
    const e = this.data.get(key);
    return e === undefined ? undefined : ({ ...e, value: structuredClone(e.value) } as StoreEntry<T>);
  }

  async list<T = unknown>(prefix: string): Promise<{ entries: StoreEntry<T>[]; revision: number }> {
    this.checkOpen();
    const entries: StoreEntry<T>[] = [];
    for (const [k, e] of this.data) if (k.startsWith(prefix)) entries.push({ ...e, value: structuredClone(e.value) } as StoreEntry<T>);
    entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { entries, revision: this.rev };
  }

  watch(prefix: string, afterRevision: number, handlers: StoreWatchHandlers): StoreWatch {
    this.checkOpen();
    const w: Watcher = { prefix, handlers };
    this.watchers.add(w);
    // Memory keeps no history: a watch from the past can only be told to re-list.
    if (afterRevision < this.rev) queueMicrotask(() => this.watchers.has(w) && handlers.onReset(`history before revision ${this.rev} is not kept`));
    return { close: () => void this.watchers.delete(w) };
  }

  async grantLease(ttlMs: number): Promise<string> {
    this.checkOpen();
    const id = randomBytes(8).toString('hex');
    this.leases.set(id, { ttlMs, expiresAt: this.now() + ttlMs, keys: new Set() });
    return id;
  }

  async keepAlive(lease: string): Promise<void> {
    const l = this.leases.get(lease);
    if (l === undefined) throw new Error(`lease ${lease} not found`);
    l.expiresAt = this.now() + l.ttlMs;
  }

  async revokeLease(lease: string): Promise<void> {
    const l = this.leases.get(lease);
    if (l === undefined) return;
    this.leases.delete(lease);
    if (l.keys.size > 0) await this.commit([...l.keys].map((key) => ({ type: 'delete' as const, key })));
  }

  async revision(): Promise<number> {
    return this.rev;
  }

  async health(): Promise<{ ok: boolean; detail: string }> {
    return { ok: !this.closed, detail: `${this.kind} store at revision ${this.rev}, ${this.data.size} keys` };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweep);
    this.watchers.clear();
  }

  protected expireLeases(): void {
    const now = this.now();
    for (const [id, l] of this.leases) {
      if (l.expiresAt > now) continue;
      this.revokeLease(id).catch(() => {});
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new Error('store closed');
  }
}
