/**
 * Connection pools, one undici Pool per endpoint of a destination. Pools outlive config
 * changes while their endpoint stays; a pool whose endpoint leaves the set is closed
 * gracefully (undici's close() lets requests in flight finish, then ends the sockets), and
 * destroyed if it has not drained within the grace period.
 *
 * Closing the set (mesh.close()) drains every pool the same way, bounded by the caller's drain
 * deadline: what is still in flight then fails with TRELLIS_CLOSED, so close() never waits for a
 * request timeout (a hung upstream would otherwise hold it for the whole timeout). A closed set
 * hands out no pool: an attempt that starts afterwards (a retry) fails with TRELLIS_CLOSED too.
 *
 * Each Pool's origin is the destination's logical authority (`http://products`), and its connector
 * dials the endpoint's address: undici then writes `Host: products` from the origin, built once per
 * Pool, so a request sets `host` only when it differs (the caller's own, a route's authority
 * rewrite). The TLS server name stays the service name, as it was when every request set it.
 */
import { buildConnector, Pool } from 'undici';
import { ClosedError } from '../core/errors.js';
import type { Endpoint } from '../discovery/endpoint.js';
import type { Connect } from './mtls-connector.js';
import { http2Pool } from './http2-pool.js';

export interface PoolParams {
  /** The Host every request carries unless it sets its own: the destination's service name. */
  authority: string;
  maxConnections: number;
  connectTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** How long a removed endpoint's pool may drain before it is destroyed. */
  drainGraceMs: number;
}

export class PoolSet {
  readonly #params: PoolParams;
  readonly #pools = new Map<string, Pool>();
  #closed = false;
  #connect: Connect | undefined;
  #http2 = false;
  /** The plaintext connector, built once (undici's default, with the connect timeout). */
  #plain: Connect | undefined;
  /** The plaintext HTTP/2 (h2c) connector, built once. */
  #plainH2: Connect | undefined;

  constructor(params: PoolParams) {
    this.#params = params;
  }

  get params(): PoolParams {
    return this.#params;
  }

  /** Whether new pools speak HTTP/2 (the service's `protocol: http2`). */
  get http2(): boolean {
    return this.#http2;
  }

  /**
   * Switches between plaintext and mTLS (a `connect` from MtlsConnectors). Existing pools drain
   * gracefully; new requests get pools of the new kind. `http2`: the service's `protocol` is
   * `http2` (see http2-pool.ts).
   */
  setTransport(connect: Connect | undefined, http2 = false): void {
    if (connect === this.#connect && http2 === this.#http2) return;
    this.#connect = connect;
    this.#http2 = http2;
    this.retain(new Set());
  }

  /**
   * The pool for an endpoint, created on first use.
   * @throws ClosedError once the set is closed.
   */
  get(endpoint: Endpoint): Pool {
    if (this.#closed) throw new ClosedError('the mesh client is closed', { endpoint: endpoint.id });
    let pool = this.#pools.get(endpoint.id);
    if (pool === undefined) {
      const tls = this.#connect !== undefined;
      const { host, port } = endpoint;
      if (this.#http2) {
        // Plaintext HTTP/2 is prior-knowledge h2c: undici's own connector with `useH2c` (not in its typings).
        const base = this.#connect ?? (this.#plainH2 ??= buildConnector({ timeout: this.#params.connectTimeoutMs, useH2c: true } as buildConnector.BuildOptions));
        const connect: Connect = (opts, callback) => base({ ...opts, hostname: host, port: String(port) }, callback);
        pool = http2Pool(`${tls ? 'https' : 'http'}://${this.#params.authority}`, connect, this.#params);
        this.#pools.set(endpoint.id, pool);
        return pool;
      }
      const base = this.#connect ?? (this.#plain ??= buildConnector({ timeout: this.#params.connectTimeoutMs }));
      const connect: Connect = (opts, callback) => base({ ...opts, hostname: host, port: String(port) }, callback);
      pool = new Pool(`${tls ? 'https' : 'http'}://${this.#params.authority}`, {
        connect,
        connections: this.#params.maxConnections,
        pipelining: 1,
        connectTimeout: this.#params.connectTimeoutMs,
        keepAliveTimeout: this.#params.keepAliveTimeoutMs,
        // Mesh-level timeouts are ours (millisecond precision); undici's are a backstop.
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      this.#pools.set(endpoint.id, pool);
    }
    return pool;
  }

  /** Closes the pools of endpoints not in `keep`, letting in-flight requests finish. */
  retain(keep: ReadonlySet<string>): void {
    for (const [id, pool] of this.#pools) {
      if (!keep.has(id)) {
        this.#pools.delete(id);
        this.#drain(pool);
      }
    }
  }

  #drain(pool: Pool, graceMs = this.#params.drainGraceMs, reason?: Error): Promise<void> {
    // undici fails the requests still in flight with `reason` (a TrellisError passes the
    // transport's error mapping unchanged).
    const timer = setTimeout(() => void pool.destroy(reason ?? null).catch(() => undefined), graceMs);
    timer.unref();
    return pool.close().then(
      () => clearTimeout(timer),
      () => clearTimeout(timer),
    );
  }

  /**
   * Closes every pool gracefully; after `graceMs` (default: the drain grace) what is still in
   * flight fails with TRELLIS_CLOSED.
   */
  async close(graceMs = this.#params.drainGraceMs): Promise<void> {
    this.#closed = true;
    const pools = [...this.#pools.entries()];
    this.#pools.clear();
    await Promise.all(pools.map(([id, p]) => this.#drain(p, Math.max(0, graceMs), new ClosedError(`the mesh client closed and its drain deadline (${graceMs} ms) passed with this request in flight`, { endpoint: id }))));
  }

  size(): number {
    return this.#pools.size;
  }
}
