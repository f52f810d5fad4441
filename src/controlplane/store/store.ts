/**
 * The control plane's state, behind one interface so the embedded store (a directory on disk)
 * and etcd are interchangeable, and every replica reads and writes the same way.
 *
 * Keys are strings under `/trellis/` (see KEYS); values are JSON-serialisable objects. Every
 * write is a transaction: a list of puts and deletes, each optionally conditional on the key's
 * current `modRevision` (0 = "must not exist"), applied all or nothing, which gives a new store
 * revision. Revisions are global and strictly increasing (etcd's model): a key's `modRevision` is
 * the store revision of its last write. Nothing relies on locks for correctness: a write that
 * raced another fails its condition and is retried or refused by the caller.
 *
 * Leases: a key written with a lease is deleted when the lease expires (an instance's registry
 * entry). `keepAlive` extends it; `revoke` deletes its keys at once.
 *
 * Watch: events after a revision, in order. If the store cannot replay from that revision (etcd
 * compacted it; the embedded store restarted), the watcher gets `reset` and must re-list.
 */
export interface StoreEntry<T = unknown> {
  readonly key: string;
  readonly value: T;
  /** Store revision of this key's last write. */
  readonly modRevision: number;
  /** Store revision of this key's creation. */
  readonly createRevision: number;
  /** Lease the key is attached to, if any. */
  readonly lease?: string | undefined;
}

export type StoreOp =
  | { readonly type: 'put'; readonly key: string; readonly value: unknown; readonly lease?: string | undefined; readonly ifModRevision?: number | undefined }
  | { readonly type: 'delete'; readonly key: string; readonly ifModRevision?: number | undefined };

export type StoreEvent =
  | { readonly type: 'put'; readonly entry: StoreEntry }
  | { readonly type: 'delete'; readonly key: string; readonly modRevision: number };

export interface StoreWatch {
  close(): void;
}

export interface StoreWatchHandlers {
  /** Called in revision order; events of one transaction share a revision. */
  onEvents(events: readonly StoreEvent[], revision: number): void;
  /** The watch cannot continue from where it was (compaction, restart): re-list, then watch from the list's revision. */
  onReset(reason: string): void;
}

/** A failed condition: the key's revision was not the one expected. */
export class StoreConflictError extends Error {
  readonly key: string;
  readonly expected: number;
  readonly actual: number;
  constructor(key: string, expected: number, actual: number) {
    super(`conflict on ${key}: expected revision ${expected}, found ${actual}`);
    this.name = 'StoreConflictError';
    this.key = key;
    this.expected = expected;
    this.actual = actual;
  }
}

/** The store is unreachable or failed (etcd down, disk full): nothing was written. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/** A lease that does not exist (never granted, expired or revoked): its holder must register again under a new one. */
export class StoreLeaseNotFoundError extends Error {
  readonly lease: string;
  constructor(lease: string, options?: { cause?: unknown }) {
    super(`lease ${lease} not found (expired or revoked)`, options);
    this.name = 'StoreLeaseNotFoundError';
    this.lease = lease;
  }
}

/** The embedded store's directory is held by another live process (single writer). */
export class StoreLockedError extends StoreUnavailableError {
  readonly dir: string;
  readonly pid: number;
  constructor(dir: string, pid: number, lockFile: string) {
    super(
      `the store directory ${dir} is in use by process ${pid} (lock file ${lockFile}): only one control plane may use a data directory; ` +
        'stop that process, or use etcd (--etcd) to run several replicas',
    );
    this.name = 'StoreLockedError';
    this.dir = dir;
    this.pid = pid;
  }
}

/** The embedded store's files are damaged in a way that would lose acknowledged writes: it refuses to open rather than guess. */
export class StoreCorruptError extends StoreUnavailableError {
  readonly file: string;
  constructor(file: string, detail: string) {
    super(`the store file ${file} is damaged: ${detail}`);
    this.name = 'StoreCorruptError';
    this.file = file;
  }
}

