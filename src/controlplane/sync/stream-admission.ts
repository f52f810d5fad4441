/**
 * Admission of new instance streams on one replica: a reconnect storm (every instance of the
 * fleet back at once after a restart) is taken at a bounded rate instead of all at once.
 *
 * The fleet run (docs/control-plane.md, "Fleet") saw a starved replica pay for thousands of
 * TLS handshakes whose streams the instances then abandoned at their connect timeout and
 * retried, so the storm fed itself. Here a stream past the rate is answered at once (503 with
 * Retry-After), which costs the replica little, and each refused instance is given a later
 * slot: the refusals are queued virtually at the admission rate, so 800 refused instances are
 * told to come back over the next 8 s at 100/s rather than all in the same second (the client
 * adds ±20 % jitter). Retry-After is capped at 60 s.
 */
import type { Clock } from '../../core/clock.js';
import { TokenBucket } from '../../resilience/token-bucket.js';

const MAX_RETRY_AFTER_S = 60;

export class StreamAdmission {
  readonly #bucket: TokenBucket;
  readonly #clock: Clock;
  readonly rate: number;
  /** When the last refused stream's virtual slot is (monotonic ms). */
  #backlogUntil = 0;

  constructor(params: { ratePerSecond: number; burst: number }, clock: Clock) {
    this.#bucket = new TokenBucket({ ratePerSecond: params.ratePerSecond, burst: params.burst }, clock);
    this.#clock = clock;
    this.rate = params.ratePerSecond;
  }

  /** Undefined when the stream is admitted, else the whole seconds it should wait (≥ 1). */
  take(): number | undefined {
    if (this.#bucket.tryTake()) return undefined;
    const now = this.#clock.now();
    // Past the cap every refused stream is told the cap: the backlog stops there, or a long storm
    // would queue slots nobody was told about, and the capped ones would all come back together.
    this.#backlogUntil = Math.min(Math.max(now + this.#bucket.retryAfterMs(), this.#backlogUntil) + 1000 / this.rate, now + MAX_RETRY_AFTER_S * 1000);
    return Math.min(MAX_RETRY_AFTER_S, Math.max(1, Math.ceil((this.#backlogUntil - now) / 1000)));
  }
}
