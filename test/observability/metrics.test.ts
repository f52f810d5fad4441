/**
 * MeshMetrics: the contract's names and labels, the registry it writes to (the application's when
 * given), sharing one registry between mesh clients, bounded label values, and the gauges.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Registry } from 'prom-client';
import { MeshMetrics, METRIC_NAMES, OTEL_HTTP_DURATION_BUCKETS } from '../../src/observability/metrics.js';
import { OUTCOMES, normalizeMethod, statusLabel } from '../../src/observability/metrics-labels.js';
import { parseExposition, sampleSum, samples } from '../helpers/prometheus.js';

const N = METRIC_NAMES;

describe('MeshMetrics', () => {
  it('creates every metric of DESIGN.md with its type and labels', async () => {
    const m = new MeshMetrics();
    const json = await m.registry.getMetricsAsJSON();
    const byName = new Map(json.map((j) => [j.name, j]));
    const expect: [string, string][] = [
      [N.clientRequests, 'counter'],
      [N.clientRequestDuration, 'histogram'],
      [N.clientAttempts, 'counter'],
      [N.clientAttemptDuration, 'histogram'],
      [N.clientRetries, 'counter'],
      [N.clientRetryBudgetExhausted, 'counter'],
      [N.clientCircuitBreakerState, 'gauge'],
      [N.clientEndpoints, 'gauge'],
      [N.clientEjections, 'counter'],
      [N.clientRateLimited, 'counter'],
      [N.certificateExpiry, 'gauge'],
      [N.serverRequests, 'counter'],
      [N.serverRequestDuration, 'histogram'],
      [N.serverShed, 'counter'],
      [N.concurrencyLimit, 'gauge'],
      [N.concurrencyInflight, 'gauge'],
      [N.eventLoopUtilization, 'gauge'],
      [N.eventLoopDelay, 'gauge'],
    ];
    assert.equal(byName.size, expect.length);
    for (const [name, type] of expect) assert.equal(String(byName.get(name)?.type), type, name);
    const labels = (name: string): string[] => [...((m.registry.getSingleMetric(name) as unknown as { labelNames: string[] }).labelNames)].sort();
    assert.deepEqual(labels(N.clientRequests), ['method', 'outcome', 'route', 'service', 'status_code']);
    assert.deepEqual(labels(N.clientAttemptDuration), ['method', 'outcome', 'route', 'service', 'status_code']);
    assert.deepEqual(labels(N.serverRequests), ['caller', 'method', 'outcome', 'route', 'service', 'status_code']);
    assert.deepEqual(labels(N.clientRetries), ['reason', 'route', 'service']);
    assert.deepEqual(labels(N.clientRateLimited), ['direction', 'route', 'service']);
    assert.deepEqual(labels(N.serverShed), ['reason', 'service']);
    assert.deepEqual(labels(N.concurrencyLimit), ['direction', 'service']);
  });

  it('records requests with OTel buckets, and exact counts per label tuple', async () => {
    const m = new MeshMetrics();
    m.recordClientRequest('products', 'catalog', 'GET', '200', 'success', 0.004);
    m.recordClientRequest('products', 'catalog', 'GET', '200', 'success', 0.3);
    m.recordClientRequest('products', 'catalog', 'GET', '503', 'failure', 0.02);
    const text = await m.text();
    assert.equal(sampleSum(text, N.clientRequests, { service: 'products', route: 'catalog', method: 'GET', status_code: '200', outcome: 'success' }), 2);
    assert.equal(sampleSum(text, N.clientRequests, { status_code: '503', outcome: 'failure' }), 1);
    const buckets = samples(text, `${N.clientRequestDuration}_bucket`, { status_code: '200' });
    assert.deepEqual(buckets.map((b) => b.labels.le), [...OTEL_HTTP_DURATION_BUCKETS.map(String), '+Inf']);
    const at = (le: string): number => buckets.find((b) => b.labels.le === le)?.value ?? NaN;
    assert.equal(at('0.005'), 1);
    assert.equal(at('0.25'), 1);
    assert.equal(at('0.5'), 2);
    assert.equal(at('+Inf'), 2);
    assert.equal(sampleSum(text, `${N.clientRequestDuration}_count`, { status_code: '200' }), 2);
    assert.ok(Math.abs(sampleSum(text, `${N.clientRequestDuration}_sum`, { status_code: '200' }) - 0.304) < 1e-9);
  });

  it('writes into the application registry when given, next to its own metrics', async () => {
    const app = new Registry();
    const mine = new Counter({ name: 'app_things_total', help: 'app', registers: [app] });
    mine.inc();
    const m = new MeshMetrics({ registry: app });
    assert.equal(m.registry, app);
    assert.equal(m.ownsRegistry, false);
    m.recordClientAttempt('products', 'default', 'GET', '200', 'success', 0.01);
    const text = await app.metrics();
    assert.equal(sampleSum(text, 'app_things_total'), 1);
    assert.equal(sampleSum(text, N.clientAttempts, { service: 'products' }), 1);
    assert.equal(new MeshMetrics().ownsRegistry, true);
  });

  it('lets two instances share one registry, counting into the same series', async () => {
    const r = new Registry();
    const a = new MeshMetrics({ registry: r });
    const b = new MeshMetrics({ registry: r });
    a.recordClientRequest('products', 'default', 'GET', '200', 'success', 0.01);
    b.recordClientRequest('products', 'default', 'GET', '200', 'success', 0.01);
    b.retry('products', 'default', 'gateway-error');
    const text = await r.metrics();
    assert.equal(sampleSum(text, N.clientRequests), 2);
    assert.equal(sampleSum(text, N.clientRetries, { reason: 'gateway-error' }), 1);
    assert.equal(text.split('\n').filter((l) => l === `# TYPE ${N.clientRequests} counter`).length, 1);
  });

  it('refuses a registry holding a same-named metric of another shape, saying which', () => {
    const r = new Registry();
    new Counter({ name: N.clientRequests, help: 'not ours', labelNames: ['service'], registers: [r] });
    assert.throws(() => new MeshMetrics({ registry: r }), /trellis_client_requests_total.*labels \[service\].*labels \[method,outcome,route,service,status_code\]/);
  });

  it('refuses a prefix: the names are the contract', () => {
    assert.throws(() => new MeshMetrics({ prefix: 'x_' } as unknown as { prefix?: never }), /prefix/);
  });

  it('bounds label values: methods, status codes and outcomes from fixed sets', async () => {
    const m = new MeshMetrics();
    m.recordClientRequest('products', 'default', 'get', '200', 'success', 0.01);
    m.recordClientRequest('products', 'default', 'PURGE', '2000', 'banana', 0.01);
    m.recordClientRequest('products', 'default', 'x'.repeat(1000), '', 'timeout', 0.01);
    const text = await m.text();
    const s = samples(text, N.clientRequests);
    assert.deepEqual(new Set(s.map((x) => x.labels.method)), new Set(['_OTHER']));
    assert.deepEqual(s.map((x) => x.labels.status_code).sort(), ['', '', '200']);
    assert.deepEqual(s.map((x) => x.labels.outcome).sort(), ['failure', 'success', 'timeout']);
    assert.equal(normalizeMethod('PATCH'), 'PATCH');
    assert.equal(statusLabel(404), '404');
    assert.equal(statusLabel(99), '');
    assert.equal(statusLabel(undefined), '');
    // The outcome label set, written out: OUTCOMES is built from ERROR_CODES, so checking one
    // against the other could not fail. An outcome added or lost changes dashboards and alerts.
    assert.deepEqual([...OUTCOMES].sort(), [
      'cancelled', 'circuit_open', 'closed', 'config_invalid', 'connect_failure', 'failure', 'fault', 'forbidden', 'invalid_argument',
      'invalid_csr', 'no_endpoints', 'no_identity', 'no_route', 'overloaded', 'peer_identity', 'rate_limited', 'reset', 'success', 'timeout',
      'unauthenticated', 'unknown_service',
    ]);
  });

  it('never throws into a request, whatever it is given', () => {
    const m = new MeshMetrics();
    assert.doesNotThrow(() => m.recordClientRequest('products', 'default', 'GET', '200', 'success', Number.NaN));
    assert.doesNotThrow(() => m.recordClientRequest(undefined as unknown as string, 'default', 'GET', '200', 'success', -1));
    assert.doesNotThrow(() => m.recordServerRequest('products', 'unknown', 'default', 'GET', '200', 'success', Infinity));
  });

  it('keeps the other client counters and the gauges', async () => {
    const m = new MeshMetrics();
    m.retry('products', 'catalog', 'reset');
    m.retry('products', 'catalog', 'reset');
    m.retryBudgetExhausted('products');
    m.setBreakerState('products', 'closed');
    m.setBreakerState('products', 'open');
    m.setEndpoints('products', 3, 1);
    m.ejection('products');
    m.rateLimited('products', 'catalog', 'outbound');
    m.rateLimited('checkout', 'unknown', 'inbound');
    m.setCertificateExpiry('checkout', 1_800_000_000_000);
    let text = await m.text();
    assert.equal(sampleSum(text, N.clientRetries, { service: 'products', route: 'catalog', reason: 'reset' }), 2);
    assert.equal(sampleSum(text, N.clientRetryBudgetExhausted, { service: 'products' }), 1);
    assert.deepEqual(
      Object.fromEntries(samples(text, N.clientCircuitBreakerState, { service: 'products' }).map((s) => [s.labels.state, s.value])),
      { closed: 0, open: 1, 'half-open': 0 },
    );
    assert.equal(sampleSum(text, N.clientEndpoints, { service: 'products', state: 'healthy' }), 3);
    assert.equal(sampleSum(text, N.clientEndpoints, { service: 'products', state: 'ejected' }), 1);
    assert.equal(sampleSum(text, N.clientEjections, { service: 'products' }), 1);
    assert.equal(sampleSum(text, N.clientRateLimited, { direction: 'outbound' }), 1);
    assert.equal(sampleSum(text, N.clientRateLimited, { direction: 'inbound', service: 'checkout' }), 1);
    assert.equal(sampleSum(text, N.certificateExpiry, { service: 'checkout' }), 1_800_000_000);

    m.removeService('products');
    text = await m.text();
    assert.equal(samples(text, N.clientCircuitBreakerState).length, 0);
    assert.equal(samples(text, N.clientEndpoints).length, 0);
    assert.equal(sampleSum(text, N.clientRetries), 2, 'counters stay');
    assert.ok(parseExposition(text).length > 0);
  });
});
