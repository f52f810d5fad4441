/**
 * The load-balancing module: balancers (endpoint choice per attempt), the per-endpoint load
 * state they read, and outlier detection (which endpoints are left out of the choice).
 * The backend level of the outbound stack is its only user.
 */
export type { Balancer, BalancerKind, PickRequest } from './balancer.js';
export { LbEndpoint, EWMA_DECAY_MS, EWMA_DEFAULT_MS } from './lb-endpoint.js';
export { roundRobin } from './round-robin.js';
export { randomBalancer } from './random.js';
export { leastRequest } from './least-request.js';
export { peakEwma } from './ewma.js';
export { ringHash, DEFAULT_RING_REPLICAS, type RingHashOptions } from './ring-hash.js';
export { p2cPick, type LoadFunction } from './p2c.js';
export { makeBalancer, type BalancerDeps } from './make-balancer.js';
export { murmur3 } from './murmur3.js';
export {
  OutlierDetector,
  unrefTimer,
  type OutlierDetectorParams,
  type OutlierDetectorDeps,
  type SetTimer,
  type Timer,
} from './outlier-detector.js';
