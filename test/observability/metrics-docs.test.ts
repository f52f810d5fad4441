/**
 * Keeps docs/metrics.md and docs/grafana-dashboard.json in step with MeshMetrics: the doc lists
 * every metric and no other, the dashboard is valid JSON whose queries name only real series and
 * filter on the `service` variable. (test/observability/prometheus.test.ts also has a real
 * Prometheus parse every dashboard query.)
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { METRIC_NAMES } from '../../src/observability/metrics.js';
import { CONNECTION_METRIC_NAMES } from '../../src/observability/connection-metrics.js';
import { OUTCOMES } from '../../src/observability/metrics-labels.js';
import { dashboardQueries } from '../helpers/prometheus.js';

const docs = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../docs');
const names = new Set<string>([...Object.values(METRIC_NAMES), ...Object.values(CONNECTION_METRIC_NAMES)]);
const histograms = [METRIC_NAMES.clientRequestDuration, METRIC_NAMES.clientAttemptDuration, METRIC_NAMES.serverRequestDuration, CONNECTION_METRIC_NAMES.clientConnectionDuration, CONNECTION_METRIC_NAMES.serverConnectionDuration];
const series = new Set<string>([...names, ...histograms.flatMap((h) => [`${h}_bucket`, `${h}_sum`, `${h}_count`])]);

interface Panel {
  type: string;
  title: string;
  targets?: { expr: string; refId: string }[];
  gridPos: { x: number; y: number; w: number; h: number };
}

describe('metrics docs', () => {
  it('metrics.md describes every metric, and only those', async () => {
    const text = await readFile(path.join(docs, 'metrics.md'), 'utf8');
    const tabled = new Set([...text.matchAll(/^\| `(trellis_[a-z_]+)` \|/gm)].map((m) => m[1] as string));
    assert.deepEqual([...tabled].sort(), [...names].sort());
    for (const m of text.matchAll(/\btrellis_[a-z_]+/g)) assert.ok(series.has(m[0]), `metrics.md names unknown series ${m[0]}`);
    for (const o of OUTCOMES) assert.ok(text.includes(`\`${o}\``), `metrics.md explains outcome ${o}`);
    assert.ok(!/```ya?ml/.test(text), 'YAML blocks in docs/ must be complete Trellis documents; use text blocks');
  });

  it('the Grafana dashboard is valid, templated on service, and queries only real series', async () => {
    const d = JSON.parse(await readFile(path.join(docs, 'grafana-dashboard.json'), 'utf8')) as {
      title: string;
      uid: string;
      panels: Panel[];
      templating: { list: { name: string; type: string }[] };
    };
    assert.ok(d.title.length > 0 && d.uid.length > 0);
    assert.ok(d.templating.list.some((v) => v.name === 'service' && v.type === 'query'));
    const ids = new Set<string>();
    const queries = await dashboardQueries();
    assert.ok(queries.length >= 10);
    for (const p of d.panels) {
      if (p.type === 'row') continue;
      assert.ok((p.targets ?? []).length > 0, `panel ${p.title} has no query`);
      for (const t of p.targets ?? []) {
        assert.ok(!ids.has(`${p.title}/${t.refId}`));
        ids.add(`${p.title}/${t.refId}`);
      }
    }
    const used = new Set<string>();
    for (const q of queries) {
      assert.match(q.expr, /service=~"\$service"/, `${q.title}: filter on $service`);
      for (const m of q.expr.matchAll(/\btrellis_[a-z_]+/g)) {
        assert.ok(series.has(m[0]), `${q.title}: unknown series ${m[0]}`);
        used.add(m[0].replace(/_(bucket|sum|count)$/, ''));
      }
    }
    for (const want of ['trellis_client_requests_total', 'trellis_client_request_duration_seconds', 'trellis_client_retries_total', 'trellis_client_circuit_breaker_state', 'trellis_client_endpoints', 'trellis_client_rate_limited_total']) {
      assert.ok(used.has(want), `the dashboard shows ${want}`);
    }
    for (const expr of queries.map((q) => q.expr)) assert.ok(/histogram_quantile|rate\(|increase\(|_state|_endpoints|expiry/.test(expr), expr);
    assert.ok(queries.some((q) => q.expr.includes('histogram_quantile(0.99')) && queries.some((q) => q.expr.includes('histogram_quantile(0.5')) && queries.some((q) => q.expr.includes('histogram_quantile(0.95')));
    assert.ok(queries.some((q) => q.expr.includes('outcome="success"')));
  });
});
