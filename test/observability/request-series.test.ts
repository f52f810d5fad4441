/**
 * Request metrics as plain numbers (request-series.ts): nothing reaches prom-client on the
 * request path, and what a scrape shows is byte-for-byte what prom-client's own `inc` and
 * `observe` per request would have shown (names, labels, buckets, HELP, order), in both
 * exposition formats, across several scrapes, a registry reset and two MeshMetrics sharing one
 * registry.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Histogram, Registry } from 'prom-client';
import type { OpenMetricsContentType } from 'prom-client';
import { MeshMetrics, METRIC_NAMES, OTEL_HTTP_DURATION_BUCKETS } from '../../src/observability/metrics.js';
import type { AnyRegistry } from '../../src/observability/metrics.js';
import { sampleSum } from '../helpers/prometheus.js';

const N = METRIC_NAMES;
const CLIENT = ['service', 'route', 'method', 'status_code', 'outcome'];

type Rec = [service: string, route: string, method: string, status: string, outcome: string, seconds: number];

/** Requests spread over every bucket, the +Inf overflow, a zero and a bad duration. */
function workload(): Rec[] {
  const out: Rec[] = [];
  const durations = [0, 0.001, 0.005, 0.0051, 0.02, 0.07, 0.1, 0.3, 0.75, 1, 3, 9.99, 10, 12, 60];
  let i = 0;
  for (const route of ['catalog', 'default']) {
    for (const [status, outcome] of [['200', 'success'], ['503', 'failure'], ['', 'timeout']] as const) {
      for (const d of durations) out.push(['products', route, i++ % 3 === 0 ? 'POST' : 'GET', status, outcome, d]);
    }
  }
  out.push(['cart', 'default', 'GET', '200', 'success', 0.0123]);
  return out;
}

/** The same metrics as MeshMetrics makes them, fed the way Trellis fed them before: one inc and one observe per request. */
function promClientTwin(registry: AnyRegistry): (r: Rec) => void {
  const help = (name: string): string => ((new MeshMetrics().registry.getSingleMetric(name) as unknown as { help: string }).help);
  const c = new Counter({ name: N.clientRequests, help: help(N.clientRequests), labelNames: CLIENT, registers: [registry] });
  const h = new Histogram({ name: N.clientRequestDuration, help: help(N.clientRequestDuration), labelNames: CLIENT, buckets: [...OTEL_HTTP_DURATION_BUCKETS], registers: [registry] });
  return ([service, route, method, status, outcome, sec]) => {
    c.labels(service, route, method, status, outcome).inc();
    h.labels(service, route, method, status, outcome).observe(sec);
  };
}

/** The exposition of only the two request metrics. */
async function requestMetricsText(registry: AnyRegistry): Promise<string> {
  const parts = [await registry.getSingleMetricAsString(N.clientRequests), await registry.getSingleMetricAsString(N.clientRequestDuration)];
  return parts.join('\n');
}

