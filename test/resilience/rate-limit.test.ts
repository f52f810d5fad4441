/**
 * Local rate limiting: the token bucket (burst, lazy refill, retry-after) on a manual clock, the
 * per-instance limiter, and the filter that fails excess fast with TRELLIS_RATE_LIMITED.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/core/clock.js';
import { CallContext } from '../../src/core/context.js';
import { RateLimitedError, isTrellisError } from '../../src/core/errors.js';
import type { Service } from '../../src/core/service.js';
import { rateLimitFilter, retryAfterMsOf } from '../../src/resilience/rate-limit-filter.js';
import { localRateLimiter, type RateLimiter } from '../../src/resilience/rate-limiter.js';
import { TokenBucket } from '../../src/resilience/token-bucket.js';

function takeAll(bucket: TokenBucket): number {
  let n = 0;
  while (bucket.tryTake()) n++;
  return n;
}

describe('TokenBucket', () => {
  it('starts full: admits exactly `burst` at once, then refuses', () => {
    const clock = new ManualClock();
    const b = new TokenBucket({ ratePerSecond: 10, burst: 5 }, clock);
    assert.equal(b.available(), 5);
    assert.equal(takeAll(b), 5);
    assert.equal(b.tryTake(), false);
    assert.equal(b.available(), 0);
  });

  it('refills lazily at the rate, never above the burst', () => {
    const clock = new ManualClock();
    const b = new TokenBucket({ ratePerSecond: 10, burst: 5 }, clock);
    takeAll(b);
    clock.advance(99);
    assert.equal(b.tryTake(), false, 'a token takes 100 ms at 10/s');
    clock.advance(1);
    assert.equal(b.tryTake(), true);
    assert.equal(b.tryTake(), false);
    clock.advance(350);
    assert.equal(takeAll(b), 3, '350 ms earn 3.5 tokens: 3 whole');
    clock.advance(50);
    assert.equal(takeAll(b), 1, 'the half token carried over');
    clock.advance(60_000);
    assert.equal(b.available(), 5, 'capped at burst after a long idle spell');
  });

  it('over a long run admits rate × time + burst, whatever the call pattern', () => {
    const clock = new ManualClock();
    const b = new TokenBucket({ ratePerSecond: 100, burst: 20 }, clock);
    let admitted = 0;
    for (let ms = 0; ms < 10_000; ms += 0.25) {
      if (b.tryTake()) admitted++;
      clock.advance(0.25);
    }
    assert.ok(admitted >= 1019 && admitted <= 1020, `admitted ${admitted}`);
  });

  it('says how long until n tokens are there', () => {
    const clock = new ManualClock();
    const b = new TokenBucket({ ratePerSecond: 4, burst: 2 }, clock);
    assert.equal(b.retryAfterMs(), 0);
    takeAll(b);
    assert.equal(b.retryAfterMs(), 250);
    assert.equal(b.retryAfterMs(2), 500);
    clock.advance(100);
    assert.equal(b.retryAfterMs(), 150);
    assert.equal(b.retryAfterMs(3), Infinity, 'more than the burst never fits');
    assert.equal(b.tryTake(3), false);
  });

  it('works below one per second (fractional tokens accumulate)', () => {
    const clock = new ManualClock();
    const b = new TokenBucket({ ratePerSecond: 0.5, burst: 1 }, clock);
    assert.equal(b.tryTake(), true);
    assert.equal(b.retryAfterMs(), 2000);
    clock.advance(1999);
    assert.equal(b.tryTake(), false);
    clock.advance(1);
    assert.equal(b.tryTake(), true);
  });

  it('takes several tokens at once, all or nothing', () => {
    const clock = new ManualClock();
    const b = new TokenBucket({ ratePerSecond: 10, burst: 10 }, clock);
    assert.equal(b.tryTake(7), true);
    assert.equal(b.tryTake(4), false);
    assert.equal(b.available(), 3);
  });

  it('earns nothing while the clock goes backwards, and credits no span twice', () => {
    const clock = new ManualClock(1000);
    const b = new TokenBucket({ ratePerSecond: 10, burst: 5 }, clock);
    takeAll(b);
    clock.advance(-500);
    assert.equal(b.available(), 0);
    clock.advance(600); // 100 ms past the last time seen
    assert.equal(b.available(), 1);
  });

  it('refuses nonsense parameters at construction', () => {
    const clock = new ManualClock();
    assert.throws(() => new TokenBucket({ ratePerSecond: 0, burst: 1 }, clock), RangeError);
    assert.throws(() => new TokenBucket({ ratePerSecond: Number.NaN, burst: 1 }, clock), RangeError);
    assert.throws(() => new TokenBucket({ ratePerSecond: 1, burst: 0.5 }, clock), RangeError);
    assert.throws(() => new TokenBucket({ ratePerSecond: 1, burst: Infinity }, clock), RangeError);
  });
});

describe('localRateLimiter', () => {
  it('is a token bucket with a description', () => {
    const clock = new ManualClock();
    const l = localRateLimiter({ requestsPerSecond: 100, burst: 2 }, clock);
    assert.equal(l.description, 'local 100/s burst 2');
    assert.equal(l.tryAcquire(), true);
    assert.equal(l.tryAcquire(), true);
    assert.equal(l.tryAcquire(), false);
    assert.equal(l.retryAfterMs(), 10);
    clock.advance(10);
    assert.equal(l.tryAcquire(), true);
    l.close();
  });
});

describe('rateLimitFilter', () => {
  const ok: Service<string, string> = async (req) => `ok ${req}`;

  it('passes admitted requests straight to next: its very promise, nothing added', async () => {
    const l = localRateLimiter({ requestsPerSecond: 10, burst: 1 }, new ManualClock());
    const filter = rateLimitFilter<string, string>(l, { scope: 'products' });
    const p = Promise.resolve('from next');
    const ctx = new CallContext('products', true);
    assert.equal(filter('GET /', ctx, () => p), p);
    assert.equal(await p, 'from next');
  });

  it('fails excess fast with RateLimitedError naming service, route and retry-after, without calling next', async () => {
    const clock = new ManualClock();
    const l = localRateLimiter({ requestsPerSecond: 4, burst: 1 }, clock);
    const limited: CallContext[] = [];
    const filter = rateLimitFilter<string, string>(l, { scope: 'products/route catalog', onLimited: (ctx) => limited.push(ctx) });
    let calls = 0;
    const next: Service<string, string> = (req, ctx) => {
      calls++;
      return ok(req, ctx);
    };
    const ctx = new CallContext('products', true);
    ctx.route = 'catalog';
    assert.equal(await filter('a', ctx, next), 'ok a');

    const err = await filter('b', ctx, next).then(
      () => assert.fail('should be refused'),
      (e: unknown) => e,
    );
    assert.equal(calls, 1, 'next not called for the refused request');
    assert.ok(err instanceof RateLimitedError);
    assert.ok(isTrellisError(err, 'TRELLIS_RATE_LIMITED'));
    assert.equal(err.retryable, false);
    assert.equal(err.service, 'products');
    assert.equal(err.route, 'catalog');
    assert.equal(err.info.httpStatus, 429);
    assert.equal((err as { retryAfterMs?: number }).retryAfterMs, 250);
    assert.equal(retryAfterMsOf(err), 250);
    assert.match(err.message, /^TRELLIS_RATE_LIMITED: rate limit of products\/route catalog exceeded \(local 4\/s burst 1\); retry after 250 ms \[service products, route catalog\]$/);
    assert.deepEqual(limited, [ctx]);

    clock.advance(250);
    assert.equal(await filter('c', ctx, next), 'ok c');
    assert.equal(retryAfterMsOf(new Error('x')), undefined);
  });

  it('a throwing onLimited hook does not change the outcome', async () => {
    const l = localRateLimiter({ requestsPerSecond: 1, burst: 1 }, new ManualClock());
    const filter = rateLimitFilter<string, string>(l, {
      scope: 'products',
      onLimited: () => {
        throw new Error('metrics broke');
      },
    });
    const ctx = new CallContext('products', true);
    await filter('a', ctx, ok);
    await assert.rejects(filter('b', ctx, ok), RateLimitedError);
  });

  it('asks the limiter once per request and nothing else (any RateLimiter works)', async () => {
    let asked = 0;
    const never: RateLimiter = {
      tryAcquire: () => {
        asked++;
        return false;
      },
      retryAfterMs: () => 1234.2,
      description: 'test limiter',
      close: () => {},
    };
    const filter = rateLimitFilter<string, string>(never, { scope: 'inbound' });
    const err: unknown = await filter('a', new CallContext('orders', true), ok).catch((e: unknown) => e);
    assert.equal(asked, 1);
    assert.equal(retryAfterMsOf(err), 1235, 'rounded up to whole ms');
    assert.match(String((err as Error).message), /rate limit of inbound exceeded \(test limiter\); retry after 1235 ms \[service orders\]/);
  });
});
