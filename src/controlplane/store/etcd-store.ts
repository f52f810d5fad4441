/**
 * The store on an etcd v3 cluster (the `etcd3` package over gRPC), shared by every replica.
 *
 * Mapping: a commit is one etcd transaction: a `mod_revision ==` compare per conditional op, all
 * ops in the success branch, and in the failure branch a keys-only read of each conditional key,
 * so a failed compare names the key and the revision found in one round trip. Store revisions
 * are etcd revisions, leases are etcd leases (grant, keep-alive once over one shared stream,
 * revoke), watches are etcd watches (etcd-watch.ts). Values are JSON. Nothing uses etcd locks.
 *
 * Failures: every call goes to one member the client picks (skipping members whose circuit
 * breaker is open) under a deadline. Reads, lease calls and keep-alives are retried on other
 * members. A transaction is retried only when it certainly never reached a member (no
 * connection); otherwise its outcome is unknown and the caller gets StoreUnavailableError saying
 * so (as etcd's own client does: a retried compare could report a conflict with itself).
 */
import { circuitBreaker, ConsecutiveBreaker, handleWhen, isBrokenCircuitError, noop } from 'cockatiel';
import { Etcd3, EtcdLeaseInvalidError, isRecoverableError } from 'etcd3';
import type { ICompare, IEvent, IKeyValue, IOptions, IRequestOp } from 'etcd3';
import { KeepAlives } from './etcd-keepalive.js';
import { EtcdWatch } from './etcd-watch.js';
import type { Store, StoreEntry, StoreEvent, StoreOp, StoreWatch, StoreWatchHandlers } from './store.js';
import { StoreConflictError, StoreLeaseNotFoundError, StoreUnavailableError } from './store.js';
import { prepareOps } from './store-state.js';

export interface EtcdStoreOptions {
  /** Prepended to every key in etcd, to share a cluster (default: none; keys start with /trellis/). */
  prefix?: string;
  /** Deadline of each unary call, ms (default 5000). */
  callTimeoutMs?: number;
  /** TLS to etcd (PEM buffers), as the etcd3 package takes them. */
  credentials?: { rootCertificate: Buffer; privateKey?: Buffer; certChain?: Buffer };
  /** etcd user and password, when etcd has auth enabled. */
  auth?: { username: string; password: string };
}

/** Errors that mean "this member did not answer": the call may go to another. */
function transient(err: unknown): boolean {
  return err instanceof Error && (isRecoverableError(err) || isBrokenCircuitError(err));
}