describe('request series as plain numbers', () => {
  it('calls no prom-client method per request; one inc per changed series per scrape', async () => {
    const m = new MeshMetrics();
    const counter = m.registry.getSingleMetric(N.clientRequests) as Counter<string>;
    const histogram = m.registry.getSingleMetric(N.clientRequestDuration) as Histogram<string>;
    let incs = 0;
    let observes = 0;
    const inc = counter.inc.bind(counter);
    counter.inc = ((...a: Parameters<typeof inc>) => {
      incs++;
      return inc(...a);
    }) as typeof counter.inc;
    const observe = histogram.observe.bind(histogram);
    histogram.observe = ((...a: Parameters<typeof observe>) => {
      observes++;
      return observe(...a);
    }) as typeof histogram.observe;

    for (let i = 0; i < 1000; i++) m.recordClientRequest('products', 'catalog', 'GET', i % 10 === 0 ? '503' : '200', i % 10 === 0 ? 'failure' : 'success', 0.01);
    const rec = m.clientRequests('products', 'catalog', 'GET');
    for (let i = 0; i < 500; i++) rec.record('200', 'success', 0.02);
    assert.equal(incs + observes, 0, 'the request path never calls prom-client');

    let text = await m.text();
    assert.equal(incs, 2, 'one inc per series at scrape time');
    assert.equal(observes, 0);
    assert.equal(sampleSum(text, N.clientRequests, { status_code: '200' }), 1400);
    assert.equal(sampleSum(text, N.clientRequests, { status_code: '503' }), 100);
    assert.equal(sampleSum(text, `${N.clientRequestDuration}_count`), 1500);

    text = await m.text();
    assert.equal(incs, 2, 'an unchanged series is not handed over again');
    assert.equal(sampleSum(text, N.clientRequests), 1500, 'and keeps its value');
  });

  for (const format of ['prometheus', 'openmetrics'] as const) {
    it(`exposes exactly what per-request inc/observe exposed (${format}), scrape after scrape`, async () => {
      const make = (): AnyRegistry => {
        if (format === 'prometheus') return new Registry();
        const r = new Registry<OpenMetricsContentType>();
        r.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
        return r;
      };
      const ours = new MeshMetrics({ registry: make() });
      const twinRegistry = make();
      const twin = promClientTwin(twinRegistry);
      const all = workload();
      const half = all.length >> 1;
      for (const r of all.slice(0, half)) {
        ours.recordClientRequest(...r);
        twin(r);
      }
      assert.equal(await requestMetricsText(ours.registry), await requestMetricsText(twinRegistry));
      for (const r of all.slice(half)) {
        ours.recordClientRequest(...r);
        twin(r);
      }
      const text = await requestMetricsText(ours.registry);
      assert.equal(text, await requestMetricsText(twinRegistry));
      assert.ok(text.includes('le="+Inf"') && text.includes('route="catalog"'), 'the comparison saw real series');
    });
  }

  it('keeps prom-client reset semantics: after resetMetrics() a scrape shows only what came since', async () => {
    const m = new MeshMetrics();
    for (let i = 0; i < 5; i++) m.recordClientAttempt('products', 'default', 'GET', '200', 'success', 0.01);
    assert.equal(sampleSum(await m.text(), N.clientAttempts), 5);
    m.registry.resetMetrics();
    m.recordClientAttempt('products', 'default', 'GET', '200', 'success', 0.5);
    const text = await m.text();
    assert.equal(sampleSum(text, N.clientAttempts), 1);
    assert.equal(sampleSum(text, `${N.clientAttemptDuration}_count`), 1);
    assert.equal(sampleSum(text, `${N.clientAttemptDuration}_sum`), 0.5);
  });

  it('two MeshMetrics on one registry share the series, whichever scrapes', async () => {
    const r = new Registry();
    const a = new MeshMetrics({ registry: r });
    const b = new MeshMetrics({ registry: r });
    a.recordServerRequest('products', 'checkout', 'list', 'GET', '200', 'success', 0.01);
    b.serverRequests('products', 'checkout', 'list', 'GET').record('200', 'success', 0.02);
    const text = await a.text();
    assert.equal(sampleSum(text, N.serverRequests, { caller: 'checkout', route: 'list' }), 2);
    assert.equal(sampleSum(text, `${N.serverRequestDuration}_count`), 2);
    assert.equal(text, await b.text());
  });

  it('recorders normalize status and outcome like the full entry points', async () => {
    const m = new MeshMetrics();
    const rec = m.clientAttempts('products', 'default', 'get');
    rec.record('2000', 'banana', Number.NaN);
    rec.record('204', 'success', -1);
    const text = await m.text();
    assert.equal(sampleSum(text, N.clientAttempts, { method: '_OTHER', status_code: '', outcome: 'failure' }), 1);
    assert.equal(sampleSum(text, N.clientAttempts, { method: '_OTHER', status_code: '204', outcome: 'success' }), 1);
    assert.equal(sampleSum(text, `${N.clientAttemptDuration}_sum`), 0, 'bad durations count as 0');
    assert.equal(sampleSum(text, `${N.clientAttemptDuration}_bucket`, { le: '0.005' }), 2);
  });
});
