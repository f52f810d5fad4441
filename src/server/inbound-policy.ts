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
import { GradientLimit } from '../resilience/gradient-limit.js';
import { EventLoopMonitor } from './event-loop-monitor.js';
import { OverloadGuard } from './overload-guard.js';
import type { OverloadSpec } from '../config/types.js';

const NONE: MeshInboundPolicy = Object.freeze({ limiter: undefined, fault: undefined, authorizer: undefined, overload: undefined });

export class InboundPolicies {
  readonly #service: string | undefined;
  readonly #clock: Clock;
  readonly #random: Random;
  readonly #onWarn: (m: string) => void;
  #policy: MeshInboundPolicy = NONE;
  /** What the policy in force was built from (see apply). */
  #inputs: string | undefined;
  #limiterKey = '';
  #gradientKey = '';
  #gradient: GradientLimit | undefined;
  #monitor: EventLoopMonitor | undefined;

  constructor(service: string | undefined, deps: { clock: Clock; random: Random; onWarn: (m: string) => void }) {
    this.#service = service;
    this.#clock = deps.clock;
    this.#random = deps.random;
    this.#onWarn = deps.onWarn;
  }

  current(): MeshInboundPolicy {
    return this.#policy;
  }

  /**
   * Applies a config version. When this workload's `inbound` block (and the Redis URL a global
   * limit would use) is what it was, the policy in force is kept as it is: its compiled
   * authorization, its overload guard and the service time it learnt.
   */
  apply(config: MeshConfig): void {
    const inbound = this.#service === undefined ? undefined : config.services.get(this.#service)?.inbound;
    const inputs = JSON.stringify({ inbound, redis: config.mesh.redis?.url });
    if (inputs === this.#inputs) return;
    this.#inputs = inputs;
    const rl = inbound?.rateLimit;
    const key = rl === undefined ? '' : JSON.stringify({ rl, redis: config.mesh.redis?.url });
    let limiter = this.#policy.limiter;
    if (key !== this.#limiterKey) {
      limiter?.close();
      limiter = rl === undefined ? undefined : this.#makeLimiter(rl, config.mesh.redis?.url);
      this.#limiterKey = key;
    }
    this.#policy = Object.freeze({ limiter, fault: inbound?.fault, authorizer: compileAuthorization(inbound?.authorization), overload: this.#guard(inbound?.overload) });
  }

  /** The overload guard for a version; the learnt limit and the loop monitor survive unchanged parameters. */
  #guard(spec: OverloadSpec | undefined): OverloadGuard | undefined {
    const cc = spec?.concurrency;
    const key = cc === undefined ? '' : JSON.stringify(cc);
    if (key !== this.#gradientKey) {
      this.#gradientKey = key;
      this.#gradient = cc === undefined ? undefined : new GradientLimit(cc);
    }
    const el = spec?.eventLoop;
    if (el === undefined) {
      this.#monitor?.stop();
      this.#monitor = undefined;
    } else if (this.#monitor === undefined) {
      this.#monitor = new EventLoopMonitor(el, this.#random);
      this.#monitor.start();
    } else {
      this.#monitor.thresholds = el;
    }
    return spec === undefined ? undefined : new OverloadGuard(spec, this.#gradient, this.#monitor);
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
    this.#monitor?.stop();
    this.#monitor = undefined;
    this.#gradient = undefined;
    this.#gradientKey = '';
    this.#policy.limiter?.close();
    this.#policy = NONE;
    this.#inputs = undefined;
    this.#limiterKey = '';
  }
}
