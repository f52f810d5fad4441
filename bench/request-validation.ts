/**
 * Micro-benchmark of the argument validation at the request entry (src/client/request-validation.ts):
 * ns per call for typical request options, to keep its cost on the hot path visible, next to the
 * cost of `toHttpRequest` on the same options as a reference measured in the same run (absolute
 * ns on a shared machine mean little). Tight loops through tsx, interleaved rounds, medians.
 *
 *   node --import tsx bench/request-validation.ts
 *
 * Measured 2026-12-03 on the shared 2-core machine at load average 10-28 (absolute figures are
 * several times those of an idle core, so compare within a run): the validation costs about half
 * of what building the stack's request (`toHttpRequest`, paid by every request already) costs
 * for the same options (path only ~150 vs ~350 ns, 3 headers ~1.8 vs ~4.2 µs at load 28), and
 * twice that for a 200-character path, which toHttpRequest does not scan. Against ~23 µs of
 * client CPU for one raw undici request (docs/benchmarks.md, idle machine) that is well under 1%.
 */
import { invalidRequestArgument } from '../src/client/request-validation.js';
import { toHttpRequest } from '../src/client/http-request.js';
import type { MeshRequestOptions } from '../src/client/http-request.js';

const CASES: Record<string, Record<string, unknown>> = {
  'GET, path only': { method: 'GET', path: '/list' },
  'GET, 3 headers': { method: 'GET', path: '/products/1234?fields=name,price', headers: { accept: 'application/json', authorization: 'Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJjaGVja291dCJ9.c2ln', 'x-request-id': '0af7651916cd43dd8448eb211c80319c' } },
  'POST, body and signal': { method: 'POST', path: '/orders', headers: { 'content-type': 'application/json' }, body: '{"sku":"a1","qty":2}', signal: new AbortController().signal, idempotent: false },
  'GET, 200-char path': { method: 'GET', path: `/${'segment/'.repeat(22)}x` },
};

const N = 500_000;
const ROUNDS = 5;
let sink = 0;

function round(opts: Record<string, unknown>): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) if (invalidRequestArgument(opts, 'products') !== undefined) sink++;
  return Number(process.hrtime.bigint() - t0) / N;
}

/** The reference: building the stack's request from the same options, which every request already pays. */
function reference(opts: Record<string, unknown>): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) if (toHttpRequest(opts as unknown as MeshRequestOptions, 65_536).path === '') sink++;
  return Number(process.hrtime.bigint() - t0) / N;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const results = new Map<string, { validate: number[]; build: number[] }>(Object.keys(CASES).map((k) => [k, { validate: [], build: [] }]));
for (const opts of Object.values(CASES)) {
  round(opts); // warm-up
  reference(opts);
}
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, opts] of Object.entries(CASES)) {
    results.get(name)?.validate.push(round(opts));
    results.get(name)?.build.push(reference(opts));
  }
}
console.log(`${'case'.padEnd(24)} validate   toHttpRequest (reference)`);
for (const [name, { validate, build }] of results) {
  console.log(`${name.padEnd(24)} ${median(validate).toFixed(0).padStart(5)} ns   ${median(build).toFixed(0).padStart(5)} ns`);
}
if (sink !== 0) throw new Error('a valid case was refused');
