/**
 * Micro-benchmark of the argument validation at the request entry (src/client/request-validation.ts):
 * ns per call for typical request options, to keep its cost on the hot path visible. It runs the
 * compiled module (build first) in a tight loop, a few interleaved rounds, and reports the median
 * of the rounds. A raw undici request costs tens of µs on this machine, so the figure to watch is
 * how small a fraction of that this is.
 *
 *   npm run build && node --import tsx bench/request-validation.ts
 *
 * Measured 2026-12-03 on the shared 2-core machine at load average ~10 (so several times slower
 * than an idle core): path only ~100 ns, 3 headers ~0.9 µs, POST with body and signal ~0.3 µs,
 * 200-char path ~0.45 µs; against ~23 µs of client CPU for one raw undici request
 * (docs/benchmarks.md). Per-string cost is dominated by the character-class scans.
 */
import { invalidRequestArgument } from '../dist/client/request-validation.js';

const CASES: Record<string, Record<string, unknown>> = {
  'GET, path only': { method: 'GET', path: '/list' },
  'GET, 3 headers': { method: 'GET', path: '/products/1234?fields=name,price', headers: { accept: 'application/json', authorization: 'Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJjaGVja291dCJ9.c2ln', 'x-request-id': '0af7651916cd43dd8448eb211c80319c' } },
  'POST, body and signal': { method: 'POST', path: '/orders', headers: { 'content-type': 'application/json' }, body: '{"sku":"a1","qty":2}', signal: new AbortController().signal, idempotent: false },
  'GET, 200-char path': { method: 'GET', path: `/${'segment/'.repeat(22)}x` },
};

const N = 1_000_000;
const ROUNDS = 5;
let sink = 0;

function round(opts: Record<string, unknown>): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) if (invalidRequestArgument(opts, 'products') !== undefined) sink++;
  return Number(process.hrtime.bigint() - t0) / N;
}

const results = new Map<string, number[]>(Object.keys(CASES).map((k) => [k, []]));
for (const opts of Object.values(CASES)) round(opts); // warm-up
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, opts] of Object.entries(CASES)) results.get(name)?.push(round(opts));
}
for (const [name, ns] of results) {
  const sorted = [...ns].sort((a, b) => a - b);
  console.log(`${name.padEnd(24)} ${(sorted[Math.floor(sorted.length / 2)] ?? 0).toFixed(1)} ns/call`);
}
if (sink !== 0) throw new Error('a valid case was refused');