/** The request never left this process (no connection, or every member's breaker open): safe to send again. */
function neverSent(err: unknown): boolean {
  return isBrokenCircuitError(err) || (err instanceof Error && /No connection established|ECONNREFUSED|no address available|Failed to connect/i.test(err.message));
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** The first key after every key that starts with `prefix` (etcd's range_end for a prefix). */
function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if ((end[i] as number) < 0xff) {
      end[i] = (end[i] as number) + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // no upper bound: every key from `prefix` on
}

function decode(value: Buffer): unknown {
  const text = value.toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text; // written by something else than a store: its text
  }
}

/** `host:port` or a URL, as a URL the etcd3 package takes. */
function normaliseEndpoint(e: string): string {
  const url = /^[a-z]+:\/\//i.test(e) ? e : `http://${e}`;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`invalid etcd endpoint ${JSON.stringify(e)}: expected http://HOST:PORT`);
  }
  if ((parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.port === '' || parsed.pathname.replace(/\/$/, '') !== '') {
    throw new TypeError(`invalid etcd endpoint ${JSON.stringify(e)}: expected http://HOST:PORT or https://HOST:PORT`);
  }
  return `${parsed.protocol}//${parsed.host}`;
}

export class EtcdStore implements Store {
  readonly kind = 'etcd' as const;
  readonly endpoints: readonly string[];
  private readonly client: Etcd3;
  /** One client per member, for health only (status of each). */
  private readonly members: { endpoint: string; client: Etcd3 }[];
  private readonly prefix: string;
  private readonly keepAlives: KeepAlives;
  private readonly watches = new Set<StoreWatch>();
  private readonly attempts: number;
  private closed = false;

  /** Use openEtcdStore. */
  constructor(endpoints: readonly string[], options: EtcdStoreOptions = {}) {
    this.endpoints = endpoints;
    this.prefix = options.prefix ?? '';
    const timeout = options.callTimeoutMs ?? 5000;
    const base: Omit<IOptions, 'hosts'> = {
      ...(options.credentials !== undefined ? { credentials: options.credentials } : {}),
      ...(options.auth !== undefined ? { auth: options.auth } : {}),
      dialTimeout: timeout,
      // HTTP/2 pings on open streams: a member that hangs (alive but not answering) is dropped within
      // ~15 s and its watches resume elsewhere. etcd refuses pings more often than every 5 s.
      grpcOptions: { 'grpc.keepalive_time_ms': 10_000, 'grpc.keepalive_timeout_ms': 5_000 },
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeout }),
    };
    this.client = new Etcd3({
      ...base,
      hosts: [...endpoints],
      faultHandling: {
        // Retries are ours (a transaction must not be resent blindly); a member that keeps failing is skipped for a second.
        global: noop,
        host: () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(3) }),
      },
    });
    this.members = endpoints.map((endpoint) => ({ endpoint, client: new Etcd3({ ...base, hosts: endpoint, faultHandling: { global: noop, host: () => noop } }) }));
    this.keepAlives = new KeepAlives(this.client, timeout);
    this.attempts = Math.max(3, endpoints.length * 2);
  }

  async commit(ops: readonly StoreOp[]): Promise<number> {
    this.checkOpen();
    const prepared = prepareOps(ops);
    const conditional = ops.filter((op) => op.ifModRevision !== undefined);
    const compare: ICompare[] = conditional.map((op) => ({ key: this.k(op.key), target: 'Mod', result: 'Equal', mod_revision: op.ifModRevision }));
    const success: IRequestOp[] = prepared.map((op) => {
      if (op.type === 'delete') return { request_delete_range: { key: this.k(op.key) } };
      if (op.lease !== undefined && !/^\d+$/.test(op.lease)) throw new StoreLeaseNotFoundError(op.lease);
      return { request_put: { key: this.k(op.key), value: Buffer.from(JSON.stringify(op.value)), lease: op.lease ?? 0 } };
    });
    const failure: IRequestOp[] = conditional.map((op) => ({ request_range: { key: this.k(op.key), keys_only: true } }));
    let res;
    try {
      res = await this.call('commit', () => this.client.kv.txn({ compare, success, failure }), false);
    } catch (err) {
      if (err instanceof EtcdLeaseInvalidError) {
        const leases = [...new Set(prepared.flatMap((op) => (op.type === 'put' && op.lease !== undefined ? [op.lease] : [])))];
        throw new StoreLeaseNotFoundError(leases.join(', '), { cause: err });
      }
      throw err;
    }
    if (!res.succeeded) {
      for (const [i, op] of conditional.entries()) {
        const kv = res.responses[i]?.response_range?.kvs[0];
        const actual = kv === undefined ? 0 : Number(kv.mod_revision);
        if (actual !== op.ifModRevision) throw new StoreConflictError(op.key, op.ifModRevision as number, actual);
      }
      // Cannot happen: the failure branch reads the keys in the same transaction as the compare.
      throw new StoreUnavailableError('etcd refused the transaction\'s conditions, yet its own read of the keys matches them');
    }
    return Number(res.header.revision);
  }

  async get<T = unknown>(key: string): Promise<StoreEntry<T> | undefined> {
    this.checkOpen();
    const res = await this.call('get', () => this.client.kv.range({ key: this.k(key) }), true);
    const kv = res.kvs[0];
    return kv === undefined ? undefined : (this.entry(kv) as StoreEntry<T>);
  }

  async list<T = unknown>(prefix: string): Promise<{ entries: StoreEntry<T>[]; revision: number }> {
    this.checkOpen();
    const key = this.k(prefix);
    const res = await this.call('list', () => this.client.kv.range({ key, range_end: prefixEnd(key), sort_order: 'Ascend', sort_target: 'Key' }), true);
    return { entries: res.kvs.map((kv) => this.entry(kv) as StoreEntry<T>), revision: Number(res.header.revision) };
  }

  watch(prefix: string, afterRevision: number, handlers: StoreWatchHandlers): StoreWatch {
    this.checkOpen();
    const key = this.k(prefix);
    const w = new EtcdWatch({
      members: this.members.map((m) => m.client),
      first: Math.floor(Math.random() * this.members.length),
      key,
      rangeEnd: prefixEnd(key),
      afterRevision,
      handlers: {
        onEvents: (events, revision) => handlers.onEvents(events, revision),
        onReset: (reason) => {
          this.watches.delete(handle);
          handlers.onReset(reason);
        },
      },
      toEvent: (ev) => this.event(ev),
    });
    const handle: StoreWatch = {
      close: () => {
        this.watches.delete(handle);
        w.close();
      },
    };
    this.watches.add(handle);
    return handle;
  }

  async grantLease(ttlMs: number): Promise<string> {
    this.checkOpen();
    if (!Number.isFinite(ttlMs) || ttlMs <= 0) throw new TypeError(`a lease TTL must be a positive number of milliseconds, got ${ttlMs}`);
    // etcd counts whole seconds (and raises a TTL below its minimum, 1.5 x the election timeout).
    const res = await this.call('grant lease', () => this.client.leaseClient.leaseGrant({ TTL: Math.max(1, Math.ceil(ttlMs / 1000)) }), true);
    if (res.error !== '') throw new StoreUnavailableError(`etcd refused a lease: ${res.error}`);
    return res.ID;
  }

  async keepAlive(lease: string): Promise<void> {
    this.checkOpen();
    if (!/^\d+$/.test(lease)) throw new StoreLeaseNotFoundError(lease);
    await this.call('keep a lease alive', () => this.keepAlives.once(lease), true);
  }

  async revokeLease(lease: string): Promise<void> {
    this.checkOpen();
    if (!/^\d+$/.test(lease)) return;
    try {
      await this.call('revoke a lease', () => this.client.leaseClient.leaseRevoke({ ID: lease }), true);
    } catch (err) {
      if (err instanceof EtcdLeaseInvalidError) return; // already gone
      throw err;
    }
  }

  async revision(): Promise<number> {
    this.checkOpen();
    const res = await this.call('read the revision', () => this.client.kv.range({ key: this.k('\u0000'), count_only: true }), true);
    return Number(res.header.revision);
  }

  /**
   * Healthy when a linearizable read succeeds (a quorum and a leader answer). The detail names
   * every member given: its version, whether it sees a leader, its alarms, or why it is unreachable.
   */
  async health(): Promise<{ ok: boolean; detail: string }> {
    if (this.closed) return { ok: false, detail: 'the etcd store is closed' };
    const statuses = await Promise.all(
      this.members.map(async (m) => {
        try {
          const s = await m.client.maintenance.status({ deadline: Date.now() + 2000 });
          const alarms = (s as { errors?: string[] }).errors ?? [];
          const leader = s.leader !== '0' ? 'leader known' : 'NO LEADER';
          return { up: true, text: `${m.endpoint}: etcd ${s.version}, ${leader}, raft term ${s.raftTerm}${alarms.length > 0 ? `, errors: ${alarms.join('; ')}` : ''}` };
        } catch (err) {
          return { up: false, text: `${m.endpoint}: unreachable (${message(err)})` };
        }
      }),
    );
    const up = statuses.filter((s) => s.up).length;
    let quorum: string;
    let ok: boolean;
    try {
      quorum = `revision ${await this.revision()}`;
      ok = true;
    } catch (err) {
      quorum = `no quorum read (${message(err)})`;
      ok = false;
    }
    return { ok, detail: `etcd ${quorum}, ${up}/${statuses.length} members reachable: ${statuses.map((s) => s.text).join('; ')}` };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of [...this.watches]) w.close();
    this.keepAlives.close();
    this.client.close();
    for (const m of this.members) m.client.close();
  }

  /** Runs `fn` against some member; see the file comment for what is retried. */
  private async call<T>(what: string, fn: () => Promise<T>, idempotent: boolean): Promise<T> {
    let last: unknown;
    for (let attempt = 0; attempt < this.attempts; attempt++) {
      this.checkOpen();
      try {
        return await fn();
      } catch (err) {
        if (!transient(err)) throw err;
        last = err;
        if (!idempotent && !neverSent(err)) {
          throw new StoreUnavailableError(`etcd ${what}: the outcome is unknown (${message(err)}); it may or may not have been applied: read the keys back before retrying`, { cause: err });
        }
        await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)));
      }
    }
    throw new StoreUnavailableError(`etcd is unavailable at ${this.endpoints.join(', ')}: ${what} failed ${this.attempts} times; last error: ${message(last)}`, { cause: last });
  }

  private k(key: string): Buffer {
    return Buffer.from(this.prefix + key, 'utf8');
  }

  private entry(kv: IKeyValue): StoreEntry {
    return {
      key: kv.key.toString('utf8').slice(this.prefix.length),
      value: decode(kv.value),
      modRevision: Number(kv.mod_revision),
      createRevision: Number(kv.create_revision),
      lease: kv.lease === '0' || kv.lease === '' ? undefined : kv.lease,
    };
  }

  private event(ev: IEvent): StoreEvent {
    if (ev.type === 'Delete') return { type: 'delete', key: ev.kv.key.toString('utf8').slice(this.prefix.length), modRevision: Number(ev.kv.mod_revision) };
    return { type: 'put', entry: this.entry(ev.kv) };
  }

  private checkOpen(): void {
    if (this.closed) throw new StoreUnavailableError('the etcd store is closed');
  }
}

/**
 * Connects to the etcd members at `endpoints` (`http://HOST:PORT`, any of the cluster's) and
 * checks that a quorum answers. Rejects with StoreUnavailableError naming the endpoints when
 * none does, TypeError for an endpoint that is not a URL.
 */
export async function openEtcdStore(endpoints: string[], options: EtcdStoreOptions = {}): Promise<EtcdStore> {
  if (endpoints.length === 0) throw new TypeError('openEtcdStore needs at least one etcd endpoint');
  const store = new EtcdStore(endpoints.map(normaliseEndpoint), options);
  try {
    await store.revision();
  } catch (err) {
    await store.close();
    if (err instanceof StoreUnavailableError) throw err;
    throw new StoreUnavailableError(`cannot use etcd at ${endpoints.join(', ')}: ${message(err)}`, { cause: err });
  }
  return store;
}
