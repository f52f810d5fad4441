/**
 * The hot-path primitives alone, in this process, no network: what one call costs.
 *
 *   metrics record     µs per `recordClientRequest` (the label tuple a request records: the
 *                      same 4 series in turn, as a route sees 200s and the odd 503)
 *   metrics recorder   µs per `RequestRecorder.record` (the pre-resolved entry point), when present
 *   metrics scrape     ms per `registry.metrics()` with those series (cold path, for reference)
 *   breaker closed     µs per call through `CircuitBreaker.filter` around an already-resolved
 *                      `next`, closed circuit, successes (what every attempt pays)
 *   breaker next only  µs per call of that same `next` alone (subtract it)
 *   breaker admit      µs per `admit()` + `report()` pair (the handler entry points), when present
 *   tracing filter     µs added by the HTTP attempt tracing filter with no SDK (propagate-only:
 *                      a new root context and its traceparent on a copy of the request)
 *   traceparent        µs per `headersFor(newRoot())`
 *   trace id           µs per `traceId()` + `spanId()` pair (a propagate-only root)
 *
 * Each figure is the median of 7 runs of N calls after a warm-up run; no forced GC.
 *
 * Usage: node --import tsx bench/primitives.ts [--n 200000]
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { SUCCESS } from '../src/core/classify.js';
import { CallContext } from '../src/core/context.js';
import { MeshMetrics } from '../src/observability/metrics.js';
import { randomTraceIds } from '../src/observability/trace-ids.js';
import { MeshTracer } from '../src/observability/tracer.js';
import { tracingAttemptFilter } from '../src/observability/tracing-filter.js';
import { httpTracingDeps } from '../src/observability/tracing-http.js';
import type { HttpRequest } from '../src/client/http-request.js';
import type { HttpResponse } from '../src/client/http-transport.js';
import { CircuitBreaker } from '../src/resilience/circuit-breaker.js';

const { values: args } = parseArgs({ options: { n: { type: 'string', default: '200000' } } });
const N = Number(args.n);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/** µs per call of a synchronous body run `n` times. */
function sync(body: (i: number) => void, n = N): number {
  const run = (): number => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) body(i);
    return ((performance.now() - t0) * 1000) / n;
  };
  run();
  return median(Array.from({ length: 7 }, run));
}

/** µs per call of an async body, awaited one at a time. */
async function serial(body: () => Promise<unknown>, n = N / 4): Promise<number> {
  const run = async (): Promise<number> => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await body();
    return ((performance.now() - t0) * 1000) / n;
  };
  await run();
  const xs: number[] = [];
  for (let r = 0; r < 7; r++) xs.push(await run());
  return median(xs);
}

const rows: [string, string][] = [];
const report = (what: string, value: number, unit = 'µs'): void => {
  rows.push([what, `${value.toFixed(3)} ${unit}`]);
};

// Metrics.
{
  const m = new MeshMetrics();
  const tuples = [
    ['200', 'success'],
    ['200', 'success'],
    ['200', 'success'],
    ['503', 'failure'],
  ] as const;
  report('metrics record (recordClientRequest)', sync((i) => {
    const t = tuples[i & 3] as readonly [string, string];
    m.recordClientRequest('products', 'catalog', 'GET', t[0], t[1], 0.0123);
  }));
  const recorderOf = (m as unknown as { clientRequests?: (s: string, r: string, meth: string) => { record(st: string, o: string, sec: number): void } }).clientRequests;
  if (typeof recorderOf === 'function') {
    const rec = recorderOf.call(m, 'products', 'catalog', 'GET');
    report('metrics recorder (RequestRecorder.record)', sync((i) => {
      const t = tuples[i & 3] as readonly [string, string];
      rec.record(t[0], t[1], 0.0123);
    }));
  }
  for (let s = 0; s < 50; s++) m.recordClientRequest(`svc${s}`, 'default', 'GET', '200', 'success', 0.01);
  const t0 = performance.now();
  for (let i = 0; i < 20; i++) await m.registry.metrics();
  report('metrics scrape (54 series, whole registry)', (performance.now() - t0) / 20, 'ms');
}

// Breaker.
{
  const breaker = new CircuitBreaker<string, number>(
    { errorThresholdPercent: 50, volumeThreshold: 20, resetTimeoutMs: 5000, windowMs: 10_000 },
    { classify: () => SUCCESS, service: 'products' },
  );
  const done = Promise.resolve(200);
  const next = (): Promise<number> => done;
  const ctx = new CallContext('products', true);
  const withBreaker = await serial(() => breaker.filter('GET /', ctx, next));
  const alone = await serial(async () => next());
  report('breaker closed (filter around a resolved next)', withBreaker);
  report('breaker next only (async wrapper, subtract)', alone);
  report('breaker added', withBreaker - alone);
  const b = breaker as unknown as { admit?: () => number; report?: (t: number, o: 'success') => void };
  if (typeof b.admit === 'function' && typeof b.report === 'function') {
    const admit = b.admit.bind(breaker);
    const rep = b.report.bind(breaker);
    report('breaker admit() + report() (handler entry points)', sync(() => rep(admit(), 'success')));
  }
  breaker.close();
}

// Tracing, propagate-only (no SDK): the attempt filter around a resolved next.
{
  const tracer = new MeshTracer({ service: 'bench' });
  const filter = tracingAttemptFilter(tracer, httpTracingDeps);
  const res = { statusCode: 200 } as unknown as HttpResponse;
  const done = Promise.resolve(res);
  const next = (): Promise<HttpResponse> => done;
  const ctx = new CallContext('products', true);
  const req: HttpRequest = { method: 'GET', path: '/list', headers: { accept: 'application/json', 'x-request-id': 'abc' }, body: undefined, replayable: true, classify: undefined, rest: {} };
  const traced = await serial(() => filter(req, ctx, next));
  const alone = await serial(async () => next());
  report('tracing attempt filter, propagate-only (added)', traced - alone);
  report('traceparent for a new root (newRoot + headersFor)', sync(() => {
    tracer.headersFor(tracer.newRoot());
  }));
}

// Trace ids.
{
  const ids = randomTraceIds();
  let sink = 0;
  report('trace id + span id', sync(() => {
    sink += ids.traceId().length + ids.spanId().length;
  }));
  if (sink === 0) console.log(sink);
}

const width = Math.max(...rows.map((r) => r[0].length));
console.log(`bench/primitives.ts: node ${process.version}, n=${N}, median of 7 runs`);
for (const [what, value] of rows) console.log(`  ${what.padEnd(width)}  ${value}`);
