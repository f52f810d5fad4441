/**
 * The balancer interface: given the healthy endpoints of one backend, choose one per attempt.
 * `pick` is synchronous and cheap (no allocation on the common path); `update` is called when
 * the set changes (discovery, ejection, return) and may precompute (a ring, an index).
 */
import type { LbEndpoint } from './lb-endpoint.js';

export type BalancerKind = 'round-robin' | 'random' | 'least-request' | 'ewma' | 'ring-hash';

export interface PickRequest {
  /** Consistent-hash key (ring-hash); others ignore it. */
  readonly key: string | undefined;
  /** Endpoint ids to avoid when another choice exists (earlier attempts of this call). */
  readonly avoid: ReadonlySet<string> | undefined;
  /**
   * The clock's time (the balancer's clock), when the caller has just read it: a balancer that
   * weighs latency (peak-EWMA) uses it instead of reading the clock again. Optional.
   */
  readonly now?: number | undefined;
}

export interface Balancer {
  readonly kind: BalancerKind;
  /** Replaces the set of endpoints to choose from. */
  update(endpoints: readonly LbEndpoint[]): void;
  /** Chooses an endpoint, or undefined when the set is empty. Never keeps `req` (a caller may reuse it). */
  pick(req: PickRequest): LbEndpoint | undefined;
}
