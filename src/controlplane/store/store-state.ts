/**
 * The key space of the local stores (memory and embedded), synchronous and deterministic: keys,
 * the store revision and leases. A transaction is checked whole (duplicate keys, values that are
 * not JSON, conditions, leases) before anything changes, then applied whole; the result carries
 * the record the embedded store logs, which `replay` applies again, without conditions, to give
 * the same state. Nothing here knows about time: lease expiry instants are set by the caller.
 *
 * Semantics follow etcd's: the revision moves only when something changes, every event of one
 * transaction shares its revision, and a deleted key's event carries the deleting revision.
 */
import type { StoreEntry, StoreEvent, StoreOp } from './store.js';
import { StoreConflictError, StoreLeaseNotFoundError } from './store.js';

/** A put or delete as applied: what the log keeps of an op (its condition was already checked). */
export type AppliedOp =
  | { readonly type: 'put'; readonly key: string; readonly value: unknown; readonly lease?: string | undefined }
  | { readonly type: 'delete'; readonly key: string };

/** One logged change: a transaction (which may also end leases), or a new lease. */
export type StoreRecord =
  | { readonly type: 'txn'; readonly revision: number; readonly ops: readonly AppliedOp[]; readonly revoke?: readonly string[] | undefined }
  | { readonly type: 'grant'; readonly id: string; readonly ttlMs: number };

export interface Applied {
  /** The store revision after the transaction (unchanged when nothing changed). */
  readonly revision: number;
  readonly events: StoreEvent[];
  /** What to log; undefined when the transaction changed nothing. */
  readonly record: StoreRecord | undefined;
}

export interface LeaseState {
  readonly ttlMs: number;
  /** Epoch ms; set by the owner (now + ttl at grant, keep-alive and restart). */
  expiresAt: number;
  readonly keys: Set<string>;
}

/** The whole state, as a snapshot file holds it. */
export interface StateImage {
  readonly revision: number;
  /** [key, value, createRevision, modRevision, lease or null] */
  readonly entries: readonly (readonly [string, unknown, number, number, string | null])[];
  /** [id, ttlMs] */
  readonly leases: readonly (readonly [string, number])[];
}

export class StoreState {
  readonly data = new Map<string, StoreEntry>();
  readonly leases = new Map<string, LeaseState>();
  revision = 0;

  /** Checks then applies `ops` (and ends the leases in `revoke`), all or nothing. */
  apply(ops: readonly StoreOp[], revoke: readonly string[] = []): Applied {
    const prepared = prepareOps(ops);
    for (const op of ops) {
      if (op.ifModRevision === undefined) continue;
      const actual = this.data.get(op.key)?.modRevision ?? 0;
      if (actual !== op.ifModRevision) throw new StoreConflictError(op.key, op.ifModRevision, actual);
    }
    for (const op of prepared) {
      if (op.type === 'put' && op.lease !== undefined && !this.leases.has(op.lease)) throw new StoreLeaseNotFoundError(op.lease);
    }
    return this.write(prepared, revoke);
  }

  /** Applies a logged record again (recovery). Throws when it does not land on the revision it was logged at. */
  replay(record: StoreRecord): void {
    if (record.type === 'grant') {
      this.grant(record.id, record.ttlMs, 0);
      return;
    }
    const { revision } = this.write(record.ops, record.revoke ?? []);
    if (revision !== record.revision) throw new Error(`replayed transaction landed on revision ${revision}, logged at ${record.revision}`);
  }

  grant(id: string, ttlMs: number, expiresAt: number): StoreRecord {
    this.leases.set(id, { ttlMs, expiresAt, keys: new Set() });
    return { type: 'grant', id, ttlMs };
  }

  image(): StateImage {
    const entries: [string, unknown, number, number, string | null][] = [];
    for (const e of this.data.values()) entries.push([e.key, e.value, e.createRevision, e.modRevision, e.lease ?? null]);
    const leases: [string, number][] = [];
    for (const [id, l] of this.leases) leases.push([id, l.ttlMs]);
    return { revision: this.revision, entries, leases };
  }

  /** Replaces the state by `image`; leases get `expiresAt`. */
  load(image: StateImage, expiresAt: number): void {
    this.data.clear();
    this.leases.clear();
    this.revision = image.revision;
    for (const [id, ttlMs] of image.leases) this.leases.set(id, { ttlMs, expiresAt, keys: new Set() });
    for (const [key, value, createRevision, modRevision, lease] of image.entries) {
      this.data.set(key, { key, value, createRevision, modRevision, lease: lease ?? undefined });
      if (lease !== null) this.leases.get(lease)?.keys.add(key);
    }
  }

  private write(ops: readonly AppliedOp[], revoke: readonly string[]): Applied {
    const changes = ops.some((op) => op.type === 'put' || this.data.has(op.key));
    const revision = changes ? this.revision + 1 : this.revision;
    const events: StoreEvent[] = [];
    for (const op of ops) {
      const prev = this.data.get(op.key);
      if (prev?.lease !== undefined) this.leases.get(prev.lease)?.keys.delete(op.key);
      if (op.type === 'put') {
        const entry: StoreEntry = { key: op.key, value: op.value, modRevision: revision, createRevision: prev?.createRevision ?? revision, lease: op.lease };
        this.data.set(op.key, entry);
        if (op.lease !== undefined) this.leases.get(op.lease)?.keys.add(op.key);
        events.push({ type: 'put', entry });
      } else if (prev !== undefined) {
        this.data.delete(op.key);
        events.push({ type: 'delete', key: op.key, modRevision: revision });
      }
    }
    for (const id of revoke) this.leases.delete(id);
    this.revision = revision;
    const record: StoreRecord | undefined =
      events.length > 0 || revoke.length > 0 ? { type: 'txn', revision, ops, revoke: revoke.length > 0 ? revoke : undefined } : undefined;
    return { revision, events, record };
  }
}

/**
 * Refuses what no store accepts, before anything changes: one key twice in a transaction (etcd
 * refuses it too) and values that do not survive JSON (every store keeps JSON). Values are
 * copied through JSON so the caller's object and the stored one never share structure.
 */
export function prepareOps(ops: readonly StoreOp[]): AppliedOp[] {
  const seen = new Set<string>();
  const out: AppliedOp[] = [];
  for (const op of ops) {
    if (typeof op.key !== 'string' || op.key === '') throw new TypeError('a store key must be a non-empty string');
    if (seen.has(op.key)) throw new TypeError(`the key ${op.key} appears twice in one transaction`);
    seen.add(op.key);
    if (op.type === 'delete') {
      out.push({ type: 'delete', key: op.key });
      continue;
    }
    let json: string | undefined;
    try {
      json = JSON.stringify(op.value);
    } catch (err) {
      throw new TypeError(`the value for ${op.key} is not JSON: ${(err as Error).message}`);
    }
    if (json === undefined) throw new TypeError(`the value for ${op.key} is not JSON (${typeof op.value})`);
    out.push({ type: 'put', key: op.key, value: JSON.parse(json) as unknown, lease: op.lease });
  }
  return out;
}
