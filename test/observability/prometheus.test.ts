/**
 * A real Prometheus scrapes metricsHandler: the exposition is accepted by the server that will
 * read it in production, the counter arrives with its exact value and labels, and every query of
 * the Grafana dashboard parses and runs. Prometheus (Debian: `apt-get install prometheus`,
 * /usr/bin/prometheus) runs on 127.0.0.1 with a temporary config and TSDB, scraping every second;
 * the test polls its query API for at most 20 s. Without the binary: skipped locally, with the
 * reason; a failure when CI is set.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { MeshMetrics } from '../../src/observability/metrics.js';
import { metricsHandler } from '../../src/observability/metrics-handler.js';
import { dashboardQueries, findPrometheus, startPrometheus } from '../helpers/prometheus.js';
import type { PromVectorSample, PrometheusServer } from '../helpers/prometheus.js';

const MISSING = 'prometheus binary not found (/usr/bin/prometheus): install it with `apt-get install -y prometheus`';
const inCI = process.env.CI !== undefined && process.env.CI !== '';

describe('Prometheus scraping metricsHandler', () => {
  let prom: PrometheusServer | undefined;
  let server: http.Server | undefined;
  let scrapes = 0;
  let missing = false;

  before(async () => {
    const binary = await findPrometheus();
    if (binary === undefined) {
      missing = true;
      if (!inCI) process.stderr.write(`\n*** SKIPPED: ${MISSING} ***\n\n`);
      return;
    }
    const metrics = new MeshMetrics();
    for (let i = 0; i < 3; i++) metrics.recordClientRequest('products', 'catalog', 'GET', '200', 'success', 0.02);
    metrics.recordClientRequest('products', 'catalog', 'GET', '503', 'failure', 0.3);
    metrics.recordClientAttempt('products', 'catalog', 'GET', '200', 'success', 0.02);
    metrics.recordServerRequest('products', 'checkout', 'unknown', 'GET', '200', 'success', 0.01);
    metrics.setBreakerState('products', 'open');
    metrics.setEndpoints('products', 2, 1);
    metrics.setCertificateExpiry('products', Date.now() + 86_400_000);
    const handler = metricsHandler(metrics.registry);
    server = http.createServer((req, res) => {
      if (req.url === '/metrics') {
        scrapes++;
        handler(req, res);
      } else {
        res.statusCode = 404;
        res.end();
      }
    });
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
    prom = await startPrometheus(binary, [`127.0.0.1:${(server.address() as AddressInfo).port}`]);
  });

  after(async () => {
    await prom?.close();
    if (server !== undefined) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server?.close(() => resolve()));
    }
  });

  /** The running Prometheus, or undefined after skipping (locally) / failing (CI) when it is missing. */
  function running(t: { skip(reason: string): void }): PrometheusServer | undefined {
    if (missing) {
      if (inCI) assert.fail(`${MISSING} — required in CI`);
      t.skip(MISSING);
      return undefined;
    }
    return prom;
  }

  it('reads trellis_client_requests_total with its exact value and labels', async (t) => {
    const p = running(t);
    if (p === undefined) return;
    const until = Date.now() + 20_000;
    let result: PromVectorSample[] = [];
    while (Date.now() < until) {
      result = await p.query('trellis_client_requests_total');
      if (result.length >= 2) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.ok(result.length >= 2, `Prometheus never saw the counter (scrapes served: ${scrapes}); its log: ${p.log()}`);
    const byOutcome = new Map(result.map((r) => [r.metric.outcome, r]));
    const ok = byOutcome.get('success');
    assert.ok(ok !== undefined);
    assert.equal(ok.value[1], '3');
    assert.equal(ok.metric.service, 'products');
    assert.equal(ok.metric.route, 'catalog');
    assert.equal(ok.metric.method, 'GET');
    assert.equal(ok.metric.status_code, '200');
    assert.equal(ok.metric.job, 'trellis');
    assert.equal(byOutcome.get('failure')?.value[1], '1');

    const ratio = await p.query('sum(trellis_client_requests_total{outcome="success"}) / sum(trellis_client_requests_total)');
    assert.equal(Number(ratio[0]?.value[1]), 0.75);
    const open = await p.query('trellis_client_circuit_breaker_state{state="open"}');
    assert.equal(open[0]?.value[1], '1');
    const p50 = await p.query('histogram_quantile(0.5, sum by (le) (trellis_client_request_duration_seconds_bucket))');
    const q = Number(p50[0]?.value[1]);
    assert.ok(q > 0.01 && q <= 0.025, `p50 ${q} should fall in the (0.01, 0.025] bucket`);
  });

  it('runs every query of the Grafana dashboard', async (t) => {
    const p = running(t);
    if (p === undefined) return;
    const queries = await dashboardQueries();
    assert.ok(queries.length > 0);
    for (const { title, expr } of queries) {
      const promql = expr.replaceAll('$__rate_interval', '1m').replaceAll('$service', '.*');
      await assert.doesNotReject(p.query(promql), `${title}: ${promql}`);
    }
  });
});
