/**
 * Rate limiting: what a limit costs a request, and whether bottleneck (2.19.5, the last release)
 * would do. Measures, in this process:
 *
 *   bottleneck local   per-job overhead with no limits set: 1000 sequential
 *                      `limiter.schedule(() => Promise.resolve())`, and 1000 at once
 *   token bucket       ns per `tryTake()` (admitting, and refusing), on the system clock
 *   filter             ns per request added by `rateLimitFilter` around a resolved `next`
 *
 * and, when redis-server is installed (started here on a free 127.0.0.1 port, stopped at the end):
 *
 *   bottleneck redis   per-job overhead with the ioredis datastore; two limiters sharing
 *                      `minTime: 20` (50/s) for 3 s; and what happens once its keys expire
 *                      (`timeout`, the default 5 min for a Group) or Redis restarts (FLUSHALL)
 *   redis round trip   µs per token-bucket script call (what a Redis call per request would add)
 *   global limiter     two instances sharing 50/s driven flat out for 3 s: admitted/s, Redis
 *                      calls/s, ns per tryAcquire
 *
 * Usage: node --import tsx bench/rate-limit.ts   (about 20 s; a watchdog ends it after 90 s)
 */
import Bottleneck from 'bottleneck';
import { Redis } from 'ioredis';
import { systemClock } from '../src/core/clock.js';
import { CallContext } from '../src/core/context.js';
import { globalRateLimiter, type GlobalRateLimiter } from '../src/resilience/global-rate-limiter.js';
import { rateLimitFilter } from '../src/resilience/rate-limit-filter.js';
import { localRateLimiter } from '../src/resilience/rate-limiter.js';
import { takeTokens } from '../src/resilience/redis-token-bucket.js';
import { TokenBucket } from '../src/resilience/token-bucket.js';
import { findRedisServer, startRedis, type RedisServer } from '../test/helpers/redis.js';

const watchdog = setTimeout(() => {
  console.error('bench/rate-limit.ts: watchdog: still running after 90 s, giving up');
  process.exit(2);
}, 90_000);
watchdog.unref();

const rows: [string, string][] = [];
const report = (what: string, value: string): void => {
  rows.push([what, value]);
  console.log(`${what}: ${value}`);
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const fmt = (n: number, digits = 1): string => n.toFixed(digits);

// ---- bottleneck, in-process, no limits ----
{
  const limiter = new Bottleneck();
  await limiter.schedule(() => Promise.resolve()); // warm-up
  let t0 = performance.now();
  for (let i = 0; i < 1000; i++) await limiter.schedule(() => Promise.resolve());
  report('bottleneck 2.19.5, no limits, 1000 sequential jobs', `${fmt((performance.now() - t0) / 1000, 2)} ms per job`);
  t0 = performance.now();
  await Promise.all(Array.from({ length: 1000 }, () => limiter.schedule(() => Promise.resolve())));
  report('bottleneck 2.19.5, no limits, 1000 jobs at once', `${fmt(performance.now() - t0, 0)} ms in all (${fmt((performance.now() - t0) / 1000, 2)} ms per job)`);
  t0 = performance.now();
  for (let i = 0; i < 1000; i++) await Promise.resolve();
  report('baseline: 1000 sequential awaits of a resolved promise', `${fmt(((performance.now() - t0) / 1000) * 1000, 2)} µs each`);
  await limiter.stop();
}

// ---- our token bucket and filter ----
function nsPerOp(n: number, op: () => unknown): number {
  for (let i = 0; i < 100_000; i++) op(); // warm-up (JIT)
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) op();
  return Number(process.hrtime.bigint() - t0) / n;
}
{
  const N = 5_000_000;
  const clockOnly = nsPerOp(N, () => systemClock.now());
  const admitting = new TokenBucket({ ratePerSecond: 1e12, burst: 1e12 }, systemClock);
  const refusing = new TokenBucket({ ratePerSecond: 1, burst: 1 }, systemClock);
  report('clock read (performance.now)', `${fmt(clockOnly)} ns`);
  report('TokenBucket.tryTake, admitting', `${fmt(nsPerOp(N, () => admitting.tryTake()))} ns`);
  report('TokenBucket.tryTake, refusing', `${fmt(nsPerOp(N, () => refusing.tryTake()))} ns`);
  const local = localRateLimiter({ requestsPerSecond: 1e12, burst: 1e12 }, systemClock);
  report('localRateLimiter.tryAcquire', `${fmt(nsPerOp(N, () => local.tryAcquire()))} ns`);
  const resolved = Promise.resolve('r');
  const next = (): Promise<string> => resolved;
  const filter = rateLimitFilter<string, string>(local, { scope: 'bench' });
  const ctx = new CallContext('bench', true);
  const direct = nsPerOp(N, () => next());
  const filtered = nsPerOp(N, () => filter('req', ctx, next));
  report('rateLimitFilter, admitted request (over calling next directly)', `${fmt(filtered - direct)} ns`);
}