export interface Store {
  /** Human name for status and metrics: `embedded` or `etcd`. */
  readonly kind: 'embedded' | 'etcd' | 'memory';
  /**
   * Applies every op or none. Resolves with the new store revision (the current one, unchanged,
   * when the ops change nothing: only deletes of absent keys). Rejects with StoreConflictError,
   * StoreLeaseNotFoundError (a put under a lease that is gone), StoreUnavailableError, or a
   * TypeError for ops no store accepts (one key twice, a value that is not JSON).
   */
  commit(ops: readonly StoreOp[]): Promise<number>;
  get<T = unknown>(key: string): Promise<StoreEntry<T> | undefined>;
  /** Every key starting with `prefix`, sorted by key, and the store revision the list was read at. */
  list<T = unknown>(prefix: string): Promise<{ entries: StoreEntry<T>[]; revision: number }>;
  /** Events for keys under `prefix` strictly after `afterRevision`. */
  watch(prefix: string, afterRevision: number, handlers: StoreWatchHandlers): StoreWatch;
  /** A new lease of `ttlMs`; its keys vanish when it is not kept alive. */
  grantLease(ttlMs: number): Promise<string>;
  /** Rejects with StoreLeaseNotFoundError when the lease is gone. */
  keepAlive(lease: string): Promise<void>;
  revokeLease(lease: string): Promise<void>;
  /** Current store revision (a cheap read; for status). */
  revision(): Promise<number>;
  /** Health for `trellis check` and /v1/status. */
  health(): Promise<{ ok: boolean; detail: string }>;
  close(): Promise<void>;
}

/** Key layout (every replica and the CLI's status agree on it). */
export const KEYS = {
  /** `kind` is `Mesh` or `Service`; value: StoredResource. */
  resource: (kind: string, name: string) => `/trellis/resources/${kind}/${name}`,
  resources: '/trellis/resources/',
  /** Value: InstanceRecord, written under the instance's lease. */
  instance: (service: string, id: string) => `/trellis/instances/${service}/${id}`,
  instances: '/trellis/instances/',
  /** Value: InstanceStatus (version, ACK, NACK); no lease, removed when the instance is removed. */
  instanceStatus: (service: string, id: string) => `/trellis/status/${service}/${id}`,
  statuses: '/trellis/status/',
  /** Value: { jti, service, exp } of a revoked or issued token. */
  token: (jti: string) => `/trellis/tokens/${jti}`,
  tokens: '/trellis/tokens/',
  /** Shared CA material (anchor, issuer, token key, admin token hash), created once with ifModRevision 0. */
  authority: '/trellis/authority',
} as const;

/** A Mesh or Service document as applied (the same shape as the YAML), with its store revision. */
export interface StoredResource {
  readonly apiVersion: 'trellis/v1';
  readonly kind: 'Mesh' | 'Service';
  readonly metadata: { readonly name: string; readonly [k: string]: unknown };
  readonly spec: unknown;
}

/** One serving endpoint of an instance, as it registered it. */
export interface RegisteredEndpoint {
  readonly address: string; // host:port as callers dial it
  readonly protocol: 'http' | 'http2' | 'grpc' | 'tcp';
}

/** The registry entry of an instance (under its lease). */
export interface InstanceRecord {
  readonly id: string;
  readonly service: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly endpoints: readonly RegisteredEndpoint[];
  /** Which replica holds its stream (for status), and when it connected (epoch ms). */
  readonly replica: string;
  readonly connectedAt: number;
  /** Its certificate's notAfter (epoch ms), when known. */
  readonly certificateNotAfter?: number | undefined;
  /** Trellis version the instance runs. */
  readonly agent?: string | undefined;
}

/** What an instance did with the snapshots it was sent. */
export interface InstanceStatus {
  readonly id: string;
  readonly service: string;
  /** Latest version sent, latest ACKed, latest NACKed (with its reason). */
  readonly sent?: string | undefined;
  readonly acked?: string | undefined;
  readonly ackedAt?: number | undefined;
  readonly nacked?: { readonly version: string; readonly reason: string; readonly at: number } | undefined;
  /** The instance's clock when it last reported (epoch ms) against the replica's, for skew checks. */
  readonly clockSkewMs?: number | undefined;
  readonly lastSeen: number;
}
