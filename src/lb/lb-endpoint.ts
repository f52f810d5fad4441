/**
 * Per-endpoint load state shared by the balancers: requests in flight and a peak-EWMA latency
 * estimate (Finagle's PeakEwma, as Linkerd's balancer uses it). The endpoint layer updates it
 * around every attempt; balancers only read it. It lives as long as the endpoint stays in the
 * service's endpoint set, across config changes.
 */
import type { Endpoint } from '../discovery/endpoint.js';

/** Decay time of the latency estimate (Finagle: 10 s). */
export const EWMA_DECAY_MS = 10_000;
/** Latency assumed for an endpoint with no observation yet (Linkerd's default RTT). */
export const EWMA_DEFAULT_MS = 30;

export class LbEndpoint {
  readonly endpoint: Endpoint;
  /** Attempts in flight to this endpoint. */
  outstanding = 0;
  /** Peak-EWMA latency estimate in ms. */
  ewmaMs: number;
  /** Monotonic time of the last estimate update. */
  ewmaStamp: number;

  constructor(endpoint: Endpoint, now: number) {
    this.endpoint = endpoint;
    this.ewmaMs = EWMA_DEFAULT_MS;
    this.ewmaStamp = now;
  }

  get id(): string {
    return this.endpoint.id;
  }

  /**
   * Relative weight for the weighted balancers (round-robin, random, ring-hash): the endpoint's
   * own weight when it is a positive finite number, else 1 (discovery's "no weight"). A zero SRV
   * weight is therefore treated as the default rather than as "almost never".
   */
  get weight(): number {
    const w = this.endpoint.weight;
    return Number.isFinite(w) && w > 0 ? w : 1;
  }

  /**
   * Records one observed latency: a sample above the estimate replaces it at once (the
   * "peak"), a lower one decays it in with weight depending on the time elapsed.
   */
  observe(latencyMs: number, now: number): void {
    const elapsed = Math.max(now - this.ewmaStamp, 0);
    this.ewmaStamp = now;
    if (latencyMs > this.ewmaMs) {
      this.ewmaMs = latencyMs;
    } else {
      const w = Math.exp(-elapsed / EWMA_DECAY_MS);
      this.ewmaMs = this.ewmaMs * w + latencyMs * (1 - w);
    }
  }

  /** Load score for peak-EWMA: estimated latency times (outstanding + 1). Lower is better. */
  cost(now: number): number {
    // Decay the estimate toward zero while idle so a once-slow endpoint is retried eventually.
    const elapsed = Math.max(now - this.ewmaStamp, 0);
    const est = this.ewmaMs * Math.exp(-elapsed / EWMA_DECAY_MS);
    return Math.max(est, 0.001) * (this.outstanding + 1);
  }
}