// ---- with a real Redis ----
if (findRedisServer() === undefined) {
  report('Redis measurements', 'skipped: redis-server is not installed (apt-get install -y redis-server)');
} else {
  const redis: RedisServer = await startRedis();
  const admin = new Redis(redis.url);
  try {
    const info = await admin.info('server');
    report('redis-server', /redis_version:(\S+)/.exec(info)?.[1] ?? '?');
    const clientOptions = { host: '127.0.0.1', port: redis.port };

    // Per-job overhead, Redis datastore.
    {
      const limiter = new Bottleneck({ id: 'bench-seq', datastore: 'ioredis', clearDatastore: true, clientOptions });
      limiter.on('error', () => {});
      await limiter.ready();
      await limiter.schedule(() => Promise.resolve());
      const t0 = performance.now();
      for (let i = 0; i < 200; i++) await limiter.schedule(() => Promise.resolve());
      report('bottleneck, ioredis datastore, no limits, 200 sequential jobs', `${fmt((performance.now() - t0) / 200, 2)} ms per job`);
      await limiter.disconnect(false);
    }

    // Two limiters sharing minTime 20 ms (50/s) through Redis, 3 s, queues kept full.
    {
      const make = (): Bottleneck => {
        const l = new Bottleneck({ id: 'bench-shared', datastore: 'ioredis', clearDatastore: false, minTime: 20, clientOptions });
        l.on('error', () => {});
        return l;
      };
      await admin.flushall();
      const pair = [make(), make()];
      await Promise.all(pair.map((l) => l.ready()));
      let done = 0;
      const t0 = performance.now();
      for (const l of pair) for (let i = 0; i < 400; i++) l.schedule({ expiration: 10_000 }, () => Promise.resolve()).then(() => done++, () => {});
      await sleep(3000);
      const passed = done;
      report('bottleneck, 2 limiters sharing minTime 20 ms (50/s) via Redis, 3 s', `${fmt(passed / ((performance.now() - t0) / 1000))}/s together`);
      await Promise.all(pair.map((l) => l.stop({ dropWaitingJobs: true }).catch(() => {})));
      await Promise.all(pair.map((l) => l.disconnect(false)));
    }

    // After its keys expire (`timeout`) or Redis restarts, does it recover?
    for (const [label, breakIt] of [
      ['bottleneck, Redis mode, after its keys expire (timeout: 1000, 1.5 s idle)', async () => sleep(1500)],
      ['bottleneck, Redis mode, after Redis loses its keys (FLUSHALL, as on a restart)', async () => void (await admin.flushall())],
    ] as const) {
      const l = new Bottleneck({ id: `bench-expiry-${rows.length}`, datastore: 'ioredis', clearDatastore: true, timeout: 1000, clientOptions });
      l.on('error', () => {});
      await l.ready();
      await l.schedule(() => Promise.resolve());
      await breakIt();
      const outcome = await Promise.race([
        l.schedule(() => Promise.resolve()).then(
          () => 'works',
          (e: unknown) => `FAILS: every job rejects with "${e instanceof Error ? e.message : String(e)}"`,
        ),
        sleep(3000).then(() => 'FAILS: job hangs'),
      ]);
      const again = await l.schedule(() => Promise.resolve()).then(
        () => 'recovers',
        () => 'does not recover',
      );
      report(label, `${outcome}; next job ${again}`);
      await l.disconnect(false);
    }

    // What a Redis call per request would add.
    {
      const key = 'trellis:rl:bench-rtt';
      for (let i = 0; i < 200; i++) await takeTokens(admin, { key, requestsPerSecond: 1e9, burst: 1e9, want: 1 });
      const lat: number[] = [];
      for (let i = 0; i < 2000; i++) {
        const t0 = performance.now();
        await takeTokens(admin, { key, requestsPerSecond: 1e9, burst: 1e9, want: 1 });
        lat.push(performance.now() - t0);
      }
      lat.sort((a, b) => a - b);
      report('token-bucket script round trip to local Redis (p50 / p99)', `${fmt((lat[1000] ?? 0) * 1000, 0)} µs / ${fmt((lat[1980] ?? 0) * 1000, 0)} µs`);
    }

    // Our global limiter: two instances sharing 50/s, flat out for 3 s.
    {
      const make = (): GlobalRateLimiter =>
        globalRateLimiter({ key: 'bench-shared', requestsPerSecond: 50, burst: 10, redisUrl: redis.url }, { clock: systemClock, onWarn: (m) => console.warn(m) });
      await admin.flushall();
      const pair = [make(), make()];
      const counts = [0, 0];
      let calls = 0;
      let busyNs = 0n;
      const t0 = performance.now();
      while (performance.now() - t0 < 3000) {
        const s = process.hrtime.bigint();
        for (let i = 0; i < 1000; i++) {
          for (let j = 0; j < 2; j++) if (pair[j]!.tryAcquire()) counts[j]!++;
          calls += 2;
        }
        busyNs += process.hrtime.bigint() - s;
        await new Promise((r) => setImmediate(r));
      }
      const secs = (performance.now() - t0) / 1000;
      const redisCalls = pair[0]!.stats().redisCalls + pair[1]!.stats().redisCalls;
      report('global limiter, 2 instances sharing 50/s (burst 10), flat out 3 s', `${fmt((counts[0]! + counts[1]!) / secs)}/s together (${counts[0]} + ${counts[1]}), ${fmt(redisCalls / secs)} Redis calls/s`);
      report('global limiter, tryAcquire (mostly refusing, Redis refills in the background)', `${fmt(Number(busyNs) / calls)} ns`);
      pair.forEach((l) => l.close());
    }
    {
      const l = globalRateLimiter({ key: 'bench-fast', requestsPerSecond: 1e6, burst: 1e6, redisUrl: redis.url }, { clock: systemClock, onWarn: (m) => console.warn(m) });
      let calls = 0;
      let admitted = 0;
      let busyNs = 0n;
      const t0 = performance.now();
      while (performance.now() - t0 < 1000) {
        const s = process.hrtime.bigint();
        for (let i = 0; i < 1000; i++) if (l.tryAcquire()) admitted++;
        calls += 1000;
        busyNs += process.hrtime.bigint() - s;
        await new Promise((r) => setImmediate(r));
      }
      report('global limiter, 1 instance, limit 1M/s (batches of 100), offered all it can for 1 s', `${fmt(Number(busyNs) / calls)} ns per tryAcquire; ${fmt(admitted / 1e6, 2)}M admitted of ${fmt(calls / 1e6, 1)}M offered, ${l.stats().redisCalls} Redis calls`);
      l.close();
    }
  } finally {
    admin.disconnect();
    await redis.stop();
  }
}

console.log('\n| measurement | result |\n| --- | --- |');
for (const [what, value] of rows) console.log(`| ${what} | ${value} |`);
