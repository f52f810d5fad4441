/**
 * Connection pools, one undici Pool per endpoint of a destination. Pools outlive config
 * changes while their endpoint stays; a pool whose endpoint leaves the set is closed
 * gracefully (undici's close() lets requests in flight finish, then ends the sockets), and
 * destroyed if it has not drained within the grace period.
 */
import { Pool } from 'undici';
import type { Endpoint } from '../discovery/endpoint.js';
import type { Connect } from './mtls-connector.js';

export interface PoolParams {
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

  constructor(params: PoolParams) {
    this.#params = params;
  }

  get params(): PoolParams {
    return this.#params;
  }

  /**
   * Switches between plaintext and mTLS (a `connect` from MtlsConnectors). Existing pools drain
   * gracefully; new requests get pools of the new kind.
   */
  setTransport(connect: Connect | undefined): void {
    if (connect === this.#connect) return;
    this.#connect = connect;
    this.retain(new Set());
  }

  /** The pool for an endpoint, created on first use. */
  get(endpoint: Endpoint): Pool {
    let pool = this.#pools.get(endpoint.id);
    if (pool === undefined) {
      const tls = this.#connect !== undefined;
      pool = new Pool(`${tls ? 'https' : 'http'}://${endpoint.id}`, {
        ...(tls ? { connect: this.#connect } : {}),
        connections: this.#params.maxConnections,
        pipelining: 1,
        connectTimeout: this.#params.connectTimeoutMs,
        keepAliveTimeout: this.#params.keepAliveTimeoutMs,
        // Mesh-level timeouts are ours (millisecond precision); undici's are a backstop.
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      if (this.#closed) void pool.destroy();
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

  #drain(pool: Pool): Promise<void> {
    const timer = setTimeout(() => void pool.destroy().catch(() => undefined), this.#params.drainGraceMs);
    timer.unref();
    return pool.close().then(
      () => clearTimeout(timer),
      () => clearTimeout(timer),
    );
  }

  /** Closes every pool gracefully (bounded by the grace period). */
  async close(): Promise<void> {
    this.#closed = true;
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => this.#drain(p)));
  }

  size(): number {
    return this.#pools.size;
  }
}
