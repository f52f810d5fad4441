/**
 * The inbound policy of this workload, per config version: its own Service document's
 * `inbound` block (rate limit, fault). The limiter is reused while its parameters are
 * unchanged, so a config edit elsewhere does not refill it.
 */
import type { Clock, Random } from '../core/clock.js';
import type { MeshConfig, RateLimitSpec } from '../config/types.js';
import { localRateLimiter } from '../resilience/rate-limiter.js';
import type { RateLimiter } from '../resilience/rate-limiter.js';
import { globalRateLimiter } from '../resilience/global-rate-limiter.js';
import { compileAuthorization } from './authorization.js';
import type { MeshInboundPolicy } from './inbound-security.js';

const NONE: MeshInboundPolicy = Object.freeze({ limiter: undefined, fault: undefined, authorizer: undefined });

export class InboundPolicies {
  readonly #service: string | undefined;
  readonly #clock: Clock;
  readonly #random: Random;
  readonly #onWarn: (m: string) => void;
  #policy: MeshInboundPolicy = NONE;
  #limiterKey = '';

  constructor(service: string | undefined, deps: { clock: Clock; random: Random; onWarn: (m: string) => void }) {
    this.#service = service;
    this.#clock = deps.clock;
    this.#random = deps.random;
    this.#onWarn = deps.onWarn;
  }

  current(): MeshInboundPolicy {
    return this.#policy;
  }

  apply(config: MeshConfig): void {
    const inbound = this.#service === undefined ? undefined : config.services.get(this.#service)?.inbound;
    const rl = inbound?.rateLimit;
    const key = rl === undefined ? '' : JSON.stringify({ rl, redis: config.mesh.redis?.url });
    let limiter = this.#policy.limiter;
    if (key !== this.#limiterKey) {
      limiter?.close();
      limiter = rl === undefined ? undefined : this.#makeLimiter(rl, config.mesh.redis?.url);
      this.#limiterKey = key;
    }
    this.#policy = Object.freeze({ limiter, fault: inbound?.fault, authorizer: compileAuthorization(inbound?.authorization) });
  }

  #makeLimiter(rl: RateLimitSpec, redisUrl: string | undefined): RateLimiter {
    if (rl.scope === 'global' && redisUrl !== undefined) {
      return globalRateLimiter(
        { key: `in/${this.#service ?? 'unknown'}`, requestsPerSecond: rl.requestsPerSecond, burst: rl.burst, redisUrl },
        { clock: this.#clock, random: this.#random, onWarn: this.#onWarn },
      );
    }
    return localRateLimiter({ requestsPerSecond: rl.requestsPerSecond, burst: rl.burst }, this.#clock);
  }

  close(): void {
    this.#policy.limiter?.close();
    this.#policy = NONE;
    this.#limiterKey = '';
  }
}
